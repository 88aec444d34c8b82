"""Item 11: intervals that keep their coverage with 3, 5 and 10 replicates.

The picture: a researcher runs a tactic against the control on a handful of
simulated streams with common random numbers, and reads the 95 % intervals of
:func:`fomolab.stats.replicate_effects`.  Here the tactic's effect is planted
and known exactly, the experiment is repeated many times, and the share of
intervals that contain the truth is counted, for 3, 5 and 10 replicates.  A
second arm that changes nothing (only more viewers of the same kind) gives the
false-positive rate of the same tests.
"""

from __future__ import annotations

import math

import numpy as np

from fomolab.validation import Check
from fomolab.validation._sim import arm_tactic, experiment, tables
from fomolab.validation._sim import scenario as _packaged

#: The planted-effect experiment (``scenarios/few_replicates.toml``): control, a sale
#: (hazard x 1.5), a no-effect arm (50 % more viewers).  The closed forms read its numbers.
_SPEC = _packaged("few_replicates")
_SEGMENT = _SPEC["population"]["segments"]["all"]
Z = _SEGMENT["impulsiveness"]["fixed"]                      # fixed impulsiveness: every viewer has the same hazards
GAIN = arm_tactic(_SPEC, "sale")["gain"]                    # the sale multiplies the purchase hazard by 1 + GAIN * Z
BASE = _SPEC["lineup"]["item"]["base_rate_per_s"]           # purchase hazard of the control, per second
DWELL = _SEGMENT["dwell"]["mean_s"]                         # mean (exponential) dwell time, s
DURATION = _SPEC["stream"]["duration_s"]                    # stream, s
RATE = _SPEC["stream"]["arrivals"]["rate_per_s"]            # arrivals per second: about 600 viewers per arm
BOOST = arm_tactic(_SPEC, "no_effect")["arrival_boost"]     # the no-effect arm's arrival boost
TAU = DWELL         # horizon of the restricted mean and the cumulative incidence: a typical visit
REPLICATES = (3, 5, 10)
MEASURES = ("hazard_ratio", "rmst_difference_s", "cif_difference", "risk_difference")
#: Experiments at 10 replicates; the pool of 10 x this many replicates gives twice as many
#: experiments of 5 and three times as many of 3.
SIZES = {"quick": 40, "full": 1000}
#: The acceptance bands at full size, and the nominal rates they surround.
COVER_BAND, COVER_NOMINAL = (0.93, 0.97), 0.95
FPR_BAND, FPR_NOMINAL = (0.03, 0.07), 0.05

_NAMES = {"hazard_ratio": "hazard ratio", "rmst_difference_s": "RMST difference",
          "cif_difference": "cumulative-incidence difference", "risk_difference": "conversion difference"}


def scenario() -> dict:
    """The planted-effect experiment: control, a sale (hazard x 1.5), a no-effect arm (50 % more viewers)."""
    return _packaged("few_replicates")


def truth() -> dict[str, float]:
    """The planted effects of the sale arm, from the model's hazards integrated exactly.

    Purchase hazard ``h`` (control ``BASE``, sale ``1.5 BASE``) and departure
    hazard ``mu = 1 / DWELL`` are constant over the whole stream, so from
    arrival the time to the first purchase (departure censoring it) is
    exponential with rate ``h`` and the cumulative incidence of buying before
    leaving is ``h / (h + mu) (1 - exp(-(h + mu) t))``.  The restricted mean
    time to purchase up to ``tau`` is ``(1 - exp(-h tau)) / h``.  The end of
    the stream censors a viewer independently of these times (arrival times do
    not change the hazards), so the estimators target exactly these values.
    Conversion, buying during the visit, which the stream's end cuts for
    viewers arriving uniformly over ``[0, T]``, is ``h / k (1 - (1 - exp(-k
    T)) / (k T))`` with ``k = h + mu`` (:func:`fomolab.theory.expected_outcomes`
    integrates the same numerically; the tests compare the two).
    """
    mu = 1 / DWELL
    hc, ha = BASE, BASE * (1 + GAIN * Z)

    def cif(h: float) -> float:
        return h / (h + mu) * (1 - math.exp(-(h + mu) * TAU))

    def rmst(h: float) -> float:
        return (1 - math.exp(-h * TAU)) / h

    def conversion(h: float) -> float:
        k = h + mu
        return h / k * (1 - (1 - math.exp(-k * DURATION)) / (k * DURATION))

    return {"hazard_ratio": 1 + GAIN * Z, "rmst_difference_s": rmst(ha) - rmst(hc),
            "cif_difference": cif(ha) - cif(hc), "risk_difference": conversion(ha) - conversion(hc)}


