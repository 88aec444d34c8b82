"""Tests of deadline_effect and plan_replicates."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fomolab.errors import DataError, StatisticalWarning
from fomolab.stats import deadline_effect, plan_replicates


def test_deadline_counts_keys_and_exact_binomial():
    windows = pd.DataFrame({"product": ["a", "b"], "start_s": [0.0, 100.0],
                            "end_s": [100.0, 300.0]}, index=["w1", "w2"])
    buys = pd.DataFrame({
        "product": ["a"] * 6 + ["b"] * 5 + ["a"],
        "time_s": [10, 50, 89.9, 90, 95, 100, 120, 200, 280, 281, 299, 150],
    })
    out = deadline_effect(buys, windows, last=0.1, key="product").summary.set_index("window")
    # w1: 6 purchases of a in [0, 100], final 10% = [90, 100]: 90, 95, 100
    assert (out.loc["w1", "purchases"], out.loc["w1", "in_last"]) == (6, 3)
    # w2: b in [100, 300], final 10% = [280, 300]: 280, 281, 299; a at 150 ignored
    assert (out.loc["w2", "purchases"], out.loc["w2", "in_last"]) == (5, 3)
    assert out.loc["w1", "p"] == pytest.approx(stats.binomtest(3, 6, 0.1).pvalue)
    assert out.loc["w1", "ratio"] == pytest.approx(5.0)
    assert out.loc["total", "purchases"] == 11 and out.loc["total", "in_last"] == 6
    assert out.loc["total", "p"] == pytest.approx(stats.binomtest(6, 11, 0.1).pvalue)
    assert list(out.reset_index().columns) == ["window", "purchases", "in_last", "share_last",
                                               "expected_share", "ratio", "p"]


def test_deadline_exposure_expected_share():
    windows = pd.DataFrame({"start_s": [0.0, 0.0], "end_s": [100.0, 100.0],
                            "exp_all": [1000.0, 500.0], "exp_last": [300.0, 50.0]})
    buys = pd.DataFrame({"time_s": [10, 95, 96, 97]})
    out = deadline_effect(buys, windows, exposure=("exp_all", "exp_last")).summary
    assert out["expected_share"].tolist()[:2] == [0.3, 0.1]
    # unequal expected shares: total uses the normal approximation
    mean = 4 * 0.3 + 4 * 0.1
    sd = math.sqrt(4 * 0.3 * 0.7 + 4 * 0.1 * 0.9)
    assert out["p"].iloc[-1] == pytest.approx(2 * stats.norm.sf(abs(6 - mean) / sd))


def test_deadline_constant_rate_null_is_calibrated():
    # fixed seed: purchases uniform within windows -> p values ~ U(0,1); the
    # share of p < 0.05 over 400 windows must be within sampling error of 5%
    # (exact binomial tests are conservative, so at most ~5%).
    rng = np.random.default_rng(20261126)
    windows = pd.DataFrame({"win": np.arange(400), "start_s": 0.0, "end_s": 60.0})
    buys = pd.DataFrame({"win": np.repeat(np.arange(400), 40),
                         "time_s": rng.uniform(0, 60, 400 * 40)})
    out = deadline_effect(buys, windows, key="win").summary
    rej = float((out["p"].iloc[:-1] < 0.05).mean())
    assert rej <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 400)
    assert out["share_last"].iloc[-1] == pytest.approx(0.1, abs=3 * math.sqrt(0.09 / 16000))


def test_deadline_bad_input():
    w = pd.DataFrame({"start_s": [10.0], "end_s": [5.0]})
    with pytest.raises(DataError, match=r"'end_s' must be > 'start_s'.*start=10.0"):
        deadline_effect(pd.DataFrame({"time_s": [1.0]}), w)
    w = pd.DataFrame({"start_s": [0.0], "end_s": [5.0]})
    with pytest.raises(DataError, match=r"'last' must be in \(0, 1\)"):
        deadline_effect(pd.DataFrame({"time_s": [1.0]}), w, last=1.5)
    with pytest.raises(DataError, match=r"column 'time_s' not found in 'purchases'"):
        deadline_effect(pd.DataFrame({"t": [1.0]}), w)
    with pytest.raises(DataError, match=r"'time_s' of 'purchases' must be >= 0.*-1.0"):
        deadline_effect(pd.DataFrame({"time_s": [1.0, -1.0]}), w)
    with pytest.warns(StatisticalWarning, match="no purchases"):
        out = deadline_effect(pd.DataFrame({"time_s": [50.0]}), w)
    assert np.isnan(out.summary["p"].iloc[0])


def test_schoenfeld_events():
    # d = (z_.975 + z_.8)^2 / (0.25 log(0.5)^2) = 65.35 -> 66 events
    plan = plan_replicates(0.5, events_per_replicate=12.5)
    d = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2 / (0.25 * math.log(0.5) ** 2)
    assert plan.events == plan.summary.loc[0, "events"] == pytest.approx(d)
    assert plan.summary.loc[0, "events_needed"] == 66
    assert plan.replicates == math.ceil(d / 12.5) == 6
    # unequal allocation needs more events
    assert plan_replicates(0.5, allocation=0.25).events > d
    assert "PowerPlan" in repr(plan)


def test_two_proportions_and_design_effect():
    # classic normal-approximation sample size (pooled variance under H0),
    # the closed form of R's power.prop.test(p1=.5, p2=.75, power=.9)
    # (strict = FALSE), whose printed answer is n = 76.7 per group.
    plan = plan_replicates(0.75, metric="conversion", baseline=0.5, power=0.9)
    assert round(plan.summary.loc[0, "n_per_arm"], 1) == 76.7
    clustered = plan_replicates(0.75, metric="conversion", baseline=0.5, power=0.9,
                                viewers_per_replicate=20, icc=0.05)
    deff = 1 + 19 * 0.05
    assert clustered.summary.loc[0, "design_effect"] == pytest.approx(deff)
    assert clustered.replicates == math.ceil(plan.summary.loc[0, "n_per_arm"] * deff / 20)


def test_power_bad_input():
    with pytest.raises(DataError, match="hazard ratio"):
        plan_replicates(1.0)
    with pytest.raises(DataError, match="'baseline'"):
        plan_replicates(0.2, metric="conversion")
    with pytest.raises(DataError, match="'conf_level' must be in"):
        plan_replicates(0.5, conf_level=1)
    with pytest.raises(DataError, match="'metric'"):
        plan_replicates(0.5, metric="odds")


def test_deadline_counts_match_a_mask_per_window_over_two_keys():
    """Each window counts the purchases with both its keys, in [start, end] and in the final fraction,
    ties at the edges included; a key compares by value (run 1 is not run "1")."""
    rng = np.random.default_rng(5)
    n = 3000
    buys = pd.DataFrame({"run": rng.choice(np.array([1, 2, "1", "x"], dtype=object), n),
                         "product": rng.choice(["a", "b", "c"], n),
                         "time_s": rng.integers(0, 200, n).astype(float)})  # many ties with the edges
    start = rng.integers(0, 150, 40).astype(float)
    windows = pd.DataFrame({"run": rng.choice(np.array([1, 2, "1", "y"], dtype=object), 40),
                            "product": rng.choice(["a", "b", "d"], 40), "start_s": start,
                            "end_s": start + rng.integers(1, 50, 40)})
    with pytest.warns(StatisticalWarning):  # the windows of run "y" or product "d" sell nothing
        out = deadline_effect(buys, windows, last=0.2, key=["run", "product"]).summary.iloc[:-1]
    t = buys.time_s.to_numpy()
    for i, w in windows.iterrows():
        m = ((t >= w.start_s) & (t <= w.end_s) & (buys.run.to_numpy() == w.run)
             & (buys["product"].to_numpy() == w["product"]))
        cut = w.end_s - 0.2 * (w.end_s - w.start_s)
        assert (out.purchases[i], out.in_last[i]) == (m.sum(), (m & (t >= cut)).sum())
    assert out.purchases.sum() > 100 and (out.purchases == 0).any()


def test_deadline_counts_of_integer_keys_are_those_of_the_same_keys_as_objects():
    """Integer keys (the analysis' run and product codes) are hashed as numbers: the counts of the same
    keys compared as Python objects, over one key and two."""
    from fomolab.stats.deadline import _window_counts

    rng = np.random.default_rng(6)
    t = rng.integers(0, 200, 5000).astype(float)
    ws = rng.integers(0, 150, 60).astype(float)
    we = ws + rng.integers(1, 50, 60)
    run_p, run_w = rng.integers(0, 9, 5000), rng.integers(0, 10, 60)  # run 9 of a window sells nothing
    prod_p, prod_w = rng.integers(0, 3, 5000).astype(np.int16), rng.integers(0, 3, 60).astype(np.uint8)
    for pk, wk in (([run_p], [run_w]), ([run_p, prod_p], [run_w, prod_w])):
        got = _window_counts(t, ws, we, 0.2, pk, wk)
        want = _window_counts(t, ws, we, 0.2, [p.astype(object) for p in pk], [w.astype(object) for w in wk])
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))
        mask = (t >= ws[7]) & (t <= we[7])
        for p, w in zip(pk, wk, strict=True):
            mask &= p == w[7]
        assert got[0][7] == mask.sum() and got[0].sum() > 200
