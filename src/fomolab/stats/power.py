"""Planning replicates: how many runs (or viewers) detect a given effect?

Two questions a researcher asks before a sweep: how many replicates do I need
to detect a hazard ratio of 1.2 between a countdown arm and the control, and
how many to detect a 2-point rise in conversion?  The answers use the standard
normal-approximation formulas, written out below so a reader can check them.
"""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats as _st

from fomolab.errors import DataError
from fomolab.stats import _checks

__all__ = ["PowerPlan", "plan_replicates"]


class PowerPlan:
    """A sample-size plan.

    Attributes
    ----------
    replicates : int or None
        Replicates needed (None if no per-replicate yield was given).
    summary : pandas.Series
        Every number used and produced (``metric, effect, alpha, power,
        z_alpha, z_beta, ...``).
    """

    def __init__(self, replicates: int | None, summary: pd.Series) -> None:
        self.replicates = replicates
        self.summary = summary

    def __repr__(self) -> str:
        s = self.summary
        what = (f"{s['events']:.0f} events" if s["metric"] == "hazard_ratio"
                else f"{s['viewers_per_arm']:.0f} viewers per arm")
        reps = f", {self.replicates} replicates" if self.replicates is not None else ""
        return (f"<PowerPlan: {s['metric']} effect={s['effect']!r}, "
                f"alpha={s['alpha']}, power={s['power']}: {what}{reps}>")


def plan_replicates(
    effect: float,
    *,
    metric: str = "hazard_ratio",
    alpha: float = 0.05,
    power: float = 0.8,
    allocation: float = 0.5,
    events_per_replicate: float | None = None,
    baseline: float | None = None,
    viewers_per_replicate: float | None = None,
    icc: float = 0.0,
) -> PowerPlan:
    """Replicates (or events, viewers) needed to detect an effect.

    Parameters
    ----------
    effect : float
        For ``metric="hazard_ratio"`` the hazard ratio to detect (> 0, != 1).
        For ``metric="conversion"`` the conversion rate in the treated arm
        (compared with ``baseline``).
    metric : {"hazard_ratio", "conversion"}
    alpha : float, default 0.05
        Two-sided significance level.
    power : float, default 0.8
        Probability of detecting the effect.
    allocation : float, default 0.5
        Share ``p`` of subjects in the treated arm (hazard ratio only).
    events_per_replicate : float, optional
        Hazard ratio: expected events (purchases) one replicate contributes to
        the comparison, summed over both arms.  Gives ``replicates``.
    baseline : float, optional
        Conversion: the control arm's conversion rate (required).
    viewers_per_replicate : float, optional
        Conversion: viewers one replicate puts in each arm.  Gives
        ``replicates`` (per arm).
    icc : float, default 0.0
        Conversion: intra-replicate correlation of the outcome.  The viewers
        needed are inflated by the design effect ``1 + (m - 1) * icc`` with
        ``m = viewers_per_replicate``.

    Returns
    -------
    PowerPlan
        ``.replicates`` and ``.summary`` with every number used.

    Notes
    -----
    Hazard ratio (Schoenfeld 1983): the events needed are

    ``d = (z_{1-alpha/2} + z_{power})**2 / (p (1 - p) log(HR)**2)``

    and ``replicates = ceil(d / events_per_replicate)``.

    Conversion (two proportions, normal approximation with the pooled variance
    under the null, as R's ``power.prop.test`` with ``strict = FALSE``): per arm

    ``n = (z_{1-alpha/2} sqrt(2 pbar qbar) + z_{power} sqrt(p0 q0 + p1 q1))**2
    / (p1 - p0)**2``

    with ``pbar = (p0 + p1) / 2``; then ``n * (1 + (m - 1) icc)`` viewers per
    arm and ``replicates = ceil(that / m)`` per arm.

    Examples
    --------
    >>> plan = plan_replicates(0.5, events_per_replicate=10)
    >>> round(float(plan.summary["events"]), 1), plan.replicates
    (65.3, 7)
    >>> plan = plan_replicates(0.75, metric="conversion", baseline=0.5, power=0.9)
    >>> round(float(plan.summary["n_per_arm"]), 2)
    76.71
    """
    a = _checks.check_probability(alpha, "alpha")
    pw = _checks.check_probability(power, "power")
    za = float(_st.norm.ppf(1 - a / 2))
    zb = float(_st.norm.ppf(pw))
    info: dict[str, object] = dict(metric=metric, effect=effect, alpha=a, power=pw,
                                   z_alpha=za, z_beta=zb)
    if metric == "hazard_ratio":
        try:
            hr = float(effect)
        except (TypeError, ValueError):
            raise DataError(f"'effect' must be a hazard ratio > 0: got {effect!r}") from None
        if not hr > 0 or hr == 1 or math.isinf(hr):
            raise DataError(f"'effect' must be a hazard ratio > 0 and != 1: got {effect!r}")
        p = _checks.check_probability(allocation, "allocation")
        d = (za + zb) ** 2 / (p * (1 - p) * math.log(hr) ** 2)
        info.update(allocation=p, events=d, events_needed=math.ceil(d))
        reps = None
        if events_per_replicate is not None:
            epr = float(events_per_replicate)
            if not epr > 0:
                raise DataError(
                    f"'events_per_replicate' must be > 0: got {events_per_replicate!r}")
            reps = math.ceil(d / epr)
            info.update(events_per_replicate=epr, replicates=reps)
        return PowerPlan(reps, pd.Series(info))
    if metric == "conversion":
        if baseline is None:
            raise DataError("'baseline' (control conversion rate) is required for "
                            "metric='conversion'")
        p0 = _checks.check_probability(baseline, "baseline")
        p1 = _checks.check_probability(effect, "effect")
        if p1 == p0:
            raise DataError(f"'effect' must differ from 'baseline': both are {p0!r}")
        if not 0 <= icc < 1:
            raise DataError(f"'icc' must be in [0, 1): got {icc!r}")
        pbar = (p0 + p1) / 2
        n = (za * math.sqrt(2 * pbar * (1 - pbar))
             + zb * math.sqrt(p0 * (1 - p0) + p1 * (1 - p1))) ** 2 / (p1 - p0) ** 2
        info.update(baseline=p0, difference=p1 - p0, n_per_arm=n, icc=icc)
        reps = None
        if viewers_per_replicate is not None:
            m = float(viewers_per_replicate)
            if not m >= 1:
                raise DataError(
                    f"'viewers_per_replicate' must be >= 1: got {viewers_per_replicate!r}")
            deff = 1 + (m - 1) * icc
            viewers = n * deff
            reps = math.ceil(viewers / m)
            info.update(viewers_per_replicate=m, design_effect=deff,
                        viewers_per_arm=viewers, replicates=reps)
        else:
            if icc:
                raise DataError("'icc' needs 'viewers_per_replicate' (the cluster size)")
            info.update(design_effect=1.0, viewers_per_arm=n)
        return PowerPlan(reps, pd.Series(info))
    raise DataError(f"'metric' must be 'hazard_ratio' or 'conversion': got {metric!r}")
