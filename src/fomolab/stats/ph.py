"""Is an arm's hazard ratio constant, and if not, how does it change over the stream?

The picture: a five-minute lightning sale multiplies the purchase hazard while
it runs and not before or after, so the sale arm's cause-specific hazard
ratio against the control is large from minute 15 to 20 and near 1 elsewhere.
A single Cox hazard ratio is then an average whose weights depend on who is
still watching, and the proportional-hazards assumption behind it fails.

Two tables answer the two questions:

* :func:`ph_table`: the cause-specific Cox model of time to the first
  purchase (departure ends follow-up) on one indicator per treatment arm,
  stratified by replicate (each replicate its own baseline), on the time since
  arrival and on the stream's clock, tested with the scaled Schoenfeld
  residual score test of R's ``cox.zph`` (:func:`fomolab.stats.cox_zph`), per
  arm and globally, for each of R's time transforms;
* :func:`window_table`: the hazard ratio of each arm against the control
  within each window of *stream* time cut at the tactics' window edges (before,
  during and after the sale), from Cox fits with delayed entry on the time since
  arrival, within each replicate, with a t interval across replicates (the
  few-replicate method of :mod:`fomolab.stats.replicates`).

The score test has the power of every viewer of every replicate: with hundreds
of thousands of viewers it detects departures from proportionality too small
to matter, so read its p value with the window table's effect sizes.  Its p
value treats viewers as independent, which common random numbers do not make
them across arms; it is a diagnostic, not an effect estimate.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fomolab.errors import DataError

if TYPE_CHECKING:
    from fomolab.stats._counts import CountFit

__all__ = ["PH_COLUMNS", "SCALES", "WINDOW_COLUMNS", "ph_table", "window_edges", "window_table"]

#: The columns of ``Analysis.ph``.
PH_COLUMNS = ["point", "time_scale", "transform", "term", "hazard_ratio", "chisq", "df", "p", "proportional", "note"]
#: The columns of ``Analysis.hr_windows``.
WINDOW_COLUMNS = ["point", "arm", "window", "start_s", "end_s", "hazard_ratio", "ci_lower", "ci_upper", "p",
                  "replicates", "events", "control_events", "note"]


#: Most viewers of a point :func:`ph_table` tests at once (the first replicates up to this many).
PH_MAX_ROWS = 2_000_000

#: The time scales of :func:`ph_table`: (stop column, start column) of the Cox fit tested.
SCALES = {"since_arrival": ("time_s", None), "stream": ("stream_out", "stream_in")}


def ph_table(sh: pd.DataFrame, order: list[str], control: str, conf_level: float = 0.95,
             transforms: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Tests of proportional hazards of each arm's cause-specific hazard ratio (``Analysis.ph``).

    ``sh`` has ``point, replicate, arm, arrival_s, time_s, bought`` (time
    from arrival to the first purchase or the end of the visit).  Per point
    and time scale: one Cox model on 0/1 indicators of the treatment arms
    (Efron ties, strata by replicate), then R's ``cox.zph`` score test
    (:func:`fomolab.stats.cox_zph`) with each transform; rows per arm and
    ``GLOBAL``.  ``proportional`` is False where ``p < 1 - conf_level``.

    Two time scales (``time_scale``): ``since_arrival``, the scale of the
    headline's hazard ratio (time from arrival), and ``stream``, the stream's
    clock (each viewer entering at arrival, Cox with delayed entry): a tactic
    acting at stream times, such as a five-minute sale, makes the hazard ratio
    change with the stream's clock, which viewers arriving at random times
    spread evenly over the time since arrival, where the test cannot see it.

    Notes
    -----
    The covariates are functions of the arm, so the fit and the test need
    only, per replicate and event time, the viewers of each arm at risk and
    buying (:mod:`fomolab.stats._counts`): the numbers of :func:`fomolab.stats.cox`
    and :func:`fomolab.stats.cox_zph` on the rows (to rounding), in time and
    memory that follow the purchases.
    """
    from scipy import stats as st

    from fomolab.stats import _checks
    from fomolab.stats._counts import cox_counts, event_time_counts, first_seen_small_codes, zph_counts
    from fomolab.stats.zph import TRANSFORMS

    transforms = TRANSFORMS if transforms is None else transforms
    alpha = 1 - conf_level
    rows: list[dict[str, Any]] = []
    # per row only what the test reads: the point's rows are a slice (one point) or positions, the arms'
    # codes are looked up for the rows tested, and the cap on rows needs each replicate's size, not a code per row
    arm_codes_of, arm_names = _first_seen_lookup(sh.arm)
    arm_names = np.asarray(arm_names).astype(str)
    rep_col = sh.replicate.to_numpy()
    for point, idx in _groups(sh.point.to_numpy()):
        present = set(arm_names[arm_codes_of(idx, distinct=True)])
        arms = [a for a in order if a != control and a in present]
        if not arms or control not in present:
            continue
        rep_g = rep_col[idx]
        capped = ""
        if len(rep_g) > PH_MAX_ROWS:
            sizes = pd.Series(rep_g, copy=False).value_counts(sort=False)  # each replicate's rows, hashed once
            reps = np.sort(sizes.index.to_numpy())
            size = sizes.reindex(reps).to_numpy()
            keep = reps[np.cumsum(size) <= PH_MAX_ROWS]
            keep = keep if len(keep) else reps[:1]
            sel = rep_g <= keep[-1]  # the first replicates, in sorted order
            n_sel = int(np.count_nonzero(sel))
            if isinstance(idx, slice) and sel[:n_sel].all():  # a folder's rows, by replicate: the first rows
                idx = slice(0, n_sel)
                rep_g = rep_g[:n_sel]  # (a view)
            else:
                idx = np.flatnonzero(sel) if isinstance(idx, slice) else idx[sel]
                rep_g = rep_g[sel]
            del sel
            capped = (f"tested on the first {len(keep):,} of {len(reps):,} replicates ({len(rep_g):,} viewers): the "
                      "test has ample power with them")
        arm_g = arm_codes_of(idx)
        levels, pat = arm_names, arm_g
        X = np.array([[float(lv == a) for a in arms] for lv in levels])
        rows_p = np.bincount(pat, minlength=len(levels)).astype(float)
        # numbered by first appearance (as pd.factorize), in one or two bytes a row
        strata = first_seen_small_codes(pd.Series(rep_g, copy=False))[0]
        arr = sh.arrival_s.to_numpy(float)[idx]
        t = sh.time_s.to_numpy(float)[idx]
        ev = sh.bought.to_numpy()[idx] == 1
        cols = [f"x{j}" for j in range(len(arms))]
        for scale in SCALES:
            stop, start = (t, None) if scale == "since_arrival" else (arr + t, arr)
            try:
                if start is not None and not (stop > start).all():
                    _checks.check_start_stop(_Labels(sh.index[idx]), start, stop, "stream_in", "stream_out")
                counts = event_time_counts(strata, pat, start, stop, strata[ev], pat[ev], stop[ev], len(levels))
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    fit = cox_counts(counts.at_risk, counts.deaths, counts.time, X, rows_p, cols, event="bought")
                warn = "; ".join([*sorted({str(w.message) for w in caught}), *([capped] if capped else [])])
            except DataError as exc:
                rows.append(dict(point=int(point), time_scale=scale, transform="", term="GLOBAL", note=str(exc)))
                continue
            hr = fit.hazard_ratio
            cache: dict[str, np.ndarray] = {}
            pieces: dict[str, tuple[Any, ...]] = {}  # the test's sums that do not depend on the transform, once per fit
            for tr in transforms:
                try:
                    g = _transform(tr, stop, start, ev, fit, cache)
                    chisq, df = zph_counts(fit, g, pieces)
                except DataError as exc:
                    rows.append(dict(point=int(point), time_scale=scale, transform=tr, term="GLOBAL",
                                     note=str(exc)))
                    continue
                p = st.chi2.sf(chisq, df)
                for j, term in enumerate([*arms, "GLOBAL"]):
                    rows.append(dict(point=int(point), time_scale=scale, transform=tr, term=term,
                                     hazard_ratio=float(hr[j]) if j < len(arms) else np.nan,
                                     chisq=float(chisq[j]), df=int(df[j]), p=float(p[j]),
                                     proportional=bool(p[j] >= alpha), note=warn))
            del counts, fit, cache, pieces  # (their sorted times and pieces) before the next scale's
    out = pd.DataFrame(rows, columns=PH_COLUMNS)
    return out.astype({"hazard_ratio": "float64", "chisq": "float64", "p": "float64"})


