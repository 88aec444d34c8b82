"""analyze(), Analysis.write() and `fomolab analyze`: tables, files, CLI, schema."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd
import pytest

from fomolab import run
from fomolab.analysis import HEADLINE_COLUMNS, analyze
from fomolab.cli import main
from fomolab.results import Results

from helpers import experiment, make_spec


def spec():
    return make_spec(
        experiment={"name": "small", "seed": 8, "replicates": 4},
        lineup={"item": {"price": 10.0, "base_rate_per_s": 1 / 900, "tactics": {
            "lightning_sale": {"start_s": 400.0, "end_s": 800.0, "discount": 0.2, "gain": 2.0},
            "countdown_timer": {"gain": 2.0}}}},
        arms={"control": {}, "sale_timer": {"tactics": ["item.*"]}},
    )


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    return run(experiment(spec()), tmp_path_factory.mktemp("an") / "small", workers=1)


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "analysis" not in p.parts}


def test_analyze_tables(res):
    a = analyze(res, n_boot=50)
    assert list(a.headline.columns) == HEADLINE_COLUMNS
    assert a.headline.arm.tolist() == ["control", "sale_timer"]
    ctrl, trt = a.headline.iloc[0], a.headline.iloc[1]
    assert ctrl.hazard_ratio == 1.0 and ctrl.odds_ratio == 1.0
    # the headline's ratios are the paired analysis across replicates (one treatment arm: Holm changes nothing)
    from fomolab.stats import replicate_effects

    fx = replicate_effects(a_sh(res), "time_s", "bought", "arm", control="control", replicate="replicate",
                           measures=["hazard_ratio", "odds_ratio"]).summary.set_index("measure")
    for m, pre in (("hazard_ratio", "hr"), ("odds_ratio", "or")):
        assert trt[m] == pytest.approx(fx.loc[m, "estimate"], rel=1e-12)
        assert (trt[f"{pre}_ci_lower"], trt[f"{pre}_ci_upper"], trt[f"{pre}_p_holm"]) == \
            pytest.approx((fx.loc[m, "ci_lower"], fx.loc[m, "ci_upper"], fx.loc[m, "p"]), rel=1e-12)
    assert trt.deadline_share == a.deadline.iloc[0].share_last
    assert a.surface is None and a.sobol is None
    assert "headline (2 rows)" in repr(a)


def a_sh(res):
    """Viewers with time to first purchase (or the visit's end) and bought."""
    from fomolab.stats.compare import time_to_purchase

    sh = time_to_purchase(res.viewers(["arm", "replicate", "point", "shopper_id", "arrival_s", "departure_s",
                                       "first_purchase_s"]))
    return sh.assign(arm=sh.arm.astype(str))


def test_write_is_atomic_and_leaves_runs_alone(res):
    before = digest(res.path)
    out = analyze(res, n_boot=20).write()
    names = sorted(p.name for p in out.iterdir())
    tables = ("headline", "changes", "for_whom", "rates", "ph", "hr_windows", "arms", "deadline", "points", "impact", "impact_segment", "impact_total", "timeline",
              "windows", "survival", "incidence", "repeat", "deadline_curve", "impulsiveness", "episode_model")
    assert names == sorted([".fomolab-output.json", *(f"{t}.{ext}" for t in tables for ext in ("csv", "md"))])
    assert digest(res.path) == before
    out2 = analyze(res, n_boot=20).write()  # replaces the old analysis
    assert out2 == out and not [p for p in res.path.iterdir() if p.name.startswith(".analysis")]
    md = (out / "headline.md").read_text()
    assert md.startswith("# Headline") and "| sale_timer |" in md


def test_cli_prints_headline_and_writes(res, capsys):
    assert main(["analyze", str(res.path), "--boot", "20"]) == 0
    printed = capsys.readouterr().out
    assert "hazard ratio" in printed and "sale_timer" in printed and "bought %" in printed
    assert "<1e-300" not in printed and max(len(line) for line in printed.splitlines()) <= 100
    assert (res.path / "analysis" / "arms.csv").is_file()


def _outcomes(res):
    """Outcome codes built from the tables: buy, leave, or censored at the stream's end."""
    import numpy as np

    sh = res.viewers(["run_id", "arm", "replicate", "arrival_s", "departure_s", "first_purchase_s"])
    end = float(res.manifest["spec"]["stream"]["duration_s"])
    bought = sh.first_purchase_s.notna().to_numpy()
    t = np.where(bought, sh.first_purchase_s, sh.departure_s) - sh.arrival_s
    code = np.where(bought, "buy", np.where(sh.departure_s.to_numpy() >= end, "censored", "leave"))
    return sh.assign(t=t, code=code, arm=sh.arm.astype(str))


def test_headline_cumulative_incidence_and_restricted_mean_with_paired_intervals(res):
    import numpy as np
    from scipy import stats as st

    from fomolab.stats import cumulative_incidence, restricted_time_in_state

    sh = _outcomes(res)
    a = analyze(res, n_boot=0, horizon=300.0)
    h = a.headline.set_index("arm")
    assert (h.horizon_s == 300.0).all() and a.horizon == 300.0
    ci = cumulative_incidence(sh, "t", "code", by="arm", censored="censored", at=300.0).summary
    ci = ci[ci.cause == "buy"].set_index("group")
    rt = restricted_time_in_state(sh, "t", "code", by="arm", censored="censored", tau=300.0).summary
    rt = rt[rt.state == "buy"].set_index("group")
    for arm in ("control", "sale_timer"):
        assert h.loc[arm, "cuminc"] == pytest.approx(ci.loc[arm, "cuminc"], rel=1e-12)
        assert h.loc[arm, "rmst_s"] == pytest.approx(300.0 - rt.loc[arm, "rmean"], rel=1e-12)
    # the difference: within each replicate, then a t interval on G - 1 df across the G replicates
    d_ci, d_rm = [], []
    for _, g in sh.groupby("replicate"):
        c = cumulative_incidence(g, "t", "code", by="arm", censored="censored", at=300.0).summary
        c = c[c.cause == "buy"].set_index("group").cuminc
        r = restricted_time_in_state(g, "t", "code", by="arm", censored="censored", tau=300.0).summary
        r = r[r.state == "buy"].set_index("group").rmean
        d_ci.append(c["sale_timer"] - c["control"])
        d_rm.append(-(r["sale_timer"] - r["control"]))
    G = len(d_ci)
    assert G == 4
    for col, d in (("cuminc_diff", d_ci), ("rmst_diff_s", d_rm)):
        d = np.asarray(d)
        half = st.t.ppf(0.975, G - 1) * d.std(ddof=1) / np.sqrt(G)
        base = col.removesuffix("_s")
        assert h.loc["sale_timer", col] == pytest.approx(d.mean(), rel=1e-10)
        assert h.loc["sale_timer", f"{base}_ci_lower"] == pytest.approx(d.mean() - half, rel=1e-10)
        assert h.loc["sale_timer", f"{base}_ci_upper"] == pytest.approx(d.mean() + half, rel=1e-10)
    assert np.isnan(h.loc["control", "cuminc_diff"])
    # the tactic raises hazards: more buy by the horizon, and sooner
    assert h.loc["sale_timer", "cuminc_diff"] > 0 > h.loc["sale_timer", "rmst_diff_s"]
    # the figure's table agrees with the headline at the horizon
    inc = a.incidence[a.incidence.horizon].set_index("arm")
    assert inc.loc["sale_timer", "cuminc"] == pytest.approx(h.loc["sale_timer", "cuminc"], rel=1e-12)


def test_default_horizon_is_the_control_median_visit(res):
    import numpy as np

    sh = _outcomes(res)
    a = analyze(res, n_boot=0)
    c = sh[sh.arm == "control"]
    assert a.horizon == pytest.approx(float(np.median(c.departure_s - c.arrival_s)))


@pytest.mark.parametrize("bad", [0.0, -5.0, float("nan"), "soon"])
def test_bad_horizon_is_refused(res, bad):
    from fomolab.errors import DataError

    with pytest.raises(DataError, match="'horizon' must be a positive number"):
        analyze(res, n_boot=0, horizon=bad)


def test_cli_bad_horizon_exits_2(res, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(res.path), "--horizon", "-3"])
    assert exc.value.code == 2 and "--horizon" in capsys.readouterr().err


