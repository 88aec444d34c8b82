"""The tables the figures draw, computed once by :func:`fomolab.analysis.analyze`.

The picture: the statistician hands the illustrator finished numbers.  Every
quantity a figure of :mod:`fomolab.plot` shows, and every interval around it,
is a row of one of these tables; the figures only draw them, so what a figure
shows is what ``analysis/*.csv`` holds, to the last digit.

==================  ===========================================================
table               rows
==================  ===========================================================
``timeline``        purchase rate per time bin, viewers and stock left on a
                    grid of stream time, per arm: means over runs, t intervals
``windows``         each product's tactic windows (median over the runs that
                    had them), with the tactic's label
``survival``        Kaplan–Meier share who have bought, on a grid of time since
                    arrival, per arm, with its interval and the numbers at risk
``deadline_curve``  purchases per minute and run by seconds left to a deadline
``impulsiveness``   conversion and median time to purchase by impulsiveness
                    group, per arm: means over runs, t intervals
``marginals``       sweeps: each run metric at each value of each swept
                    parameter, per arm: means over runs, t intervals
``cells``           sweeps over two or more parameters: mean conversion in each
                    cell of the first two
``concentration``   marketplaces: HHI, Gini and top share of watch time and of
                    sales per point and arm (means over replicates, t intervals)
==================  ===========================================================

Pooled over sweep points: a figure of a sweep shows the whole design.  Every
interval is :func:`fomolab.stats._intervals.t_band` (``mean +- t(n-1) sd /
sqrt(n)`` over runs) or the interval of the statistic named.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from fomolab._format import nice_step

__all__ = ["CELLS_COLUMNS", "CONCENTRATION_COLUMNS", "DEADLINE_CURVE_COLUMNS", "IMPULSIVENESS_COLUMNS",
           "MARGINAL_COLUMNS", "SURVIVAL_COLUMNS", "TIMELINE_COLUMNS", "WINDOW_COLUMNS", "cells",
           "concentration_table", "deadline_curve", "has_deadline", "impulsiveness", "marginals",
           "run_concentration", "survival", "tactic_label", "timeline", "windows"]

TIMELINE_COLUMNS = ["arm", "series", "product", "time_s", "mean", "ci_lower", "ci_upper", "runs"]
WINDOW_COLUMNS = ["product", "tactic", "label", "start_s", "end_s", "runs"]
SURVIVAL_COLUMNS = ["arm", "time_s", "bought", "ci_lower", "ci_upper", "at_risk", "tick"]
INCIDENCE_COLUMNS = ["arm", "time_s", "cuminc", "ci_lower", "ci_upper", "at_risk", "tick", "horizon"]
REPEAT_COLUMNS = ["arm", "time_s", "mcf", "ci_lower", "ci_upper", "at_risk", "tick"]
DEADLINE_CURVE_COLUMNS = ["window", "product", "arm", "left_from_s", "left_to_s", "purchases_per_min", "runs"]
IMPULSIVENESS_COLUMNS = ["arm", "group", "groups", "measure", "mean", "ci_lower", "ci_upper", "runs"]
MARGINAL_COLUMNS = ["arm", "parameter", "value", "binned", "metric", "mean", "ci_lower", "ci_upper", "runs"]
CELLS_COLUMNS = ["arm", "x_parameter", "x", "y_parameter", "y", "metric", "mean", "runs"]
CONCENTRATION_COLUMNS = ["point", "arm", "of", "measure", "mean", "ci_lower", "ci_upper", "replicates"]

#: Fields that declare when a tactic's window ends: the tactic has a deadline.
_END_FIELDS = ("end_s", "deadline_s", "expires_s")


# ------------------------------------------------------------------- tactics


def _tactic_class(kind: str) -> Any:
    from fomolab.tactics import KINDS

    return KINDS.get(kind)


def tactic_label(kind: str) -> str:
    """A tactic's label in figures: its class's ``label`` where it declares one, else its kind in words.

    >>> tactic_label("no_such_tactic")
    'no such tactic'
    """
    cls = _tactic_class(kind)
    label = getattr(cls, "label", None) if cls is not None else None
    return str(label) if isinstance(label, str) and label else kind.replace("_", " ")


def has_deadline(kind: str) -> bool:
    """True when a tactic's window ends at a declared time (its ``has_deadline``, else an end field)."""
    cls = _tactic_class(kind)
    if cls is None:
        return False
    flag = getattr(cls, "has_deadline", None)
    if isinstance(flag, bool):
        return flag
    return bool(set(_END_FIELDS) & set(getattr(cls, "model_fields", {})))


def _kind_rank(kind: str) -> int:
    from fomolab.tactics import KINDS

    order = list(KINDS)
    return order.index(kind) if kind in order else len(order)


# ------------------------------------------------------------------ helpers


def _run_info(runs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"run_id": runs.run_id.astype(str).to_numpy(), "arm": runs.arm.astype(str).to_numpy(),
                         "point": runs.point.to_numpy(), "replicate": runs.replicate.to_numpy()})


def _codes(values: pd.Series, at: dict[str, int]) -> np.ndarray:
    """Each row's position ``at[str(value)]``; ``len(at)`` for a value not in ``at`` (or missing)."""
    from fomolab.stats._folder import positions

    return positions(values, at, len(at))


