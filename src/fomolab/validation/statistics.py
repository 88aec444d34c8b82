"""Items 4 to 6: the statistics against a known truth."""

from __future__ import annotations

import math
import tempfile
import warnings

import numpy as np
import pandas as pd

from fomolab.validation import Check
from fomolab.validation._sim import arm_tactic, experiment, only_tactic, scenario, tables, time_to_purchase

#: Fixed impulsiveness of the planted-effect and power scenarios, and the planted sale's gain:
#: every hazard is multiplied by 1 + GAIN * Z = 1.5 while the sale runs (``scenarios/planted.toml``).
_PLANTED = scenario("planted")
Z = _PLANTED["population"]["segments"]["all"]["impulsiveness"]["fixed"]
GAIN = arm_tactic(_PLANTED, "sale")["gain"]


def item4_planted(scale: str) -> list[Check]:
    """Coverage and bias of the time-varying Cox HR over independent replicates."""
    from fomolab.runner import run
    from fomolab.stats import cox
    from fomolab.stats.episodes import episodes

    reps = {"quick": 200, "full": 1000}[scale]
    truth = math.log(1 + GAIN * Z)
    with tempfile.TemporaryDirectory() as tmp:
        res = run(experiment(scenario("planted", **{"experiment.replicates": reps})), out=f"{tmp}/planted")
        ep = episodes(res)
    est_list: list[float] = []
    covered_list: list[bool] = []
    for _, one in ep.groupby("replicate", sort=True):
        # arms of a replicate share viewers (common random numbers): cluster on the viewer
        fit = cox(one, "stop_s", "event", ["sale_active"], start="start_s", cluster="shopper_id")
        row = fit.summary.loc["sale_active"]
        est_list.append(row["coef"])
        covered_list.append(row["ci_lower"] <= math.exp(truth) <= row["ci_upper"])
    est, covered = np.array(est_list), np.array(covered_list)
    cover = covered.mean()
    mcse_cover = math.sqrt(0.95 * 0.05 / len(covered))
    bias = est.mean() - truth
    mcse = est.std(ddof=1) / math.sqrt(len(est))
    note = (f"Impulsiveness is fixed at z = {Z}, so a lightning sale of gain {GAIN} multiplies every hazard "
            f"by exactly 1 + {GAIN} x {Z} = {1 + GAIN * Z} while it runs. Each of {len(est)} replicates (control "
            "and sale arm, 1,800 viewers each) is fitted on its own: Cox on `episodes()` with `sale_active` as a "
            "time-varying covariate, (start, stop] data, Efron ties, robust errors clustered by viewer (the arms "
            "share viewers by common random numbers).")
    return [
        Check(4, "95% CI covers the true hazard ratio", f"{cover:.1%} of {len(covered)} (MC SE {mcse_cover:.1%})",
              "92% to 98%", 0.92 <= cover <= 0.98, {"note": note}),
        Check(4, "mean bias of log hazard ratio", f"{bias:+.4f} (truth {truth:.4f}; MC SE {mcse:.4f})",
              "|bias| < 2 MC SE", abs(bias) < 2 * mcse),
    ]


def _aa(replicates: int, crn: bool) -> dict:
    return scenario("aa", **{"experiment.replicates": replicates, "experiment.common_random_numbers": crn})


