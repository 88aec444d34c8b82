"""Harrell's concordance in O(n log n), as R's ``survival::concordance``.

A pair of rows is *comparable* when one has an event at a time ``t`` at which
the other is still at risk (``start < t <= stop``, same stratum).  It is
concordant when the row with the event has the higher risk score, discordant
when it has the lower one, ``tied_x`` when the scores are equal (counted one
half in C); two events at the same time are ``tied_y`` (``tied_xy`` when their
scores are equal too) and are left out of C.  These are R's counts
(``concordance(fit)$count``) and its infinitesimal-jackknife standard error.

R counts them with a balanced binary tree over the risk score, walking the
event times backwards.  Here the same counts come from numpy alone: each
"how many rows at risk at ``t`` have a score below ``x``" is a dominance count
over (time rank, score rank), answered for all queries at once by a merge-sort
tree — one level per bit of the row position, each level a stable sort (which
merges the previous level's sorted runs) and one :func:`numpy.searchsorted` —
so the cost is O(n log n) with no Python loop over rows or event times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from fomolab.errors import DataError
from fomolab.stats import _checks
from fomolab.stats._result import StatsResult

__all__ = ["ConcordanceResult", "concordance"]

#: The entries of a concordance, in order.
CONCORDANCE_FIELDS = ("concordance", "se", "concordant", "discordant", "tied_x", "tied_y",
                      "tied_xy")


def _prefix_counts(values: np.ndarray, n_values: int, k: np.ndarray, x: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """For each query ``(k, x)``: how many of ``values[:k]`` are ``< x`` and ``<= x``.

    ``values`` are integer ranks in ``[0, n_values)``; ``k`` in ``[0, len(values)]``.
    Level ``L`` of the tree holds the values sorted within blocks of ``2**L``
    consecutive positions; the prefix ``[0, k)`` is the union of one block per
    set bit of ``k``, and each block's count is a ``searchsorted`` on the keys
    ``block * n_values + value``.
    """
    k = np.asarray(k, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    m = len(values)
    if m == 0 or len(k) == 0:
        return np.zeros(len(k), dtype=np.int64), np.zeros(len(k), dtype=np.int64)
    # queries in the order of (k, x): each level then searches its blocks in
    # order, which keeps the binary searches in cache (several times faster)
    order = np.lexsort((x, k))
    k, x = k[order], x[order]
    lt = np.zeros(len(k), dtype=np.int64)
    le = np.zeros(len(k), dtype=np.int64)
    V = np.int64(n_values)
    keys = np.arange(m, dtype=np.int64) * V + values.astype(np.int64)  # level 0: sorted
    for level in range(int(m).bit_length()):
        sel = np.flatnonzero((k >> level) & 1)
        if len(sel):
            block = (k[sel] >> level) - 1
            base = block * V + x[sel]
            first = block << level
            lt[sel] += np.searchsorted(keys, base, side="left") - first
            le[sel] += np.searchsorted(keys, base, side="right") - first
        block_of = keys // V
        keys = np.sort((block_of >> 1) * V + (keys - block_of * V), kind="stable")
    out_lt = np.empty_like(lt)
    out_le = np.empty_like(le)
    out_lt[order] = lt
    out_le[order] = le
    return out_lt, out_le


def _ranks(v: np.ndarray) -> tuple[np.ndarray, int]:
    u, inv = np.unique(v, return_inverse=True)
    return inv.astype(np.int64), len(u)


def _counts(risk: np.ndarray, key_start: np.ndarray, key_stop: np.ndarray, event: np.ndarray,
            stratum: np.ndarray, has_start: bool) -> pd.Series:
    """The concordance of ``risk`` (higher = earlier event) on keyed risk sets.

    ``key_stop``/``key_start`` are integer time ranks offset by stratum (so a
    key orders by stratum, then time, and ``start < t <= stop`` within a
    stratum reads ``key_start < key < key_stop`` on keys); ``event`` is boolean.
    """
    n = len(risk)
    r, nr = _ranks(risk)
    ev_rows = np.flatnonzero(event)
    ev_rows = ev_rows[np.argsort(key_stop[ev_rows], kind="stable")]
    ev_key = key_stop[ev_rows]
    gkeys, ev_group, dcount = np.unique(ev_key, return_inverse=True, return_counts=True)
    d_of_ev = dcount[ev_group]
    # risk ranks offset by stratum: a row of a later stratum never counts as "below"
    rs_ = stratum.astype(np.int64)[ev_rows] * nr + r[ev_rows]
    r_strat = stratum.astype(np.int64) * nr + r
    n_rs = (int(stratum.max()) + 1) * nr if n else 1

    # --- each event row against its risk set (rows with start < t <= stop) ---
    o_stop = np.argsort(-key_stop, kind="stable")  # time descending: prefixes = stop >= t
    k_stop = n - np.searchsorted(np.sort(key_stop), ev_key, side="left")
    lt, le = _prefix_counts(r_strat[o_stop], n_rs, k_stop, rs_)
    n_risk = k_stop.copy()
    if has_start:
        o_start = np.argsort(-key_start, kind="stable")
        k_start = n - np.searchsorted(np.sort(key_start), ev_key, side="left")
        lt2, le2 = _prefix_counts(r_strat[o_start], n_rs, k_start, rs_)
        lt, le = lt - lt2, le - le2
        n_risk = n_risk - k_start
    else:  # every row has start 0: start >= t only for rows of later strata
        n_risk = n_risk - (n - np.searchsorted(np.sort(key_start), ev_key, side="left"))
    # the other events at the same time: tied_y, not compared
    gkey_rank = np.repeat(np.arange(len(gkeys), dtype=np.int64), dcount)  # ev rows grouped
    within = np.sort(gkey_rank * nr + r[ev_rows])
    q = ev_group.astype(np.int64) * nr + r[ev_rows]
    first = np.searchsorted(within, ev_group.astype(np.int64) * nr, side="left")
    lt_d = np.searchsorted(within, q, side="left") - first
    le_d = np.searchsorted(within, q, side="right") - first
    below = lt - lt_d
    eq = (le - lt) - (le_d - lt_d)
    alive = n_risk - d_of_ev
    above = alive - below - eq
    conc, disc, tx = float(below.sum()), float(above.sum()), float(eq.sum())
    same_xy = float(((le_d - lt_d) - 1).sum()) / 2.0
    ty = float((d_of_ev - 1).sum()) / 2.0 - same_xy

    conc_i = np.zeros(n)
    pair_i = np.zeros(n)
    conc_i[ev_rows] += below + 0.5 * eq
    pair_i[ev_rows] += alive

    # --- each row as the partner still at risk at earlier events ---
    # events at keys in (key_start, key_stop], leaving out the row's own event time
    hi_key = np.searchsorted(ev_key, key_stop, side="right")
    hi_key[event] = np.searchsorted(ev_key, key_stop[event], side="left")
    lo_key = np.searchsorted(ev_key, key_start, side="right")
    lt_a, le_a = _prefix_counts(r[ev_rows], nr, np.concatenate((hi_key, lo_key)),
                                np.concatenate((r, r)))
    cnt = hi_key - lo_key
    le_r = le_a[:n] - le_a[n:]
    eq_r = le_r - (lt_a[:n] - lt_a[n:])
    conc_i += (cnt - le_r) + 0.5 * eq_r
    pair_i += cnt

    npair = conc + disc + tx
    if npair > 0:
        c = (conc + tx / 2.0) / npair
        se = float(np.sqrt(np.sum(((conc_i - c * pair_i) / npair) ** 2)))
    else:
        c = se = float("nan")
    return pd.Series(dict(zip(CONCORDANCE_FIELDS, (c, se, conc, disc, tx, ty, same_xy),
                              strict=True)))


def _keys(start: np.ndarray | None, stop: np.ndarray, strata: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    n = len(stop)
    times = stop if start is None else np.concatenate((stop, start))
    uniq, inv = np.unique(times, return_inverse=True)
    width = len(uniq) + 2
    r_stop = inv[:n] + 1
    r_start = np.zeros(n, dtype=np.int64) if start is None else inv[n:] + 1
    s = strata.astype(np.int64) * width
    return s + r_start, s + r_stop


@dataclass(frozen=True, eq=False)
class ConcordanceResult(StatsResult):
    """Harrell's C with R's counts.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row, columns ``COLUMNS``: ``concordance`` (C), ``se`` (R's
        infinitesimal-jackknife standard error), the pair counts
        ``concordant, discordant, tied_x, tied_y, tied_xy`` and ``n``.
    predictor : str
        The column scored.
    reverse : bool
        Whether a larger predictor was taken to mean an earlier event.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = (*CONCORDANCE_FIELDS, "n")
    summary: pd.DataFrame
    predictor: str
    reverse: bool = False

    def __repr__(self) -> str:
        c = float(self.summary["concordance"].iloc[0])
        se = float(self.summary["se"].iloc[0])
        return (f"<ConcordanceResult: C={c:.4g} (se {se:.2g}) of {self.predictor!r}, "
                f"n={int(self.summary['n'].iloc[0])}, reverse={self.reverse}>")


