"""Sweep analysis: point means, response surfaces and Sobol indices."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fomolab import run
from fomolab.errors import ResultsError
from fomolab.stats import response_surface, sobol_indices, sweep_points
from fomolab.stats.sweep import POINT_COLUMNS, SOBOL_COLUMNS, SURFACE_COLUMNS

from helpers import experiment, make_spec

DISC = "lineup_lipstick_tactics_lightning_sale_discount"
GAIN = "lineup_lipstick_tactics_countdown_timer_gain"


@pytest.fixture(scope="module")
def grid(root, tmp_path_factory):
    return run(root / "experiments/discount_timer_sweep.toml", tmp_path_factory.mktemp("sw") / "grid", workers=1)


def test_point_means_and_intervals(grid):
    pts = sweep_points(grid)
    assert list(pts.columns) == POINT_COLUMNS + [DISC, GAIN]
    runs = grid.runs
    assert len(pts) == 6 * (2 * 6 + 6)  # points x (2 arms x 6 metrics + 6 paired differences)
    conv = pts[(pts.metric == "conversion")].set_index(["point", "arm"])
    want = runs.groupby(["point", "arm"], observed=True).conversion.agg(["mean", "std", "count"])
    for (point, arm), w in want.iterrows():
        got = conv.loc[(point, arm)]
        assert got["mean"] == pytest.approx(w["mean"]) and got.n == 3
        half = stats.t.ppf(0.975, 2) * w["std"] / np.sqrt(3)
        assert got.ci_upper - got["mean"] == pytest.approx(half)
    # paired differences: timer minus control of the same point and replicate
    r = runs.assign(arm=runs.arm.astype(str)).pivot_table(index=["point", "replicate"], columns="arm",
                                                          values="revenue")
    d = (r["timer"] - r["control"]).groupby("point").mean()
    got = pts[pts.metric == "revenue_vs_control"].set_index("point")["mean"]
    assert got.to_numpy() == pytest.approx(d.to_numpy())
    assert (pts[pts.metric.str.endswith("_vs_control")].arm == "timer").all()


def test_response_surface_terms_and_fit(grid):
    import statsmodels.formula.api as smf

    rs = response_surface(grid)
    assert list(rs.columns) == SURFACE_COLUMNS
    one = rs[(rs.arm == "timer") & (rs.metric == "conversion")]
    # discount has 3 levels (a square), the timer gain 2 (no square)
    assert one.term.tolist() == ["intercept", DISC, GAIN, f"{DISC}^2", f"{DISC}:{GAIN}"]
    runs = grid.runs[grid.runs.arm == "timer"]
    fit = smf.ols(f"conversion ~ {DISC} + {GAIN} + I({DISC}**2) + {DISC}:{GAIN}", runs).fit()
    assert one.coef.to_numpy() == pytest.approx(fit.params.to_numpy())
    assert one.se.to_numpy() == pytest.approx(fit.bse.to_numpy())
    assert one.r_squared.iloc[0] == pytest.approx(fit.rsquared)
    # the timer's gain raises its effect on conversion against the sale alone
    eff = rs[(rs.metric == "conversion_vs_control") & (rs.term == GAIN)].iloc[0]
    assert eff.coef > 0 and eff.p < 0.05


def test_sobol_needs_a_saltelli_design(grid):
    with pytest.raises(ResultsError, match="saltelli"):
        sobol_indices(grid)


def saltelli_spec():
    spec = make_spec(
        experiment={"name": "salt", "seed": 5, "replicates": 1},
        stream={"duration_s": 600.0, "arrivals": {"rate_per_s": 3.0}},
        lineup={"item": {"price": 10.0, "base_rate_per_s": 1 / 600, "tactics": {
            "lightning_sale": {"start_s": 150.0, "end_s": 450.0, "gain": 1.0},
            "countdown_timer": {"gain": 1.0, "urgency": "linear"}}}},
        arms={"control": {"tactics": ["item.*"]}},
        sweep={"design": "saltelli", "samples": 64, "parameters": {
            "lineup.item.tactics.lightning_sale.gain": {"low": 0.0, "high": 8.0},
            # a linear timer ignores kappa: no effect
            "lineup.item.tactics.countdown_timer.kappa_per_s": {"low": 0.01, "high": 0.1},
        }},
    )
    spec["population"]["segments"]["all"]["impulsiveness"] = {"fixed": 0.5}
    return spec


def test_sobol_indices_of_a_saltelli_sweep(tmp_path):
    res = run(experiment(saltelli_spec()), tmp_path / "salt", workers=1)
    sob = sobol_indices(res)
    assert list(sob.columns) == SOBOL_COLUMNS
    conv = sob[sob.metric == "conversion"].set_index("parameter")
    assert ((conv.s1_ci_lower < conv.s1) & (conv.s1 < conv.s1_ci_upper)).all()
    assert ((conv.st_ci_lower < conv.st) & (conv.st < conv.st_ci_upper)).all()
    assert ((sob.s1 > -0.1) & (sob.s1 < 1.1))[sob.metric.isin(["conversion", "buyers", "revenue"])].all()
    gain = conv.loc["lineup.item.tactics.lightning_sale.gain"]
    kappa = conv.loc["lineup.item.tactics.countdown_timer.kappa_per_s"]
    assert gain.s1 > 0.7 and gain.s1_ci_lower > 0.5
    assert abs(kappa.s1) < 0.1 and kappa.s1_ci_lower < 0 < kappa.s1_ci_upper  # 0 within sampling error
    assert kappa.st < 0.1
    # the parameter that matters stands out; the one that cannot matter is flagged
    assert gain.note == ""
    assert "not distinguishable from noise" in kappa.note or "includes 0" in kappa.note


def test_sobol_note_rules():
    from fomolab.stats.sweep import sobol_note
    assert sobol_note(0.2, 0.5, 0.3) == ""
    assert sobol_note(0.2, 2.07, 1.5).startswith("total index above 1")
    assert "total index's interval includes 0" in sobol_note(-0.1, 0.05, -0.02)
    assert sobol_note(-0.05, 0.3, 0.1).startswith("first-order index's interval includes 0")
