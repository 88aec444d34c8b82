"""Restricted mean time to purchase: the area under the Kaplan–Meier curve up to a horizon.

A Kaplan–Meier median needs the curve to fall to one half; when most viewers
leave without buying it never does, and the "median time to purchase" is then
either missing or read off the far tail where a handful of viewers remain.
The restricted mean survival time (RMST) up to a horizon ``tau`` is always
estimable: the expected number of seconds, out of the first ``tau``, that a
viewer spends not yet having bought, ``mu(tau) = int_0^tau S(t) dt``.  Its
complement ``tau - mu(tau)``, the restricted mean time lost (RMTL), is the
expected time, out of ``tau``, spent after the purchase.  A tactic that
makes viewers buy sooner lowers the RMST.  Numbers follow R's
``survival::print(survfit, rmean = tau)`` and ``survRM2::rmst2`` (Uno et al.):
the Greenwood-type variance ``sum_j A_j^2 d_j / (n_j (n_j - d_j))`` with
``A_j`` the area under the curve from event time ``t_j`` to ``tau``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats as _st

from fomolab.errors import DataError
from fomolab.stats import _checks
from fomolab.stats._result import StatsResult

__all__ = ["RMSTDifferenceResult", "RMSTResult", "rmst", "rmst_difference"]


@dataclass(frozen=True, eq=False)
class RMSTResult(StatsResult):
    """Restricted mean survival time of each group up to ``tau``.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per group, columns ``COLUMNS``: ``group, n, events, tau, rmst,
        se, ci_lower, ci_upper, rmtl, at_risk_tau`` (``rmtl = tau - rmst``
        has the same standard error; ``at_risk_tau`` is the number still at
        risk at ``tau``: with few, the tail of the curve is unstable).
    tau : float
        The horizon.
    conf_level : float
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("group", "n", "events", "tau", "rmst", "se", "ci_lower",
                                          "ci_upper", "rmtl", "at_risk_tau")
    summary: pd.DataFrame
    tau: float
    conf_level: float

    def __repr__(self) -> str:
        return (f"<RMSTResult: {len(self.summary)} group(s), tau={self.tau:g}, "
                f"conf_level={self.conf_level:g}>")