def _first_seen_lookup(col: pd.Series) -> tuple[Callable[..., np.ndarray], np.ndarray]:
    """:func:`fomolab.stats._counts.first_seen_codes` of ``col``, as a look-up of some rows' codes.

    Returns ``(codes_of, names)``: ``codes_of(rows)`` gives those rows' codes
    (numbered by first appearance in the whole column), ``codes_of(rows,
    distinct=True)`` the distinct codes among them.  A categorical column
    is numbered from its distinct integer codes, so no code per row of the
    whole column is made; another column is factorized once.
    """
    from fomolab.stats._counts import first_seen_small_codes, small_code_type

    if isinstance(col.dtype, pd.CategoricalDtype) and not col.isna().any():
        cat = col.cat.codes.to_numpy()
        first = pd.unique(cat)  # the categories' codes in order of first appearance (as factorize numbers them)
        lookup = np.zeros(len(col.cat.categories), small_code_type(len(first)))  # a byte or two a row looked up
        lookup[first] = np.arange(len(first))
        names = np.asarray(col.cat.categories)[first]

        def codes_of(rows: np.ndarray | slice, distinct: bool = False) -> np.ndarray:
            c = cat[rows]
            return np.asarray(lookup[pd.unique(c) if distinct else c])
    else:
        code, names = first_seen_small_codes(col)

        def codes_of(rows: np.ndarray | slice, distinct: bool = False) -> np.ndarray:
            c = code[rows]
            return np.asarray(pd.unique(c) if distinct else c)

    return codes_of, names


