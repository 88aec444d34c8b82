"""Repeat purchases: the mean cumulative number of events per viewer (Nelson–Aalen).

A viewer may buy several times during a visit.  The mean cumulative function
``M(t)`` is the expected number of purchases a viewer has made by ``t``
seconds after arrival; it is estimated by the Nelson–Aalen sum

    M(t) = sum_{t_j <= t} d_j / n_j,

with ``d_j`` the events at ``t_j`` and ``n_j`` the viewers under observation
then (a viewer who left, or whose stream ended, no longer counts).  With one
event per subject it is the Nelson–Aalen cumulative hazard of R's
``survfit(..., ctype = 1)``.  Its standard error is the infinitesimal
jackknife grouped by subject: the influence of each viewer's whole history
is summed before squaring, which is the robust variance of Lawless and
Nadeau (1995) and what R's ``survfit`` reports with ``id =``.  It makes no
assumption on how a viewer's purchases depend on each other.  Everything is
computed from counts at the distinct times and running sums per subject, in
O(n log n).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats as _st

from fomolab.errors import DataError
from fomolab.stats import _checks
from fomolab.stats._result import StatsResult
from fomolab.stats.kaplan_meier import groups_of

__all__ = ["MeanCumulativeResult", "mean_cumulative_function", "nelson_aalen"]


@dataclass(frozen=True, eq=False)
class MeanCumulativeResult(StatsResult):
    """A Nelson–Aalen / mean cumulative function estimate per group.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per group, columns ``COLUMNS``: ``group, subjects, events,
        time, mcf, se, ci_lower, ci_upper``: the estimate at ``time`` (the
        horizon ``at`` or the group's last time) with its robust standard error
        and interval.
    curve : pandas.DataFrame
        Long table ``group, time, at_risk, events, mcf, std_err, ci_lower,
        ci_upper``, one row per distinct event time of each group.
    conf_level : float
    conf_type : str
        ``"log"`` (``M exp(+-z se / M)``, R's default for a cumulative hazard)
        or ``"plain"`` (``M +- z se``, floored at 0).
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("group", "subjects", "events", "time", "mcf", "se",
                                          "ci_lower", "ci_upper")
    summary: pd.DataFrame
    curve: pd.DataFrame
    conf_level: float
    conf_type: str = "log"

    def __repr__(self) -> str:
        return (f"<MeanCumulativeResult: {len(self.summary)} group(s), "
                f"{int(self.summary['events'].sum())} events, conf_level={self.conf_level:g}>")


def _one(start: np.ndarray, stop: np.ndarray, ev: np.ndarray, sid: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Event times, at risk, events, M(t) and its grouped IJ variance for one group.

    A group can hold every visit of a large run (10^7 rows): each per-row
    array is deleted as soon as the next step no longer needs it, so that
    about eight of them live at a time, not thirty.
    """
    evr = ev > 0
    etimes = np.unique(stop[evr])
    if len(etimes) == 0:
        return etimes, etimes, etimes, etimes, etimes
    # at risk at t: start < t <= stop
    n_stop = len(stop) - np.searchsorted(np.sort(stop), etimes, side="left")
    n = n_stop - (len(start) - np.searchsorted(np.sort(start), etimes, side="left"))
    del n_stop
    d = np.bincount(np.searchsorted(etimes, stop[evr]), minlength=len(etimes)).astype(float)
    h = d / n
    M = np.cumsum(h)
    Cj = np.cumsum(h / n)  # C(t) = sum_{t_j <= t} h_j / n_j
    C0 = np.concatenate(([0.0], Cj))

    def C(x: np.ndarray) -> np.ndarray:
        return C0[np.searchsorted(etimes, x, side="right")]

    jump = np.zeros(len(stop))
    jump[evr] = 1.0 / n[np.searchsorted(etimes, stop[evr])]
    del evr
    # each row: influence K - m C(t), with m = 1 while the row is at risk
    order = np.lexsort((start, sid))
    s_o, t_o, j_o = start[order], stop[order], jump[order]
    del jump
    first = np.ones(len(order), dtype=bool)
    id_o = sid[order]
    first[1:] = id_o[1:] != id_o[:-1]
    del id_o
    c_s = C(s_o)
    own = c_s - C(t_o) + j_o  # a finished row's constant
    del j_o
    if ((~first) & (s_o < np.concatenate(([-np.inf], t_o[:-1])))).any():
        raise DataError("rows of one subject overlap in time ((start, stop] intervals of an "
                        "'id' must not overlap)")
    cs = np.cumsum(own)
    grp_start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    del first
    before = cs - own - np.where(grp_start > 0, cs[grp_start - 1], 0.0)  # earlier rows of the id
    del cs, grp_start
    # state changes: at start, (Kp, 0) -> (Kp + C(start), 1); at stop -> (Kp + own, 0)
    k1 = before + c_s
    del c_s
    times = np.concatenate((s_o, t_o))
    n_rows = len(order)
    del s_o, t_o, order
    o = np.argsort(times, kind="mergesort")
    idx = np.searchsorted(times[o], etimes, side="right") - 1
    del times

    def at(delta: np.ndarray) -> np.ndarray:
        cum = np.cumsum(delta[o])
        return np.where(idx >= 0, cum[np.maximum(idx, 0)], 0.0)

    # a row whose stop equals t is finished at t (its event is counted), one
    # whose start equals t is not yet at risk (m = 1 adds nothing there: C(t) = C(start))
    k1_sq = k1 ** 2
    k2 = before + own
    del own
    at_k2 = at(np.concatenate((k1_sq - before ** 2, k2 ** 2 - k1_sq)))  # the squared influence's changes
    del before, k2, k1_sq
    at_km = at(np.concatenate((k1, -k1)))
    del k1
    at_m2 = at(np.concatenate((np.ones(n_rows), -np.ones(n_rows))))
    var = at_k2 - 2.0 * Cj * at_km + Cj ** 2 * at_m2
    return etimes, n.astype(float), d, M, np.maximum(var, 0.0)


def _estimate(data: pd.DataFrame, duration: str, event: str, by: str | None, start: str | None,
              id: str | None, at: float | None, conf_level: float, conf_type: str
              ) -> MeanCumulativeResult:
    data = _checks.check_frame(data)
    _checks.check_columns(data, [duration, event, by, start, id])
    level = _checks.check_probability(conf_level, "conf_level")
    if conf_type not in ("log", "plain"):
        raise DataError(f"'conf_type' must be 'log' or 'plain': got {conf_type!r}")
    stop = _checks.numeric(data, duration, nonnegative=True)
    ev = _checks.events01(data, event)
    st = np.zeros(len(stop)) if start is None else _checks.numeric(data, start, nonnegative=True)
    if start is not None:
        _checks.check_start_stop(data, st, stop, start, duration)
    sid = np.arange(len(stop)) if id is None else pd.factorize(_checks.keys(data, id))[0]
    groups: list[tuple[object, np.ndarray]] = (
        [("all", np.ones(len(stop), dtype=bool))] if by is None else groups_of(data, by))
    z = float(_st.norm.ppf(0.5 + level / 2))
    rows, curves = [], []
    for name, m in groups:
        cur = mcf_curve(st[m], stop[m], ev[m], sid[m], z, conf_type)
        e_t, M, se, lo, hi = cur["time"], cur["mcf"], cur["std_err"], cur["ci_lower"], cur["ci_upper"]
        curves.append(pd.DataFrame({"group": name, **cur}))
        when = float(stop[m].max()) if at is None else float(at)
        j = int(np.searchsorted(e_t, when, side="right")) - 1
        vals = (M[j], se[j], lo[j], hi[j]) if j >= 0 else (0.0, 0.0, 0.0, 0.0)
        rows.append(dict(group=name, subjects=len(np.unique(sid[m])), events=int(ev[m].sum()),
                         time=when, mcf=float(vals[0]), se=float(vals[1]),
                         ci_lower=float(vals[2]), ci_upper=float(vals[3])))
    curve = pd.concat(curves, ignore_index=True)
    return MeanCumulativeResult(pd.DataFrame(rows, columns=list(MeanCumulativeResult.COLUMNS)),
                                curve, level, conf_type)


def gap_starts(codes: np.ndarray, stop: np.ndarray, ev: np.ndarray, sid: np.ndarray | None = None,
               duration: str = "time", id: str = "id") -> tuple[np.ndarray, np.ndarray]:
    """Each row's start, its subject's previous row's time (0 for the first), and which rows carry nothing.

    ``codes`` are integer subject codes, ``stop`` the rows' times, ``ev`` their
    0/1 events.  A row at time 0 without an event is never at risk (``empty``,
    the second array); every other row must lie after its subject's previous
    one (:class:`~fomolab.errors.DataError` naming ``sid``'s value, ``duration``
    and ``id``).
    """
    o = np.lexsort((stop, codes))  # by subject, then time; ties in row order
    same = np.zeros(len(o), dtype=bool)
    c_o = codes[o]
    same[1:] = c_o[1:] == c_o[:-1]
    del c_o
    # in sorted order, the previous row's time where it is the same subject's, else 0 (no temporaries:
    # a large curve has a row per purchase and visit, 4 x 10^7 of them)
    s_o = stop[o].astype(float, copy=False)
    prev_o = np.zeros(len(o))
    np.copyto(prev_o[1:], s_o[:-1], where=same[1:])
    del s_o, same
    prev = np.empty(len(stop))
    prev[o] = prev_o
    del o, prev_o
    empty = (stop == 0) & (ev == 0)
    if empty.all():
        raise DataError(f"every row of {duration!r} is 0 without an event: nothing at risk")
    bad = (prev >= stop) & ~empty
    if bad.any():
        who = np.flatnonzero(bad)[0]
        name = _checks._py(sid[who]) if sid is not None else int(codes[who])
        raise DataError(f"subject {name!r} of column {id!r} has a row at time "
                        f"{float(stop[who])!r} that is not after its previous row (or is at "
                        "0): each event needs its own time > 0")
    return prev, empty


def mcf_curve(start: np.ndarray, stop: np.ndarray, ev: np.ndarray, sid: np.ndarray, z: float,
              conf_type: str = "log") -> dict[str, np.ndarray]:
    """One group's curve (:func:`mean_cumulative_function`'s ``curve`` columns but ``group``) from arrays.

    ``sid`` holds integer subject codes (as :func:`pandas.factorize` gives).
    """
    e_t, n, d, M, var = _one(start, stop, ev, sid)
    se = np.sqrt(var)
    lo, hi = _band(M, se, z, conf_type)
    return {"time": e_t, "at_risk": n, "events": d, "mcf": M, "std_err": se, "ci_lower": lo, "ci_upper": hi}


def follow_up_curve(ends: np.ndarray, t: np.ndarray, first: np.ndarray, sub_end: np.ndarray, z: float,
                    conf_type: str = "log", listed: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """:func:`mcf_curve` when every subject is watched from 0 to the end of its follow-up, from counts.

    The subjects of a figure of visits: each one at risk on ``(0, end]``, its
    events inside.  Nothing here has a row per subject: the subjects without
    an event enter only through ``ends``, counted at the distinct event times.
    The robust variance at ``t_j`` is ``sum_i (J_i(t_j) - C(min(t_j, end_i)))^2``
    (``J_i`` the sum of ``1 / n`` over the subject's events so far, ``C`` the
    sum of ``d / n^2``), gathered as increments per distinct time: the same
    numbers as :func:`mcf_curve` of the subjects' gap rows (``time``,
    ``at_risk``, ``events`` and ``mcf`` bit for bit; the error up to the order
    of its sums).

    Parameters
    ----------
    ends : numpy.ndarray
        The ends of follow-up of every subject, sorted (a subject whose end is
        0 or less is never at risk).
    t : numpy.ndarray
        The event times, grouped by subject and in time order within each; each
        ``> 0``, distinct within its subject and not after the subject's end.
    first : numpy.ndarray
        True at each subject's first event.
    sub_end : numpy.ndarray
        Each subject with events' end of follow-up, in the order of its group in ``t``.
    z : float
        The normal quantile of the band.
    conf_type : {"log", "plain"}, default "log"
    listed : numpy.ndarray, optional
        The value at which each subject with events is counted in ``ends``
        where that is not its ``sub_end`` (a visit whose last purchase came
        after its recorded end); default ``sub_end``.
    """
    etimes, j = np.unique(t, return_inverse=True)
    j = j.reshape(-1)
    n_ev = len(etimes)
    if n_ev == 0:
        e = np.zeros(0)
        return {"time": e, "at_risk": e, "events": e, "mcf": e, "std_err": e, "ci_lower": e, "ci_upper": e}
    own = np.sort(sub_end)
    seen = own if listed is None else np.sort(listed)
    below = np.searchsorted(ends, etimes, side="left")  # subjects whose end is before t_j (by ``ends``)
    seen_below = np.searchsorted(seen, etimes, side="left")
    n = len(ends) - below + seen_below - np.searchsorted(own, etimes, side="left")  # at risk: end >= t_j
    del own, seen
    d = np.bincount(j, minlength=n_ev).astype(float)
    h = d / n
    M = np.cumsum(h)
    Cj = np.cumsum(h / n)  # C(t) = sum_{t_j <= t} h_j / n_j
    # the subjects without events that ended in [t_{k-1}, t_k) carry -C(t_{k-1}) from then on
    quiet = np.diff(below - seen_below).astype(float)
    fin = np.concatenate(([0.0], np.cumsum(quiet * Cj[:-1] ** 2)))
    del below, seen_below, quiet
    # each event's jump 1 / n and its subject's running sum J of them (one pass per rank within a subject)
    g = 1.0 / n[j]
    J = g.copy()
    at = np.arange(len(t))
    rank = at - np.maximum.accumulate(np.where(first, at, 0))
    later = np.flatnonzero(rank > 0)
    if len(later):
        later = later[np.argsort(rank[later], kind="stable")]
        for idx in np.split(later, np.cumsum(np.bincount(rank[later])[1:])[:-1]):
            J[idx] = J[idx - 1] + g[idx]
    del at, later
    J_prev = np.where(first, 0.0, np.concatenate(([0.0], J[:-1])))
    last = np.concatenate((first[1:], [True]))
    J_end = J[last]
    k = np.searchsorted(etimes, sub_end, side="right")  # a subject leaves the risk set after t_{k-1}
    C0 = np.concatenate(([0.0], Cj))
    size = n_ev + 1
    S1 = np.cumsum(np.bincount(j, g, size) - np.bincount(k, J_end, size))[:n_ev]
    S2 = np.cumsum(np.bincount(j, J * J - J_prev * J_prev, size) - np.bincount(k, J_end * J_end, size))[:n_ev]
    fin += np.cumsum(np.bincount(k, (J_end - C0[k]) ** 2, size))[:n_ev]
    var = fin + S2 - 2.0 * Cj * S1 + Cj ** 2 * n
    se = np.sqrt(np.maximum(var, 0.0))
    lo, hi = _band(M, se, z, conf_type)
    return {"time": etimes, "at_risk": n.astype(float), "events": d, "mcf": M, "std_err": se, "ci_lower": lo,
            "ci_upper": hi}


def _band(M: np.ndarray, se: np.ndarray, z: float, conf_type: str) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "plain":
            return np.maximum(M - z * se, 0.0), M + z * se
        r = np.where(M > 0, se / M, 0.0)
        return M * np.exp(-z * r), M * np.exp(z * r)


def nelson_aalen(
    data: pd.DataFrame,
    duration: str,
    event: str,
    by: str | None = None,
    *,
    start: str | None = None,
    id: str | None = None,
    at: float | None = None,
    conf_level: float = 0.95,
    conf_type: str = "log",
) -> MeanCumulativeResult:
    """Nelson–Aalen cumulative hazard, per group, with robust standard errors.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject, or per ``(start, duration]`` interval.
    duration : str
        Column of event/censoring times (the interval ends with ``start``).
    event : str
        Column of 0/1 (or boolean) event indicators.
    by : str, optional
        Column defining groups.
    start : str, optional
        Column of interval starts: a row is at risk for ``start < t <= duration``.
    id : str, optional
        Column of subject ids: the influence of a subject's rows is summed
        before squaring (R's ``survfit(..., id = )``).  Without it every row is
        its own subject.
    at : float, optional
        Time at which ``summary`` reads the curve; default each group's last time.
    conf_level : float, default 0.95
    conf_type : {"log", "plain"}, default "log"

    Returns
    -------
    MeanCumulativeResult
        ``mcf`` is the cumulative hazard ``sum d_j / n_j``.

    Notes
    -----
    The estimate equals R's ``survfit(Surv(...) ~ by, ctype = 1)$cumhaz``; the
    standard error is the infinitesimal jackknife ``sqrt(sum_i U_i(t)^2)``,
    ``U_i(t) = sum_{t_j <= t} (dN_i(t_j) - Y_i(t_j) d_j / n_j) / n_j``, R's
    ``std.chaz`` of a ``survfit(..., id = , influence = TRUE)`` fit.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 1, 6, 6, 8, 9], "e": [1, 0, 1, 1, 0, 1]})
    >>> na = nelson_aalen(df, "t", "e")
    >>> [round(float(v), 4) for v in na.curve["mcf"]]   # 1/6, + 2/4, + 1/1
    [0.1667, 0.6667, 1.6667]
    """
    return _estimate(data, duration, event, by, start, id, at, conf_level, conf_type)


def mean_cumulative_function(
    data: pd.DataFrame,
    duration: str,
    event: str,
    by: str | None = None,
    *,
    id: str,
    start: str | None = None,
    at: float | None = None,
    conf_level: float = 0.95,
    conf_type: str = "log",
) -> MeanCumulativeResult:
    """Mean cumulative number of recurrent events per subject (e.g. purchases per viewer).

    Parameters
    ----------
    data : pandas.DataFrame
        Counting-process rows: per subject, one ``(start, duration]`` interval
        ending at each event (``event`` = 1) and a last one ending at the end of
        follow-up (``event`` = 0).  Without ``start`` each row starts at 0 and
        the rows of a subject are its event times and its end of follow-up
        (all at risk from arrival: give ``start`` for gaps in observation).
    duration, event, by, at, conf_level, conf_type
        As :func:`nelson_aalen`.
    id : str
        Column of subject ids (viewer visits); required, since the robust
        variance sums each subject's influence.
    start : str, optional
        Column of interval starts.

    Returns
    -------
    MeanCumulativeResult
        ``mcf`` is the expected number of events per subject by ``time``, with
        the Lawless–Nadeau robust standard error.

    Notes
    -----
    Without ``start``, a subject's rows are turned into consecutive intervals
    (0, t1], (t1, t2], ... in time order, so a subject with k events and a
    censoring time contributes k + 1 rows; a row at time 0 without an event
    (a visit of no length) is never at risk and is left out, also from
    ``subjects``.  The estimator assumes only that
    the end of follow-up is independent of the event process (Lawless &
    Nadeau 1995); it does not assume the events of a subject are independent.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"viewer": [1, 1, 1, 2, 2, 3], "t": [2, 5, 9, 4, 7, 6],
    ...                    "bought": [1, 1, 0, 1, 0, 0]})
    >>> mcf = mean_cumulative_function(df, "t", "bought", id="viewer")
    >>> [round(float(v), 3) for v in mcf.curve["mcf"]]   # 1/3 at each of t = 2, 4, 5
    [0.333, 0.667, 1.0]
    """
    if id is None:
        raise DataError("mean_cumulative_function() needs 'id': the column of subject ids")
    data = _checks.check_frame(data)
    _checks.check_columns(data, [duration, id])
    if start is None:
        sid = _checks.keys(data, id)
        stop = _checks.numeric(data, duration, nonnegative=True)
        ev = _checks.events01(data, event)
        starts, empty = gap_starts(pd.factorize(sid)[0], stop, ev, sid, duration, id)
        if empty.any():
            data, starts = data[~empty], starts[~empty]
        data = data.assign(_start=starts)
        start = "_start"
    return _estimate(data, duration, event, by, start, id, at, conf_level, conf_type)