@dataclass(frozen=True, eq=False)
class RMSTDifferenceResult(StatsResult):
    """Each group's RMST against a control's, as ``survRM2::rmst2`` reports it.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per (non-control group, measure), columns ``COLUMNS``:
        ``group, measure, estimate, se, ci_lower, ci_upper, p``.  Measures:
        ``rmst_difference`` (group minus control, seconds), ``rmst_ratio``
        and ``rmtl_ratio`` (group over control; their ``se`` is that of the
        log ratio and the interval is exp of the log-scale interval).
    arms : RMSTResult
        The RMST of every group, control included.
    control : object
    tau : float
    conf_level : float
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("group", "measure", "estimate", "se", "ci_lower",
                                          "ci_upper", "p")
    summary: pd.DataFrame
    arms: RMSTResult
    control: object
    tau: float
    conf_level: float

    def __repr__(self) -> str:
        return (f"<RMSTDifferenceResult: {self.summary['group'].nunique()} group(s) vs control "
                f"{self.control!r}, tau={self.tau:g}>")

    def _extra(self) -> list[tuple[str, pd.DataFrame | str]]:
        return [("RMST by group", self.arms.summary)]


def _rmst_one(t: np.ndarray, e: np.ndarray, tau: float) -> tuple[float, float, float]:
    """RMST, its variance and the number at risk at ``tau`` (R's survmean / rmst1)."""
    ut, inv = np.unique(t, return_inverse=True)
    d = np.bincount(inv, weights=e, minlength=len(ut))
    tot = np.bincount(inv, minlength=len(ut))
    n = len(t) - np.concatenate(([0], np.cumsum(tot)[:-1]))
    keep = ut <= tau
    ut, d, n = ut[keep], d[keep], n[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - d / n)
    knots = np.concatenate(([0.0], ut, [tau]))
    areas = np.diff(knots) * np.concatenate(([1.0], surv))
    rmst = float(areas.sum())
    # A_j: area from the j-th time to tau
    after = np.cumsum(areas[::-1])[::-1][1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n - d > 0, d / (n * (n - d)), 0.0)
    var = float(np.sum(after ** 2 * w))
    at_risk_tau = int(np.sum(t >= tau))
    return rmst, var, at_risk_tau


def _groups(data: pd.DataFrame, by: str | None, n: int) -> list[tuple[object, np.ndarray]]:
    if by is None:
        return [("all", np.ones(n, dtype=bool))]
    g = _checks.keys(data, by)
    out = [(lv, g == lv) for lv in pd.unique(g)]
    with contextlib.suppress(TypeError):  # mixed types: keep the order of appearance
        out.sort(key=lambda kv: kv[0])
    return out


def _check_tau(tau: object, groups: list[tuple[object, np.ndarray]], t: np.ndarray, e: np.ndarray,
               by: str | None) -> float:
    if tau is None:
        # survRM2's default: the smallest of the groups' largest follow-up times
        return float(min(t[m].max() for _, m in groups))
    try:
        tau_f = float(tau)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"'tau' must be a number > 0: got {tau!r}") from None
    if not (np.isfinite(tau_f) and tau_f > 0):
        raise DataError(f"'tau' must be a finite number > 0: got {tau!r}")
    for name, m in groups:
        tmax = float(t[m].max())
        last_event = bool(e[m][t[m] == tmax].max() > 0) and bool(e[m][t[m] == tmax].min() > 0)
        if tau_f > tmax and not last_event:
            where = f"group {name!r} of {by!r}" if by is not None else "the data"
            raise DataError(
                f"'tau' = {tau_f:g} is beyond the last follow-up time of {where} "
                f"({tmax:g}, censored): the curve is unknown there; choose tau <= {tmax:g}")
    return tau_f


def rmst(
    data: pd.DataFrame,
    duration: str,
    event: str,
    by: str | None = None,
    *,
    tau: float | None = None,
    conf_level: float = 0.95,
) -> RMSTResult:
    """Restricted mean time to the event up to ``tau``, per group.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject (viewer visit).
    duration : str
        Column of follow-up times (>= 0).
    event : str
        Column of 0/1 (or boolean) event indicators.
    by : str, optional
        Column defining groups; one row per group (``"all"`` without it).
    tau : float, optional
        The horizon, in the units of ``duration``.  Default: the smallest of
        the groups' largest follow-up times (survRM2's default).  A horizon
        beyond a group's last, censored, time is refused.
    conf_level : float, default 0.95
        Level of the normal intervals ``rmst +- z se``.

    Returns
    -------
    RMSTResult

    Notes
    -----
    ``rmst`` equals R's ``print(survfit(Surv(duration, event) ~ by), rmean =
    tau)`` column ``rmean`` and ``se(rmean)``, and ``survRM2::rmst2``'s
    per-arm rows.  The interval is Wald on the original scale, as survRM2's.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 1, 0, 1]})
    >>> res = rmst(df, "t", "e", tau=3)
    >>> res
    <RMSTResult: 1 group(s), tau=3, conf_level=0.95>
    >>> float(res.summary["rmst"].iloc[0])  # 1 + 0.75 + 0.5
    2.25
    """
    data = _checks.check_frame(data)
    _checks.check_columns(data, [duration, event, by])
    level = _checks.check_probability(conf_level, "conf_level")
    t = _checks.numeric(data, duration, nonnegative=True)
    e = _checks.events01(data, event)
    groups = _groups(data, by, len(t))
    tau_f = _check_tau(tau, groups, t, e, by)
    z = float(_st.norm.ppf(0.5 + level / 2))
    rows = []
    for name, m in groups:
        mu, var, ar = _rmst_one(t[m], e[m], tau_f)
        se = float(np.sqrt(var))
        rows.append(dict(group=name, n=int(m.sum()), events=int(e[m].sum()), tau=tau_f, rmst=mu,
                         se=se, ci_lower=mu - z * se, ci_upper=mu + z * se, rmtl=tau_f - mu,
                         at_risk_tau=ar))
    return RMSTResult(pd.DataFrame(rows, columns=list(RMSTResult.COLUMNS)), tau_f, level)


