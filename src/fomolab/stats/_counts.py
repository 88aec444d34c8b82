"""Cox models whose covariates are functions of a few patterns, fitted on counts at the event times.

The picture: when every subject's covariates are one of ``P`` patterns (an
arm's indicators, a tactic design's row), the Cox partial likelihood, its
score and information depend on the data only through, at each distinct
event time ``tau`` of each stratum, how many subjects of each pattern are at
risk and how many of them have an event then.  Those ``K x P`` counts
(:func:`event_time_counts`, from sorted searches, no join of rows) give the
same fit as :func:`fomolab.stats.cox` on the rows (:func:`cox_counts`: R's
``coxph`` Newton–Raphson with its start, step halving, convergence rule,
checks and warnings), in time and memory that follow the events, not the
rows.  Efron ties are exact on counts: the ``d`` tied deaths of a time are
split in ``d`` pieces with denominators ``S0 - (l/d) S0_deaths``.

The scaled Schoenfeld score test of R's ``cox.zph``
(:func:`zph_counts`) needs only the same sums and the time transform at each
event time, so it is computed here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fomolab.errors import DataError
from fomolab.stats import _newton

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CountFit", "EventTimeCounts", "cox_counts", "event_time_counts", "first_seen_codes",
           "first_seen_small_codes", "rows_by_code",
           "small_code_type", "sorted_codes", "sorted_small_codes", "stable_argsort", "zph_counts"]

SortKind = Literal["quicksort", "stable"]


@dataclass(frozen=True)
class EventTimeCounts:
    """Per (stratum, event time) group ``k`` and pattern ``p``: subjects at risk and events.

    Attributes
    ----------
    stratum, time : numpy.ndarray
        ``(K,)``: the group's stratum code and event time, sorted by stratum then time.
    at_risk, deaths : numpy.ndarray
        ``(K, P)`` floats (exact integer counts).
    """

    stratum: np.ndarray
    time: np.ndarray
    at_risk: np.ndarray
    deaths: np.ndarray


def event_time_counts(stratum: np.ndarray, pattern: np.ndarray, entry: np.ndarray | None, exit_: np.ndarray,
                      ev_stratum: np.ndarray, ev_pattern: np.ndarray, ev_time: np.ndarray,
                      n_patterns: int, *, exit_sort: SortKind = "quicksort") -> EventTimeCounts:
    """Counts at risk and events at each event time of each stratum, per pattern.

    Parameters
    ----------
    stratum, pattern : numpy.ndarray of int
        Each subject's stratum and pattern code (``0 <= pattern < n_patterns``).
    entry : numpy.ndarray or None
        Each subject's entry: at risk for ``entry < t <= exit`` (R's ``Surv(start, stop, event)``).
        None: at risk for ``t <= exit`` (R's ``Surv(time, event)``).
    exit_ : numpy.ndarray
        Each subject's end of follow-up.
    ev_stratum, ev_pattern, ev_time : numpy.ndarray
        Each event's stratum, pattern and time (an event of a subject lies in
        its ``(entry, exit]``; a subject may have several).
    n_patterns : int
    exit_sort : str, default "quicksort"
        ``np.sort``'s ``kind`` for the exits: "stable" (a merge sort that
        finds sorted runs) is many times faster where they are mostly in
        order, e.g. ``window - arrival`` of viewers listed by arrival.
        Entries are sorted with "stable" (they usually follow the order of
        arrivals).

    Returns
    -------
    EventTimeCounts

    Notes
    -----
    The comparisons are the exact float comparisons of the Cox fit on the
    rows (ties stay ties): a sort of each (stratum, pattern)'s entries and
    exits and a search of its stratum's event times in them, O(n log n) for
    ``n`` subjects; the result is ``K x P`` for ``K`` event-time groups.
    """
    P = int(n_patterns)
    ev_stratum = np.asarray(ev_stratum, np.int64)
    ev_time = np.asarray(ev_time, float)
    o = np.lexsort((ev_time, ev_stratum))
    s_sorted, t_sorted = ev_stratum[o], ev_time[o]
    new = np.ones(len(o), dtype=bool)
    new[1:] = (s_sorted[1:] != s_sorted[:-1]) | (t_sorted[1:] != t_sorted[:-1])
    g_s, g_t = s_sorted[new], t_sorted[new]
    K = len(g_s)
    gid = np.cumsum(new) - 1
    deaths = np.bincount(gid * P + np.asarray(ev_pattern, np.int64)[o], minlength=K * P).reshape(K, P)
    first = np.flatnonzero(np.r_[True, g_s[1:] != g_s[:-1]]) if K else np.zeros(0, np.int64)
    last = np.r_[first[1:], K] if K else np.zeros(0, np.int64)
    span = {int(g_s[i]): (int(i), int(j)) for i, j in zip(first, last, strict=True)}
    stratum = np.asarray(stratum)
    pattern = np.asarray(pattern)
    # each subject's (stratum, pattern) cell, in two bytes where the cells fit (a radix sort; no eight-byte
    # code per subject), and each cell's subjects from one stable sort
    n_cells = (int(stratum.max(initial=-1)) + 1) * P
    cell: np.ndarray[Any, np.dtype[np.signedinteger[Any]]] = stratum.astype(small_code_type(n_cells))
    cell *= P
    cell += pattern
    n_cells = int(cell.max(initial=-1)) + 1
    order = np.argsort(cell, kind="stable")
    bounds = np.zeros(n_cells + 1, np.int64)
    np.cumsum(np.bincount(cell, minlength=n_cells), out=bounds[1:])

    def below(values: np.ndarray, kind: SortKind) -> np.ndarray:
        """``[k, p]``: subjects of pattern p in the group's stratum with ``value < time_k``."""
        out = np.zeros((K, P))
        v = values[order]  # a copy: each cell's values sorted in place
        for c in range(n_cells):
            i, j = bounds[c], bounds[c + 1]
            k = span.get(c // P)
            if i == j or k is None:
                continue
            v[i:j].sort(kind=kind)
            out[k[0]:k[1], c % P] = np.searchsorted(v[i:j], g_t[k[0]:k[1]], side="left")
        return out

    if entry is None:
        n_strata = int(max(stratum.max(initial=-1), g_s.max(initial=-1))) + 1
        total = np.bincount(cell, minlength=n_strata * P).reshape(n_strata, P)
        entered = total[g_s]
    else:
        entered = below(np.asarray(entry, float), "stable")
    at_risk = (entered - below(np.asarray(exit_, float), exit_sort)).astype(float)
    return EventTimeCounts(g_s, g_t, at_risk, deaths.astype(float))


@dataclass(frozen=True)
class CountFit:
    """A Cox fit on counts: coefficients, model-based variance, log likelihood and what the tests need."""

    beta: np.ndarray
    var: np.ndarray
    loglik: tuple[float, float]
    converged: bool
    iterations: int
    x: np.ndarray  # (P, q) centred covariates
    at_risk: np.ndarray
    deaths: np.ndarray
    time: np.ndarray
    ties: str

    @property
    def hazard_ratio(self) -> np.ndarray:
        return np.asarray(np.exp(self.beta))


class _Pieces:
    """Efron's pieces: one per event, ``f = l / d`` for the l-th of the d tied deaths of its group."""

    def __init__(self, deaths: np.ndarray, ties: str) -> None:
        D = np.rint(deaths.sum(axis=1)).astype(np.int64)
        self.group = np.repeat(np.arange(len(D)), D)
        starts = np.cumsum(D) - D
        pos = np.arange(len(self.group)) - np.repeat(starts, D)
        self.f = pos / np.repeat(D, D).astype(float) if ties == "efron" else np.zeros(len(self.group))


#: Elements of the product :func:`_by_rows` computes at a time: a block of rows of a tall counts matrix
#: times the patterns' covariates, small enough for OpenBLAS to multiply on one thread.
_ROW_BLOCK = 1 << 16


def _by_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a tall ``a`` (event-time groups x patterns) and a small matrix ``b``, a block of rows at
    a time.

    For a tall product OpenBLAS starts its threads, which on a busy machine cost a hundred times the product
    itself (a few multiplications per row); a block of :data:`_ROW_BLOCK` elements runs on one thread.

    The result is the same to the bit where ``a`` has at most four columns and ``b`` two or more: OpenBLAS's
    matrix kernels then compute every element alike, wherever a block's edges fall.  With more columns of
    ``a`` its kernel for the last rows of a block sums in another order, and a single column of ``b`` goes
    to the matrix-vector routine (not slow): those products are taken whole.  A block of one row would be
    a vector times a matrix, so the last row joins the block before it.
    """
    m = a.shape[0]
    step = max(2, _ROW_BLOCK // max(1, a.shape[1] * b.shape[1]))
    if m <= step or a.shape[1] > 4 or b.shape[1] < 2:
        return np.asarray(a @ b)
    out = np.empty((m, b.shape[1]))
    i = 0
    while i < m:
        j = i + step if i + step < m - 1 else m
        out[i:j] = a[i:j] @ b
        i = j
    return out


def _sums(n: np.ndarray, d: np.ndarray, X: np.ndarray, beta: np.ndarray, pc: _Pieces, need: int = 2
          ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Log likelihood, score and information at ``beta``; and per piece ``s0`` and the mean ``a``."""
    eta = X @ beta
    w = np.exp(eta)
    wx = w[:, None] * X
    g, f = pc.group, pc.f
    s0 = (n @ w)[g] - f * (d @ w)[g]
    s1 = _by_rows(n, wx)[g] - f[:, None] * _by_rows(d, wx)[g]
    ll = float(d.sum(axis=0) @ eta - np.log(s0).sum())
    a = s1 / s0[:, None]
    u = d.sum(axis=0) @ X - a.sum(axis=0)
    if need < 2:
        return ll, u, np.empty((0, 0)), s0, a
    return ll, u, _variance_sum(n, d, X, w, pc, s0, a, np.ones(len(s0))), s0, a


def _variance_sum(n: np.ndarray, d: np.ndarray, X: np.ndarray, w: np.ndarray, pc: _Pieces, s0: np.ndarray,
                  a: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``sum_pieces weight * V``, ``V`` a piece's covariance of the covariates over its risk set.

    ``V = S2 / s0 - a a'`` with ``S2 = sum_p (n_p - f d_p) w_p x_p x_p'``: the
    sums over pieces are taken on the group weights first, so no ``pieces x
    q x q`` array is built.
    """
    K, P, q = n.shape[0], X.shape[0], X.shape[1]
    wxx = (w[:, None, None] * X[:, :, None] * X[:, None, :]).reshape(P, q * q)
    A = np.bincount(pc.group, weights=weight / s0, minlength=K)
    B = np.bincount(pc.group, weights=weight * pc.f / s0, minlength=K)
    s2 = ((A @ n - B @ d) @ wxx).reshape(q, q)
    return np.asarray(s2 - (a * weight[:, None]).T @ a)


def cox_counts(at_risk: np.ndarray, deaths: np.ndarray, time: np.ndarray, X: np.ndarray, rows: np.ndarray,
               names: Sequence[str], *, event: str = "event", ties: str = "efron") -> CountFit:
    """The Cox fit of :func:`fomolab.stats.cox` on event-time counts, with its checks and warnings.

    Parameters
    ----------
    at_risk, deaths : numpy.ndarray
        ``(K, P)``: per (stratum, event time) group and pattern (:func:`event_time_counts`).
    time : numpy.ndarray
        ``(K,)``: the groups' event times (for the tests of proportional hazards).
    X : numpy.ndarray
        ``(P, q)``: each pattern's covariates.
    rows : numpy.ndarray
        ``(P,)``: rows of each pattern in the data the fit stands for (their
        means centre the covariates, and a pattern without rows is absent).
    names : list of str
        The covariates' names, for the messages.
    event : str
        The event column's name, for the messages.
    ties : {"efron", "breslow"}

    Raises
    ------
    DataError
        As :func:`fomolab.stats.cox`: no events, a constant covariate,
        collinear covariates, a covariate constant among those at risk.

    Warns
    -----
    ConvergenceWarning
        As :func:`fomolab.stats.cox`.
    """
    X = np.asarray(X, float)
    rows = np.asarray(rows, float)
    names = list(names)
    present = rows > 0
    keep = deaths[:, present].sum(axis=1) > 0
    n, d, time = at_risk[keep][:, present], deaths[keep][:, present], np.asarray(time)[keep]
    X, rows = X[present], rows[present]
    if d.sum() == 0:
        raise DataError(f"column {event!r} has no events (all rows censored): a Cox model "
                        "needs at least one event")
    for j, c in enumerate(names):
        if np.all(X[:, j] == X[0, j]):
            raise DataError(f"covariate {c!r} is constant ({np.float64(X[0, j])!r} in every row): it has "
                            "no effect to estimate; drop it")
    M = rows.sum()
    Xc = X - (rows @ X) / M
    sv = np.linalg.svd(np.sqrt(rows)[:, None] * Xc, compute_uv=False)
    if int((sv > sv.max() * max(M, Xc.shape[1]) * np.finfo(float).eps).sum()) < Xc.shape[1]:
        raise DataError(f"covariates {names} are collinear (one is a linear combination of "
                        "the others): drop a redundant one")
    pc = _Pieces(d, ties)
    p = Xc.shape[1]
    beta = np.zeros(p)
    ll0, u0, i0, *_ = _sums(n, d, Xc, beta, pc)
    scale = np.maximum((rows @ Xc ** 2) / M, 1e-300) * max(len(pc.group), 1)
    _newton.refuse_flat(names, np.diag(i0), scale)
    try:
        first = beta + np.linalg.solve(i0, u0)
    except np.linalg.LinAlgError:
        raise DataError("the covariates are collinear (the information matrix at 0 is "
                        "singular): drop a redundant covariate") from None
    beta, ll, u, info, converged, iters = _newton.maximise(lambda b: _sums(n, d, Xc, b, pc)[:3], beta, ll0, u0,
                                                           i0, first)
    var = _newton.inverse(info)
    _newton.warn_fit(u, var, beta, ll, converged, names, stacklevel=2)
    return CountFit(beta=beta, var=var, loglik=(ll0, ll), converged=converged, iterations=iters, x=Xc, at_risk=n,
                    deaths=d, time=time, ties=ties)


def sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)``, by hashing then sorting the few distinct values."""
    import pandas as pd

    codes, uniq = pd.factorize(values)
    uniq = np.asarray(uniq)
    o = np.argsort(uniq, kind="stable")
    rank = np.empty(len(o), np.int64)
    rank[o] = np.arange(len(o))
    return uniq[o], rank[codes]


def sorted_small_codes(values: np.ndarray, step: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sorted_codes` with the codes in the smallest signed integer type that holds them.

    Whole numbers spanning fewer than ``2 ** 16`` values (replicate numbers) are counted and looked up in
    a table indexed by value; other values are hashed (their distinct values, then a million rows at a
    time): no code per row in eight bytes.  Missing values are not allowed (the caller checks them).
    Numbers ``0 .. R - 1``, each present, in the codes' type are their own codes: ``values`` itself is
    returned as the codes (no copy; the caller must not write into them).
    """
    import pandas as pd

    values = np.asarray(values)
    lo, span = 0, -1
    if values.dtype.kind in "iu" and len(values):
        lo = int(values.min())
        span = int(values.max()) - lo
    if 0 <= span < 1 << 16:
        seen = np.zeros(span + 1, np.int64)
        for i in range(0, len(values), step):
            seen += np.bincount((values[i:i + step] - lo).astype(np.intp), minlength=span + 1)
        at_value = np.flatnonzero(seen)
        levels = (at_value + lo).astype(values.dtype)
        kind = small_code_type(len(levels))
        if lo == 0 and len(levels) == span + 1 and values.dtype == kind:
            return levels, values  # every number from 0 on, in the codes' type: the values are their codes
        lookup = np.full(span + 1, -1, kind)
        lookup[at_value] = np.arange(len(levels))

        def code(part: np.ndarray) -> np.ndarray:
            return np.asarray(lookup[part - lo] if lo else lookup[part])
    else:
        uniq = np.asarray(pd.unique(values))
        levels = uniq[np.argsort(uniq, kind="stable")]
        kind = small_code_type(len(levels))
        at = pd.Index(levels)

        def code(part: np.ndarray) -> np.ndarray:
            return np.asarray(at.get_indexer(part))
    out = np.empty(len(values), kind)
    for i in range(0, len(values), step):
        out[i:i + step] = code(values[i:i + step])
    return levels, out


def stable_argsort(x: np.ndarray) -> np.ndarray:
    """``np.argsort(x, kind="stable")``, faster for floats.

    numpy sorts eight-byte numbers with vector instructions, but their
    positions (``argsort``) a comparison at a time: on a machine without
    AVX-512 a stable ``argsort`` of ten million floats takes about ten times
    as long as ``np.sort`` of them.  So a float64 ``x`` without NaN is sorted
    as integers: each value's bits, read as an integer of the same order,
    with its lowest bits replaced by the row's position.  One ``np.sort`` of
    those keys puts the rows in order of value as far as the bits kept tell,
    and rows of equal kept bits in order of position; each stretch of equal
    kept bits (equal values, or values closer than the bits dropped) is then
    put in order of value and position by a sort of its own rows.  Where
    such stretches are many (values rounded), and for other dtypes, numpy's
    stable sort is used.  The positions are ``np.intp``, as numpy's.
    """
    x = np.asarray(x)
    n = len(x)
    if x.dtype != np.float64 or x.ndim != 1 or n < 2 or np.isnan(x).any():
        return np.argsort(x, kind="stable")
    low = max(1, (n - 1).bit_length())  # the bits that hold a position
    # -0.0 becomes 0.0 (numpy's sort ties them); a non-negative float's bits as an int64 keep its order, a
    # negative one's, its lower 63 bits flipped
    bits = (x + 0.0).view(np.int64)
    bits ^= (bits >> 63) & np.int64(0x7FFF_FFFF_FFFF_FFFF)
    bits >>= low
    bits <<= low
    key = np.arange(n, dtype=np.int64)
    key |= bits
    del bits
    key.sort()
    step = (key[1:] ^ key[:-1]).view(np.uint64)  # below 2 ** low: the same kept bits as the row before
    same = step < np.uint64(1 << low)
    del step
    n_same = int(np.count_nonzero(same))
    if n_same > n // 8:
        return np.argsort(x, kind="stable")
    key &= (np.int64(1) << low) - 1  # the positions
    o = key.view(np.intp) if np.dtype(np.intp) == np.int64 else key.astype(np.intp)
    if n_same:
        tied = np.zeros(n, dtype=bool)
        tied[1:] = same
        starts = ~tied
        tied[:-1] |= same
        del same
        where = np.flatnonzero(tied)
        stretch = np.cumsum(starts)[where]
        mine = o[where]
        o[where] = mine[np.lexsort((mine, x[mine], stretch))]
    return o


def rows_by_code(codes: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions grouped by code: those of code ``c`` are ``order[cuts[c]:cuts[c + 1]]``, in row order.

    ``np.flatnonzero(codes == c)`` for every ``c`` in ``range(n_codes)`` from one stable sort, instead
    of one pass over all rows per code.
    """
    order = np.argsort(codes, kind="stable")
    return order, np.searchsorted(codes[order], np.arange(n_codes + 1))


def first_seen_codes(col: pd.Series, ordered: Callable[[np.ndarray], np.ndarray] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(ordered(col.to_numpy()))``: codes numbered by first appearance, and the values.

    ``ordered`` reorders the rows first (default: as they are).

    A categorical column is factorized by its integer codes (the same numbering: first appearance),
    not by hashing a Python object per row.
    """
    import pandas as pd

    ordered = ordered if ordered is not None else (lambda x: x)
    if isinstance(col.dtype, pd.CategoricalDtype) and not col.isna().any():
        code, first = pd.factorize(ordered(col.cat.codes.to_numpy()))
        return code, np.asarray(col.cat.categories)[first]
    code, names = pd.factorize(ordered(col.to_numpy()))
    return code, np.asarray(names)


def first_seen_small_codes(col: pd.Series, ordered: Callable[[np.ndarray], np.ndarray] | None = None,
                           step: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """:func:`first_seen_codes`, the codes in the smallest signed integer type that holds them.

    No code per row in eight bytes is made: a categorical column's codes are
    looked up from its distinct codes, another column's a million rows at a
    time from its distinct values (in order of first appearance, as
    :func:`pandas.factorize` numbers them).
    """
    import pandas as pd

    ordered = ordered if ordered is not None else (lambda x: x)
    if col.isna().any():  # missing values: factorize's code -1
        code, names = first_seen_codes(col, ordered)
        return code.astype(small_code_type(len(names))), names
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat = ordered(col.cat.codes.to_numpy())
        first = pd.unique(cat)  # the codes in order of first appearance
        lookup = np.zeros(len(col.cat.categories), small_code_type(len(first)))
        lookup[first] = np.arange(len(first))
        return np.asarray(lookup[cat]), np.asarray(col.cat.categories)[first]
    values = ordered(col.to_numpy())
    names = pd.unique(values)
    at = pd.Index(names)
    out = np.empty(len(values), small_code_type(len(names)))
    for i in range(0, len(values), step):
        out[i:i + step] = at.get_indexer(values[i:i + step])
    return out, np.asarray(names)


def arm_codes_by_run(visits: pd.DataFrame, runs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """``pd.factorize`` of the visits' ``arm`` (codes by first appearance, in one byte or two, and the names),
    from each visit's run: its ``run_id`` codes and the arm ``runs`` gives each run, no text hashed per visit.

    None where that cannot be done (``run_id`` not a categorical, a visit without a run or of a run that
    ``runs`` does not hold): the caller factorizes the text.
    """
    import pandas as pd

    run = visits.run_id if "run_id" in visits.columns else None
    if run is None or not isinstance(run.dtype, pd.CategoricalDtype) or len(visits) == 0:
        return None
    of_run = dict(zip(runs.run_id.astype(str), runs.arm.astype(str), strict=True))
    arm = [of_run.get(str(c)) for c in run.cat.categories]
    names = list(dict.fromkeys(a for a in arm if a is not None))
    at = {a: k for k, a in enumerate(names)}
    kind = small_code_type(len(names))
    lookup = np.array([at.get(a, -1) if a is not None else -1 for a in arm] + [-1], kind)  # code -1: no run
    raw = lookup[run.cat.codes.to_numpy()]
    first = pd.unique(raw)  # the arms in order of first appearance
    if (first < 0).any():
        return None
    renumber = np.zeros(len(names), kind)
    renumber[first] = np.arange(len(first))
    return np.asarray(renumber[raw]), np.array(names, dtype=object)[first]


def small_int_type(lo: int, hi: int, smallest: type[np.signedinteger[Any]] = np.int8) -> np.dtype[Any] | None:
    """The smallest signed integer type, of ``smallest``'s size or more, that holds ``lo`` .. ``hi`` (None:
    none of four bytes or fewer does)."""
    return next((np.dtype(t) for t in (np.int8, np.int16, np.int32) if np.dtype(t).itemsize >= np.dtype(
        smallest).itemsize and np.iinfo(t).min <= lo and hi <= np.iinfo(t).max), None)


def small_code_type(levels: int) -> type[np.signedinteger[Any]]:
    """The smallest signed integer type whose maximum exceeds ``levels`` (codes 0 .. levels - 1 and -1)."""
    for t in (np.int8, np.int16, np.int32):
        if levels < np.iinfo(t).max:
            return t
    return np.int64


def zph_counts(fit: CountFit, g: np.ndarray, cache: dict[str, tuple[Any, ...]] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """R's ``cox.zph`` score statistics (per covariate, then global) of a :class:`CountFit`.

    ``g`` is the centred time transform at each of the fit's groups (every
    event of a group shares its time).  Returns ``(chisq, df)``, ``q + 1`` each.
    ``cache``: a dict kept between transforms of the same fit, which then
    computes the pieces that do not depend on ``g`` once.
    """
    if not np.isfinite(fit.beta).all():
        raise DataError("the Cox fit has a non-finite coefficient: no test of proportional hazards")
    n, d, X = fit.at_risk, fit.deaths, fit.x
    pieces = cache.get("pieces") if cache is not None else None
    if pieces is None:
        pc = _Pieces(fit.deaths, fit.ties)
        *_, s0, a = _sums(n, d, X, fit.beta, pc, need=1)
        w = np.exp(X @ fit.beta)
        pieces = (pc, s0, a, w, _variance_sum(n, d, X, w, pc, s0, a, np.ones(len(pc.group))), _by_rows(d, X))
        if cache is not None:
            cache["pieces"] = pieces
    pc, s0, a, w, i11, dX = pieces
    gp = g[pc.group]
    u2 = (g[:, None] * dX).sum(axis=0) - gp @ a
    p = X.shape[1]
    i12 = _variance_sum(n, d, X, w, pc, s0, a, gp)
    i22 = _variance_sum(n, d, X, w, pc, s0, a, gp * gp)
    imat = np.block([[i11, i12], [i12, i22]])
    uu = np.concatenate((np.zeros(p), u2))
    chisq, df = [], []
    for j in range(p):
        kk = list(range(p)) + [p + j]
        uj = uu[kk]
        chisq.append(float(uj @ np.linalg.solve(imat[np.ix_(kk, kk)], uj)))
        df.append(1)
    chisq.append(float(uu @ np.linalg.solve(imat, uu)))
    df.append(p)
    return np.asarray(chisq), np.asarray(df)
