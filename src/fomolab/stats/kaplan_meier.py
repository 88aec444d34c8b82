"""Kaplan–Meier curves of time to purchase, as R's ``survfit`` draws them.

Picture a stream's viewers as a cohort: each is watched from arrival until they
buy (an event) or leave without buying (censored).  The Kaplan–Meier curve is
the share still not having bought after ``t`` seconds.  The numbers follow R's
``survival::survfit`` defaults: Greenwood variance, confidence intervals on the
log scale (``conf.type = "log"``) and R's median rule (``quantile.survfit``),
which takes the midpoint of a flat stretch of the curve lying exactly at 0.5.
Intervals on the log-log (``conf.type = "log-log"``) and plain (``"plain"``)
scales are there too, computed as R's ``survfit_confint`` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats as _st

from fomolab.errors import DataError
from fomolab.stats import _checks
from fomolab.stats._result import StatsResult

__all__ = ["CONF_TYPES", "KaplanMeierResult", "confidence_band", "curves_by", "group_masks", "groups_of",
           "kaplan_meier",
           "unique_inverse"]

#: The interval scales of R's ``survfit(conf.type = ...)`` that are offered.
CONF_TYPES = ("log", "log-log", "plain")

_TOL = float(np.sqrt(np.finfo(float).eps))  # R: sqrt(.Machine$double.eps)


@dataclass(frozen=True, eq=False)
class KaplanMeierResult(StatsResult):
    """Kaplan–Meier estimates, one curve per group.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per group, columns ``COLUMNS``: ``group, n, events, median,
        median_ci_lower, median_ci_upper``.
    curve : pandas.DataFrame
        Long table ``group, time, survival, ci_lower, ci_upper, at_risk`` with one
        row per distinct time of each group (event and censoring times, as R's
        ``survfit`` object), plus ``events``, ``censored`` and ``std_err`` (the
        Greenwood standard error of the log survival, R's ``std.err`` of a
        ``survfit`` object before ``summary`` rescales it).
    conf_level : float
        Confidence level of the intervals.
    conf_type : str
        Scale of the intervals: ``"log"`` (R's default), ``"log-log"`` or ``"plain"``.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("group", "n", "events", "median", "median_ci_lower",
                                          "median_ci_upper")
    summary: pd.DataFrame
    curve: pd.DataFrame
    conf_level: float
    conf_type: str = "log"

    def __repr__(self) -> str:
        ct = "" if self.conf_type == "log" else f", conf_type={self.conf_type!r}"
        return (
            f"<KaplanMeierResult: {len(self.summary)} group(s), "
            f"{int(self.summary['n'].sum())} subjects, "
            f"{int(self.summary['events'].sum())} events, conf_level={self.conf_level:g}{ct}>"
        )


