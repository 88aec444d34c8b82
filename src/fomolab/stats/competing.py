"""Buying before leaving: cumulative incidence with a competing event (Aalen–Johansen).

A viewer who leaves the stream can no longer buy, so leaving is not
independent censoring: it is a competing event.  ``1 - Kaplan–Meier`` of the
time to purchase, with departures censored, estimates the share who would buy
if nobody ever left, a quantity of a world that does not exist, and it
overstates conversion.  The cumulative incidence function ``F_k(t)`` of cause
k (buy, or leave) is the share of viewers who have had event k by time t,
with the other cause allowed to happen first:

    F_k(t) = sum_{t_j <= t} S(t_{j-1}) d_kj / n_j

with ``S`` the Kaplan–Meier curve of the time to the first event of any kind
and ``d_kj / n_j`` the cause-k hazard at ``t_j`` (Aalen & Johansen 1978).
The cumulative incidence of buying at the end of a visit is the conversion.

The standard errors are R's ``survfit(Surv(time, factor(status)) ~ by)``
ones: the infinitesimal jackknife (the derivative of the estimate with
respect to each subject's case weight, squared and summed), computed from
event counts at the distinct times in O(n log n), not from a subjects x
times influence matrix.  The restricted mean time in each state up to a
horizon (R's ``rmean`` of a multi-state ``survfit``) is the integral of its
curve; for a cause it is the restricted mean time lost to that cause.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats as _st

from fomolab.errors import DataError
from fomolab.stats import _checks
from fomolab.stats._result import StatsResult
from fomolab.stats.kaplan_meier import CONF_TYPES, code_counts, confidence_band, groups_of, unique_inverse

__all__ = ["CumulativeIncidenceResult", "StateTimeResult", "cumulative_incidence", "incidence_curves",
           "restricted_time_in_state"]

EVENT_FREE = "(none)"  # name of the state "no event yet" in tables


@dataclass(frozen=True, eq=False)
class CumulativeIncidenceResult(StatsResult):
    """Aalen–Johansen cumulative incidence curves, per group and cause.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per (group, cause), columns ``COLUMNS``: ``group, cause, n,
        events, time, cuminc, se, ci_lower, ci_upper, at_risk``: the
        cumulative incidence at ``time`` (the horizon ``at``, or the group's
        last follow-up time), its infinitesimal-jackknife standard error and
        pointwise interval, and the number still at risk just after ``time``.
    curve : pandas.DataFrame
        Long table ``group, cause, time, at_risk, events, cuminc, std_err,
        ci_lower, ci_upper``, one row per distinct time of each group and cause.
    conf_level : float
    conf_type : str
        Scale of the pointwise intervals (``"log"`` as R's multi-state
        ``survfit`` default, ``"log-log"`` or ``"plain"``).
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("group", "cause", "n", "events", "time", "cuminc", "se",
                                          "ci_lower", "ci_upper", "at_risk")
    summary: pd.DataFrame
    curve: pd.DataFrame
    conf_level: float
    conf_type: str = "log"

    def __repr__(self) -> str:
        return (f"<CumulativeIncidenceResult: {self.summary['group'].nunique()} group(s), "
                f"causes {list(pd.unique(self.summary['cause']))}, conf_level={self.conf_level:g}>")