def test_median_shown_only_where_reached_with_viewers_at_risk():
    import pandas as pd

    from fomolab.analysis import _median

    curve = pd.DataFrame({"time": [1.0, 2.0, 3.0], "survival": [0.9, 0.6, 0.4], "at_risk": [1000, 500, 30]})
    out = _median(curve, 1000)
    assert np.isnan(out["median_s"]) and "only 30 of 1,000" in out["median_note"]
    out = _median(curve.assign(at_risk=[1000, 500, 300]), 1000)
    assert out["median_s"] == 3.0 and out["median_note"] == ""
    out = _median(curve.assign(survival=[0.9, 0.8, 0.7]), 1000)
    assert np.isnan(out["median_s"]) and out["median_note"].startswith("not reached")


def test_one_replicate_gives_no_interval():
    from fomolab.analysis import across_replicates

    est, lo, hi, p, note = across_replicates(np.array([0.02]), 0.95)
    assert est == 0.02 and np.isnan(lo) and np.isnan(hi) and np.isnan(p) and "one replicate" in note


def test_repeat_purchases_count_every_purchase(res):
    from fomolab.stats import mean_cumulative_function

    a = analyze(res, n_boot=0)
    rp = a.repeat
    ev = res.table("events", ["run_id", "time_s", "kind", "shopper_id"])
    sh = res.viewers(["run_id", "shopper_id", "arm", "arrival_s", "departure_s"])
    buys = ev[ev.kind == "purchase"].merge(sh, on=["run_id", "shopper_id"])
    rows = pd.concat([buys.assign(t=buys.time_s - buys.arrival_s, e=1),
                      sh.assign(t=sh.departure_s - sh.arrival_s, e=0)], ignore_index=True)
    rows["visit"] = rows.run_id.astype(str) + "/" + rows.shopper_id.astype(str)
    rows["arm"] = rows.arm.astype(str)
    mcf = mean_cumulative_function(rows, "t", "e", by="arm", id="visit").curve
    last = mcf[mcf.group == "control"].sort_values("time").mcf.iloc[-1]
    cur = rp[rp.arm == "control"]
    assert cur.mcf.is_monotonic_increasing
    assert cur.mcf.iloc[-1] == pytest.approx(last, rel=1e-12)
    # the pointwise band clusters by visit: the statistics package's band, read on the figure's grid
    for arm in ("control", "sale_timer"):
        cur, ref = rp[rp.arm == arm], mcf[mcf.group == arm].sort_values("time")
        i = np.searchsorted(ref.time.to_numpy(), cur.time_s.to_numpy(), side="right") - 1
        for col in ("mcf", "ci_lower", "ci_upper"):
            want = np.where(i >= 0, ref[col].to_numpy()[np.maximum(i, 0)], 0.0)
            np.testing.assert_allclose(cur[col].to_numpy(), want, rtol=1e-10, atol=1e-12, err_msg=f"{arm} {col}")


