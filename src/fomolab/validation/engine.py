"""Items 1 to 3: the engine against theory."""

from __future__ import annotations

import numpy as np
from scipy import stats

from fomolab.theory import expected_outcomes, expected_viewers
from fomolab.validation import Check
from fomolab.validation._sim import experiment, population, segment, spec, tables

#: ``experiments/reference_flash.toml`` with its ``reference`` profile inlined: the same
#: experiment (a test checks the fingerprints), carried in the package so the self-check
#: runs from any installed fomolab, with or without a checkout beside it.
REFERENCE = {
    "experiment": {"name": "reference_flash", "description": "One 3600 s stream, one product; a 300 s lightning "
                   "sale with a linear countdown timer against no tactic.", "seed": 20261126, "replicates": 20,
                   "control": "control"},
    "stream": {"duration_s": 3600.0, "arrivals": {"rate_per_s": 2.0}},
    "population": {"segments": {"reference": {
        "share": 1.0, "impulsiveness": {"beta": [2.0, 5.0]}, "interest": {"mean": 1.0, "cv": 0.0},
        "dwell": {"mean_s": 300.0, "distribution": "exponential"}, "price_sensitivity": 0.0}}},
    "lineup": {"gloss": {"price": 20.0, "base_rate_per_s": 5.555555555555556e-4, "tactics": {
        "lightning_sale": {"start_s": 1200.0, "end_s": 1500.0, "discount": 0.0, "gain": 4.0},
        "countdown_timer": {"urgency": "linear", "gain": 2.0}}}},
    "arms": {"control": {"description": "No tactic."},
             "flash": {"description": "Lightning sale with a linear countdown timer to its end.",
                       "tactics": ["gloss.lightning_sale", "gloss.countdown_timer"]}},
}

#: A hyperbolic timer with procrastination on a sale with a discount, price-sensitive
#: viewers with gamma-distributed interest.
HYPERBOLIC = spec(
    "hyperbolic", 41, duration=2400.0, rate=2.0,
    population=population(all=segment(z=(2.0, 3.0), interest_cv=0.6, beta=1.5)),
    lineup={"item": {"price": 10.0, "base_rate_per_s": 1 / 1500, "tactics": {
        "lightning_sale": {"start_s": 900.0, "end_s": 1500.0, "discount": 0.25, "gain": 2.0},
        "countdown_timer": {"urgency": "hyperbolic", "kappa_per_s": 0.02, "gain": 4.0, "procrastination": 0.6}}}},
    arms={"control": {}, "hyperbolic_timer": {"tactics": ["item.*"]}},
)
#: An exclusive code valid only for viewers present at its announcement, with an
#: arrival boost, two products with overlapping slots, two segments.
CODE = spec(
    "code", 43, duration=2400.0, rate=[(0.0, 1.0), (600.0, 3.0)],
    population=population(all=segment(0.7), keen=segment(0.3, z=0.8, dwell=200.0, beta=1.0)),
    lineup={"a": {"price": 10.0, "base_rate_per_s": 1 / 1200, "slot_s": [0.0, 1500.0],
                  "tactics": {"exclusive_code": {"announce_s": 800.0, "expires_s": 1400.0, "discount": 0.2,
                                                 "gain": 5.0, "arrival_boost": 1.5}}},
            "b": {"price": 30.0, "base_rate_per_s": 1 / 2400, "slot_s": [1200.0, 2400.0]}},
    arms={"control": {}, "code": {"tactics": ["a.exclusive_code"]}},
)
SIZES = {"quick": 6, "full": 40}


def item1_integration(scale: str) -> list[Check]:
    reps = SIZES[scale]
    scenarios = {
        "reference": experiment(REFERENCE),
        "hyperbolic timer": experiment(HYPERBOLIC),
        "exclusive code": experiment(CODE),
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
    base = spec("arrivals", 3, duration=7200.0, rate=1.5, population=population(all=segment()),
                lineup={"item": {"price": 10.0, "base_rate_per_s": 1 / 900}}, arms={"control": {}})
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
    boost = spec("boost", 5, duration=3600.0, rate=2.0, population=population(all=segment()),
                 lineup={"item": {"price": 10.0, "base_rate_per_s": 1 / 900, "tactics": {
                     "lightning_sale": {"start_s": 1000.0, "end_s": 1600.0, "arrival_boost": 2.5}}}},
                 arms={"control": {}, "boost": {"tactics": ["item.lightning_sale"]}})
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
    sp = spec("concurrent", 9, duration=3600.0, rate=[(0.0, 1.0), (1200.0, 4.0), (2400.0, 0.5)],
              population=population(all=segment(0.5), long=segment(0.5, z=0.1, dwell=600.0, dwell_law="lognormal",
                                                                   dwell_cv=1.5)),
              lineup={"item": {"price": 10.0, "base_rate_per_s": 1 / 900, "tactics": {
                  "exclusive_code": {"announce_s": 1800.0, "expires_s": 2000.0, "arrival_boost": 3.0}}}},
              arms={"code": {"tactics": ["item.exclusive_code"]}})
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
