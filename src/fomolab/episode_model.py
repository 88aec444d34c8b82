"""The episode model at scale: hazard ratios while each tactic runs, from aggregated person-time.

The picture: the counting-process Cox model of :func:`fomolab.stats.episodes`
with one on/off covariate per tactic kind — 1 while a window of that tactic
runs (any product's), 0 otherwise — on the stream's clock, arms pooled, with
one indicator per arm besides the control (what an arm does all the time, a
ticker without windows or an arrival boost, is the arm's, not a tactic's).  Every
covariate is then a function of the run and the stream time alone, so at each
distinct event time ``tau`` the risk set of a run is one covariate pattern,
and all the model needs of that run is how many of its visits are at risk at
``tau`` (arrived before, not yet bought or gone) and how many buy then.  Those
counts, per event time and pattern, are a piecewise-exponential Poisson table
with one piece per event time, whose fit (:func:`fomolab.stats.piecewise_exponential`)
*is* the Cox partial likelihood with Breslow ties: the same hazard ratios as
``cox(episodes, ..., ties="breslow")`` on the full episodes table, without
building it.  A run is read one at a time (three columns of ``shoppers``), so
memory follows the largest run and the number of event times, not the folder.

When the folder has more distinct event times than ``max_pieces`` (times
clusters), the pieces are the tactic epochs instead (the stream cut at every
window edge and every minute), with person-time as exposure: hazard ratios
then assume a baseline constant within each piece (the ``method`` column says
which was used).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["EPISODE_MODEL_COLUMNS", "episode_model", "episode_counts", "tactic_episodes"]

#: The columns of :func:`episode_model`.
EPISODE_MODEL_COLUMNS = ["tactic", "covariate", "hazard_ratio", "ci_lower", "ci_upper", "p", "runs", "visits",
                         "events", "pieces", "clusters", "method", "note"]
#: Largest table (event times x clusters) fitted with one piece per event time.
MAX_PIECES = 2_000_000
_COLS = ["arrival_s", "departure_s", "first_purchase_s"]


def _visits(path: Any, sample: float | None, seed: int, rid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A run's visits as (arrival, end of risk, bought), a seeded fraction of them with ``sample``."""
    import pyarrow.parquet as pq

    # one small file: ParquetFile skips read_table's dataset discovery, a third of the time per run
    t = pq.ParquetFile(path).read(columns=_COLS, use_threads=False)
    a = t.column("arrival_s").to_numpy().astype(float)
    d = t.column("departure_s").to_numpy().astype(float)
    f = t.column("first_purchase_s").to_numpy(zero_copy_only=False).astype(float)
    del t
    return _at_risk(a, d, f, sample, seed, rid)