def test_cli_warns_before_an_analysis_larger_than_the_free_memory(res, tmp_path, capsys, monkeypatch):
    from fomolab import cli
    from fomolab.analysis import PEAK_BYTES_PER_ARM_VISIT, PEAK_BYTES_PER_VISIT, PEAK_FIXED_BYTES, peak_memory_estimate

    visits, need = peak_memory_estimate(res)
    per_arm = res.runs.groupby(res.runs.arm.astype(str)).viewers.sum()
    assert visits == int(per_arm.sum()) > 0 and len(per_arm) > 1
    assert need == PEAK_FIXED_BYTES + PEAK_BYTES_PER_VISIT * visits + PEAK_BYTES_PER_ARM_VISIT * per_arm.max()
    uneven = Results(res.path)  # arms of different sizes: the largest one's visits count
    uneven.__dict__["runs"] = pd.DataFrame({"arm": pd.Categorical(["a", "a", "b"]), "viewers": [10, 20, 25]})
    assert peak_memory_estimate(uneven) == (
        55, PEAK_FIXED_BYTES + PEAK_BYTES_PER_VISIT * 55 + PEAK_BYTES_PER_ARM_VISIT * 30)
    monkeypatch.setattr(cli, "_available_memory", lambda: need + 1)  # enough: nothing said
    assert main(["analyze", str(res.path), "-q", "--out", str(tmp_path / "a1")]) == 0
    assert "warning" not in capsys.readouterr().err
    monkeypatch.setattr(cli, "_available_memory", lambda: need - 1)  # the analysis goes on, warned
    assert main(["analyze", str(res.path), "-q", "--out", str(tmp_path / "a2")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("fomolab: warning: analysing ") and f"{visits:,} visits" in err and "GB" in err
    assert (tmp_path / "a2" / "headline.csv").exists()
    assert cli._available_memory() is None or cli._available_memory() > 0  # this machine's own figure


def test_cli_bad_folder_exits_2(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fomolab: error:") and "manifest.json" in err and err.count("\n") == 1


def test_sweep_analysis_tables(root, tmp_path):
    res = run(root / "experiments/discount_timer_sweep.toml", tmp_path / "dts", workers=1)
    a = analyze(res, n_boot=0)
    assert set(a.headline.point) == set(range(6)) and a.surface is not None and a.sobol is None
    assert set(a.tables()) == {"headline", "changes", "rates", "ph", "hr_windows", "for_whom", "arms", "deadline", "points", "surface", "impact", "impact_segment",
                               "impact_total", "pooled", "marginals", "cells", "timeline", "windows", "survival",
                               "incidence", "repeat", "deadline_curve", "impulsiveness", "episode_model"}


def documented_analysis(root) -> dict[str, dict[str, str]]:
    text = (root / "docs/schema.md").read_text()
    part = text.split("\n## analysis", 1)[1]
    tables = {}
    for section in re.split(r"^### ", part, flags=re.M)[1:]:
        name = section.split("\n", 1)[0].strip().strip("`")
        tables[name] = dict(re.findall(r"^\| `([a-z_0-9]+)` \| ([A-Za-z0-9]+) \|", section, flags=re.M))
    return tables


def test_analysis_tables_match_schema(root, res):
    from fomolab.stats import episodes
    from fomolab.stats._example import example_sweep_results

    doc = documented_analysis(root)
    a = analyze(res, n_boot=20)
    s = analyze(example_sweep_results(), n_boot=0)
    m = analyze(run(root / "experiments/virtual_host.toml", res.path.parent / "vh", replicates=2), n_boot=0)
    frames = {"headline": a.headline, "arms": a.arms, "deadline": a.deadline, "points": s.points,
              "surface": s.surface, "sobol": s.sobol, "impact": a.impact, "impact_segment": a.impact_segment,
              "streams": m.streams, "episodes": episodes(res), "impact_total": a.impact_total,
              "pooled": s.pooled, "concentration": m.concentration, "episode_model": a.episode_model,
              "timeline": a.timeline, "windows": a.windows,
              "survival": a.survival, "incidence": a.incidence, "repeat": a.repeat, "for_whom": a.for_whom,
              "changes": a.changes, "rates": a.rates, "ph": a.ph, "hr_windows": a.hr_windows,
              "deadline_curve": a.deadline_curve, "impulsiveness": a.impulsiveness,
              "marginals": s.marginals, "cells": s.cells}
    # analysis/lineup needs a long lineup: tests/test_lineup_figure.py checks it against the schema
    assert set(doc) == {f"analysis/{k}" for k in frames if k != "episodes"} | {"episodes", "analysis/lineup"}
    for name, df in frames.items():
        want = doc[name if name == "episodes" else f"analysis/{name}"]
        cols = [c for c in df.columns if c in want or name != "points"]
        assert cols[: len(want)] == list(want), name
        assert {c: str(df[c].dtype) for c in want} == want, name


def test_for_whom_effects_by_quintile_and_the_interaction_test(res):
    a = analyze(res, n_boot=0, horizon=300.0)
    fw = a.for_whom[a.for_whom.by == "impulsiveness"]
    assert fw.group.tolist() == ["Q1", "Q2", "Q3", "Q4", "Q5"] and (fw.replicates == 4).all()
    sh = _outcomes(res)
    from fomolab.analysis import _buying_by
    from fomolab.stats import cumulative_incidence

    # the fast point estimate equals the Aalen–Johansen estimate of the statistics package
    ci = cumulative_incidence(sh, "t", "code", by="arm", censored="censored", at=300.0).summary
    fast = _buying_by(sh.t[sh.arm == "control"].to_numpy(), sh.code[sh.arm == "control"].to_numpy(), 300.0)[0]
    assert fast == pytest.approx(ci[(ci.group == "control") & (ci.cause == "buy")].cuminc.iloc[0], rel=1e-12)
    # the timer acts through impulsiveness: the most impulsive fifth gains most
    assert fw.set_index("group").cuminc_diff["Q5"] > fw.set_index("group").cuminc_diff["Q1"]
    assert fw.interaction_p.nunique() == 1 and fw.interaction_df1.iloc[0] == 4 and fw.interaction_df2.iloc[0] == 12


def test_interaction_test_is_the_repeated_measures_anova():
    from scipy import stats as st

    from fomolab.analysis import interaction_test

    d = np.array([[0.01, 0.02, 0.05], [0.00, 0.03, 0.04], [0.02, 0.02, 0.06], [0.01, 0.01, 0.05]])
    f, df1, df2, p = interaction_test(d)
    # by hand: two-way ANOVA without replication (replicates as blocks)
    G, k = d.shape
    ss_g = G * ((d.mean(0) - d.mean()) ** 2).sum()
    ss_b = k * ((d.mean(1) - d.mean()) ** 2).sum()
    ss_e = ((d - d.mean()) ** 2).sum() - ss_g - ss_b
    want = (ss_g / (k - 1)) / (ss_e / ((k - 1) * (G - 1)))
    assert (df1, df2) == (2, 6) and f == pytest.approx(want) and p == pytest.approx(st.f.sf(want, 2, 6))
    assert np.isnan(interaction_test(d[:1])[3])