class _Labels:
    """Just the index of some rows, for :func:`fomolab.stats._checks.check_start_stop`'s message."""

    def __init__(self, index: pd.Index) -> None:
        self.index = index


def _groups(values: np.ndarray) -> Iterator[tuple[Any, np.ndarray | slice]]:
    """``(value, rows)`` for each distinct value, in sorted order: all rows as a slice when there is one value,
    else row positions."""
    if len(values) and (values == values[0]).all():
        yield values[0], slice(0, len(values))
        return
    uniq, inv = np.unique(values, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    bounds = np.cumsum(np.bincount(inv, minlength=len(uniq)))
    for k, v in enumerate(uniq):
        yield v, order[(bounds[k - 1] if k else 0):bounds[k]]


def _transform(transform: str, stop: np.ndarray, start: np.ndarray | None, event: np.ndarray,
               fit: CountFit, cache: dict[str, np.ndarray]) -> np.ndarray:
    """R's ``cox.zph`` time transform at each event-time group of ``fit``, centred over the events.

    As :func:`fomolab.stats.zph._gtime` on the rows (``stop``, ``start``,
    ``event``), evaluated at the groups' ``times``: ``rank`` and ``km`` use
    every row, strata ignored (``cache`` keeps their sorted times between transforms).
    """
    times = fit.time
    if "D" not in cache:  # what every transform of this fit reads: its deaths per group, its distinct times
        cache["D"] = fit.deaths.sum(axis=1)
        cache["u"], cache["at"] = np.unique(times, return_inverse=True)
    D, u, at = cache["D"], cache["u"], cache["at"]
    if transform == "identity":
        g = times.astype(float)
    elif transform == "log":
        if (stop <= 0).any():
            raise DataError("transform='log' needs event/censoring times > 0: a time is 0")
        g = np.log(times)
    elif transform == "rank":
        s = cache["stop"] = cache["stop"] if "stop" in cache else np.sort(stop)
        # the distinct times, in order, searched in the rows' times (searches in order stay in cache)
        g = ((np.searchsorted(s, u, "left") + 1 + np.searchsorted(s, u, "right")) / 2.0)[at]
    else:  # km: 1 - the left-continuous Kaplan-Meier of all rows
        s = cache["stop"] = cache["stop"] if "stop" in cache else np.sort(stop)
        if D.sum() == np.count_nonzero(event):  # the fit's groups hold every event: its times are the rows'
            ut, d, pos = u, np.bincount(at, weights=D, minlength=len(u)), at
        else:
            ut, d = np.unique(stop[event], return_counts=True)
            pos = np.searchsorted(ut, times)
        n = (len(s) - np.searchsorted(s, ut, side="left")).astype(float)
        if start is not None:
            # (entries are arrivals, listed in order within each run: a merge sort finds those runs)
            s0 = cache["start"] = cache["start"] if "start" in cache else np.sort(start, kind="stable")
            n -= len(start) - np.searchsorted(s0, ut, side="left")
        with np.errstate(divide="ignore", invalid="ignore"):
            surv = np.cumprod(np.where(n > 0, 1.0 - d / n, 1.0))
        g = 1.0 - np.concatenate(([1.0], surv[:-1]))[pos]
    return np.asarray(g - (g @ D) / D.sum())


def _batch_codes(rep: np.ndarray, reps: np.ndarray, batch_of: np.ndarray, keep: np.ndarray | None,
                 step: int = 1 << 20) -> np.ndarray:
    """Each row's group ``batch_of[position of its replicate in reps]`` (one byte), -1 where ``keep`` is False.

    Found a million rows at a time: the replicate positions (8 bytes a row) never exist for all rows.
    """
    out = np.empty(len(rep), np.int8 if batch_of.max(initial=0) < 127 else np.int64)
    last = max(len(reps) - 1, 0)
    for i in range(0, len(rep), step):  # (a row of another point may lie past the point's replicates)
        out[i:i + step] = batch_of[np.minimum(np.searchsorted(reps, rep[i:i + step]), last)]
    if keep is not None:
        out[~keep] = -1
    return out


def _stretches(point: np.ndarray, rep: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Starts and ends of the stretches of consecutive rows of one point and replicate (a folder's rows come
    a run at a time), or None where they are many (over one per 64 rows): then each row is looked up."""
    n = len(point)
    if n < 2:
        return None
    change = point[1:] != point[:-1]
    change |= rep[1:] != rep[:-1]
    cut = np.flatnonzero(change)
    del change
    if len(cut) + 1 > n // 64:
        return None
    starts = np.concatenate(([0], cut + 1))
    return starts, np.append(starts[1:], n)


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)])``, without a Python loop."""
    lengths = ends - starts
    out = np.arange(int(lengths.sum()), dtype=np.int64)
    out += np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return out


def window_edges(windows: pd.DataFrame | None, stream_end_s: float) -> list[float]:
    """Stream-time edges: 0, every tactic window's start and end, and the stream's end."""
    edges = {0.0, float(stream_end_s)}
    if windows is not None and len(windows):
        edges |= {float(v) for v in np.concatenate([windows.start_s.to_numpy(float), windows.end_s.to_numpy(float)])
                  if 0 < v < stream_end_s}
    return sorted(edges)


def window_table(sh: pd.DataFrame, order: list[str], control: str, edges: list[float],
                 conf_level: float = 0.95) -> pd.DataFrame:
    """Each arm's hazard ratio against the control by window of stream time (``Analysis.hr_windows``).

    ``sh`` has ``point, replicate, arm, arrival_s, time_s, bought``.  A
    viewer is at risk in window ``(a, b]`` of stream time from ``max(a,
    arrival)`` to ``min(b, first purchase or departure)``; within each
    replicate and window a Cox model (delayed entry on the time since
    arrival, Efron ties) of the arm indicator on the arm's and the control's
    rows gives a log hazard ratio, and the replicates a t interval with
    ``G - 1`` degrees of freedom (:func:`fomolab.stats.changes.across`).

    The model's one covariate is a function of the arm, so each fit needs
    only the viewers of each arm at risk and buying at each event time of each
    replicate (:mod:`fomolab.stats._counts`): the numbers of
    :func:`fomolab.stats.cox` on the rows, counted once per window for every
    arm.
    """
    from fomolab.stats._counts import cox_counts, event_time_counts, first_seen_codes, small_code_type
    from fomolab.stats.changes import MAX_BATCHES, across

    rows = []
    # the arms as integer codes, not strings: a categorical's own (a fit reads the two arms' columns by name,
    # so their numbering does not matter), another column's factorized
    arm = sh.arm
    if isinstance(arm.dtype, pd.CategoricalDtype) and not arm.isna().any():
        arm_code, arm_names = arm.cat.codes.to_numpy(), np.asarray(arm.cat.categories)
    else:
        arm_code, arm_names = first_seen_codes(arm)
    arm_names = np.asarray(arm_names).astype(str)
    P = len(arm_names)
    X = np.array([[0.0], [1.0]])
    point_col, rep_col = sh.point.to_numpy(), sh.replicate.to_numpy()
    arr_col, t_col, bought_col = sh.arrival_s.to_numpy(float), sh.time_s.to_numpy(float), sh.bought.to_numpy()
    one_point = len(point_col) > 0 and bool((point_col == point_col[0]).all())
    n_win = len(edges) - 1
    stretches = _stretches(point_col, rep_col)
    for point in np.sort(pd.unique(point_col)):
        in_point = None if one_point else point_col == point
        if stretches is not None:  # each stretch's replicate, group and rank in it, not each row's
            s0, s1 = stretches
            if in_point is not None:
                s0, s1 = s0[in_point[s0]], s1[in_point[s0]]
            reps = np.sort(pd.unique(rep_col[s0]))
        else:
            reps = np.sort(pd.unique(rep_col if in_point is None else rep_col[in_point]))
        many = len(reps) > MAX_BATCHES
        batch_of = np.arange(len(reps)) % MAX_BATCHES if many else np.arange(len(reps))
        label = "replicates group" if many else "replicate"
        present = np.zeros(P, bool)
        n_rows_all = np.zeros((n_win, P), np.int64)
        n_ev_all = np.zeros((n_win, P), np.int64)
        fits: dict[tuple[int, int], list[tuple[float, str]]] = {}
        # each row's group of replicates (as one byte, -1: another point; or each stretch's), found once; then
        # one group at a time, so that memory follows the group, not the folder.  The stratum: the replicate's
        # rank within its group (replicates k, k + MAX_BATCHES, ... of the sorted ids), so that the counts
        # loop over the group's own cells only
        if stretches is not None:
            at = np.searchsorted(reps, rep_col[s0])
            s_batch, s_rank = batch_of[at], at // MAX_BATCHES if many else np.zeros(len(at), np.int64)
        else:
            row_batch = _batch_codes(rep_col, reps, batch_of, in_point)
        for bt in range(int(batch_of.max()) + 1 if len(reps) else 0):
            # each row's rank of its replicate in the group, in one or two bytes
            rank_type = small_code_type(len(reps) // MAX_BATCHES + 1)
            if stretches is not None:
                mine = s_batch == bt
                idx = _ranges(s0[mine], s1[mine])
                rep = np.repeat(s_rank[mine].astype(rank_type), s1[mine] - s0[mine])
            else:
                idx = np.flatnonzero(row_batch == bt)
                rep = (np.searchsorted(reps, rep_col[idx]) // MAX_BATCHES).astype(rank_type) if many \
                    else np.zeros(len(idx), rank_type)
            pat = arm_code[idx]
            present |= np.bincount(pat, minlength=P) > 0
            # the rows as they are: the counts, and so the fits, do not depend on their order
            arr_all, t_all, bought_all = arr_col[idx], t_col[idx], bought_col[idx] == 1
            del idx
            end_all = arr_all + t_all
            for w, (a, b) in enumerate(itertools.pairwise(edges)):
                # a superset of the viewers at risk in the window: arrived before its end, left after its start
                near = np.flatnonzero((arr_all < b) & (end_all > a - 1.0))
                arr, t = arr_all[near], t_all[near]
                entry = a - arr
                np.maximum(entry, 0.0, out=entry)
                to_end = np.subtract(b, arr, out=arr)  # (arrivals' buffer: not read again)
                exit_ = np.minimum(to_end, t)
                keep = exit_ > entry
                at_risk = near[keep]  # the rows at risk in the window, positions in the group
                del near
                ev = bought_all[at_risk] & (t[keep] <= to_end[keep])
                del t, to_end, arr
                entry, exit_ = entry[keep], exit_[keep]
                st_, pt = rep[at_risk], pat[at_risk]
                n_rows = np.bincount(pt, minlength=P)
                n_rows_all[w] += n_rows
                n_ev_all[w] += np.bincount(pt[ev], minlength=P)
                counts = None
                c = int(np.flatnonzero(arm_names == control)[0]) if (arm_names == control).any() else None
                for arm in order:
                    i = int(np.flatnonzero(arm_names == arm)[0]) if (arm_names == arm).any() else None
                    if arm == control or i is None:
                        continue
                    cols = [c, i] if c is not None else [i]
                    if n_rows[cols].sum() == 0:
                        continue  # no viewer of the two arms in this group's window: no estimate from it
                    if counts is None:  # (the exits are mostly the visits' own ends, in no order: quicksort)
                        counts = event_time_counts(st_, pt, entry, exit_, st_[ev], pt[ev], exit_[ev], P)
                    try:
                        with warnings.catch_warnings(record=True) as caught:
                            warnings.simplefilter("always")
                            f = cox_counts(counts.at_risk[:, cols], counts.deaths[:, cols], counts.time,
                                           X[-len(cols):], n_rows[cols], ["treated"], event="ev")
                        b_ = float(f.beta[0])
                        problem = ""
                        if caught or not np.isfinite(b_):
                            problem = f"{label} {bt}: " + "; ".join(sorted({str(x.message) for x in caught}))
                            b_ = np.nan
                    except DataError as exc:
                        problem, b_ = f"{label} {bt}: {exc}", np.nan
                    fits.setdefault((w, i), []).append((b_, problem))
                # (the window's rows: freed before the next window's are taken)
                del entry, exit_, keep, at_risk, ev, st_, pt, counts
        c = int(np.flatnonzero(arm_names == control)[0]) if (arm_names == control).any() else None
        for w, (a, b) in enumerate(itertools.pairwise(edges)):
            for arm in order:
                i = int(np.flatnonzero(arm_names == arm)[0]) if (arm_names == arm).any() else None
                if arm == control or i is None or not present[i] or n_rows_all[w, i] == 0:
                    continue
                got = fits.get((w, i), [])
                x = np.asarray([e for e, _ in got], float)
                problems = [m for _, m in got if m]
                if np.isnan(x).any():
                    e = lo = hi = p = np.nan
                    note = ("no estimate in every replicate (leaving some out would bias the rest): "
                            + problems[0])[:300]
                else:
                    e, lo, hi, p, note = across(x, conf_level)
                rows.append(dict(point=int(point), arm=arm, window=w, start_s=a, end_s=b,
                                 hazard_ratio=np.exp(e), ci_lower=np.exp(lo), ci_upper=np.exp(hi), p=p,
                                 replicates=len(x), events=int(n_ev_all[w, i]),
                                 control_events=int(n_ev_all[w, c]) if c is not None else 0, note=note))
    out = pd.DataFrame(rows, columns=WINDOW_COLUMNS)
    return out.astype(dict.fromkeys(("start_s", "end_s", "hazard_ratio", "ci_lower", "ci_upper", "p"), "float64"))