def _at_risk(a: np.ndarray, d: np.ndarray, f: np.ndarray, sample: float | None, seed: int,
             rid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_visits` from a run's arrivals, departures and first purchases (in the table's order)."""
    if sample is not None:
        rng = np.random.default_rng([seed, int(rid[:12], 16)])
        keep = rng.random(len(a)) < sample
        a, d, f = a[keep], d[keep], f[keep]
    bought = np.isfinite(f) & (f <= d)
    stop = np.where(bought, f, d)
    ok = stop > a
    return a[ok], stop[ok], bought[ok]


def _visit_reader(res: Any, visits: pd.DataFrame | None, sample: float | None, seed: int
                  ) -> Any:
    """``rid -> (arrival, end of risk, bought)``: read from the run's file, or sliced from ``visits``."""
    if visits is None:
        return lambda rid: _visits(res.path / "shoppers" / f"{rid}.parquet", sample, seed, rid)
    from fomolab.errors import DataError
    from fomolab.stats._counts import first_seen_codes, rows_by_code

    missing = [c for c in ("run_id", *_COLS) if c not in visits.columns]
    if missing:
        raise DataError(f"'visits' must have the columns run_id, {', '.join(_COLS)}: {missing} missing")
    a_all, d_all = visits.arrival_s.to_numpy(float), visits.departure_s.to_numpy(float)
    f_all = visits.first_purchase_s.to_numpy(float)
    blocks = _run_blocks(visits.run_id)
    if blocks is not None:  # each run's rows are one slice of the frame: no index of the rows
        def read_block(rid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            lo, hi = blocks.get(rid, (0, 0))
            return _at_risk(a_all[lo:hi], d_all[lo:hi], f_all[lo:hi], sample, seed, rid)

        return read_block
    code, names = first_seen_codes(visits.run_id)
    rows, cuts = rows_by_code(code, len(names))  # each run's rows in the frame's order
    del code
    at = {str(r): k for k, r in enumerate(names)}

    def read(rid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = at.get(rid)
        mine = rows[cuts[k]:cuts[k + 1]] if k is not None else np.zeros(0, np.int64)
        return _at_risk(a_all[mine], d_all[mine], f_all[mine], sample, seed, rid)

    return read


def _run_blocks(run_id: pd.Series) -> dict[str, tuple[int, int]] | None:
    """Each run's rows as one slice ``(lo, hi)`` of the frame, when ``run_id`` is categorical and each run's
    rows are contiguous; else None."""
    if not isinstance(run_id.dtype, pd.CategoricalDtype):
        return None
    codes = run_id.cat.codes.to_numpy()
    if len(codes) == 0:
        return {}
    starts = np.concatenate(([0], np.flatnonzero(codes[1:] != codes[:-1]) + 1))
    first = codes[starts]
    if (first < 0).any() or len(np.unique(first)) != len(first):  # a missing run, or a run in two places
        return None
    ends = np.concatenate((starts[1:], [len(codes)]))
    cats = np.asarray(run_id.cat.categories)
    return {str(cats[c]): (int(lo), int(hi)) for c, lo, hi in zip(first, starts, ends, strict=True)}


def _windows(res: Any) -> tuple[list[str], dict[str, list[np.ndarray]]]:
    """Tactic kinds with windows in the folder, and per run each kind's windows (n x 2 arrays)."""
    from fomolab.stats import _facts

    win = _facts.read(res, "windows")
    kinds = sorted({str(k) for k in win["tactic"].dropna().astype(str)})
    run, ids = pd.factorize(win.run_id.astype(str).to_numpy())  # runs in the order they first appear
    kind = pd.Categorical(win.tactic.astype(str).to_numpy(), categories=kinds).codes.astype(np.int64)
    se = win[["start_s", "end_s"]].to_numpy(float)
    # each run's windows of each kind, in the table's order: one stable sort by (run, kind), then slices
    order = np.lexsort((kind, run))
    key = run[order] * (len(kinds) + 1) + (kind[order] + 1)  # kind -1 (none of the kinds) first
    cuts = np.searchsorted(key, np.arange(len(ids) * (len(kinds) + 1) + 1), side="left")
    se = se[order]
    out: dict[str, list[np.ndarray]] = {}
    for i, rid in enumerate(ids):
        base = i * (len(kinds) + 1) + 1
        out[str(rid)] = [se[cuts[base + k]:cuts[base + k + 1]] for k in range(len(kinds))]
    return kinds, out


def _arms(res: Any, runs: pd.DataFrame) -> tuple[list[str], dict[str, int]]:
    """The arms, the reference (the control, if it ran) first, and each run's arm number."""
    present = list(dict.fromkeys(runs.arm.astype(str)))
    order = [a for a in res.manifest.get("arms", []) if a in present] + [a for a in present
                                                                         if a not in res.manifest.get("arms", [])]
    control = res.manifest.get("control")
    if control in order:
        order.remove(control)
        order.insert(0, control)
    at = {a: i for i, a in enumerate(order)}
    return order, {str(r): at[str(a)] for r, a in zip(runs.run_id.astype(str), runs.arm.astype(str), strict=True)}


def _pattern(t: np.ndarray, windows: list[np.ndarray] | None, K: int) -> np.ndarray:
    """Covariate pattern code at times ``t``: bit k set while a window of kind k runs (``start < t <= end``)."""
    code = np.zeros(len(t), dtype=np.int64)
    if windows is None:
        return code
    for k, w in enumerate(windows):
        w = w[w[:, 0] < w[:, 1]]  # (an empty or undefined window never runs)
        # windows of kind k running at t: those started before t, less those ended before t
        on = (np.searchsorted(np.sort(w[:, 0]), t, side="left")
              > np.searchsorted(np.sort(w[:, 1]), t, side="left"))
        code |= on.astype(np.int64) << k
    return code


def _sorted(x: np.ndarray) -> np.ndarray:
    """``np.sort(x)``, without sorting what is sorted already (a run's arrivals, as stored)."""
    return x if len(x) < 2 or bool(np.all(x[1:] >= x[:-1])) else np.sort(x)


class _Counts:
    """The episode model's counts of a folder, one replicate at a time (:meth:`replicates`).

    ``names`` (the tactic covariates), ``arms``, ``K`` (tactic kinds), ``P``
    (patterns: the tactic bits, then the arm), ``T`` (pieces), ``exact`` (one
    piece per event time) and ``facts`` (runs, visits, events, pieces,
    clusters, method).
    """

    def __init__(self, results: Any, sample: float | None, seed: int, max_pieces: int,
                 visits: pd.DataFrame | None) -> None:
        from fomolab.stats import _folder

        res = _folder.as_results(results)
        runs = res.runs
        ids = runs.run_id.astype(str).tolist()
        reps = dict(zip(ids, runs.replicate.astype(int), strict=True))
        kinds, self.windows = _windows(res)
        self.K = K = len(kinds)
        self.arms, self.arm_of = _arms(res, runs)
        self.read = _visit_reader(res, visits, sample, seed)
        # pass 1: the distinct event times of the whole folder
        times, n_visits = [], 0
        for rid in ids:
            _, stop, bought = self.read(rid)
            times.append(np.unique(stop[bought]))
            n_visits += len(stop)
        tau = np.unique(np.concatenate(times)) if times else np.empty(0)
        del times
        self.R = R = sorted(set(reps.values()))
        self.exact = exact = len(tau) * len(R) <= max_pieces
        if exact:
            edges = tau
        else:  # the tactic epochs: every window edge and every minute
            cut = [np.arange(0.0, float(np.nanmax(tau)) + 60.0, 60.0)] if len(tau) else []
            cut += [w.ravel() for ws in self.windows.values() for w in ws]
            edges = np.unique(np.concatenate(cut)) if cut else np.array([0.0])
        self.edges = edges
        self.T = T = len(edges)
        self.P = (1 << K) * len(self.arms)
        self.names = [f"{k}_running" for k in kinds]
        self.runs_of: dict[int, list[str]] = {r: [] for r in R}
        for rid in ids:
            self.runs_of[reps[rid]].append(rid)
        self.facts: dict[str, Any] = {
            "runs": len(ids), "visits": int(n_visits), "events": 0, "pieces": int(T), "clusters": len(R),
            "method": ("piecewise-exponential Poisson, one piece per event time (= Cox, Breslow ties)" if exact
                       else "piecewise-exponential Poisson, pieces = tactic epochs and minutes (person-time)")}
        from fomolab.stats._counts import small_code_type

        self.pattern_type = small_code_type(self.P)
        self.piece_type = small_code_type(T + 1)
        self.rep_type = small_code_type(max((abs(r) for r in R), default=0) + 1)

    def replicates(self) -> Any:
        """Per replicate (the folder's order), its nonzero cells: ``(replicate, pattern, piece, exposure,
        events)``, pattern-major, the codes in their smallest types; counts ``facts["events"]`` on the way."""
        exact, edges, T, K = self.exact, self.edges, self.T, self.K
        width = T + (0 if exact else 1)
        cols = np.arange(width)
        if not exact:
            full = np.concatenate(([-np.inf], edges, [np.inf]))
            mids = np.concatenate(([edges[0] - 1.0], 0.5 * (edges[:-1] + edges[1:]), [edges[-1] + 1.0]))
        n_events = 0.0
        for rep in self.R:
            rids = self.runs_of[rep]
            pats = [_pattern(edges if exact else mids, self.windows.get(rid), K) + (self.arm_of[rid] << K)
                    for rid in rids]
            # the number at risk (or person-time) and events at each piece and pattern the replicate's runs
            # take (in the patterns' order): one replicate's arrays
            rows = np.unique(np.concatenate(pats)) if pats else np.zeros(0, np.int64)
            row_of = np.zeros(self.P, dtype=np.int64)
            row_of[rows] = np.arange(len(rows))
            expo = np.zeros((len(rows), width))
            evts = np.zeros_like(expo)
            for rid, pat in zip(rids, pats, strict=True):
                a, stop, bought = self.read(rid)
                at = row_of[pat]
                if exact:
                    at_risk = (np.searchsorted(_sorted(a), edges, side="left")
                               - np.searchsorted(np.sort(stop), edges, side="left"))
                    ev = np.bincount(np.searchsorted(edges, stop[bought]), minlength=T)
                    expo[at, cols] += at_risk  # one cell per column: the same as adding one at a time
                    evts[at, cols] += ev
                else:
                    # person-time before each edge: sum over visits of clip(edge, a, stop) - a
                    sa, ss = _sorted(a), np.sort(stop)
                    ca, cs = np.concatenate(([0.0], np.cumsum(sa))), np.concatenate(([0.0], np.cumsum(ss)))
                    e = edges
                    ka, ks = np.searchsorted(sa, e, side="right"), np.searchsorted(ss, e, side="right")
                    F = (ka * e - ca[ka]) - (ks * e - cs[ks])
                    pt = np.diff(np.concatenate(([0.0], F, [ss.sum() - sa.sum()])))
                    k_ev = np.clip(np.searchsorted(full, stop[bought], side="left") - 1, 0, T)
                    ev = np.bincount(k_ev, minlength=T + 1)
                    expo[at, cols] += pt
                    evts[at, cols] += ev
            at, kk = np.nonzero(expo > 0)  # pattern-major
            n_events += float(evts.sum())  # (whole numbers: exact)
            yield (rep, rows[at].astype(self.pattern_type), kk.astype(self.piece_type), expo[at, kk],
                   evts[at, kk].astype(np.int32))
            del expo, evts, at, kk
        self.facts["events"] = int(n_events)


class _Cells:
    """The replicates' cells of :class:`_Counts`, held compactly, and their sums per (pattern, piece).

    ``pattern``, ``piece``: the pooled cells (every (pattern, piece) with exposure in some replicate) in the
    order in which :func:`episode_counts`' table first shows them; ``exposure``, ``events``: their sums
    over the replicates, in the replicates' order.
    """

    def __init__(self, counts: _Counts) -> None:
        self.K, self.arms = counts.K, counts.arms
        self.arm_names = [f"arm_{a}" for i, a in enumerate(counts.arms) if i]
        self.names = counts.names
        width = counts.T + (0 if counts.exact else 1)
        from fomolab.stats._counts import small_code_type

        # per pattern that occurs (a row each, added as they come): the sums over the replicates and the first
        # replicate with each cell
        seen_type = small_code_type(len(counts.R) + 1)
        self.row_of = np.full(counts.P, -1, dtype=np.int64)
        patterns: list[int] = []
        expo, evts = np.zeros((0, width)), np.zeros((0, width))
        seen = np.zeros((0, width), dtype=seen_type)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for i, (_rep, pp, kk, ex, ev) in enumerate(counts.replicates()):
            fresh = np.unique(pp[self.row_of[pp] < 0])
            if len(fresh):
                self.row_of[fresh] = np.arange(len(patterns), len(patterns) + len(fresh))
                patterns += fresh.tolist()
                expo = np.vstack((expo, np.zeros((len(fresh), width))))
                evts = np.vstack((evts, np.zeros((len(fresh), width))))
                seen = np.vstack((seen, np.full((len(fresh), width), len(counts.R), dtype=seen_type)))
            r = self.row_of[pp]
            expo[r, kk] += ex  # one replicate's cells are distinct: the sums of the table's rows, in order
            evts[r, kk] += ev
            new = seen[r, kk] > i  # (the replicates in order: the first to show a cell sets it)
            seen[r[new], kk[new]] = i
            self.parts.append((pp, kk, ex, ev))
        del counts.read  # the visits: no longer needed
        rr, kk = np.nonzero(expo > 0)
        pp = np.asarray(patterns, dtype=np.int64)[rr]
        order = np.lexsort((kk, pp, seen[rr, kk]))
        del seen
        self.pattern, self.piece = pp[order], kk[order]
        self.exposure, self.events = expo[rr[order], kk[order]], evts[rr[order], kk[order]]
        del expo, evts
        # the pooled cell of each (pattern row, piece)
        self.index = np.full((len(patterns), width), -1, dtype=np.int32 if len(order) < 2**31 - 1 else np.int64)
        self.index[rr[order], kk[order]] = np.arange(len(order))
        self.width = width

    def column(self, name: str) -> np.ndarray:
        """A tactic's or arm's 0/1 column of the table, at the pooled cells."""
        if name in self.names:
            return ((self.pattern >> self.names.index(name)) & 1).astype(np.int8)
        return ((self.pattern >> self.K) == self.arm_names.index(name) + 1).astype(np.int8)

    def flat(self, x: np.ndarray) -> bool:
        """Whether ``x`` has one value in every cell of each piece."""
        hi = np.zeros(self.width, dtype=np.int8)
        lo = np.ones_like(hi)
        np.maximum.at(hi, self.piece, x)
        np.minimum.at(lo, self.piece, x)
        present = np.bincount(self.piece, minlength=len(hi)) > 0
        return bool(np.all(hi[present] == lo[present]))

    def fit(self, columns: list[np.ndarray], covariates: list[str], clustered: bool, conf_level: float) -> Any:
        """:func:`fomolab.stats.piecewise_exponential` of the table on ``covariates`` (clustered by
        replicate if ``clustered``), from the pooled cells and, for the clustered errors, the replicates'."""
        from fomolab.errors import DataError
        from fomolab.stats import _checks
        from fomolab.stats.pwe import _fit

        level = _checks.check_probability(conf_level, "conf_level")
        if self.events.sum() == 0:
            raise DataError("column 'events' has no events: nothing to fit")
        present, k = np.unique(self.piece, return_inverse=True)
        X = np.empty((len(self.piece), len(columns)))
        for j, c in enumerate(columns):
            X[:, j] = c
        K = len(present)
        baseline = pd.DataFrame({"piece": present, "events": np.bincount(k, weights=self.events, minlength=K),
                                 "exposure": np.bincount(k, weights=self.exposure, minlength=K)})

        def by_replicate(m: np.ndarray, z: np.ndarray) -> np.ndarray:
            p = z.shape[1]
            D = np.empty((len(self.parts), p))
            for i, (pp, kk, ex, ev) in enumerate(self.parts):
                g = self.index[self.row_of[pp], kk]
                r = ev - ex * m[g]
                # each covariate's sum in the cells' order (bincount adds in order), all covariates in one call
                D[i] = np.bincount(np.tile(np.arange(p), len(g)), weights=(r[:, None] * z[g]).ravel(), minlength=p)
            return D

        return _fit(self.exposure, self.events, k, X, K, covariates, level, baseline,
                    cells=sum(len(q[0]) for q in self.parts), events=int(self.events.sum()),
                    exposure=float(self.exposure.sum()), scores=by_replicate if clustered else None,
                    cluster="replicate" if clustered else None)


def episode_counts(results: Any, *, sample: float | None = None, seed: int = 0,
                   max_pieces: int = MAX_PIECES, visits: pd.DataFrame | None = None
                   ) -> tuple[pd.DataFrame, list[str], dict[str, Any]]:
    """The person-time table of the episode model: per piece, pattern (and replicate), exposure and events.

    Parameters
    ----------
    results : fomolab.Results or path
        A results folder.
    sample : float, optional
        Keep this fraction of each run's visits (seeded by ``seed`` and the run),
        as :func:`tactic_episodes` does with the same arguments.
    seed : int, default 0
    max_pieces : int
        Above this many event times x clusters, pieces are the tactic epochs.
    visits : pandas.DataFrame, optional
        The folder's visits already in memory (``run_id, arrival_s,
        departure_s, first_purchase_s``, each run's rows in the table's
        order, as :meth:`fomolab.Results.viewers` gives them): used instead
        of reading each run's ``shoppers`` file twice; the same table.

    Returns
    -------
    (pandas.DataFrame, list of str, dict)
        The table (``piece``, ``replicate``, one 0/1 column per tactic kind
        ``<kind>_running`` and per arm but the reference ``arm_<name>``, the
        codes and indicators in the smallest integer type that holds them;
        ``exposure``, ``events``), the covariate names, and facts (runs,
        visits, events, method).
    """
    counts = _Counts(results, sample, seed, max_pieces, visits)
    del visits
    table = _table(counts)
    return table, counts.names, counts.facts


def _table(counts: _Counts) -> pd.DataFrame:
    """:func:`episode_counts`' table: the replicates' cells one after another, built one column at a time."""
    parts: dict[str, list[np.ndarray]] = {"rep": [], "pat": [], "piece": [], "expo": [], "evts": []}
    for rep, pp, kk, ex, ev in counts.replicates():
        for key, v in zip(parts, (np.full(len(pp), rep, counts.rep_type), pp, kk, ex, ev), strict=True):
            parts[key].append(v)
    del counts.read  # the visits: no longer needed

    def field(key: str, dtype: Any) -> np.ndarray:
        out = np.concatenate(parts.pop(key)) if parts[key] else np.empty(0)
        return out.astype(dtype, copy=False)

    K, names = counts.K, counts.names
    cols: dict[str, np.ndarray] = {"piece": field("piece", counts.piece_type),
                                   "replicate": field("rep", counts.rep_type)}
    pp = field("pat", counts.pattern_type)
    cols.update({n: ((pp >> b) & 1).astype(np.int8) for b, n in enumerate(names)})
    cols.update({f"arm_{a}": ((pp >> K) == i).astype(np.int8) for i, a in enumerate(counts.arms) if i})
    del pp
    cols["exposure"] = field("expo", float)
    cols["events"] = field("evts", float)
    table = pd.DataFrame(cols, copy=False)  # the columns themselves, not a consolidated copy of them
    del cols
    return table


def episode_model(results: Any, *, sample: float | None = None, seed: int = 0, conf_level: float = 0.95,
                  max_pieces: int = MAX_PIECES, visits: pd.DataFrame | None = None) -> pd.DataFrame:
    """Hazard ratio of a first purchase while each tactic runs (arms pooled, stream clock).

    Parameters
    ----------
    results : fomolab.Results or path
        A results folder; keep the control arm in it (a tactic's effect is
        identified by viewers at risk at the same stream time without it).
    sample : float, optional
        Fit on this fraction of each run's visits (seeded).
    seed : int, default 0
    conf_level : float, default 0.95
    max_pieces, visits
        See :func:`episode_counts`.

    Returns
    -------
    pandas.DataFrame
        One row per tactic kind (tactics whose windows coincide in every run,
        such as a timer counting down a sale, share one row: ``tactic`` names
        them joined by `` + ``, the hazard ratio is their joint effect) with
        the columns of ``EPISODE_MODEL_COLUMNS``:
        the hazard ratio while it runs (its window, any product's) with its
        interval and p value (errors clustered by replicate with two or more
        replicates, else model-based), runs, visits, events, pieces, clusters,
        the method and a note (a tactic running always or never, which the
        model cannot separate, gets NaN and says so).

    Examples
    --------
    >>> from fomolab.stats._example import example_results
    >>> t = episode_model(example_results())
    >>> t.tactic.tolist()
    ['countdown_timer + lightning_sale']
    >>> bool((t.hazard_ratio > 1).all())
    True
    """
    import warnings

    from fomolab.errors import DataError

    counts = _Counts(results, sample, seed, max_pieces, visits)
    del visits
    cells = _Cells(counts)
    names, facts = counts.names, counts.facts
    base = {k: facts[k] for k in ("runs", "visits", "events", "pieces", "clusters")}
    rows: list[dict[str, Any]] = []
    # tactics that run exactly together (a timer counting down a sale) are one covariate; the pooled cells
    # hold every (piece, pattern) of the replicates' cells, so a column's values there tell the same
    bits = {n: cells.column(n) for n in [*names, *cells.arm_names]}
    groups: dict[bytes, list[str]] = {}
    for n in names:
        groups.setdefault(np.packbits(bits[n] != 0).tobytes(), []).append(n)  # 0/1: a bit each
    together = {g[0]: g for g in groups.values()}
    arm_terms = [c for c in cells.arm_names if len(np.unique(bits[c])) > 1]
    varies = [n for n in together if len(np.unique(bits[n])) > 1]
    # a tactic on (or off) in every cell of each piece runs at the same stream times wherever it runs: the
    # baseline of each piece absorbs it
    fit_names = [n for n in varies if not cells.flat(bits[n])]
    summary = None
    note = ""
    if fit_names and facts["events"]:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                summary = cells.fit([bits[c] for c in [*fit_names, *arm_terms]], [*fit_names, *arm_terms],
                                    facts["clusters"] >= 2, conf_level).summary
            note = "; ".join(sorted({str(w.message) for w in caught}))
        except DataError as exc:
            note = str(exc)
    for n, group in together.items():
        tactic = " + ".join(g[: -len("_running")] for g in group)
        row = {"tactic": tactic, "covariate": n, **base, "method": facts["method"]}
        if summary is not None and n in summary.index:
            s = summary.loc[n]
            both = "; they run exactly together, so their joint effect" if len(group) > 1 else ""
            row.update(hazard_ratio=float(s["hazard_ratio"]), ci_lower=float(s["ci_lower"]),
                       ci_upper=float(s["ci_upper"]), p=float(s["p"]), note="; ".join(x for x in (note, both[2:])
                                                                                      if x))
        else:
            row.update(hazard_ratio=np.nan, ci_lower=np.nan, ci_upper=np.nan, p=np.nan,
                       note=note if n in fit_names else
                       "the tactic runs at every (or no) event time: its effect cannot be separated"
                       if n not in varies else
                       "the tactic runs at the same stream times wherever it runs: its effect cannot be "
                       "separated from the baseline hazard then")
        rows.append(row)
    out = pd.DataFrame(rows, columns=EPISODE_MODEL_COLUMNS)
    out.attrs["covariates"] = [*fit_names, *arm_terms]  # what was fitted (tactics, then arms)
    return out


def tactic_episodes(results: Any, *, sample: float | None = None, seed: int = 0) -> pd.DataFrame:
    """The same visits as counting-process episodes, cut at every tactic window edge.

    For checking :func:`episode_model` against
    ``fomolab.stats.cox(ep, "stop_s", "event", covariates, start="start_s", ties="breslow")``
    (same visits with the same ``sample`` and ``seed``): one row per episode,
    ``run_id``, ``replicate``, ``start_s``, ``stop_s``, ``event``, the
    ``<kind>_running`` indicators and ``arm_<name>`` for each arm but the
    reference (``episode_model(...).attrs["covariates"]`` lists what the model
    fitted).  Its size grows with the folder: use it on small folders or samples.
    """
    from fomolab.stats import _folder

    res = _folder.as_results(results)
    runs = res.runs
    kinds, windows = _windows(res)
    K = len(kinds)
    names = [f"{k}_running" for k in kinds]
    arms, arm_of = _arms(res, runs)
    parts = []
    for rid, rep in zip(runs.run_id.astype(str), runs.replicate.astype(int), strict=True):
        a, stop, bought = _visits(res.path / "shoppers" / f"{rid}.parquet", sample, seed, rid)
        ws = windows.get(rid)
        cuts = np.unique(np.concatenate([w.ravel() for w in ws])) if ws else np.empty(0)
        lo = np.searchsorted(cuts, a, side="right")
        hi = np.searchsorted(cuts, stop, side="left")
        k = hi - lo + 1
        idx = np.repeat(np.arange(len(a)), k)
        j = np.arange(len(idx)) - np.repeat(np.cumsum(k) - k, k)
        padded = np.concatenate((cuts, [np.inf]))
        last = j == k[idx] - 1
        ci = lo[idx] + j
        s0 = np.where(j == 0, a[idx], padded[np.maximum(ci - 1, 0)])
        s1 = np.where(last, stop[idx], padded[np.minimum(ci, len(cuts))])
        pat = _pattern(s1, ws, K)  # constant on (s0, s1]: its value at s1
        parts.append(pd.DataFrame({"run_id": rid, "replicate": rep, "start_s": s0, "stop_s": s1,
                                   "event": (last & bought[idx]).astype(np.int64),
                                   **{n: ((pat >> b) & 1).astype(np.int64) for b, n in enumerate(names)},
                                   **{f"arm_{a}": int(arm_of[rid] == i) for i, a in enumerate(arms) if i}}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["run_id", "replicate", "start_s", "stop_s", "event", *names])