def _arrays(shoppers, T: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fp = shoppers.first_purchase_s.to_numpy(float)
    dep = shoppers.departure_s.to_numpy(float)
    bought = ~np.isnan(fp)
    time = np.where(bought, fp, dep) - shoppers.arrival_s.to_numpy(float)
    return time, bought.astype(float), (~bought & (dep < T)).astype(float)


#: Replicates simulated at once by :func:`per_replicate`.
_BLOCK = 100


def per_replicate(n_replicates: int) -> dict[str, np.ndarray]:
    """Per-replicate estimates of the sale and the no-effect arm against the control.

    Returns ``{"sale": array, "no_effect": array}``, each (replicates x
    measures), ratios on the log scale.
    """
    from fomolab.stats.replicates import replicate_contrast

    exp = experiment(scenario())
    rows: dict[str, list[list[float]]] = {"sale": [], "no_effect": []}
    # a block of replicates at a time: the simulated tables of thousands of replicates would not fit in memory
    for lo in range(0, n_replicates, _BLOCK):
        sims = tables(exp, range(lo, min(lo + _BLOCK, n_replicates)))
        for arm, got in rows.items():
            for tc, ta in zip(sims["control"], sims[arm], strict=True):
                est = replicate_contrast(_arrays(tc.shoppers, DURATION), _arrays(ta.shoppers, DURATION), tau=TAU,
                                         measures=MEASURES)
                got.append([math.log(est[m]) if m == "hazard_ratio" else est[m] for m in MEASURES])
        del sims
    return {arm: np.array(r) for arm, r in rows.items()}


def _band(band: tuple[float, float], nominal: float, n: int, n_full: int) -> tuple[float, float, str]:
    """The acceptance band, widened at a smaller size by 3 binomial SEs of that size."""
    if n >= n_full:
        return band[0], band[1], f"{band[0]:.0%} to {band[1]:.0%}"
    se = math.sqrt(nominal * (1 - nominal) / n)
    lo, hi = max(0.0, band[0] - 3 * se), min(1.0, band[1] + 3 * se)
    return lo, hi, (f"{lo:.1%} to {hi:.1%} ({band[0]:.0%} to {band[1]:.0%} widened by 3 binomial SE "
                    f"at {n} experiments)")


def item11_few_replicates(scale: str) -> list[Check]:
    """Coverage and A/A false-positive rates of the paired t intervals at 3, 5 and 10 replicates."""
    from fomolab.stats.replicates import t_across

    n10 = SIZES[scale]
    pool = per_replicate(10 * n10)
    true = truth()
    note = (f"One product on show all stream; every viewer has impulsiveness {Z} and the same hazards, so the "
            f"sale arm (a lightning sale of gain {GAIN} for the whole {DURATION:.0f} s stream) multiplies the "
            f"purchase hazard by exactly {1 + GAIN * Z:g}: a proportional-hazards effect with hazard ratio "
            f"{true['hazard_ratio']:g}, RMST difference up to tau = {TAU:.0f} s {true['rmst_difference_s']:+.2f} "
            f"s, cumulative-incidence difference by tau {true['cif_difference']:+.4f} and conversion difference "
            f"{true['risk_difference']:+.4f} (closed forms of the constant hazards integrated). The no-effect arm "
            "adds 50 % more viewers of the same kind (an exclusive code of gain 0 with an arrival boost of 1.5), "
            "so every true difference is 0. Arms "
            f"share viewers by common random numbers; about {RATE * DURATION:.0f} viewers per arm and replicate, "
            "mean dwell 300 s. Each experiment's interval is `fomolab.stats.replicate_effects`'s: the effect "
            "estimated within each replicate, a t interval with G - 1 degrees of freedom across the G "
            f"replicates. The {10 * n10:,} simulated replicates form {n10:,} experiments of 10 replicates, "
            f"{2 * n10:,} of 5 and {3 * n10:,} of 3 (disjoint within each count).")
    out = []
    for G in REPLICATES:
        n = _experiments(G, n10)
        for arm, kind in (("sale", "cover"), ("no_effect", "fpr")):
            est = pool[arm][: n * G].reshape(n, G, len(MEASURES))
            for j, m in enumerate(MEASURES):
                r = t_across(est[:, :, j], null=0.0, conf_level=0.95, axis=1)
                if kind == "cover":
                    target = math.log(true[m]) if m == "hazard_ratio" else true[m]
                    rate = float(np.mean((r["ci_lower"] <= target) & (target <= r["ci_upper"])))
                    band, nominal = COVER_BAND, COVER_NOMINAL
                    name = f"{G} replicates: 95% CI covers the true {_NAMES[m]}"
                else:
                    rate = float(np.mean(r["p"] < 0.05))
                    band, nominal = FPR_BAND, FPR_NOMINAL
                    name = f"{G} replicates, A/A: {_NAMES[m]} test rejects at 0.05"
                lo, hi, tgt = _band(band, nominal, n, _experiments(G, SIZES["full"]))
                se = math.sqrt(rate * (1 - rate) / n)
                out.append(Check(11, name, f"{rate:.1%} of {n:,} experiments (MC SE {se:.1%})", tgt,
                                 lo <= rate <= hi, {"note": note}))
    return out


def _experiments(G: int, n10: int) -> int:
    """Disjoint experiments of ``G`` replicates from a pool of ``10 n10`` (at most ``3 n10``)."""
    return min((10 * n10) // G, 3 * n10)
