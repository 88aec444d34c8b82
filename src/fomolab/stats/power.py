"""Planning replicates: how many runs (or viewers) detect a given effect?

Two questions a researcher asks before a sweep: how many replicates do I need
to detect a hazard ratio of 1.2 between a countdown arm and the control, and
how many to detect a 2-point rise in conversion?  The answers use the standard
normal-approximation formulas, written out below so a reader can check them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats as _st

from fomolab.errors import DataError
from fomolab.stats import _checks
from fomolab.stats._compat import Rename, renamed_kwargs
from fomolab.stats._result import StatsResult

__all__ = ["PowerPlan", "plan_replicates"]


@dataclass(frozen=True, eq=False)
class PowerPlan(StatsResult):
    """A sample-size plan, from :func:`plan_replicates`.

    Attributes
    ----------
    replicates : int or None
        Replicates needed (None if no per-replicate yield was given).
    events : float or None
        Hazard ratio: events (purchases) needed, before rounding up.
    viewers_per_arm : float or None
        Conversion: viewers needed in each arm (with the design effect).
    summary : pandas.DataFrame
        One row with every number used and produced, columns ``COLUMNS``
        (``metric, effect, conf_level, power, z_alpha, z_beta, ...``); a
        number the metric does not use is NaN.
    metric : str
    effect : float
    conf_level : float
        One minus the two-sided significance level of the planned test.
    power : float
    """

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "metric", "effect", "conf_level", "power", "z_alpha", "z_beta", "allocation", "events",
        "events_needed", "events_per_replicate", "baseline", "difference", "n_per_arm", "icc",
        "viewers_per_replicate", "design_effect", "viewers_per_arm", "replicates")
    replicates: int | None
    events: float | None
    viewers_per_arm: float | None
    summary: pd.DataFrame
    metric: str
    effect: float
    conf_level: float
    power: float

    def __repr__(self) -> str:
        what = (f"{self.events:.0f} events" if self.metric == "hazard_ratio"
                else f"{self.viewers_per_arm:.0f} viewers per arm")
        reps = f", {self.replicates} replicates" if self.replicates is not None else ""
        return (f"<PowerPlan: {self.metric} effect={self.effect!r}, "
                f"conf_level={self.conf_level:g}, power={self.power:g}: {what}{reps}>")


def _plan(info: dict[str, object], reps: int | None) -> PowerPlan:
    summary = pd.DataFrame([{c: info.get(c, np.nan) for c in PowerPlan.COLUMNS}])
    events = info.get("events")
    viewers = info.get("viewers_per_arm")
    return PowerPlan(reps, None if events is None else float(events),  # type: ignore[arg-type]
                     None if viewers is None else float(viewers), summary,  # type: ignore[arg-type]
                     str(info["metric"]), info["effect"], float(info["conf_level"]),  # type: ignore[arg-type]
                     float(info["power"]))  # type: ignore[arg-type]


@renamed_kwargs({"alpha": Rename("conf_level", lambda a: 1.0 - float(a), "= 1 - alpha")})
def plan_replicates(
    effect: float,
    *,
    metric: str = "hazard_ratio",
    conf_level: float = 0.95,
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
    conf_level : float, default 0.95
        One minus the two-sided significance level ``alpha`` of the planned
        test (a 95 % interval that excludes the null is a test at 5 %).  The
        old argument ``alpha`` still works until fomolab 0.3, with a
        DeprecationWarning.
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
        ``.replicates``, ``.events`` or ``.viewers_per_arm``, and a one-row
        ``.summary`` with every number used.

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
    >>> plan
    <PowerPlan: hazard_ratio effect=0.5, conf_level=0.95, power=0.8: 65 events, 7 replicates>
    >>> round(plan.events, 1), plan.replicates
    (65.3, 7)
    >>> plan = plan_replicates(0.75, metric="conversion", baseline=0.5, power=0.9)
    >>> round(float(plan.summary.loc[0, "n_per_arm"]), 2)
    76.71
    """
    level = _checks.check_probability(conf_level, "conf_level")
    pw = _checks.check_probability(power, "power")
    za = float(_st.norm.ppf(0.5 + level / 2))
    zb = float(_st.norm.ppf(pw))
    info: dict[str, object] = dict(metric=metric, effect=effect, conf_level=level, power=pw,
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
        return _plan(info, reps)
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
        return _plan(info, reps)
    raise DataError(f"'metric' must be 'hazard_ratio' or 'conversion': got {metric!r}")