@dataclass(frozen=True, eq=False)
class StateTimeResult(StatsResult):
    """Restricted mean time in each state up to ``tau``, as R's multi-state ``rmean``.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per (group, state), columns ``COLUMNS``: ``group, state, n,
        events, tau, rmean, se, ci_lower, ci_upper``.  The state
        ``"(none)"`` is "no event yet": its ``rmean`` is the restricted mean
        time to the first event of any kind.  For a cause k, ``rmean`` is the
        restricted mean time lost to k, ``int_0^tau F_k(t) dt``.  Per group
        the rows add up to ``tau``.
    tau : float
    conf_level : float
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("group", "state", "n", "events", "tau", "rmean", "se",
                                          "ci_lower", "ci_upper")
    summary: pd.DataFrame
    tau: float
    conf_level: float

    def __repr__(self) -> str:
        return (f"<StateTimeResult: {self.summary['group'].nunique()} group(s), tau={self.tau:g}, "
                f"conf_level={self.conf_level:g}>")


class _Grid:
    """Counts at the distinct times of one group, and the event-free curve."""

    def __init__(self, t: np.ndarray, code: np.ndarray, n_causes: int, beyond: int = 0) -> None:
        """``beyond``: subjects followed past every time in ``t``, counted at risk throughout (their rows
        left out: a curve read no later than ``t``'s last time does not depend on them otherwise)."""
        self.ut, self.k = unique_inverse(t)
        self.beyond = beyond
        m = len(self.ut)
        self.code = code
        self.dk = np.zeros((n_causes, m))
        for c in range(n_causes):
            self.dk[c] = np.bincount(self.k, weights=(code == c + 1), minlength=m)
        self.d = self.dk.sum(axis=0)
        tot = np.bincount(self.k, minlength=m)
        self.n = len(t) + beyond - np.concatenate(([0], np.cumsum(tot)[:-1]))
        self.after = self.n - tot  # at risk just after each time
        self.n_float = self.n.astype(float)  # (exact: whole numbers)
        del tot
        # (with continuous times the grid has nearly a time per subject: its arrays are as long as the rows)
        surv = np.cumprod(1.0 - self.d / self.n)
        self.s_prev = np.concatenate(([1.0], surv[:-1]))
        del surv
        live = self.n > self.d
        self.beta = np.where(live, self.d / self.n / np.where(live, self.n - self.d, 1.0), 0.0)
        self.inv_nd = np.where(live, 1.0 / np.where(live, self.n - self.d, 1.0), 0.0)

    def parts(self, ind: np.ndarray, dk: np.ndarray) -> tuple[np.ndarray, ...]:
        """F, CA, CB on the grid and each subject's P, Q (see the module notes).

        P and Q have a value per subject (10^7 for the visits of a large
        run): they are built in place, term by term, in the order of the
        formulas ``P = CA + s ind / n + F delta / (n - d)`` and
        ``Q = CB - delta / (n - d)`` (floating-point sums and products
        commute, so the numbers are those of the one-line expressions),
        with about four per-subject arrays alive instead of eight; ``ind``
        is 0/1 as floats or flags.
        """
        h_k = dk / self.n
        F = np.cumsum(self.s_prev * h_k)
        alpha = -self.s_prev
        alpha *= h_k
        alpha /= self.n  # -s_prev * h_k / n
        del h_k
        alpha -= F * self.beta
        CA = np.cumsum(alpha)
        del alpha
        CB = np.cumsum(self.beta)
        k = self.k
        delta = self.code > 0  # multiplying by a flag and by 0.0 or 1.0 give the same numbers
        buf = np.empty(len(k))  # each gathered grid value in turn (one array, not a new one per term)
        Q = np.take(self.inv_nd, k)  # inv_nd[k]
        last = np.take(F, k)
        last *= delta
        last *= Q  # (F[k] * delta) * inv_nd[k]
        Q *= delta  # delta * inv_nd[k]
        np.take(CB, k, out=buf)
        np.subtract(buf, Q, out=Q)
        P = np.take(self.s_prev, k)
        P *= ind
        np.take(self.n_float, k, out=buf)
        P /= buf  # (s_prev[k] * ind) / n[k]
        np.take(CA, k, out=buf)
        P += buf
        del buf
        P += last
        return F, CA, CB, P, Q

    def variance(self, ind: np.ndarray, dk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The curve and its infinitesimal-jackknife variance at every grid time."""
        F, CA, CB, P, Q = self.parts(ind, dk)
        m = len(self.ut)
        sp2 = np.cumsum(np.bincount(self.k, weights=P * P, minlength=m))
        spq = np.cumsum(np.bincount(self.k, weights=P * Q, minlength=m))
        del P
        sq2 = np.cumsum(np.bincount(self.k, weights=Q * Q, minlength=m))
        del Q
        # var = sp2 + 2 * F * spq + F * F * sq2 + after * (CA + F * CB) ** 2, term by term in place
        var = 2 * F
        var *= spq
        var += sp2
        del sp2, spq
        term = F * F
        term *= sq2
        var += term
        del sq2
        np.multiply(F, CB, out=term)
        term += CA
        np.square(term, out=term)
        term *= self.after
        var += term
        del term
        np.maximum(var, 0.0, out=var)
        return F, var

    def variance_at_end(self, ind: np.ndarray, dk: np.ndarray, parts: tuple[np.ndarray, ...] | None = None
                        ) -> tuple[float, float]:
        """:meth:`variance` at the grid's last time alone: the same numbers without arrays of the curve.

        ``parts``: :meth:`parts` of ``ind, dk`` if computed already (read, not changed).
        """
        F, CA, CB, P, Q = self.parts(ind, dk) if parts is None else parts
        m = len(self.ut)
        sp2 = np.cumsum(np.bincount(self.k, weights=P * P, minlength=m))[-1]
        spq = np.cumsum(np.bincount(self.k, weights=P * Q, minlength=m))[-1]
        del P
        sq2 = np.cumsum(np.bincount(self.k, weights=Q * Q, minlength=m))[-1]
        del Q
        f, ca, cb = F[-1], CA[-1], CB[-1]
        var = 2 * f * spq + sp2 + f * f * sq2 + np.square(f * cb + ca) * self.after[-1]
        return float(f), float(max(var, 0.0))

    def variance_on(self, ind: np.ndarray, dk: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`variance` at the grid positions ``at`` alone (the sums along the grid run over all of it):
        the same numbers, term by term in the same order, without the whole curve's arrays of them."""
        F, CA, CB, P, Q = self.parts(ind, dk)
        m = len(self.ut)
        sp2 = np.cumsum(np.bincount(self.k, weights=P * P, minlength=m))[at]
        spq = np.cumsum(np.bincount(self.k, weights=P * Q, minlength=m))[at]
        del P
        sq2 = np.cumsum(np.bincount(self.k, weights=Q * Q, minlength=m))[at]
        del Q
        f, ca, cb = F[at], CA[at], CB[at]
        var = 2 * f
        var *= spq
        var += sp2
        term = f * f
        term *= sq2
        var += term
        np.multiply(f, cb, out=term)
        term += ca
        np.square(term, out=term)
        term *= self.after[at]
        var += term
        np.maximum(var, 0.0, out=var)
        return f, var

    def integral(self, ind: np.ndarray, dk: np.ndarray, tau: float, past_times: int = 0,
                 parts: tuple[np.ndarray, ...] | None = None) -> tuple[float, float]:
        """``int_0^tau F`` and its infinitesimal-jackknife variance.

        With ``beyond`` subjects (followed past every time of the grid, and past
        ``tau``, at ``past_times`` distinct times), the numbers of the grid of
        all subjects with those subjects as its last rows: each adds
        ``g(tau)^2`` to the variance and each of their times a 0 to the area.
        ``parts``: :meth:`parts` of ``ind, dk`` if computed already (its ``P``
        and ``Q`` are overwritten).
        """
        F, CA, CB, P, Q = self.parts(ind, dk) if parts is None else parts
        right = np.concatenate((self.ut[1:], [max(tau, self.ut[-1])]))
        delta_t = np.clip(np.minimum(right, tau) - self.ut, 0.0, None)
        area_parts = F * delta_t
        if past_times:
            area_parts = np.concatenate((area_parts, np.zeros(past_times)))
        area = float(np.sum(area_parts))
        del area_parts
        g = np.concatenate(([0.0], np.cumsum((CA + F * CB) * delta_t)))
        g_end = g[-1]
        g = g[:-1]
        t0 = np.cumsum(delta_t[::-1])[::-1]
        tf = np.cumsum((F * delta_t)[::-1])[::-1]
        k = self.k
        # infl = g[k] + P * t0[k] + Q * tf[k], in place
        infl = P
        infl *= t0[k]
        infl += g[k]
        Q *= tf[k]
        infl += Q
        del Q
        np.square(infl, out=infl)
        if self.beyond:
            infl = np.concatenate((infl, np.full(self.beyond, np.square(g_end))))
        return area, float(np.sum(infl))


def _incidence_at(t: np.ndarray, code: np.ndarray, c: int, n_causes: int, at: float, z: float,
                  conf_type: str = "log") -> tuple[float, float, float, float, int]:
    """One group's cause-``c`` row of :func:`cumulative_incidence`'s summary at ``at`` (``curves=False``).

    ``t``: the group's times (sorted ones read in one pass), ``code`` their
    causes (0 censored, ``1..n_causes``; ``c`` counts from 0).  Returns
    ``(cuminc, se, ci_lower, ci_upper, at_risk)``: the same numbers, without
    checking a frame or computing the other causes' intervals.
    """
    grid, n_rows, _ = _grid_upto(t, code, n_causes, at)
    if grid is None:
        return 0.0, 0.0, 0.0, 0.0, n_rows
    j = int(np.searchsorted(grid.ut, at, side="right")) - 1
    if j < 0:
        return 0.0, 0.0, 0.0, 0.0, n_rows
    f, v = grid.variance_at_end(grid.code == c + 1, grid.dk[c])  # (j is the grid's last time)
    return (*_band_at_end(f, v, z, conf_type), int(grid.after[j]))


def _grid_upto(t: np.ndarray, code: np.ndarray, n_causes: int, at: float) -> tuple[Any, int, int]:
    """``(grid, rows, beyond)``: the :class:`_Grid` of a group's times up to ``at`` (None without any),
    its number of rows and how many of them are followed past ``at`` (censored just after it)."""
    upto = t <= at
    n_rows = len(t)
    beyond = n_rows - int(np.count_nonzero(upto))
    if beyond:
        t, code = t[upto], code[upto]
    del upto
    return (_Grid(t, code, n_causes, beyond) if len(t) else None), n_rows, beyond


def _band_at_end(f: float, v: float, z: float, conf_type: str) -> tuple[float, float, float, float]:
    """``(cuminc, se, ci_lower, ci_upper)`` from the incidence ``f`` and its variance ``v``."""
    F, var = np.array([f]), np.array([v])
    se = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        logse = np.where(F > 0, se / F, 0.0)
    lo, hi = confidence_band(F, logse, z, conf_type)
    return float(F[0]), float(se[0]), float(lo[0]), float(hi[0])


def _time_lost(t: np.ndarray, code: np.ndarray, c: int, n_causes: int, tau: float) -> tuple[float, float]:
    """One group's restricted mean time lost to cause ``c`` up to ``tau`` and its variance: the numbers of
    :func:`restricted_time_in_state`'s row of that cause (``t``, ``code`` as :func:`_incidence_at`).

    ``t`` sorted: the subjects followed past ``tau`` (its last rows) count
    only at risk, without grid entries or per-row arrays of their own.
    """
    upto = t <= tau
    beyond = len(t) - int(np.count_nonzero(upto))
    if not beyond:
        grid = _Grid(t, code, n_causes)
        return grid.integral(grid.code == c + 1, grid.dk[c], tau)
    if not upto.any():
        return 0.0, 0.0
    past = t[~upto]
    past_times = 1 + int(np.count_nonzero(past[1:] != past[:-1]))
    del past
    grid = _Grid(t[upto], code[upto], n_causes, beyond)
    del upto
    return grid.integral(grid.code == c + 1, grid.dk[c], tau, past_times)


def _on_grid(t: np.ndarray, code: np.ndarray, c: int, n_causes: int, grid: np.ndarray, z: float,
             conf_type: str = "log") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One group's cause-``c`` curve of :func:`incidence_curves` and its band, read as right-continuous steps
    on ``grid`` (0 before the first time): ``cuminc, ci_lower, ci_upper`` there, the same numbers.

    ``t``, ``code`` as :func:`_incidence_at` (rows in the order :func:`incidence_curves` reads them: the
    sums per distinct time add the rows in that order).  The curve's sums run along every distinct time;
    its variance, standard error and band are computed at the grid's entries only.
    """
    grid_ = _Grid(t, code, n_causes)
    i = np.searchsorted(grid_.ut, grid, "right") - 1
    ok = i >= 0
    F, var = grid_.variance_on(grid_.code == c + 1, grid_.dk[c], np.maximum(i, 0))
    del grid_
    se = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        logse = np.where(F > 0, se / F, 0.0)
    lo, hi = confidence_band(F, logse, z, conf_type)
    return tuple(np.where(ok, v, 0.0) for v in (F, lo, hi))  # type: ignore[return-value]


def _at_horizon(t: np.ndarray, code: np.ndarray, c: int, n_causes: int, tau: float, z: float,
                conf_type: str = "log") -> tuple[tuple[float, float, float, float, int], tuple[float, float]]:
    """:func:`_incidence_at` at ``tau`` and :func:`_time_lost` up to ``tau`` of one group, the subjects
    followed past ``tau`` censored just after it (they count only at risk): the same numbers, from one grid
    of the times up to ``tau`` and one pass of its terms (:meth:`_Grid.parts`) for both."""
    grid, n_rows, beyond = _grid_upto(t, code, n_causes, tau)
    if grid is None:
        return (0.0, 0.0, 0.0, 0.0, n_rows), (0.0, 0.0)
    ind, dk = grid.code == c + 1, grid.dk[c]
    parts = grid.parts(ind, dk)
    f, v = grid.variance_at_end(ind, dk, parts)
    band = _band_at_end(f, v, z, conf_type)
    # (the subjects past tau, censored just after it, share one distinct time)
    lost = grid.integral(ind, dk, tau, 1 if beyond else 0, parts)
    return (*band, int(grid.after[-1])), lost


def _prepare(data: pd.DataFrame, duration: str, event: str, by: str | None, censored: object
             ) -> tuple[np.ndarray, np.ndarray, list[object], list[tuple[Any, np.ndarray]]]:
    t, code, causes = _prepare_codes(data, duration, event, censored, by)
    if by is None:
        groups: list[tuple[Any, np.ndarray]] = [("all", np.ones(len(t), dtype=bool))]
    else:
        groups = groups_of(data, by)
    return t, code, causes, groups


def _prepare_codes(data: pd.DataFrame, duration: str, event: str, censored: object, by: str | None = None
                   ) -> tuple[np.ndarray, np.ndarray, list[object]]:
    """The checked times, each row's cause (0 censored, then the causes in sorted order) and the causes
    (the column ``by`` checked present too)."""
    data = _checks.check_frame(data)
    _checks.check_columns(data, [duration, event, by])
    t = _checks.numeric(data, duration, nonnegative=True)
    col = data[event]
    if isinstance(col.dtype, pd.CategoricalDtype):  # the codes as they are: the categories that occur
        ev_code = col.cat.codes.to_numpy()
        if (ev_code < 0).any():
            _checks.keys(data, event)  # raises: missing values
        used = np.flatnonzero(code_counts(ev_code, len(col.cat.categories)))
        values = col.cat.categories[used]
        remap = np.zeros(len(col.cat.categories), np.int64)  # category -> position among values
        remap[used] = np.arange(len(used))
    else:
        # one pass of hashing: each row's value by its code, the values compared once each
        ev_code, values = pd.factorize(_checks.keys(data, event))
        remap = None
    cens_value = np.asarray(pd.Series(values).eq(censored).to_numpy(), dtype=bool)
    kept = [j for j in range(len(values)) if not cens_value[j]]
    with contextlib.suppress(TypeError):  # mixed types: keep the order of appearance
        kept.sort(key=lambda j: values[j])
    causes = [values[j] for j in kept]
    if not causes:
        raise DataError(f"column {event!r} holds only the censoring value {censored!r}: no events")
    # each row's cause (0: censored) in one byte where the causes are few (10^7 rows: 10 MB, not 80)
    lookup = np.zeros(len(values), dtype=np.int8 if len(kept) < 127 else int)
    lookup[kept] = np.arange(1, len(kept) + 1)
    code = (lookup if remap is None else lookup[remap])[ev_code]
    del ev_code
    return t, code, causes


def cumulative_incidence(
    data: pd.DataFrame,
    duration: str,
    event: str,
    by: str | None = None,
    *,
    censored: object = 0,
    at: float | None = None,
    conf_level: float = 0.95,
    conf_type: str = "log",
    curves: bool = True,
) -> CumulativeIncidenceResult:
    """Cumulative incidence of each cause under competing risks (Aalen–Johansen).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject (viewer visit).
    duration : str
        Column of times (>= 0) to the first event or to censoring.
    event : str
        Column naming what ended the follow-up: the value ``censored`` for
        censoring (e.g. the stream ended), any other value is a cause (e.g.
        ``"buy"``, ``"leave"``).  Unlike elsewhere, this column holds codes,
        not a 0/1 indicator.
    by : str, optional
        Column defining groups (e.g. ``"arm"``).
    censored : object, default 0
        The value of ``event`` meaning "censored".
    at : float, optional
        Time at which ``summary`` reads the curves (e.g. the end of a typical
        visit); default each group's last follow-up time.
    conf_level : float, default 0.95
    conf_type : {"log", "log-log", "plain"}, default "log"
        Scale of the pointwise intervals (R's multi-state default is "log").
    curves : bool, default True
        False: ``curve`` is left empty (its columns only) and each curve's
        interval is computed at ``at`` alone, for a summary of many rows
        without a table of one row per distinct time.

    Returns
    -------
    CumulativeIncidenceResult

    Notes
    -----
    Equals R's ``survfit(Surv(duration, factor(event)) ~ by)`` (``pstate``
    and ``std.err`` of the cause states).  Assumes that censoring (not the
    competing cause) is independent of the event times.  The curves of all
    causes and the event-free share add up to 1 at every time.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 3, 4, 5], "what": ["buy", "leave", "buy", 0, "leave"]})
    >>> ci = cumulative_incidence(df, "t", "what")
    >>> print(ci.summary[["cause", "cuminc", "at_risk"]].to_string(index=False))
    cause  cuminc  at_risk
      buy     0.4        0
    leave     0.6        0
    """
    level = _checks.check_probability(conf_level, "conf_level")
    if conf_type not in CONF_TYPES:
        raise DataError(f"'conf_type' must be one of {', '.join(map(repr, CONF_TYPES))}: "
                        f"got {conf_type!r}")
    t, code, causes, groups = _prepare(data, duration, event, by, censored)
    z = float(_st.norm.ppf(0.5 + level / 2))
    rows, frames = [], []
    for name, m in groups:
        whole = bool(m.all())  # one group: its rows are all the rows, no copies
        tg, cg = (t, code) if whole else (t[m], code[m])
        n_rows = len(tg)
        events = [int(np.count_nonzero(cg == c + 1)) for c in range(len(causes))]
        when = float(tg.max()) if at is None else float(at)
        beyond = 0
        if not curves:
            # read at `when` alone: the rows followed past it only count as at risk (the same numbers,
            # without per-row arrays for them)
            upto = tg <= when
            beyond = n_rows - int(np.count_nonzero(upto))
            if beyond:
                tg, cg = tg[upto], cg[upto]
            del upto
        if not len(tg):  # nothing by `when`: every curve is 0 there
            rows += [dict(group=name, cause=cause, n=n_rows, events=events[c], time=when, cuminc=0.0, se=0.0,
                          ci_lower=0.0, ci_upper=0.0, at_risk=n_rows) for c, cause in enumerate(causes)]
            continue
        grid = _Grid(tg, cg, len(causes), beyond)
        del tg, cg
        j = int(np.searchsorted(grid.ut, when, side="right")) - 1
        # without curves, each curve's interval at the summary's time alone (the same numbers)
        at_j = slice(None) if curves else slice(max(j, 0), max(j, 0) + 1)
        for c, cause in enumerate(causes):
            ind = grid.code == c + 1
            F, var = grid.variance(ind, grid.dk[c])
            F, var = F[at_j], var[at_j]
            se = np.sqrt(var)
            with np.errstate(divide="ignore", invalid="ignore"):
                logse = np.where(F > 0, se / F, 0.0)
            lo, hi = confidence_band(F, logse, z, conf_type)
            if curves:
                frames.append(pd.DataFrame({
                    "group": name, "cause": cause, "time": grid.ut, "at_risk": grid.n,
                    "events": grid.dk[c], "cuminc": F, "std_err": se, "ci_lower": lo, "ci_upper": hi}))
            k = j if curves else 0
            if j < 0:
                vals = (0.0, 0.0, 0.0, 0.0, n_rows)
            else:
                vals = (F[k], se[k], lo[k], hi[k], int(grid.after[j]))
            rows.append(dict(group=name, cause=cause, n=n_rows, events=events[c],
                             time=when, cuminc=float(vals[0]), se=float(vals[1]),
                             ci_lower=float(vals[2]), ci_upper=float(vals[3]), at_risk=vals[4]))
    summary = pd.DataFrame(rows, columns=list(CumulativeIncidenceResult.COLUMNS))
    curve = (pd.concat(frames, ignore_index=True) if frames else
             pd.DataFrame(columns=["group", "cause", "time", "at_risk", "events", "cuminc", "std_err", "ci_lower",
                                   "ci_upper"]))
    return CumulativeIncidenceResult(summary, curve, level, conf_type)


def incidence_curves(data: pd.DataFrame, duration: str, event: str, cause: object, by: str | None = None, *,
                     censored: object = 0, conf_level: float = 0.95, conf_type: str = "log",
                     reduce: Callable[[object, dict[str, np.ndarray]], Any] | None = None) -> dict[object, Any]:
    """One cause's :func:`cumulative_incidence` curves as arrays, by group (``time, at_risk, events, cuminc,
    std_err, ci_lower, ci_upper``): the same numbers without the other causes' curves or the long table.

    A group without the cause gets no entry.  ``reduce(group, curve)``, if given, is kept instead of each
    curve, called as soon as the curve is built (one group's arrays held at a time).
    """
    level = _checks.check_probability(conf_level, "conf_level")
    if conf_type not in CONF_TYPES:
        raise DataError(f"'conf_type' must be one of {', '.join(map(repr, CONF_TYPES))}: "
                        f"got {conf_type!r}")
    t, code, causes, groups = _prepare(data, duration, event, by, censored)
    if cause not in causes:
        return {}
    c = causes.index(cause)
    z = float(_st.norm.ppf(0.5 + level / 2))
    out: dict[object, Any] = {}
    for name, m in groups:
        whole = bool(m.all())  # one group: its rows are all the rows, no copies
        grid = _Grid(t if whole else t[m], code if whole else code[m], len(causes))
        F, var = grid.variance(grid.code == c + 1, grid.dk[c])
        se = np.sqrt(var)
        with np.errstate(divide="ignore", invalid="ignore"):
            logse = np.where(F > 0, se / F, 0.0)
        lo, hi = confidence_band(F, logse, z, conf_type)
        cur = {"time": grid.ut, "at_risk": grid.n, "events": grid.dk[c], "cuminc": F, "std_err": se,
               "ci_lower": lo, "ci_upper": hi}
        del grid, F, var, se, logse, lo, hi
        out[name] = cur if reduce is None else reduce(name, cur)
        del cur
    return out


def restricted_time_in_state(
    data: pd.DataFrame,
    duration: str,
    event: str,
    by: str | None = None,
    *,
    tau: float | None = None,
    censored: object = 0,
    conf_level: float = 0.95,
) -> StateTimeResult:
    """Restricted mean time, up to ``tau``, event-free and lost to each cause.

    Parameters
    ----------
    data, duration, event, by, censored, conf_level
        As :func:`cumulative_incidence`.
    tau : float, optional
        The horizon; default the largest follow-up time of all groups (R's
        default for a multi-state ``survfit``).  Each curve stays at its last
        value after its group's last time.

    Returns
    -------
    StateTimeResult
        Per group: ``"(none)"`` (the restricted mean time to the first event
        of any kind) and, per cause, the restricted mean time lost to it,
        ``int_0^tau F_k(t) dt`` (Andersen 2013); the rows add up to ``tau``.

    Notes
    -----
    ``rmean`` equals R's ``print(survfit(Surv(duration, factor(event)) ~ by),
    rmean = tau)``.  Its standard error is the infinitesimal jackknife of the
    integral up to ``tau``; R prints instead the standard error of the
    integral up to each group's last follow-up time (``approx(..., rule = 2)``
    in ``survmean2``), which is smaller where a group's follow-up ends before
    ``tau``; both agree with ``tau`` at or before the group's last time.
    The restricted mean time to purchase in the competing-risks sense is
    ``tau`` minus the time lost to buying.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 3, 4, 5], "what": ["buy", "leave", "buy", 0, "leave"]})
    >>> res = restricted_time_in_state(df, "t", "what", tau=5)
    >>> print(res.summary[["state", "rmean"]].to_string(index=False))
     state  rmean
    (none)    3.2
       buy    1.2
     leave    0.6
    """
    level = _checks.check_probability(conf_level, "conf_level")
    t, code, causes, groups = _prepare(data, duration, event, by, censored)
    if tau is None:
        tau_f = float(t.max())
    else:
        try:
            tau_f = float(tau)
        except (TypeError, ValueError):
            raise DataError(f"'tau' must be a number > 0: got {tau!r}") from None
        if not (np.isfinite(tau_f) and tau_f > 0):
            raise DataError(f"'tau' must be a finite number > 0: got {tau!r}")
    z = float(_st.norm.ppf(0.5 + level / 2))
    rows = []
    for name, m in groups:
        whole = bool(m.all())  # one group: its rows are all the rows, no copies
        grid = _Grid(t if whole else t[m], code if whole else code[m], len(causes))
        any_ind = grid.code > 0
        lost, var = grid.integral(any_ind, grid.d, tau_f)
        states: list[tuple[object, float, float, int]] = [
            (EVENT_FREE, tau_f - lost, var, int(any_ind.sum()))]
        del any_ind
        for c, cause in enumerate(causes):
            ind = grid.code == c + 1
            a, v = grid.integral(ind, grid.dk[c], tau_f)
            states.append((cause, a, v, int(ind.sum())))
        for state, mean, v, ev in states:
            se = float(np.sqrt(v))
            rows.append(dict(group=name, state=state, n=int(m.sum()), events=ev, tau=tau_f,
                             rmean=float(mean), se=se, ci_lower=mean - z * se,
                             ci_upper=mean + z * se))
    return StateTimeResult(pd.DataFrame(rows, columns=list(StateTimeResult.COLUMNS)), tau_f, level)