def _is_value(col: pd.Series, value: str) -> np.ndarray:
    """Rows where a text column equals ``value`` (a categorical compared by its codes)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        names = [str(c) for c in col.cat.categories]
        return col.cat.codes.to_numpy() == (names.index(value) if value in names else -2)
    return col.astype(str).to_numpy() == value


def _present(values: pd.Series) -> list[str]:
    """The distinct values of a column as text, sorted (a categorical's categories that occur)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        used = np.unique(values.cat.codes.to_numpy())
        cats = values.cat.categories
        return sorted({str(cats[c]) for c in used if c >= 0})
    return sorted({str(v) for v in pd.unique(values)})


def _band(values: list[np.ndarray] | np.ndarray, conf_level: float) -> tuple[np.ndarray, ...]:
    from fomolab.stats._intervals import t_band

    return t_band(np.asarray(values, float), conf_level, axis=0)


def _run_windows(events: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Each run's tactic windows (slots left out): ``run_id, arm, point, product, tactic, start_s, end_s``."""
    from fomolab.stats._folder import windows as folder_windows

    w = folder_windows(events)
    w = w[w.tactic != "slot"]
    return w.merge(_run_info(runs)[["run_id", "arm", "point"]], on="run_id", how="inner")


# ------------------------------------------------------------------ windows


def windows(events: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Each product's tactic windows, the median start and end over the runs that had them.

    Columns ``product, tactic, label, start_s, end_s, runs``, in order of
    start and then of the tactic registry.
    """
    w = _run_windows(events, runs)
    if w.empty:
        return pd.DataFrame(columns=WINDOW_COLUMNS)
    med = (w.groupby(["product", "tactic"], sort=False)
           .agg(start_s=("start_s", "median"), end_s=("end_s", "median"), runs=("run_id", "nunique"))
           .reset_index())
    med["label"] = [tactic_label(t) for t in med.tactic]
    med["_rank"] = [_kind_rank(t) for t in med.tactic]
    med = med.sort_values(["start_s", "_rank", "product"], kind="stable")
    return med[WINDOW_COLUMNS].reset_index(drop=True)


# ----------------------------------------------------------------- timeline


def timeline(res: Any, runs: pd.DataFrame, events: pd.DataFrame, arms: Sequence[str], conf_level: float,
             bin_s: float | None = None, visits: pd.DataFrame | None = None) -> pd.DataFrame:
    """Purchase rate, viewers and stock left over stream time, per arm (means over runs).

    Series ``purchase_rate`` (purchases per minute and run, at the middle of
    each bin, with a t interval over runs), ``viewers`` (viewers present per
    run on a grid of 361 times) and ``stock`` (units left of each product with
    a finite stock, per run, same grid).  ``events`` needs only the
    purchases (its ``arrive`` and ``leave`` rows, if any, are not used): the
    viewers present come from ``visits``, one row per visit with ``run_id``,
    ``arrival_s`` and ``departure_s`` (default: read from the folder's
    ``shoppers`` table), the times of the visits' ``arrive`` and ``leave``
    events.
    """
    from fomolab.stats._facts import run_facts, starting_stock, stream_ends

    info = _run_info(runs)
    T = float(max(stream_ends(res, runs).values()))
    stock0 = starting_stock(run_facts(res, runs, events))
    stocked = sorted({p for _, p in stock0})
    if bin_s is None:
        bin_s = nice_step(T, 60)
    edges = np.arange(0.0, T + bin_s * 0.5, bin_s)
    if edges[-1] < T:
        edges = np.append(edges, T)
    mids = (edges[:-1] + edges[1:]) / 2
    width_min = np.diff(edges) / 60.0
    grid = np.linspace(0.0, T, 361)
    if visits is None:
        visits = res.table("shoppers", ["run_id", "arrival_s", "departure_s"])
    run_ids = list(info.run_id)
    at = {rid: k for k, rid in enumerate(run_ids)}
    R, G = len(run_ids), len(grid)
    # per run, counts by time bin or grid time from each row's index found once (no sort of any run's rows):
    # np.histogram's bins (each [e_i, e_i+1), the last closed); on the grid, cumulative counts
    buy = (events.kind == "purchase").to_numpy()
    b_run = _codes(events.run_id[buy], at)
    b_time = events.time_s.to_numpy(float)[buy]
    hist = np.searchsorted(edges, b_time, "right") - 1
    hist[b_time == edges[-1]] = len(edges) - 2
    rates_of = _per_run(b_run, hist, R, len(edges) - 1) / width_min
    del hist
    b_prod = _codes(events["product"][buy], {p: k for k, p in enumerate(stocked)}) if stocked else None
    bought_of = [np.cumsum(_per_run(b_run[b_prod == k], np.searchsorted(grid, b_time[b_prod == k], "left"), R, G),
                           axis=1) for k in range(len(stocked))]  # purchases at or before each grid time
    viewers_of = np.cumsum(_arrivals_less_departures(visits, at, grid), axis=1)
    out = []

    def add(arm: str, series: str, product: str, t: np.ndarray, vals: np.ndarray, band: bool) -> None:
        if not len(vals):
            return
        v = np.asarray(vals, float)
        if band:
            m, lo, hi, _ = _band(v, conf_level)
        else:
            m, lo, hi = v.mean(axis=0), np.full(len(t), np.nan), np.full(len(t), np.nan)
        out.append(pd.DataFrame({"arm": arm, "series": series, "product": product, "time_s": t, "mean": m,
                                 "ci_lower": lo, "ci_upper": hi, "runs": len(v)}))

    for arm in arms:
        mine = [at[rid] for rid in info.run_id[info.arm == arm]]
        add(arm, "purchase_rate", "", mids, rates_of[mine], band=True)
        add(arm, "viewers", "", grid, viewers_of[mine], band=False)
        for k, p in enumerate(stocked):
            have = [(j, stock0[(run_ids[j], p)]) for j in mine if (run_ids[j], p) in stock0]
            s0 = np.array([s for _, s in have], np.int64)
            add(arm, "stock", p, grid, s0[:, None] - bought_of[k][[j for j, _ in have]], band=False)
    if not out:
        return pd.DataFrame(columns=TIMELINE_COLUMNS)
    return pd.concat(out, ignore_index=True)[TIMELINE_COLUMNS]


def _per_run(run: np.ndarray, index: np.ndarray, runs: int, size: int) -> np.ndarray:
    """Counts of rows per run and index (``runs x size``).

    ``run`` is in ``[0, runs]`` and ``index`` in ``[-1, size]``: rows of no
    run (``runs``) or out of range are counted in a margin around the table
    and dropped with it (no selection of the rows).
    """
    width = size + 2
    flat = run * width
    flat += index
    flat += 1
    return np.bincount(flat, minlength=(runs + 1) * width).reshape(runs + 1, width)[:runs, 1:size + 1]


def _arrivals_less_departures(visits: pd.DataFrame, at: dict[str, int], grid: np.ndarray) -> np.ndarray:
    """Per run, the visits that begin at or before each grid time minus those that end before it (not summed).

    The cumulative sum along the grid is the number of viewers present at
    each time.  The visits are taken a slice at a time: no array of a row
    per visit of the folder beside the columns.
    """
    R, G = len(at), len(grid)
    col = visits.run_id
    lut = (np.array([at.get(str(c), R) for c in col.cat.categories] + [R], np.int64)
           if isinstance(col.dtype, pd.CategoricalDtype) else None)  # a category's run: looked up once
    arrival, departure = visits.arrival_s.to_numpy(float), visits.departure_s.to_numpy(float)
    counts = np.zeros((R, G), np.int64)
    step = 1 << 19  # a slice's temporaries: a few MB
    for a in range(0, len(visits), step):
        run = lut[col.cat.codes.to_numpy()[a:a + step]] if lut is not None else _codes(col.iloc[a:a + step], at)
        counts += _per_run(run, _grid_index(grid, arrival[a:a + step], "left"), R, G)
        counts -= _per_run(run, _grid_index(grid, departure[a:a + step], "right"), R, G)
    return counts


def _grid_index(grid: np.ndarray, x: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
    """``numpy.searchsorted(grid, x, side)`` for an evenly spaced, increasing ``grid``.

    Each value's place is guessed by division by the step and checked
    against its two neighbours on the grid (the definition of the binary
    search's answer); a value whose guess fails the check (rounding at a
    grid point, NaN) is searched.  At millions of unsorted values the
    division is several times faster than the binary search, whose every
    step is a branch the processor mispredicts.
    """
    G = len(grid)
    if G < 2 or not len(x):
        return np.searchsorted(grid, x, side)
    k = x - grid[0] if grid[0] else x.copy()
    k *= (G - 1) / (grid[-1] - grid[0])
    np.floor(k, out=k)
    np.clip(k, -1, G - 1, out=k)
    np.copyto(k, G - 1, where=np.isnan(k))
    c = k.astype(np.intp)
    c += 1  # the guess: the number of grid points below (or at) the value
    # the grid with a point below the first and above the last: the neighbours of every guess, by index
    padded = np.concatenate(([-np.inf], grid, [np.inf]))
    below, above = padded[c], padded[c + 1]
    ok = (below < x) & (above >= x) if side == "left" else (below <= x) & (above > x)
    if not ok.all():
        c[~ok] = np.searchsorted(grid, x[~ok], side)
    return c


# ----------------------------------------------------------------- survival


def survival(shoppers: pd.DataFrame, arms: Sequence[str], conf_level: float) -> pd.DataFrame:
    """The Kaplan–Meier share who have bought by time since arrival, per arm, on a grid.

    ``shoppers`` has ``time_s`` and ``bought``
    (:func:`fomolab.stats.compare.time_to_purchase`).  The grid runs from 0 to
    a round number of minutes past where 99 % of the follow-up times have
    ended, in 400 steps plus the round ticks (``tick`` True), so the figure's
    numbers at risk are read at exact times.  ``bought`` is ``1 - S(t)``, its
    bounds from the curve's pointwise interval (Greenwood variance, log
    intervals, as R's ``survfit``); ``at_risk`` counts follow-up times ``>= t``
    over all runs.
    """
    from scipy import stats as st

    from fomolab.stats import _checks
    from fomolab.stats.kaplan_meier import _on_grid, group_rows

    q = float(np.quantile(shoppers.time_s, 0.99)) / 60 if len(shoppers) else 1.0
    q = max(q, 1e-9)
    step = nice_step(q, 6)
    max_min = float(np.ceil(q / step) * step)
    step = nice_step(max_min, 6)
    ticks = np.arange(0.0, max_min + step * 0.01, step) * 60
    grid = np.unique(np.concatenate([np.linspace(0.0, max_min * 60, 400), ticks]))
    is_tick = np.isin(grid, ticks)

    # the Kaplan-Meier curve of each arm (as kaplan_meier's, R's survfit) read on the grid, from the arm's
    # rows in order of time (views where the rows come grouped by arm and sorted, as the analysis leaves them)
    level = _checks.check_probability(conf_level, "conf_level")
    z = float(st.norm.ppf(1.0 - (1.0 - level) / 2.0))
    t_all, e_all = _checks.numeric(shoppers, "time_s", nonnegative=True), _checks.events01(shoppers, "bought")
    rows_of = dict(group_rows(shoppers.arm)) if len(shoppers) else {}
    out = []
    for arm in arms:
        rows = rows_of.get(arm)
        t, e = (t_all[rows], e_all[rows]) if rows is not None else (t_all[:0], e_all[:0])
        if len(t) > 1 and not bool(np.all(t[1:] >= t[:-1])):
            o = np.argsort(t, kind="stable")
            t, e = t[o], e[o]
        s, lo, hi = _on_grid(t, e, grid, z)
        at_risk = len(t) - np.searchsorted(t, grid, "left")
        out.append(pd.DataFrame({"arm": arm, "time_s": grid, "bought": 1 - s, "ci_lower": 1 - hi,
                                 "ci_upper": 1 - lo, "at_risk": at_risk.astype("int64"), "tick": is_tick}))
    if not out:
        return pd.DataFrame(columns=SURVIVAL_COLUMNS)
    return pd.concat(out, ignore_index=True)[SURVIVAL_COLUMNS]


def _time_grid(times: np.ndarray, horizon: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A grid from 0 to a round number of minutes past 99 % of ``times`` (and the horizon), and its ticks."""
    q = float(np.quantile(times, 0.99)) / 60 if len(times) else 1.0
    if horizon is not None and np.isfinite(horizon):
        q = max(q, float(horizon) / 60)
    q = max(q, 1e-9)
    step = nice_step(q, 6)
    max_min = float(np.ceil(q / step) * step)
    step = nice_step(max_min, 6)
    ticks = np.arange(0.0, max_min + step * 0.01, step) * 60
    extra = [float(horizon)] if horizon is not None and np.isfinite(horizon) else []
    grid = np.unique(np.concatenate([np.linspace(0.0, max_min * 60, 400), ticks, extra]))
    return grid, np.isin(grid, ticks)


def _step_at(curve: pd.DataFrame | dict[str, np.ndarray], grid: np.ndarray, cols: Sequence[str]) -> list[np.ndarray]:
    """Right-continuous step functions of ``curve`` (sorted by ``time``) read on ``grid``; 0 before the first time."""
    t = np.asarray(curve["time"], float)
    i = np.searchsorted(t, grid, "right") - 1
    ok = i >= 0
    out = []
    for col in cols:
        v = np.asarray(curve[col], float)
        out.append(np.where(ok, v[np.maximum(i, 0)], 0.0) if len(v) else np.zeros(len(grid)))
    return out


def incidence(shoppers: pd.DataFrame, arms: Sequence[str], conf_level: float, horizon: float) -> pd.DataFrame:
    """The cumulative incidence of buying by time since arrival, per arm, on a grid (pooled over points).

    ``shoppers`` has ``time_s`` and ``outcome`` (``"buy"``, ``"leave"`` or
    ``"censored"``; :func:`fomolab.analysis.visit_outcomes`).  ``cuminc`` is
    the Aalen–Johansen share who have bought, leaving being the competing
    event, with its pointwise interval (infinitesimal-jackknife errors, log
    scale, as R's multi-state ``survfit``); ``at_risk`` counts viewers still
    watching and not yet buying at ``time_s``; ``horizon`` marks the row at
    the analysis' horizon.  The grid is :func:`survival`'s, extended to
    the horizon.
    """
    from scipy import stats as st

    from fomolab.stats import _checks
    from fomolab.stats.competing import _on_grid, _prepare_codes
    from fomolab.stats.kaplan_meier import group_rows

    if shoppers.empty:
        return pd.DataFrame(columns=INCIDENCE_COLUMNS)
    grid, is_tick = _time_grid(shoppers.time_s.to_numpy(float), horizon)
    level = _checks.check_probability(conf_level, "conf_level")
    z = float(st.norm.ppf(0.5 + level / 2))
    t_all, code_all, causes = _prepare_codes(shoppers, "time_s", "outcome", "censored", "arm")
    if "buy" not in causes:
        return pd.DataFrame(columns=INCIDENCE_COLUMNS)
    c = causes.index("buy")
    rows_of = dict(group_rows(shoppers.arm))
    out = []
    for arm in arms:
        # the arm's curve of buying (incidence_curves') read on the grid, from its rows in order of time
        # (views where the rows come grouped by arm and sorted, as the analysis leaves them)
        rows = rows_of.get(arm)
        if rows is None:
            continue
        t, code = t_all[rows], code_all[rows]
        if len(t) > 1 and not bool(np.all(t[1:] >= t[:-1])):
            o = np.argsort(t, kind="stable")
            t, code = t[o], code[o]
        F, lo, hi = _on_grid(t, code, c, len(causes), grid, z)
        at_risk = len(t) - np.searchsorted(t, grid, "left")
        out.append(pd.DataFrame({"arm": arm, "time_s": grid, "cuminc": F, "ci_lower": lo, "ci_upper": hi,
                                 "at_risk": at_risk.astype("int64"), "tick": is_tick,
                                 "horizon": grid == float(horizon)}))
    if not out:
        return pd.DataFrame(columns=INCIDENCE_COLUMNS)
    return pd.concat(out, ignore_index=True)[INCIDENCE_COLUMNS]


def _run_blocks(shoppers: pd.DataFrame, runs: pd.Series, sid: np.ndarray, valid: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Each purchase's visit row where the visits lie run by run, viewers in increasing order in each run.

    ``runs`` and ``sid`` are the purchases' runs and viewers (``valid`` where
    the viewer is known).  Returns the rows of the purchases that match a
    visit, which ones do and the first row of each run's block of visits,
    with one binary search per purchase in the
    visits' own order (no sort of the visits); ``None`` where the visits lie
    otherwise (a run in several blocks, or a viewer with several rows in a
    run: a marketplace).
    """
    from fomolab.stats._folder import positions

    col = shoppers.run_id
    if not isinstance(col.dtype, pd.CategoricalDtype) or len(col) == 0:
        return None
    code = col.cat.codes.to_numpy()
    vid = shoppers.shopper_id.to_numpy()
    if vid.dtype.kind not in "iu" or vid.dtype.itemsize > 4:  # (smaller ids are added to int64 keys as they are)
        vid = np.asarray(vid, dtype=np.int64)  # no copy if stored as int64
    new_run = code[1:] != code[:-1]
    starts = np.concatenate(([0], np.flatnonzero(new_run) + 1))
    block_code = code[starts]
    if (block_code < 0).any() or len(np.unique(block_code)) < len(starts) or not (
            (vid[1:] > vid[:-1]) | new_run).all():
        return None
    del new_run
    low = int(vid.min())
    width = int(vid.max()) - low + 1
    if len(starts) * width >= 2 ** 62:
        return None
    # the visits' keys (block, viewer): increasing, so every purchase finds its row by a binary search
    key = np.repeat(np.arange(len(starts), dtype=np.int64) * width, np.diff(np.append(starts, len(code))))
    key += vid
    key -= low
    n_cats = len(col.cat.categories)
    block_of = np.full(n_cats + 1, -1, np.int64)  # a category's block; the last entry: a run not among them
    block_of[block_code] = np.arange(len(starts))
    b_block = block_of[positions(runs, {str(c): k for k, c in enumerate(col.cat.categories)}, n_cats)]
    b = sid - low
    ok = valid & (b_block >= 0) & (b >= 0) & (b < width)
    bkey = b_block[ok] * width + b[ok]
    pos = np.minimum(np.searchsorted(key, bkey), len(key) - 1)
    hit = key[pos] == bkey
    matched = ok.copy()
    matched[ok] = hit
    return pos[hit], matched, starts


def _block_arms(arm_col: pd.Series, arms: Sequence[str], starts: np.ndarray) -> np.ndarray | None:
    """Each visit's arm as its (first) position in ``arms``, from its run block's first visit.

    ``starts``: the first row of each block of a text ``arm_col``.  The
    blocks' names are checked against every row's (one comparison of the
    names instead of one per arm), a slice at a time; None where a block
    holds another arm than its first visit's, or an arm not in ``arms``.
    """
    from fomolab.stats._counts import small_code_type

    arm_of = arm_col.to_numpy()
    names, block = np.unique(arm_of[starts].astype(str), return_inverse=True)
    names = names.astype(object)
    at: dict[str, int] = {}
    for k, x in enumerate(arms):
        at.setdefault(str(x), k)
    # the codes in the smallest integer type: a byte per visit, as the mask of one arm
    code = np.repeat(np.array([at.get(str(x), len(arms)) for x in names], small_code_type(len(arms) + 1))[block],
                     np.diff(np.append(starts, len(arm_of))))
    full = np.array([*map(str, arms), None], dtype=object)  # each code's name (None: another arm)
    step = 1 << 19
    for a in range(0, len(arm_of), step):
        rows = code[a:a + step]
        other = rows == len(arms)
        if other.any() or not (arm_of[a:a + step] == full[rows]).all():
            return None  # a visit of another arm than its block's first (or of an arm not drawn): compared by name
    return code


def _bad_gap(row: np.ndarray, t: np.ndarray, first: np.ndarray, ends: np.ndarray, order: np.ndarray,
             shoppers: pd.DataFrame, kept: np.ndarray, buy_run: pd.Series, buy_sid: np.ndarray) -> None:
    """The error of :func:`~fomolab.stats.recurrent.gap_starts` for the purchase and end rows of the visits.

    ``row``, ``t`` and ``first`` are the purchases sorted by visit and time
    (``order``: their positions among the matched purchases, ``kept``: those
    among ``buy_run`` and ``buy_sid``), ``ends`` their visits' lengths.  A
    purchase at 0 or at the time of the visit's previous one, or a visit that
    ends at the time of one of its purchases, is an error naming the first
    such row (the purchases come before the ends), as the gap rows of
    :func:`~fomolab.stats.mean_cumulative_function` would.
    """
    from fomolab.errors import DataError
    from fomolab.stats._checks import _py

    bad = (t == 0) | (~first & (t == np.concatenate(([np.nan], t[:-1]))))
    end_at = (t == ends) & (ends > 0)
    if not bad.any() and not end_at.any():
        return
    if bad.any():
        who = int(order[bad].min())
        when = float(t[np.flatnonzero(order == who)[0]])
        rid, vid = str(buy_run.iloc[kept[who]]), int(buy_sid[kept[who]])
    else:
        who = int(row[end_at].min())
        when = float(ends[end_at][np.argmin(row[end_at])])
        rid, vid = str(shoppers.run_id.iloc[who]), int(shoppers.shopper_id.iloc[who])
    run_ids = _present(shoppers.run_id)
    width = int(np.max(shoppers.shopper_id.to_numpy(dtype=np.int64))) + 1
    name = _py(np.int64(run_ids.index(rid) * width + vid))
    raise DataError(f"subject {name!r} of column 'visit' has a row at time {when!r} that is not after its "
                    "previous row (or is at 0): each event needs its own time > 0")


def repeat_purchases(shoppers: pd.DataFrame, events: pd.DataFrame, arms: Sequence[str], conf_level: float,
                     horizon: float | None = None) -> pd.DataFrame:
    """The mean cumulative number of purchases per viewer by time since arrival, per arm, on a grid.

    Every purchase of every product counts, not only the first.  ``shoppers``
    has ``run_id, shopper_id, arm, arrival_s, departure_s``; ``events`` has
    ``run_id, time_s, kind, shopper_id``.  ``mcf`` is
    :func:`fomolab.stats.mean_cumulative_function` (Nelson–Aalen style, at
    risk from arrival to departure) with Lawless–Nadeau pointwise bands
    clustered by viewer; ``at_risk`` counts viewers still watching.  A
    viewer's visits of one run (a marketplace) are one subject.

    The curve is computed from counts at the distinct purchase times: the
    visits without a purchase enter only through their sorted ends, one sort
    per arm (:func:`fomolab.stats.recurrent.follow_up_curve`); the arrays with
    a row per purchase and per visit of the statistics package are built only
    for a marketplace's checks.
    """
    from scipy import stats as st

    from fomolab.errors import DataError
    from fomolab.stats.recurrent import follow_up_curve, gap_starts

    if shoppers.empty:
        return pd.DataFrame(columns=REPEAT_COLUMNS)
    buy = _is_value(events.kind, "purchase")
    buy_run = events.run_id[buy]
    sid_col = events.shopper_id[buy]
    valid = ~sid_col.isna().to_numpy()
    buy_sid = sid_col.to_numpy(dtype="int64", na_value=-1)
    del sid_col
    sub = None  # each visit its own subject, unless a viewer has several visits in a run
    found = _run_blocks(shoppers, buy_run, buy_sid, valid)
    if found is not None:
        row, matched, starts = found
    else:  # the visits in another order: each visit's key (run, viewer), sorted
        run_ids = _present(shoppers.run_id)
        at = {rid: k for k, rid in enumerate(run_ids)}
        vid = np.asarray(shoppers.shopper_id.to_numpy(), dtype=np.int64)
        width = int(vid.max()) + 1
        visit = _codes(shoppers.run_id, at) * width + vid
        del vid
        order = np.argsort(visit, kind="stable")
        sorted_visit = visit[order]
        brun = _codes(buy_run, at)
        bkey = brun * width + buy_sid
        pos = np.minimum(np.searchsorted(sorted_visit, bkey), len(order) - 1)
        matched = valid & (brun < len(run_ids)) & (sorted_visit[pos] == bkey)
        row = order[pos[matched]]  # a viewer's first visit of the run (in row order)
        new = np.concatenate(([True], sorted_visit[1:] != sorted_visit[:-1]))
        if not new.all():
            sub = np.empty(len(order), np.int64)
            sub[order] = np.cumsum(new) - 1
        del order, sorted_visit, pos, new
    arrival = shoppers.arrival_s.to_numpy(float)
    t = events.time_s.to_numpy(float)[buy][matched] - arrival[row]
    np.clip(t, 0, None, out=t)
    del buy
    departure = shoppers.departure_s.to_numpy(float)
    # the visits' lengths (at 0 or less: never at risk) are held one arm at a time; the grid's quantile
    # partitions a scratch copy in place (the same number as np.quantile of the lengths, which copies them)
    scratch = departure - arrival
    some = bool((scratch > 0).any())
    q99 = float(np.quantile(scratch, 0.99, overwrite_input=True))
    del scratch
    grid, is_tick = _time_grid(np.array([q99]), horizon)  # a quantile of one number is that number
    if len(t) == 0 and not some:
        raise DataError("every row of 't' is 0 without an event: nothing at risk")
    buy_end = departure[row] - arrival[row]  # the purchases' visits' lengths
    if sub is None:
        # the purchases by visit and time (the events come in time order within each run: one stable sort)
        order = np.argsort(row, kind="stable")
        row, t, buy_end = row[order], t[order], buy_end[order]
        first = np.concatenate(([True], row[1:] != row[:-1]))
        if (~first[1:] & (t[1:] < t[:-1])).any():
            o2 = np.lexsort((t, row))
            order, row, t, buy_end = order[o2], row[o2], t[o2], buy_end[o2]
            first = np.concatenate(([True], row[1:] != row[:-1]))
        _bad_gap(row, t, first, buy_end, order, shoppers, np.flatnonzero(matched), buy_run, buy_sid)
        del order, matched
    else:  # a marketplace: the subjects' rows checked as the statistics package does, then by subject and time
        del matched, buy_end
        ends = np.clip(departure - arrival, 0, None)
        r_sub = np.concatenate([sub[row], sub])
        r_key = np.concatenate([visit[row], visit])
        gap_starts(r_sub, np.concatenate([t, ends]),
                   np.concatenate([np.ones(len(t), np.int8), np.zeros(len(ends), np.int8)]), r_key, "t", "visit")
        del r_sub, r_key, visit
        order = np.lexsort((t, sub[row]))
        row, t = row[order], t[order]
        first = np.concatenate(([True], sub[row[1:]] != sub[row[:-1]]))
        del order
    # an arm's rows by comparing the names as they are (no codes of the whole column; a text column's
    # rows share the arms' names)
    arm_col = shoppers.arm
    text = arm_col.dtype == object
    arm_of = arm_col.to_numpy() if text else np.empty(0, object)  # no copy of a text column
    # the visits' arms as codes where they lie run by run (an arm per run): no comparison of names per arm
    arm_code = _block_arms(arm_col, arms, starts) if text and found is not None else None
    buy_arm = pd.Series(arm_of[row]) if text else arm_col.iloc[row].reset_index(drop=True)
    buy_code = arm_code[row] if arm_code is not None else None
    z = float(st.norm.ppf(0.5 + conf_level / 2))
    out = []
    for arm in arms:
        pm = (buy_code == list(arms).index(arm) if buy_code is not None else
              buy_arm.to_numpy() == arm if text else _is_value(buy_arm, arm))
        if not pm.any():  # no purchase (or no visit) in the arm: no curve
            continue
        m = (arm_code == list(arms).index(arm) if arm_code is not None else
             arm_of == arm if text else _is_value(arm_col, arm))
        dur = departure[m]
        dur -= arrival[m]
        dur.sort()
        at_risk = len(dur) - np.searchsorted(dur, grid, "left")
        a_row, a_t, a_first = row[pm], t[pm], first[pm]
        a_first[0] = True
        last = np.concatenate((a_first[1:], [True]))
        if sub is None:
            listed = buy_end[pm][a_first]
            sub_end = np.maximum(listed, a_t[last])  # a purchase after the recorded end extends the follow-up
            count_ends, listed = (dur, None) if (sub_end == listed).all() else (dur, listed)
        else:  # a subject's follow-up ends with its last row
            follow = np.zeros(int(sub.max()) + 1)
            np.maximum.at(follow, sub[m], ends[m])
            np.maximum.at(follow, sub[a_row], a_t)
            sub_end = follow[sub[a_row[a_first]]]
            follow.sort()
            count_ends, listed = follow, None
        del m, pm
        cur = follow_up_curve(count_ends, a_t, a_first, sub_end, z, listed=listed)
        del count_ends
        M, lo, hi = _step_at(cur, grid, ("mcf", "ci_lower", "ci_upper"))
        out.append(pd.DataFrame({"arm": arm, "time_s": grid, "mcf": M, "ci_lower": lo, "ci_upper": hi,
                                 "at_risk": at_risk.astype("int64"), "tick": is_tick}))
    if not out:
        return pd.DataFrame(columns=REPEAT_COLUMNS)
    return pd.concat(out, ignore_index=True)[REPEAT_COLUMNS]


# ----------------------------------------------------------------- deadline


def deadline_curve(events: pd.DataFrame, runs: pd.DataFrame, arms: Sequence[str], bins: int = 20) -> pd.DataFrame:
    """Purchases by seconds left to each deadline, per arm: purchases per minute and run.

    For every window of a tactic with a deadline (:func:`has_deadline`),
    grouped by point, product, start and end (rounded to a second; tactics
    sharing a window share a panel), purchases of its product inside the
    window are counted by ``end - time`` in ``bins`` bins.  Runs of an arm
    without the window (the control) are counted over their point's window,
    as a baseline; a run's own end is used where it had the window (a sale
    whose quota sold out ends early).
    """
    from fomolab.stats._folder import text_values

    w = _run_windows(events, runs)
    w = w[[has_deadline(t) for t in w.tactic]] if len(w) else w
    if w.empty:
        return pd.DataFrame(columns=DEADLINE_CURVE_COLUMNS)
    med = (w.groupby(["point", "product", "tactic"], sort=False)
           .agg(start_s=("start_s", "median"), end_s=("end_s", "median")).reset_index())
    med["key"] = list(zip(med["product"], med.start_s.round(0), med.end_s.round(0), strict=False))
    label = med.groupby("key", sort=False).tactic.agg(
        lambda t: " + ".join(tactic_label(x) for x in sorted(set(t), key=_kind_rank)))
    med["window"] = [f"{k[0]}: {label[k]} ends" for k in med.key]
    tactics = med.groupby("window", sort=False).tactic.agg(lambda t: set(t))
    wins = med.drop_duplicates(["point", "key"])[["point", "product", "window", "start_s", "end_s"]]
    out = _run_info(runs).merge(wins, on="point", how="inner")
    # a run's own window where it had one: the latest end of the label's tactics in that run
    own_s = w.groupby(["run_id", "product", "tactic"], sort=False).end_s.max()
    own = dict(zip(own_s.index, own_s.to_numpy(), strict=True))  # looked up by key, not through the index
    end_s = out.end_s.to_numpy(copy=True)
    for j, (rid, prod, win) in enumerate(zip(out.run_id, out["product"], out.window, strict=False)):
        ends = [own[(rid, prod, t)] for t in tactics[win] if (rid, prod, t) in own]
        if ends:
            end_s[j] = max(ends)
    out["end_s"] = end_s  # one column, not a cell at a time
    ev = events[(events.kind == "purchase").to_numpy()]
    # each run's and product's purchase times, found once (the names shared by the rows, not a string per row)
    r_code, r_names = pd.factorize(text_values(ev.run_id))
    p_code, p_names = pd.factorize(text_values(ev["product"]))
    b_time = ev.time_s.to_numpy(float)
    key = r_code.astype(np.int64) * max(len(p_names), 1) + p_code
    o = np.argsort(key, kind="stable")
    present, starts = np.unique(key[o], return_index=True)
    cuts = np.append(starts, len(o))
    bought = {(str(r_names[k // max(len(p_names), 1)]), str(p_names[k % max(len(p_names), 1)])):
              b_time[o[cuts[i]:cuts[i + 1]]] for i, k in enumerate(present)}
    none = np.array([])
    rows = []
    for win in dict.fromkeys(out.window):
        ww = out[out.window == win]
        length = float((ww.end_s - ww.start_s).median())
        edges = np.linspace(0.0, length, bins + 1)
        left: dict[str, list[np.ndarray]] = {}
        for rid, arm, prod, ws, we in zip(ww.run_id, ww.arm, ww["product"], ww.start_s, ww.end_s, strict=True):
            t = bought.get((rid, prod), none)
            left.setdefault(arm, []).append(we - t[(t >= ws) & (t <= we)])
        for arm in arms:
            n_runs = int((ww.arm == arm).sum())
            if n_runs == 0:
                continue
            counts = np.histogram(np.concatenate(left[arm]), bins=edges)[0]
            rate = counts / n_runs / np.diff(edges) * 60.0
            rows.append(pd.DataFrame({"window": win, "product": ww["product"].iloc[0], "arm": arm,
                                      "left_from_s": edges[1:], "left_to_s": edges[:-1],
                                      "purchases_per_min": rate, "runs": n_runs}))
    if not rows:
        return pd.DataFrame(columns=DEADLINE_CURVE_COLUMNS)
    return pd.concat(rows, ignore_index=True)[DEADLINE_CURVE_COLUMNS]


# ------------------------------------------------------------ impulsiveness


def impulsiveness(shoppers: pd.DataFrame, arms: Sequence[str], conf_level: float, groups: int = 10
                  ) -> pd.DataFrame:
    """Conversion and median time to purchase by impulsiveness group, per arm.

    Viewers are cut into ``groups`` equal-count groups of impulsiveness
    (pooled over arms: the same cut points for every arm).  Per run (sweep
    point and replicate) and group: the share who bought (``conversion``, a
    fraction) and the median time from arrival to first purchase among
    buyers (``median_time_to_purchase_s``); rows hold the mean over runs with
    a t interval.
    """
    d = shoppers
    run = d.point.to_numpy().astype("int64") * 1_000_003 + d.replicate.to_numpy().astype("int64")
    z = d.impulsiveness.to_numpy(float)
    cuts = np.unique(np.quantile(z, np.linspace(0, 1, groups + 1)[1:-1])) if len(z) else np.array([])
    k = len(cuts) + 1
    x = np.arange(1, k + 1)
    group = np.searchsorted(cuts, z, "right") + 1
    bought, time_s = d.bought.to_numpy(), d.time_s.to_numpy(float)
    rows = []
    for arm in arms:
        # the arm's rows only, a run x group table of each measure from codes (what a pivot table of the
        # arm's runs, groups and measures gives: each cell's mean and median, runs with no value dropped)
        m = np.flatnonzero(_is_value(d.arm, arm))
        if not len(m):
            continue
        runs, r_code = np.unique(run[m], return_inverse=True)
        cell = r_code.reshape(-1) * k + (group[m] - 1)
        del r_code
        n_cells = len(runs) * k
        b = bought[m] == 1
        count = np.bincount(cell, minlength=n_cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(count > 0, np.bincount(cell[b], minlength=n_cells) / count, np.nan)
        # the buyers' median time per cell: their times sorted within each cell, the middle one or two
        cb, tb = cell[b], time_s[m][b]
        del cell, b, m
        o = np.lexsort((tb, cb))
        cb, tb = cb[o], tb[o]
        del o
        n_b = np.bincount(cb, minlength=n_cells)
        start = np.concatenate(([0], np.cumsum(n_b)[:-1]))
        has = n_b > 0
        hi = start + n_b // 2
        lo = np.where(n_b % 2 == 0, hi - 1, hi)
        med = np.full(n_cells, np.nan)
        med[has] = (tb[lo[has]] + tb[hi[has]]) / 2
        odd = has & (n_b % 2 == 1)
        med[odd] = tb[hi[odd]]
        del cb, tb
        for measure, table in (("conversion", share), ("median_time_to_purchase_s", med)):
            vals = table.reshape(len(runs), k)
            # column by column in memory, as a table's values are (the sums over runs are pairwise then)
            vals = np.asfortranarray(vals[~np.isnan(vals).all(axis=1)])
            mean, lo_, hi_, n = _band(vals, conf_level)
            rows.append(pd.DataFrame({"arm": arm, "group": x, "groups": k, "measure": measure, "mean": mean,
                                      "ci_lower": lo_, "ci_upper": hi_, "runs": n.astype("int64")}))
    if not rows:
        return pd.DataFrame(columns=IMPULSIVENESS_COLUMNS)
    return pd.concat(rows, ignore_index=True)[IMPULSIVENESS_COLUMNS]


# ------------------------------------------------------------------ lineups

#: The columns of the ``lineup`` table.
LINEUP_COLUMNS = ["arm", "product", "slot", "slot_start_s", "slot_end_s", "measure", "mean", "ci_lower",
                  "ci_upper", "runs"]
#: Products from which a lineup is long enough for a figure of its own.
LONG_LINEUP = 20


def lineup(res: Any, runs: pd.DataFrame, arms: Sequence[str], conf_level: float,
           min_products: int = LONG_LINEUP) -> pd.DataFrame | None:
    """Buyers and revenue of each product of a long lineup, by slot, per arm.

    From the runs' ``product_results`` and ``products`` tables (the first
    stream's products in a marketplace), pooled over sweep points: per run
    and product its ``buyers`` and ``revenue``; rows hold the mean over runs
    with a t interval, products in slot order (``slot`` 1, 2, ...).  None when
    the lineup has fewer than ``min_products`` products or the folder has no
    ``product_results`` (written before it existed).
    """
    from fomolab.errors import ResultsError
    from fomolab.stats._facts import read

    try:
        pt = read(res, "products")  # the stored facts, read once per folder (the analysis has read them)
    except (ResultsError, OSError, KeyError):  # a folder written before the table: no figure
        return None
    if pt.empty or not {"stream", "product", "slot_start_s", "slot_end_s"} <= set(pt.columns):
        return None
    pt = pt[pt.stream.to_numpy() == 0]
    # product_results has the products' rows of products: a short lineup needs no read of it
    if len(_present(pt["product"])) < min_products:
        return None
    try:
        pr = res.table("product_results", ["run_id", "stream", "product", "buyers", "revenue"])
    except (ResultsError, OSError, KeyError):  # a folder written before the table: no figure
        return None
    if pr.empty:  # a folder written before the table: it reads as no rows and no columns
        return None
    pr = pr[pr.stream == 0]
    if pr.empty or pr["product"].nunique() < min_products:
        return None
    info = _run_info(runs)
    d = pr.assign(run_id=pr.run_id.astype(str), product=pr["product"].astype(str)).merge(info, on="run_id")
    slots = (pt.assign(product=pt["product"].astype(str)).groupby("product", observed=True)
             [["slot_start_s", "slot_end_s"]].min().sort_values(["slot_start_s", "slot_end_s"], kind="stable"))
    order = list(slots.index)
    rows = []
    for arm in arms:
        a = d[d.arm == arm]
        if a.empty:
            continue
        run = a.point.to_numpy().astype("int64") * 1_000_003 + a.replicate.to_numpy().astype("int64")
        a = a.assign(run=run)
        for measure in ("buyers", "revenue"):
            vals = a.pivot_table(index="run", columns="product", values=measure, aggfunc="sum",
                                 observed=True).reindex(columns=order).to_numpy(float)
            m, lo, hi, n = _band(vals, conf_level)
            rows.append(pd.DataFrame({"arm": arm, "product": order, "slot": np.arange(1, len(order) + 1),
                                      "slot_start_s": slots.slot_start_s.to_numpy(float),
                                      "slot_end_s": slots.slot_end_s.to_numpy(float), "measure": measure,
                                      "mean": m, "ci_lower": lo, "ci_upper": hi, "runs": n.astype("int64")}))
    if not rows:
        return None
    return pd.concat(rows, ignore_index=True)[LINEUP_COLUMNS]


# ------------------------------------------------------------------- sweeps


#: Run metrics shown against the swept parameters.
SWEEP_METRICS = ("conversion", "revenue", "units_sold", "median_time_to_purchase_s",
                 "viewers_per_stream", "hhi_viewers", "top1_share_viewers")


def run_concentration(streams: pd.DataFrame) -> pd.DataFrame:
    """Per run: ``run_id`` and the HHI, Gini and top share of watch time (``*_viewers``) and sales (``*_sales``)."""
    from fomolab.stats.concentration import CONCENTRATION_MEASURES, concentration

    s = streams.assign(run_id=streams.run_id.astype(str))
    out = None
    for col, of in (("share_viewers", "viewers"), ("share_sales", "sales")):
        c = concentration(s, col, "run_id").drop(columns="streams")
        c = c.rename(columns={m: f"{m}_{of}" for m in CONCENTRATION_MEASURES})
        out = c if out is None else out.merge(c, on="run_id")
    return out


def concentration_table(streams: pd.DataFrame, runs: pd.DataFrame, arms: Sequence[str], conf_level: float
                        ) -> pd.DataFrame:
    """Per point and arm: each concentration measure's mean over replicates with a t interval."""
    per_run = run_concentration(streams).merge(_run_info(runs), on="run_id", how="inner")
    rows = []
    for (point, arm), g in per_run.groupby(["point", "arm"], sort=True):
        for of in ("viewers", "sales"):
            for measure in ("hhi", "gini", "top1_share"):
                m, lo, hi, n = _band(g[f"{measure}_{of}"].to_numpy(float)[:, None], conf_level)
                rows.append(dict(point=int(point), arm=arm, of=of, measure=measure, mean=float(m[0]),
                                 ci_lower=float(lo[0]), ci_upper=float(hi[0]), replicates=int(n[0])))
    out = pd.DataFrame(rows, columns=CONCENTRATION_COLUMNS)
    rank = {a: i for i, a in enumerate(arms)}
    return out.sort_values(["point", "arm"], key=lambda s: s.map(rank) if s.name == "arm" else s,
                           kind="stable").reset_index(drop=True)


def _binned(values: pd.Series, max_levels: int = 12, bins: int = 8) -> tuple[pd.Series, bool]:
    """The values themselves when there are few levels, else equal-count bins (at their means)."""
    v = pd.to_numeric(values, errors="coerce")
    if v.nunique() <= max_levels:
        return v, False
    codes = pd.qcut(v, bins, labels=False, duplicates="drop")
    return v.groupby(codes).transform("mean"), True


def _sweep_runs(runs: pd.DataFrame, streams: pd.DataFrame | None) -> pd.DataFrame:
    r = runs.assign(run_id=runs.run_id.astype(str), arm=runs.arm.astype(str))
    if streams is not None and len(streams):
        conc = run_concentration(streams)
        r = r.drop(columns=[c for c in conc.columns if c != "run_id" and c in r.columns]).merge(
            conc, on="run_id", how="left")
    return r


def marginals(runs: pd.DataFrame, streams: pd.DataFrame | None, swept: dict[str, str], arms: Sequence[str],
              conf_level: float) -> pd.DataFrame:
    """Each run metric at each value of each swept parameter, per arm: mean over runs, t interval.

    ``swept`` maps each swept parameter's dotted path to its ``runs`` column.
    Runs at a value are pooled over replicates and the other swept
    parameters; a parameter with more than 12 distinct values (a sampled
    design) is cut into 8 equal-count bins, at the bins' mean values
    (``binned``).  The marketplace's concentration measures come from
    :mod:`fomolab.stats.concentration` on the ``streams`` table.
    """
    r = _sweep_runs(runs, streams)
    metrics = [m for m in SWEEP_METRICS if m in r.columns and r[m].notna().any()]
    rows = []
    for path, col in swept.items():
        xval, binned = _binned(r[col])
        for arm in arms:
            sel = (r.arm == arm).to_numpy()
            xs = xval[sel].to_numpy()
            for metric in metrics:
                y = r.loc[sel, metric].to_numpy(float)
                for v in np.unique(xs[~pd.isna(xs)]):
                    m, lo, hi, n = _band(y[xs == v][:, None], conf_level)
                    rows.append(dict(arm=arm, parameter=path, value=float(v), binned=binned, metric=metric,
                                     mean=float(m[0]), ci_lower=float(lo[0]), ci_upper=float(hi[0]), runs=int(n[0])))
    return pd.DataFrame(rows, columns=MARGINAL_COLUMNS)


def cells(runs: pd.DataFrame, swept: dict[str, str], arms: Sequence[str], metric: str = "conversion"
          ) -> pd.DataFrame:
    """Mean of a run metric over runs in each cell of the first two swept parameters, per arm.

    Sampled designs are cut into 6 equal-count bins per parameter (at their means).
    """
    paths = list(swept)[:2]
    if len(paths) < 2:
        return pd.DataFrame(columns=CELLS_COLUMNS)
    r = runs.assign(arm=runs.arm.astype(str))
    xs, ys = (_binned(r[swept[p]], bins=6)[0].round(10) for p in paths)
    r = r.assign(_x=xs.to_numpy(), _y=ys.to_numpy())
    g = r.groupby(["arm", "_x", "_y"], sort=True)[metric].agg(["mean", "count"]).reset_index()
    rank = {a: i for i, a in enumerate(arms)}
    g = g[g.arm.isin(rank)].sort_values(["arm", "_y", "_x"], key=lambda s: s.map(rank) if s.name == "arm" else s,
                                        kind="stable")
    return pd.DataFrame({"arm": g.arm.to_numpy(), "x_parameter": paths[0], "x": g._x.to_numpy(float),
                         "y_parameter": paths[1], "y": g._y.to_numpy(float), "metric": metric,
                         "mean": g["mean"].to_numpy(float), "runs": g["count"].to_numpy("int64")})[CELLS_COLUMNS]
