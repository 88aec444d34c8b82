"""The engine samples the model it documents (issue 7, items 1 to 3).

Simulated outcomes are compared with numerical integration of the hazards
(`fomolab.theory`), with the Poisson arrival process and its boosts, and with
the M(t)/G/infinity mean of concurrent viewers.  Every comparison allows 3
standard errors of the simulated estimate; seeds are fixed.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fomolab.design import expand
from fomolab.engine import simulate
from fomolab.theory import expected_outcomes, expected_viewers

from conftest import ROOT, experiment, make_spec

HYPERBOLIC = make_spec(
    experiment={"seed": 41},
    stream={"duration_s": 2400.0, "arrivals": {"rate_per_s": 2.0}},
    population={"segments": {"all": {"impulsiveness": {"beta": [2.0, 3.0]}, "interest": {"mean": 1.0, "cv": 0.6},
                                     "price_sensitivity": 1.5}}},
    lineup={"item": {"base_rate_per_s": 1 / 1500, "tactics": {
        "lightning_sale": {"start_s": 900.0, "end_s": 1500.0, "discount": 0.25, "gain": 2.0},
        "countdown_timer": {"urgency": "hyperbolic", "kappa_per_s": 0.02, "gain": 4.0,
                            "procrastination": 0.6}}}},
    arms={"control": {}, "hyperbolic": {"tactics": ["item.*"]}},
)
CODE = make_spec(
    experiment={"seed": 43},
    stream={"duration_s": 2400.0, "arrivals": {"rate_per_s": None, "schedule": [{"start_s": 0.0, "rate_per_s": 1.0},
                                                            {"start_s": 600.0, "rate_per_s": 3.0}]}},
    population={"segments": {
        "all": {"share": 0.7},
        "keen": {"share": 0.3, "impulsiveness": {"fixed": 0.8}, "dwell": {"mean_s": 200.0}}}},
    arms={"control": {}, "code": {"tactics": ["a.exclusive_code"]}},
)
CODE["lineup"] = {  # two products, overlapping slots; the code's holders pay 20 % less for the first
    "a": {"price": 10.0, "base_rate_per_s": 1 / 1200, "slot_s": [0.0, 1500.0],
          "tactics": {"exclusive_code": {"announce_s": 800.0, "expires_s": 1400.0, "discount": 0.2,
                                         "gain": 5.0, "arrival_boost": 1.5}}},
    "b": {"price": 30.0, "base_rate_per_s": 1 / 2400, "slot_s": [1200.0, 2400.0]},
}
CODE["population"]["segments"]["keen"]["price_sensitivity"] = 1.0


def pooled(exp, replicates: int):
    out = {}
    for r in expand(exp, range(replicates)):
        sh = simulate(r).shoppers
        out.setdefault(r.arm, []).append(sh[["arrival_s", "first_purchase_s"]])
    return {arm: np.concatenate([(d.first_purchase_s - d.arrival_s).to_numpy() for d in v]) for arm, v in out.items()}


@pytest.mark.parametrize("name,replicates", [("reference", 8), ("hyperbolic", 8), ("code", 10)])
def test_conversion_and_time_to_purchase_match_integration(name, replicates):
    exp = experiment({"hyperbolic": HYPERBOLIC, "code": CODE}[name]) if name != "reference" else None
    if exp is None:
        from fomolab import load_experiment

        exp = load_experiment(ROOT / "experiments/reference_flash.toml")
    ttp = pooled(exp, replicates)
    for arm, times in ttp.items():
        theory = expected_outcomes(exp.arms[arm].scenario)
        n = len(times)
        bought = times[~np.isnan(times)]
        p_hat = len(bought) / n
        se_p = np.sqrt(theory.conversion * (1 - theory.conversion) / n)
        assert abs(p_hat - theory.conversion) < 3 * se_p, (arm, p_hat, theory)
        se_t = bought.std(ddof=1) / np.sqrt(len(bought))
        assert abs(bought.mean() - theory.mean_time_to_purchase_s) < 3 * se_t, (arm, bought.mean(), theory)
        # and the arrivals: the viewer count matches the integrated intensity
        assert abs(n / replicates - theory.viewers) < 3 * np.sqrt(theory.viewers / replicates)


def test_arrivals_are_poisson_with_the_right_laws():
    exp = experiment(make_spec(experiment={"seed": 3}, stream={"duration_s": 7200.0, "arrivals": {"rate_per_s": 1.5}}))
    sh = simulate(expand(exp, range(1))[0]).shoppers
    a = sh.arrival_s.to_numpy()
    # counts in 60 s intervals: Poisson, so (k - 1) * var / mean ~ chi2(k - 1)
    counts, _ = np.histogram(a, bins=np.arange(0, 7200.1, 60.0))
    k = len(counts)
    d = (k - 1) * counts.var(ddof=1) / counts.mean()
    assert stats.chi2.ppf(0.001, k - 1) < d < stats.chi2.ppf(0.999, k - 1)
    # inter-arrival times: exponential with rate 1.5
    assert stats.kstest(np.diff(a), "expon", args=(0, 1 / 1.5)).pvalue > 0.001
    # dwell: exponential with mean 300 s (viewers who arrived early enough never to be cut at the end)
    early = sh[sh.arrival_s < 7200 - 3000]
    assert stats.kstest(early.departure_s - early.arrival_s, "expon", args=(0, 300.0)).pvalue > 0.001


def test_arrival_boost_raises_the_rate_in_its_window():
    spec = make_spec(experiment={"seed": 5}, stream={"duration_s": 3600.0, "arrivals": {"rate_per_s": 2.0}},
                     lineup={"item": {"tactics": {"lightning_sale": {"start_s": 1000.0, "end_s": 1600.0,
                                                                     "arrival_boost": 2.5}}}},
                     arms={"control": {}, "boost": {"tactics": ["item.lightning_sale"]}})
    exp = experiment(spec)
    inside = {"control": 0, "boost": 0}
    outside = {"control": 0, "boost": 0}
    reps = 4
    for r in expand(exp, range(reps)):
        sh = simulate(r).shoppers
        w = (sh.arrival_s >= 1000) & (sh.arrival_s < 1600)
        inside[r.arm] += int(w.sum())
        outside[r.arm] += int((~w).sum())
        if r.arm == "boost":
            assert (sh[sh.boosted].arrival_s.between(1000, 1600)).all()
    expected_in = {"control": 2.0 * 600 * reps, "boost": 2.5 * 2.0 * 600 * reps}
    for arm in inside:
        assert abs(inside[arm] - expected_in[arm]) < 3 * np.sqrt(expected_in[arm])
    assert outside["control"] == outside["boost"], "outside the window both arms see the same viewers"


def test_concurrent_viewers_follow_mt_g_infinity():
    spec = make_spec(experiment={"seed": 9, "control": "code"}, stream={"duration_s": 3600.0, "arrivals": {"rate_per_s": None, "schedule": [
        {"start_s": 0.0, "rate_per_s": 1.0}, {"start_s": 1200.0, "rate_per_s": 4.0}, {"start_s": 2400.0, "rate_per_s": 0.5}]}},
        population={"segments": {"all": {"share": 0.5}, "long": {
            "share": 0.5, "impulsiveness": {"fixed": 0.1}, "dwell": {"mean_s": 600.0, "distribution": "lognormal", "cv": 1.5}}}},
        lineup={"item": {"tactics": {"exclusive_code": {"announce_s": 1800.0, "expires_s": 2000.0, "arrival_boost": 3.0}}}},
        arms={"code": {"tactics": ["item.exclusive_code"]}})
    del spec["arms"]["control"]
    exp = experiment(spec)
    times = np.array([300.0, 1100.0, 1300.0, 1900.0, 2100.0, 2500.0, 3500.0])
    reps = 12
    present = np.zeros(len(times))
    for r in expand(exp, range(reps)):
        sh = simulate(r).shoppers
        a, d = sh.arrival_s.to_numpy(), sh.departure_s.to_numpy()
        present += ((a[:, None] <= times) & (d[:, None] > times)).sum(axis=0)
    mean = present / reps
    theory = expected_viewers(exp.arms["code"].scenario, times)
    # N(t) is Poisson in an M(t)/G/infinity queue: variance = mean
    assert np.all(np.abs(mean - theory) < 3 * np.sqrt(theory / reps)), (mean, theory)