def confidence_band(p: np.ndarray, se: np.ndarray, z: float, conf_type: str = "log"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise limits of a probability ``p`` whose log has standard error ``se``.

    R's ``survfit_confint`` (``logse = TRUE``): ``"log"`` is ``p exp(+-z se)``
    (upper capped at 1), ``"log-log"`` is ``exp(-exp(log(-log p) -+ z se / log p))``
    and ``"plain"`` is ``p +- z se p`` clipped to [0, 1].  Where ``se`` is 0 both
    limits equal ``p``; where ``p`` is 0 (or 0 or 1 on the log-log scale) they are NaN.

    Examples
    --------
    >>> lo, hi = confidence_band(np.array([0.5]), np.array([0.2]), 1.959964, "plain")
    >>> round(float(lo[0]), 4), round(float(hi[0]), 4)
    (0.304, 0.696)
    """
    p = np.asarray(p, dtype=float)
    se = np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "plain":
            half = z * se * p
            lower, upper = np.maximum(p - half, 0.0), np.minimum(p + half, 1.0)
        elif conf_type == "log":
            xx = np.where(p > 0, p, np.nan)
            lower = np.where(se == 0, p, xx * np.exp(-z * se))
            upper = np.where(se == 0, p, np.minimum(xx * np.exp(z * se), 1.0))
        elif conf_type == "log-log":
            xx = np.where((p > 0) & (p < 1), p, np.nan)
            s2 = z * se / np.log(xx)
            lower = np.where(se == 0, p, np.exp(-np.exp(np.log(-np.log(xx)) - s2)))
            upper = np.where(se == 0, p, np.exp(-np.exp(np.log(-np.log(xx)) + s2)))
        else:
            raise DataError(f"'conf_type' must be one of {', '.join(map(repr, CONF_TYPES))}: "
                            f"got {conf_type!r}")
    # R: where the std err is infinite (p = 0 after the last event), the limits are NA
    bad = ~np.isfinite(se)
    return np.where(bad, np.nan, lower), np.where(bad, np.nan, upper)


def unique_inverse(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(t, return_inverse=True)``, in one pass without sorting when ``t`` is already sorted.

    Curves of many rows are faster on rows sorted by time (their subsets stay
    sorted); the result is the same either way.
    """
    t = np.asarray(t)
    if len(t) > 1 and t.dtype.kind == "f" and bool(np.all(t[1:] >= t[:-1])):  # sorted, no NaN
        new = np.empty(len(t), dtype=bool)
        new[0] = True
        np.not_equal(t[1:], t[:-1], out=new[1:])
        return t[new], np.cumsum(new) - 1
    ut, inv = np.unique(t, return_inverse=True)
    return ut, inv.reshape(-1)


def code_counts(codes: np.ndarray, n: int, chunk: int = 1 << 20) -> np.ndarray:
    """How many rows hold each of the codes ``0..n-1`` (negative codes, missing, left out).

    :func:`numpy.bincount` a chunk of rows at a time: it turns its input into
    8-byte integers, a copy of a column of one-byte codes eight times its size.
    """
    out = np.zeros(n, np.int64)
    for a in range(0, len(codes), chunk):
        part = codes[a:a + chunk]
        out += np.bincount(part[part >= 0], minlength=n)[:n]
    return out


def group_rows(col: pd.Series) -> list[tuple[str, slice | np.ndarray]]:
    """Each distinct value of ``col`` as text (sorted) with its rows, in row order.

    A group's rows are a ``slice`` where the column is a categorical whose
    codes never decrease (rows grouped by it, as :func:`fomolab.analysis._by_time`
    leaves them): its columns are then read as views, without copies.  Otherwise
    an array of row positions.
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        names = [str(c) for c in col.cat.categories]
        if len(codes) and bool(np.all(codes[1:] >= codes[:-1])):
            bounds = np.searchsorted(codes, np.arange(len(names) + 1), side="left")
            out: list[tuple[str, slice | np.ndarray]] = [
                (names[k], slice(int(bounds[k]), int(bounds[k + 1]))) for k in range(len(names))
                if bounds[k + 1] > bounds[k]]
        else:
            used = np.flatnonzero(code_counts(codes, len(names)))
            out = [(names[k], np.flatnonzero(codes == k)) for k in used]
    else:
        text = col.astype(str).to_numpy()
        out = [(str(a), np.flatnonzero(text == a)) for a in np.unique(text)]
    return sorted(out, key=lambda kv: kv[0])


def row_count(rows: slice | np.ndarray) -> int:
    """How many rows a :func:`group_rows` entry holds."""
    return rows.stop - rows.start if isinstance(rows, slice) else len(rows)


def group_masks(g: np.ndarray) -> list[tuple[object, np.ndarray]]:
    """Each distinct value of ``g`` with its rows' mask, sorted by value (order of appearance if unsortable).

    The values are hashed once (:func:`pandas.factorize`) and the masks are
    comparisons of integer codes, not of the values themselves.
    """
    codes, values = pd.factorize(g)
    groups = [(lvl, codes == i) for i, lvl in enumerate(values)]
    with contextlib.suppress(TypeError):  # mixed types: keep the order of appearance
        groups.sort(key=lambda kv: kv[0])
    return groups


def groups_of(data: pd.DataFrame, by: str) -> list[tuple[object, np.ndarray]]:
    """:func:`group_masks` of column ``by`` (missing values refused, as :func:`fomolab.stats._checks.keys`).

    A categorical column is grouped by its integer codes (its categories that
    occur, by name), without turning its rows into objects.
    """
    s = data[by]
    if not isinstance(s.dtype, pd.CategoricalDtype):
        return group_masks(_checks.keys(data, by))
    codes = s.cat.codes.to_numpy()
    if (codes < 0).any():
        _checks.keys(data, by)  # raises: missing values
    cats = s.cat.categories
    groups = [(cats[c], codes == c) for c in np.flatnonzero(code_counts(codes, len(cats)))]
    with contextlib.suppress(TypeError):  # mixed types: keep the order of the categories
        groups.sort(key=lambda kv: kv[0])
    return groups


def _findq(x: np.ndarray, y: np.ndarray, p: float, xmax: float) -> float:
    """R's ``findq``: where a horizontal line at CDF level ``p`` meets the curve."""
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    if len(y) == 0 or y.max() < p:
        return float("nan")
    # drop repeated levels (censoring times): keep the first x of each level
    first = np.ones(len(y), dtype=bool)
    first[1:] = y[1:] != y[:-1]
    x, y = x[first], y[first]
    n = len(y)

    def _idx(shift: float) -> int | None:
        hit = np.flatnonzero(y + shift >= p)
        return int(hit[0]) if len(hit) else None

    i1 = _idx(_TOL)
    i2 = _idx(-_TOL)
    if i1 is None:
        return float("nan")
    if abs(p - y[n - 1]) < _TOL:  # a flat at the end of the curve
        return float((x[i1] + xmax) / 2.0)
    if i2 is None:
        return float("nan")
    return float((x[i1] + x[i2]) / 2.0)


def _one_curve(time: np.ndarray, event: np.ndarray, z: float, conf_type: str = "log",
               weight: np.ndarray | None = None) -> dict[str, np.ndarray]:
    # one pass of counts per distinct time: events, censored, at risk
    if weight is not None:  # a row that stands for no subject adds no time
        time, event, weight = time[weight > 0], event[weight > 0], weight[weight > 0]
    ut, inv = unique_inverse(time)
    w = np.ones(len(time)) if weight is None else weight
    d = np.bincount(inv, weights=event * w, minlength=len(ut))
    c = np.bincount(inv, weights=w, minlength=len(ut)) - d
    tot = d + c
    n_risk = w.sum() - np.concatenate(([0.0], np.cumsum(tot)[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - d / n_risk)
        term = np.where(d > 0, d / (n_risk * (n_risk - d)), 0.0)
        se = np.sqrt(np.cumsum(term))  # Greenwood, on the log(S) scale
    se = np.where(surv > 0, se, np.inf)
    lower, upper = confidence_band(surv, se, z, conf_type)
    return dict(
        time=ut, at_risk=n_risk, events=d, censored=c, survival=surv,
        std_err=se, ci_lower=lower, ci_upper=upper,
    )


def _distinct_times(t: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each distinct time of the sorted (non-empty) ``t`` starts, and its events as floats."""
    new = np.empty(len(t), dtype=bool)
    new[0] = True
    np.not_equal(t[1:], t[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    del new
    ev = event if event.dtype in (np.int64, np.float64) else event.astype(np.int64)  # (reduceat of flags: or)
    return starts, np.add.reduceat(ev, starts).astype(float)  # (whole numbers: exact in any order)


def _on_grid(t: np.ndarray, event: np.ndarray, grid: np.ndarray, z: float, conf_type: str = "log"
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The curve of sorted times ``t`` (events 0/1) and its band, read as right-continuous steps on ``grid``
    (1 before the first time): what :func:`_one_curve`'s ``survival, ci_lower, ci_upper`` give there.

    The products and sums run along every distinct time (in the order of
    :func:`_one_curve`, so the numbers are the same bit for bit), but the
    band is computed at the grid's entries only, and no per-row code of the
    distinct times is built: the events per time are sums over the runs of
    equal times.
    """
    if not len(t):
        return np.ones(len(grid)), np.ones(len(grid)), np.ones(len(grid))
    starts, d = _distinct_times(t, event)
    n_risk = (len(t) - starts).astype(float)  # (whole numbers: _one_curve's sums of ones, exactly)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - d / n_risk)
        term = np.where(d > 0, d / (n_risk * (n_risk - d)), 0.0)
        se = np.sqrt(np.cumsum(term))
    del term, n_risk, d
    i = np.searchsorted(t[starts], grid, "right") - 1
    ok = i >= 0
    s_at, se_at = surv[np.maximum(i, 0)], se[np.maximum(i, 0)]
    se_at = np.where(s_at > 0, se_at, np.inf)
    lower, upper = confidence_band(s_at, se_at, z, conf_type)
    return tuple(np.where(ok, v, 1.0) for v in (s_at, lower, upper))  # type: ignore[return-value]


def _median(cur: dict[str, np.ndarray]) -> tuple[float, float, float]:
    x = np.concatenate(([0.0], cur["time"]))
    xmax = float(cur["time"][-1])

    def q(s: np.ndarray) -> float:
        return _findq(x, np.concatenate(([0.0], 1.0 - s)), 0.5, xmax)

    return q(cur["survival"]), q(cur["ci_lower"]), q(cur["ci_upper"])


def _medians_sorted(t: np.ndarray, event: np.ndarray, z: float, conf_type: str = "log", chunk: int = 1 << 16
                    ) -> tuple[tuple[float, float, float], dict[str, np.ndarray]]:
    """:func:`_median` of the curve of sorted times ``t`` (events 0/1), in memory of a chunk of its times.

    The curve is built ``chunk`` distinct times at a time (each product and
    sum carried on from the last chunk's value, so the numbers are those of
    :func:`_one_curve`), and read as it goes: where each of the curve and its
    bands first reaches R's levels, their largest and last values.  Returns
    ``(median, lower, upper)`` and a one-entry curve (``time, at_risk,
    survival``): where the curve first is at or below 0.5, or else its lowest
    value, the entry an analysis of the median's support reads.
    """
    n = len(t)
    starts, d_all = _distinct_times(t, event)
    p = 0.5
    first: list[list[Any]] = [[None, None] for _ in range(3)]  # per curve: x where y + TOL >= p, y - TOL >= p
    y_max, y_last = [0.0] * 3, [0.0] * 3  # (findq's curves start at 0)
    hit: tuple[float, float, float] | None = None  # (time, at_risk, survival) where the curve is first <= 0.5
    s_min, s_carry, g_carry = np.inf, 1.0, 0.0
    for a in range(0, len(starts), chunk):
        b = min(a + chunk, len(starts))
        n_risk = (n - starts[a:b]).astype(float)
        d = d_all[a:b]
        with np.errstate(divide="ignore", invalid="ignore"):
            surv = np.cumprod(np.concatenate(([s_carry], 1.0 - d / n_risk)))[1:]
            term = np.where(d > 0, d / (n_risk * (n_risk - d)), 0.0)
            gw = np.cumsum(np.concatenate(([g_carry], term)))[1:]
            se = np.sqrt(gw)
        s_carry, g_carry = surv[-1], gw[-1]
        del term, gw
        se = np.where(surv > 0, se, np.inf)
        lower, upper = confidence_band(surv, se, z, conf_type)
        times = t[starts[a:b]]
        if hit is None:
            h = np.flatnonzero(surv <= 0.5)
            if len(h):
                hit = (float(times[h[0]]), float(n_risk[h[0]]), float(surv[h[0]]))
        s_min = min(s_min, float(surv.min()))
        for c, v in enumerate((surv, lower, upper)):
            y = 1.0 - v
            kept = y[~np.isnan(y)]
            if len(kept):
                y_max[c] = max(y_max[c], float(kept.max()))
                y_last[c] = float(kept[-1])
            for k, shift in enumerate((_TOL, -_TOL)):
                if first[c][k] is None:
                    w = np.flatnonzero(y + shift >= p)
                    if len(w):
                        first[c][k] = times[w[0]]
    xmax = float(t[-1])

    def q(c: int) -> float:  # R's findq on the whole curve (see _findq)
        x1, x2 = first[c]
        if y_max[c] < p or x1 is None:
            return float("nan")
        if abs(p - y_last[c]) < _TOL:
            return float((x1 + xmax) / 2.0)
        if x2 is None:
            return float("nan")
        return float((x1 + x2) / 2.0)

    entry = hit if hit is not None else (xmax, float(n), s_min)
    one = {"time": np.array([entry[0]]), "at_risk": np.array([entry[1]]), "survival": np.array([entry[2]])}
    return (q(0), q(1), q(2)), one


def _curves(data: pd.DataFrame, duration: str, event: str, by: str | None, weights: str | None, conf_level: float,
            conf_type: str) -> Iterator[tuple[object, np.ndarray, dict[str, np.ndarray],
                                              tuple[np.ndarray, np.ndarray, np.ndarray | None]]]:
    """Each group's name, rows, curve arrays and the checked ``(time, event, weight)`` columns, one at a time."""
    data = _checks.check_frame(data)
    _checks.check_columns(data, [duration, event, by, weights])
    level = _checks.check_probability(conf_level, "conf_level")
    if conf_type not in CONF_TYPES:
        raise DataError(f"'conf_type' must be one of {', '.join(map(repr, CONF_TYPES))}: "
                        f"got {conf_type!r}")
    t = _checks.numeric(data, duration, nonnegative=True)
    e = _checks.events01(data, event)
    wt = None if weights is None else _checks.numeric(data, weights, nonnegative=True)
    z = float(_st.norm.ppf(1.0 - (1.0 - level) / 2.0))
    groups = [("all", np.ones(len(t), dtype=bool))] if by is None else groups_of(data, by)
    for name, m in groups:
        yield name, m, _one_curve(t[m], e[m], z, conf_type, None if wt is None else wt[m]), (t, e, wt)


def curves_by(data: pd.DataFrame, duration: str, event: str, by: str | None = None, *,
              conf_level: float = 0.95, conf_type: str = "log",
              reduce: Callable[[object, dict[str, np.ndarray]], Any] | None = None) -> dict[object, Any]:
    """:func:`kaplan_meier`'s curves as arrays, by group (``time, at_risk, events, censored, survival,
    std_err, ci_lower, ci_upper``): the same numbers without building the long table.

    ``reduce(group, curve)``, if given, is kept instead of each curve, called as soon as the curve is
    built: only one group's arrays (one entry per distinct time) are held at a time.
    """
    out: dict[object, Any] = {}
    for name, _, cur, _ in _curves(data, duration, event, by, None, conf_level, conf_type):
        out[name] = cur if reduce is None else reduce(name, cur)
        del cur
    return out


def kaplan_meier(
    data: pd.DataFrame,
    duration: str,
    event: str,
    by: str | None = None,
    *,
    weights: str | None = None,
    conf_level: float = 0.95,
    conf_type: str = "log",
) -> KaplanMeierResult:
    """Kaplan–Meier survival curves with R's log-scale intervals and medians.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject (e.g. one viewer visit).
    duration : str
        Column with follow-up times (>= 0), e.g. seconds from arrival to
        purchase or departure.
    event : str
        Column with the event indicator: 1/True if the subject bought, 0/False if
        censored.  Any other code (R's 1/2 included) is a :class:`DataError`.
    by : str, optional
        Column defining groups (e.g. ``"arm"``); one curve per distinct value.
        Without it a single curve with group ``"all"``.
    weights : str, optional
        Column of non-negative counts: each row stands for that many subjects
        with the same time and event (R's case ``weights``).  A table of event
        and censoring counts per distinct time gives the curve of the rows it
        counts, so stored aggregates need no per-viewer table.
    conf_level : float, default 0.95
        Level of the pointwise confidence intervals.
    conf_type : {"log", "log-log", "plain"}, default "log"
        Scale of the pointwise intervals, as R's ``conf.type``.  ``"log-log"``
        keeps the limits inside (0, 1) and covers better in the tails with few
        subjects at risk; ``"plain"`` is the textbook ``S +- z SE(S)``.

    Returns
    -------
    KaplanMeierResult
        ``.summary`` (``group, n, events, median, median_ci_lower,
        median_ci_upper``) and ``.curve`` (``group, time, survival, ci_lower,
        ci_upper, at_risk``, ...).

    Notes
    -----
    Matches ``survfit(Surv(duration, event) ~ by, data)`` with its defaults:
    the Greenwood variance of the cumulative hazard, ``conf.type = "log"``
    (limits ``S * exp(+-z * se)``, the upper one capped at 1) and medians by
    ``quantile.survfit``: the first time the curve is <= 0.5, or the midpoint
    to the next drop when the curve sits at exactly 0.5; the interval for the
    median is where the lower and upper bands cross 0.5.  A median the curve
    never reaches is NaN, as R prints ``NA``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 2, 3, 4, 5], "bought": [1, 1, 0, 1, 0, 1]})
    >>> km = kaplan_meier(df, "t", "bought")
    >>> km
    <KaplanMeierResult: 1 group(s), 6 subjects, 4 events, conf_level=0.95>
    >>> float(km.summary["median"].iloc[0])
    3.0
    >>> [round(float(s), 3) for s in km.curve["survival"]]
    [0.833, 0.667, 0.444, 0.444, 0.0]
    """
    rows, curves = [], []
    for name, m, cur, (_, e, wt) in _curves(data, duration, event, by, weights, conf_level, conf_type):
        med, lo, hi = _median(cur)
        n_g, ev_g = ((int(m.sum()), int(e[m].sum())) if wt is None else
                     (round(wt[m].sum()), round((e[m] * wt[m]).sum())))
        rows.append(dict(group=name, n=n_g, events=ev_g,
                         median=med, median_ci_lower=lo, median_ci_upper=hi))
        frame = pd.DataFrame(cur)
        frame.insert(0, "group", name)
        curves.append(frame)
    summary = pd.DataFrame(rows, columns=list(KaplanMeierResult.COLUMNS))
    curve = pd.concat(curves, ignore_index=True)[
        ["group", "time", "survival", "ci_lower", "ci_upper", "at_risk",
         "events", "censored", "std_err"]
    ]
    return KaplanMeierResult(summary, curve, float(conf_level), conf_type)