def concordance(
    data: pd.DataFrame,
    duration: str,
    event: str,
    predictor: str,
    *,
    start: str | None = None,
    strata: str | Sequence[str] | None = None,
    reverse: bool = False,
) -> ConcordanceResult:
    """Harrell's concordance of a predictor with time to event, as R's ``concordance``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject, or per ``(start, stop]`` interval.
    duration : str
        Column of event/censoring times (the stop time with ``start``).
    event : str
        Column of 0/1 (or boolean) event indicators.
    predictor : str
        Numeric column scored.
    start : str, optional
        Column of interval starts: a row is at risk at ``t`` iff
        ``start < t <= stop``.
    strata : str or list of str, optional
        Pairs are compared only within strata.
    reverse : bool, default False
        As R: by default a larger predictor should go with a longer time (as
        lifelines' ``concordance_index``); ``True`` when a larger predictor
        means a higher hazard (a Cox linear predictor).

    Returns
    -------
    ConcordanceResult

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 1, 0, 1], "x": [1, 3, 2, 4]})
    >>> concordance(d, "t", "e", "x").summary[["concordance", "concordant", "discordant"]]
       concordance  concordant  discordant
    0          0.8         4.0         1.0
    """
    data = _checks.check_frame(data)
    strata_cols = _checks.as_list(strata)
    _checks.check_columns(data, [duration, event, predictor, start, *strata_cols])
    stop = _checks.numeric(data, duration, nonnegative=True)
    st = None
    if start is not None:
        st = _checks.numeric(data, start, nonnegative=True)
        _checks.check_start_stop(data, st, stop, start, duration)
    ev = _checks.events01(data, event).astype(bool)
    x = _checks.numeric(data, predictor)
    if strata_cols:
        sk = [_checks.keys(data, c) for c in strata_cols]
        scode = (pd.MultiIndex.from_arrays(sk).factorize()[0] if len(sk) > 1
                 else pd.factorize(sk[0])[0])
    else:
        scode = np.zeros(len(stop), dtype=np.int64)
    if len(stop) == 0:
        raise DataError("the data have no rows: nothing to compare")
    scode = np.asarray(scode, dtype=np.int64)
    key_start, key_stop = _keys(st, stop, scode)
    s = _counts(x if reverse else -x, key_start, key_stop, ev, scode, st is not None)
    summary = pd.DataFrame([{**s.to_dict(), "n": len(stop)}], columns=list(ConcordanceResult.COLUMNS))
    return ConcordanceResult(summary=summary, predictor=predictor, reverse=bool(reverse))