def rmst_difference(
    data: pd.DataFrame,
    duration: str,
    event: str,
    by: str,
    *,
    control: object,
    tau: float | None = None,
    conf_level: float = 0.95,
) -> RMSTDifferenceResult:
    """RMST of each group against a control: difference, ratio and RMTL ratio.

    Parameters
    ----------
    data, duration, event, by, tau, conf_level
        As :func:`rmst`.  ``tau`` is common to all groups.
    control : object
        The value of ``by`` used as the reference.

    Returns
    -------
    RMSTDifferenceResult

    Notes
    -----
    As ``survRM2::rmst2(time, status, arm, tau)`` without covariates: the
    difference has standard error ``sqrt(v1 + v0)`` (independent groups), the
    ratios use the delta method on the log scale, ``se = sqrt(v1/mu1^2 +
    v0/mu0^2)``; p values are two-sided normal tests.  With common random
    numbers the arms are paired, not independent: this variance then ignores
    the pairing (it is conservative when the pairing is positive).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 3, 4, 2, 4, 5, 6], "e": [1, 1, 0, 1, 1, 0, 1, 1],
    ...                    "arm": ["c"] * 4 + ["t"] * 4})
    >>> res = rmst_difference(df, "t", "e", by="arm", control="c", tau=4)
    >>> res.summary["measure"].tolist()
    ['rmst_difference', 'rmst_ratio', 'rmtl_ratio']
    >>> round(float(res.summary["estimate"].iloc[0]), 3)
    0.75
    """
    arms = rmst(data, duration, event, by, tau=tau, conf_level=conf_level)
    tab = arms.summary.set_index("group")
    if not (tab.index == control).any():
        have = ", ".join(map(repr, list(tab.index)[:10]))
        raise DataError(f"control {control!r} not found in column {by!r} (values: {have})")
    if len(tab) < 2:
        raise DataError(f"column {by!r} holds only the control {control!r}: nothing to compare")
    z = float(_st.norm.ppf(0.5 + arms.conf_level / 2))
    c = tab.loc[control]
    rows = []
    for name, r in tab.iterrows():
        if name == control:
            continue
        v1, v0 = r["se"] ** 2, c["se"] ** 2
        est = r["rmst"] - c["rmst"]
        se = float(np.sqrt(v1 + v0))
        rows.append(_row(name, "rmst_difference", est, se, z, log=False))
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = np.log(r["rmst"] / c["rmst"])
            se_r = float(np.sqrt(v1 / r["rmst"] ** 2 + v0 / c["rmst"] ** 2))
            lt = np.log(r["rmtl"] / c["rmtl"])
            se_t = float(np.sqrt(v1 / r["rmtl"] ** 2 + v0 / c["rmtl"] ** 2))
        rows.append(_row(name, "rmst_ratio", lr, se_r, z, log=True))
        rows.append(_row(name, "rmtl_ratio", lt, se_t, z, log=True))
    summary = pd.DataFrame(rows, columns=list(RMSTDifferenceResult.COLUMNS))
    return RMSTDifferenceResult(summary, arms, control, arms.tau, arms.conf_level)


def _row(name: object, measure: str, est: float, se: float, z: float, log: bool) -> dict[str, object]:
    with np.errstate(divide="ignore", invalid="ignore"):
        p = float(2.0 * _st.norm.sf(abs(est) / se)) if se > 0 else float("nan")
    lo, hi = est - z * se, est + z * se
    if log:
        est, lo, hi = np.exp(est), np.exp(lo), np.exp(hi)
    return dict(group=name, measure=measure, estimate=float(est), se=se, ci_lower=float(lo),
                ci_upper=float(hi), p=p)
