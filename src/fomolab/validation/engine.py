"""Items 1 to 3: the engine against theory."""

from __future__ import annotations

import numpy as np
from scipy import stats

from fomolab.theory import expected_outcomes, expected_viewers
from fomolab.validation import Check
from fomolab.validation._sim import experiment, scenario, tables

#: ``experiments/reference_flash.toml`` with its ``reference`` profile inlined: the same
#: experiment (a test checks the simulated tables), carried in the package so the self-check
#: runs from any installed fomolab, with or without a checkout beside it.
REFERENCE = scenario("reference_flash")
SIZES = {"quick": 6, "full": 40}


def item1_integration(scale: str) -> list[Check]:
    reps = SIZES[scale]
    scenarios = {
        "reference": experiment(REFERENCE),
        "hyperbolic timer": experiment(scenario("hyperbolic")),
        "exclusive code": experiment(scenario("code")),
    }
    out = []
    for name, exp in scenarios.items():
        for arm, tbs in tables(exp, range(reps)).items():
            sh = [t.shoppers for t in tbs]
            ttp = np.concatenate([(s.first_purchase_s - s.arrival_s).to_numpy() for s in sh])
            theory = expected_outcomes(exp.arms[arm].scenario)
            n = len(ttp)
            bought = ttp[~np.isnan(ttp)]
            p_hat = len(bought) / n
            se_p = np.sqrt(theory.conversion * (1 - theory.conversion) / n)
            z_p = (p_hat - theory.conversion) / se_p
            out.append(Check(1, f"{name}, {arm}: conversion", f"{p_hat:.5f} vs {theory.conversion:.5f} "
                             f"(z = {z_p:+.2f}; {n:,} viewers)", "within 3 SE", abs(z_p) < 3))
            se_t = bought.std(ddof=1) / np.sqrt(len(bought))
            z_t = (bought.mean() - theory.mean_time_to_purchase_s) / se_t
            out.append(Check(1, f"{name}, {arm}: mean time to first purchase (s)",
                             f"{bought.mean():.2f} vs {theory.mean_time_to_purchase_s:.2f} (z = {z_t:+.2f})",
                             "within 3 SE", abs(z_t) < 3))
    return out


def item2_arrivals(scale: str) -> list[Check]:
    reps = {"quick": 1, "full": 10}[scale]
    base = scenario("arrivals")
    out = []
    disp, ks_gap, ks_dwell = [], [], []
    for t in tables(experiment(base), range(reps))["control"]:
        sh = t.shoppers
        a = sh.arrival_s.to_numpy()
        counts, _ = np.histogram(a, bins=np.arange(0, 7200.1, 60.0))
        k = len(counts)
        d = (k - 1) * counts.var(ddof=1) / counts.mean()
        disp.append(stats.chi2.sf(d, k - 1))
        ks_gap.append(stats.kstest(np.diff(a), "expon", args=(0, 1 / 1.5)).pvalue)
        early = sh[sh.arrival_s < 7200 - 3000]
        ks_dwell.append(stats.kstest(early.departure_s - early.arrival_s, "expon", args=(0, 300.0)).pvalue)
    for name, ps_list, rule in (("counts per 60 s are Poisson (dispersion test)", disp, "two-sided"),
                                ("inter-arrival times ~ Exponential(1.5/s) (KS)", ks_gap, "one-sided"),
                                ("dwell times ~ Exponential(mean 300 s) (KS)", ks_dwell, "one-sided")):
        p = np.array(ps_list)
        ps = 2 * np.minimum(p, 1 - p) if rule == "two-sided" else p
        # Under the null the p-values are uniform: their smallest, Bonferroni-corrected, is > 0.001.
        worst = ps.min() * len(ps)
        out.append(Check(2, name, f"min p = {ps.min():.3g} over {len(ps)} runs", "Bonferroni p > 0.001",
                         worst > 0.001))
    boost = scenario("boost")
    reps = {"quick": 4, "full": 40}[scale]
    inside = {"control": 0, "boost": 0}
    for arm, tbs in tables(experiment(boost), range(reps)).items():
        for t in tbs:
            inside[arm] += int(t.shoppers.arrival_s.between(1000, 1600, inclusive="left").sum())
    for arm, mult in (("control", 1.0), ("boost", 2.5)):
        expected = mult * 2.0 * 600 * reps
        z = (inside[arm] - expected) / np.sqrt(expected)
        out.append(Check(2, f"arrival rate in the sale window, {arm} (boost x{mult})",
                         f"{inside[arm] / (600 * reps):.4f}/s vs {mult * 2.0:.4f}/s (z = {z:+.2f})",
                         "within 3 SE", abs(z) < 3))
    return out


def item3_concurrent(scale: str) -> list[Check]:
    reps = {"quick": 12, "full": 100}[scale]
    sp = scenario("concurrent")
    exp = experiment(sp)
    times = np.array([300.0, 1100.0, 1300.0, 1900.0, 2100.0, 2500.0, 3500.0])
    present = np.zeros(len(times))
    for t in tables(exp, range(reps))["code"]:
        a, d = t.shoppers.arrival_s.to_numpy(), t.shoppers.departure_s.to_numpy()
        present += ((a[:, None] <= times) & (d[:, None] > times)).sum(axis=0)
    mean = present / reps
    theory = expected_viewers(exp.arms["code"].scenario, times)
    out = []
    for t, m, e in zip(times, mean, theory, strict=True):
        z = (m - e) / np.sqrt(e / reps)  # N(t) is Poisson: variance = mean
        out.append(Check(3, f"viewers present at t = {t:.0f} s", f"{m:.2f} vs {e:.2f} (z = {z:+.2f})",
                         "within 3 SE", abs(z) < 3,
                         {"note": "Arrivals follow a three-piece schedule, tripled by a boost from 1800 s to "
                                  "2000 s; half the viewers have log-normal dwell times (mean 600 s, cv 1.5)."}))
    return out
