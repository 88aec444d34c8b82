"""Coupling-free changes per arm (fomolab.stats.changes) and proportional-hazards diagnostics (fomolab.stats.ph)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from fomolab.stats.changes import CHANGE_COLUMNS, CHANGE_MEASURES, change_table
from fomolab.stats.ph import PH_COLUMNS, WINDOW_COLUMNS, ph_table, window_edges, window_table


def runs_frame(reps: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(reps):
        v = int(rng.integers(900, 1100))
        for arm, lift in (("control", 0), ("sale", 30)):
            b = int(rng.integers(80, 100)) + lift
            rows.append(dict(point=0, replicate=r, arm=arm, viewers=v + lift // 3, buyers=b, units_sold=b + 5,
                             revenue=10.0 * (b + 5) - 2.0 * lift))
    return pd.DataFrame(rows)


def test_changes_are_paired_differences_with_t_intervals_across_replicates():
    runs = runs_frame()
    t = change_table(runs, ["control", "sale"], "control")
    assert list(t.columns) == CHANGE_COLUMNS
    assert t.measure.tolist() == [m for m, _, _ in CHANGE_MEASURES]
    c, s = runs[runs.arm == "control"].set_index("replicate"), runs[runs.arm == "sale"].set_index("replicate")
    for m, col in (("buyers", "buyers"), ("purchases", "units_sold"), ("revenue", "revenue")):
        d = (s[col] - c[col]).to_numpy(float)
        half = st.t.ppf(0.975, 3) * d.std(ddof=1) / 2
        row = t.set_index("measure").loc[m]
        assert row.change == pytest.approx(d.mean()) and row.replicates == 4
        assert (row.ci_lower, row.ci_upper) == pytest.approx((d.mean() - half, d.mean() + half))
        assert row.relative_change == pytest.approx(d.mean() / c[col].mean())
    conv = (s.buyers / s.viewers - c.buyers / c.viewers).mean()
    assert t.set_index("measure").loc["conversion", "change"] == pytest.approx(conv)


def test_one_replicate_gives_the_change_without_an_interval():
    t = change_table(runs_frame(reps=1), ["control", "sale"], "control")
    assert t.change.notna().all() and t.ci_lower.isna().all() and t.note.str.contains("one replicate").all()


def visits(seed: int, hr_in: float, hr_out: float, reps: int = 5, n: int = 3000, window=(900.0, 1200.0),
           base: float = 1 / 900, dwell: float = 300.0, end: float = 3600.0) -> pd.DataFrame:
    """Viewers of two arms with a constant purchase hazard, the arm's multiplied by ``hr_in`` during a window of
    stream time and by ``hr_out`` outside it; departures exponential, cut at the stream's end."""
    rng = np.random.default_rng(seed)
    rows = []
    a, b = window
    for rep in range(reps):
        arrival = rng.uniform(0, end, n)
        dep = np.minimum(arrival + rng.exponential(dwell, n), end)
        e = rng.exponential(1.0, n)  # the same unit-exponential draw in both arms: common random numbers
        for arm, (hin, hout) in (("control", (1.0, 1.0)), ("sale", (hr_in, hr_out))):
            # cumulative hazard from arrival, piecewise in stream time: invert it at e
            t_buy = np.full(n, np.inf)
            for i in range(n):
                s, left = arrival[i], e[i]
                for lo, hi, h in ((0, a, hout), (a, b, hin), (b, np.inf, hout)):
                    if s >= hi:
                        continue
                    s0 = max(s, lo)
                    need = left / (base * h)
                    if s0 + need <= hi:
                        t_buy[i] = s0 + need - arrival[i]
                        break
                    left -= (hi - s0) * base * h
            bought = t_buy <= dep - arrival
            rows.append(pd.DataFrame({"point": 0, "replicate": rep, "arm": arm, "arrival_s": arrival,
                                      "time_s": np.where(bought, t_buy, dep - arrival), "bought": bought.astype(int)}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def window_effect():
    return visits(1, hr_in=3.0, hr_out=1.0)


def test_hazard_ratio_by_window_recovers_a_planted_window_effect(window_effect):
    edges = window_edges(pd.DataFrame({"start_s": [900.0], "end_s": [1200.0]}), 3600.0)
    assert edges == [0.0, 900.0, 1200.0, 3600.0]
    w = window_table(window_effect, ["control", "sale"], "control", edges)
    assert list(w.columns) == WINDOW_COLUMNS and w.window.tolist() == [0, 1, 2]
    during = w.set_index("window").loc[1]
    assert during.ci_lower < 3.0 < during.ci_upper and during.ci_lower > 2
    # outside the window the arms are the same viewers with the same draws: exactly no effect, nothing to test
    before = w.set_index("window").loc[0]
    assert before.hazard_ratio == 1.0 and np.isnan(before.ci_lower) and before.note


def test_proportional_hazards_is_rejected_for_a_window_effect_and_not_for_a_constant_one(window_effect):
    ph = ph_table(window_effect, ["control", "sale"], "control")
    assert list(ph.columns) == PH_COLUMNS
    assert ph.time_scale.tolist() == ["since_arrival"] * 8 + ["stream"] * 8
    assert ph["transform"].tolist() == ["km", "km", "rank", "rank", "identity", "identity", "log", "log"] * 2
    assert ph.term.tolist()[:2] == ["sale", "GLOBAL"]
    # on the stream's clock the window effect is plain; viewers arriving at random times spread it over the
    # time since arrival, where it looks proportional
    stream = ph[ph.time_scale == "stream"]
    assert not stream.proportional.any()
    assert (stream[stream["transform"].isin(["rank", "identity"])].p < 1e-4).all()
    assert ph[ph.time_scale == "since_arrival"].proportional.all()
    const = ph_table(visits(2, hr_in=1.5, hr_out=1.5, reps=3, n=2000), ["control", "sale"], "control")
    assert const.proportional.all()
    km = const[(const["transform"] == "km") & (const.time_scale == "stream")].set_index("term")
    assert km.loc["sale", "hazard_ratio"] == pytest.approx(1.5, rel=0.1)


def test_ph_rows_equal_cox_zph_of_the_stratified_fit(window_effect):
    from fomolab.stats import cox, cox_zph

    d = window_effect.assign(x0=(window_effect.arm == "sale").astype(int))
    z = cox_zph(cox(d, "time_s", "bought", ["x0"], strata="replicate"), transform="rank").summary
    ph = ph_table(window_effect, ["control", "sale"], "control", transforms=("rank",))
    ph = ph[ph.time_scale == "since_arrival"].set_index("term")
    # the table's test is computed from counts at the event times, the fit's from cumulative sums over rows:
    # the same sums, rounded differently
    assert ph.loc["sale", "chisq"] == pytest.approx(z.loc["x0", "chisq"], rel=1e-9)
    assert ph.loc["GLOBAL", "p"] == pytest.approx(z.loc["GLOBAL", "p"], rel=1e-9)


@pytest.mark.parametrize("transform", ["km", "rank", "identity", "log"])
def test_ph_rows_equal_cox_zph_of_the_stratified_fit_on_both_clocks(window_effect, transform):
    from fomolab.stats import cox, cox_zph

    d = window_effect.assign(x0=(window_effect.arm == "sale").astype(int), stream_in=window_effect.arrival_s,
                             stream_out=window_effect.arrival_s + window_effect.time_s)
    ph = ph_table(window_effect, ["control", "sale"], "control", transforms=(transform,))
    for scale, fit in (("since_arrival", cox(d, "time_s", "bought", ["x0"], strata="replicate")),
                       ("stream", cox(d, "stream_out", "bought", ["x0"], start="stream_in", strata="replicate"))):
        z = cox_zph(fit, transform=transform).summary
        got = ph[ph.time_scale == scale].set_index("term")
        assert got.loc["sale", "chisq"] == pytest.approx(z.loc["x0", "chisq"], rel=1e-9)
        assert got.loc["GLOBAL", "p"] == pytest.approx(z.loc["GLOBAL", "p"], rel=1e-9)


def test_many_replicates_are_fitted_in_at_most_20_disjoint_groups():
    from fomolab.stats.changes import batches

    assert batches(np.array([3, 1, 2, 1])).tolist() == [2, 0, 1, 0]  # few: each replicate its own
    b = batches(np.repeat(np.arange(45), 2))
    assert b.max() == 19 and len(set(b)) == 20
    # each group holds whole replicates
    assert all(len(set(b[np.repeat(np.arange(45), 2) == r])) == 1 for r in range(45))
    sh = visits(3, hr_in=2.0, hr_out=2.0, reps=25, n=200)
    w = window_table(sh, ["control", "sale"], "control", [0.0, 3600.0])
    assert w.replicates.tolist() == [20] and w.ci_lower.iloc[0] < 2.0 < w.ci_upper.iloc[0]


def test_proportional_hazards_test_on_very_many_viewers_uses_the_first_replicates(monkeypatch):
    import fomolab.stats.ph as ph_mod

    sh = visits(4, hr_in=1.5, hr_out=1.5, reps=4, n=500)
    monkeypatch.setattr(ph_mod, "PH_MAX_ROWS", 2500)
    ph = ph_mod.ph_table(sh, ["control", "sale"], "control", transforms=("km",))
    assert ph.note.str.contains("tested on the first 2 of 4 replicates (2,000 viewers)", regex=False).all()
    # the same table with the arms as categories (their codes looked up for the rows tested), and on those rows
    assert ph_mod.ph_table(sh.assign(arm=sh.arm.astype("category")), ["control", "sale"], "control",
                           transforms=("km",)).equals(ph)
    first = sh[sh.replicate < 2]
    monkeypatch.setattr(ph_mod, "PH_MAX_ROWS", 10 ** 6)
    alone = ph_mod.ph_table(first, ["control", "sale"], "control", transforms=("km",))
    assert alone.drop(columns="note").equals(ph.drop(columns="note"))


def test_window_table_of_arms_as_categories_in_any_order_is_that_of_their_text():
    sh = visits(5, hr_in=2.0, hr_out=1.0, reps=3, n=400)
    edges = [0.0, 900.0, 1200.0, 3600.0]
    text = window_table(sh, ["control", "sale"], "control", edges)
    assert (text.events > 0).all()
    cat = sh.assign(arm=pd.Categorical(sh.arm, categories=["unused", "sale", "control"]))  # not first-seen order
    assert window_table(cat, ["control", "sale"], "control", edges).equals(text)