def item5_aa(scale: str) -> list[Check]:
    """Identical arms, independent random numbers: tests reject at their nominal rate."""
    from fomolab.stats import cox, logrank

    n = {"quick": 400, "full": 2000}[scale]
    exp = experiment(_aa(n, crn=False))
    sims = tables(exp, range(n))
    rej_lr, rej_cox = [], []
    for ta, tb in zip(sims["a"], sims["b"], strict=True):
        da, ea = time_to_purchase(ta.shoppers)
        db, eb = time_to_purchase(tb.shoppers)
        df = pd.DataFrame({"t": np.concatenate([da, db]), "e": np.concatenate([ea, eb]),
                           "b": np.r_[np.zeros(len(da)), np.ones(len(db))]})
        rej_lr.append(logrank(df, "t", "e", "b").p < 0.05)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rej_cox.append(cox(df, "t", "e", ["b"]).summary.loc["b", "p"] < 0.05)
    out = []
    se = math.sqrt(0.05 * 0.95 / n)
    for name, r in (("log-rank", rej_lr), ("Cox (arm indicator)", rej_cox)):
        rate = float(np.mean(r))
        out.append(Check(5, f"{name} rejects at alpha = 0.05", f"{rate:.1%} of {n} A/A comparisons (SE {se:.1%})",
                         "3% to 7%", 0.03 <= rate <= 0.07,
                         {"note": "Two arms with identical settings and `common_random_numbers = false`, so "
                                  "each arm draws its own viewers; 900 s streams of about 900 viewers per arm; "
                                  "time from arrival to first purchase, censored at departure."}))
    crn = tables(experiment(_aa(3, crn=True)), range(3))
    same = all(ta.shoppers.drop(columns=["run_id", "arm"]).equals(tb.shoppers.drop(columns=["run_id", "arm"]))
               for ta, tb in zip(crn["a"], crn["b"], strict=True))
    out.append(Check(5, "with common random numbers, identical arms give identical tables",
                     "identical" if same else "different", "identical (nothing to test)", same))
    return out


def item6_power(scale: str) -> list[Check]:
    """plan_replicates' replicates give the power it promises."""
    from fomolab.stats import logrank, plan_replicates
    from fomolab.theory import expected_outcomes

    hr, target_reps = 1.25, 8
    sims_n = {"quick": 400, "full": 2000}[scale]
    # choose the arrival rate so that the plan asks for about 8 replicates
    d = float(plan_replicates(hr).summary.loc[0, "events"])
    gain = (hr - 1) / Z
    base = scenario("power")
    only_tactic(base, "item")["gain"] = gain  # the sale of the treatment arm, all stream
    exp = experiment(base)
    per_viewer = sum(expected_outcomes(a.scenario).conversion for a in exp.arms.values())
    rate = d / (target_reps - 0.05) / (per_viewer * 900.0)  # just under 8 replicates' worth of events
    base["stream"]["arrivals"]["rate_per_s"] = rate
    exp = experiment(base)
    epr = sum(expected_outcomes(a.scenario).conversion * expected_outcomes(a.scenario).viewers
              for a in exp.arms.values())
    plan = plan_replicates(hr, events_per_replicate=epr)
    R = plan.replicates
    if R is None:
        raise RuntimeError(f"plan_replicates gave no number of replicates for HR {hr}")
    sims = tables(exp, range(sims_n * R))
    rejections = []
    for k in range(sims_n):
        parts = []
        for arm in ("control", "sale"):
            for t in sims[arm][k * R:(k + 1) * R]:
                dur, ev = time_to_purchase(t.shoppers)
                parts.append(pd.DataFrame({"t": dur, "e": ev, "sale": float(arm == "sale")}))
        df = pd.concat(parts, ignore_index=True)
        rejections.append(logrank(df, "t", "e", "sale").p < 0.05)
    power = float(np.mean(rejections))
    se = math.sqrt(power * (1 - power) / sims_n)
    return [Check(6, f"simulated power at the planned {R} replicates (HR {hr})",
                  f"{power:.1%} (SE {se:.1%}; {sims_n} simulated experiments; plan: {plan.events:.0f} "
                  f"events at {epr:.1f} per replicate)", "75% to 85%", 0.75 <= power <= 0.85,
                  {"note": f"Impulsiveness fixed at z = {Z}; the treatment arm's sale runs all stream with gain "
                           f"{gain:g}, so the hazard ratio is exactly {hr}; arms are independent "
                           "(no common random numbers), as Schoenfeld's formula assumes; log-rank test."})]
