"""Deadline effects: do purchases bunch at the end of a tactic window?

A countdown timer or a lightning sale has a window ``[start_s, end_s]``.  If
viewers buy at a constant rate inside it, the final fraction ``last`` of the
window (say its last 10 %) should hold about that fraction of the window's
purchases.  A larger share is deadline bunching.  When the number of viewers
at risk changes inside the window (they arrive and leave), the expected share
is better taken from exposure: the viewer-seconds at risk in the final
fraction over those in the whole window.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats as _st

from fomolab.errors import DataError, StatisticalWarning
from fomolab.stats import _checks
from fomolab.stats._compat import REMOVED_IN, warn_deprecated
from fomolab.stats._result import StatsResult

__all__ = ["DeadlineResult", "deadline_effect"]


@dataclass(frozen=True, eq=False)
class DeadlineResult(StatsResult):
    """Deadline bunching in tactic windows, from :func:`deadline_effect`.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per window and a last ``"total"`` row pooling them, columns
        ``COLUMNS``: ``window, purchases, in_last, share_last,
        expected_share, ratio, p``.
    last : float
        The final fraction of each window examined.
    alternative : str
        Alternative of the binomial tests.
    exposure : bool
        Whether the expected shares come from exposure (else they are ``last``).

    Notes
    -----
    Until fomolab 0.2 :func:`deadline_effect` returned the summary table
    itself.  Indexing the result as that table (``out["p"]``, ``out.iloc[-1]``,
    ``out.set_index(...)``, ``len(out)``) still works until fomolab 0.3, with a
    :class:`DeprecationWarning`: use ``out.summary`` instead.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("window", "purchases", "in_last", "share_last",
                                          "expected_share", "ratio", "p")
    summary: pd.DataFrame
    last: float
    alternative: str = "two-sided"
    exposure: bool = False

    @property
    def total(self) -> pd.Series:
        """The pooled ``"total"`` row of :attr:`summary`."""
        return self.summary.iloc[-1]

    def __repr__(self) -> str:
        t = self.total
        return (f"<DeadlineResult: {len(self.summary) - 1} window(s), {int(t['purchases'])} purchases, "
                f"{int(t['in_last'])} in the last {self.last:.0%} (share {t['share_last']:.3g}, "
                f"expected {t['expected_share']:.3g}, p={t['p']:.3g})>")

    # -- the DataFrame this function used to return, kept for one release --------------------
    def _as_frame(self) -> pd.DataFrame:
        warn_deprecated("deadline_effect() now returns a DeadlineResult: read its .summary DataFrame "
                        f"(DataFrame access on the result is removed in fomolab {REMOVED_IN})", stacklevel=4)
        return self.summary

    def __getitem__(self, key: Any) -> Any:
        return self._as_frame()[key]

    def __len__(self) -> int:
        return len(self._as_frame())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._as_frame())

    def __getattr__(self, name: str) -> Any:
        # only called for names a DeadlineResult lacks: DataFrame ones (iloc, loc, columns, ...)
        if name.startswith("_") or "summary" not in self.__dict__ or not hasattr(pd.DataFrame, name):
            raise AttributeError(f"'DeadlineResult' object has no attribute {name!r}")
        return getattr(self._as_frame(), name)


_COLUMNS = list(DeadlineResult.COLUMNS)


def deadline_effect(
    purchases: pd.DataFrame,
    windows: pd.DataFrame,
    last: float = 0.1,
    *,
    time: str = "time_s",
    start: str = "start_s",
    end: str = "end_s",
    key: str | Sequence[str] | None = None,
    exposure: tuple[str, str] | None = None,
    alternative: str = "two-sided",
) -> DeadlineResult:
    """Share of purchases in the final fraction of each tactic window.

    Parameters
    ----------
    purchases : pandas.DataFrame
        One row per purchase, with its time in column ``time``.
    windows : pandas.DataFrame
        One row per tactic window with columns ``start`` and ``end`` (seconds,
        ``end > start``).  Its index labels the windows (or a ``window`` column
        if present).
    last : float, default 0.1
        Final fraction of each window examined, in (0, 1).
    time, start, end : str
        Column names (defaults ``time_s``, ``start_s``, ``end_s``).
    key : str or list of str, optional
        Column(s) present in both tables (e.g. ``product`` or ``tactic``,
        ``run_id``): a purchase counts for a window only if the keys match.
        Without a key every purchase inside the window counts.
    exposure : (str, str), optional
        Two columns of ``windows``: the at-risk exposure (e.g. viewer-seconds)
        over the whole window and over its final fraction.  The expected share
        is then their ratio instead of ``last``.
    alternative : {"two-sided", "greater", "less"}
        Alternative of the exact binomial test (``"greater"`` = bunching).

    Returns
    -------
    DeadlineResult
        ``.summary``: one row per window and a final ``"total"`` row (also
        ``.total``): ``window, purchases, in_last, share_last,
        expected_share, ratio, p``.

    Notes
    -----
    A purchase counts for a window if ``start <= t <= end``; it is in the final
    fraction if ``t >= end - last * (end - start)``.  Under the null of no
    bunching, given the window's ``n`` purchases, the count in the final
    fraction is Binomial(n, expected_share); ``p`` is the exact binomial test
    (``scipy.stats.binomtest``, the same two-sided rule as R's ``binom.test``).
    The total row pools the windows: with one common expected share it is the
    exact binomial test of the pooled counts; with window-specific shares the
    pooled count is a sum of independent binomials and the test is its normal
    approximation (mean ``sum n_w e_w``, variance ``sum n_w e_w (1 - e_w)``).
    A window without purchases has NaN share, ratio and p (and a
    StatisticalWarning).

    Examples
    --------
    >>> import pandas as pd
    >>> windows = pd.DataFrame({"start_s": [0.0], "end_s": [100.0]}, index=["sale"])
    >>> buys = pd.DataFrame({"time_s": [5, 20, 50, 91, 95, 97, 99, 100]})
    >>> out = deadline_effect(buys, windows, last=0.1)
    >>> out
    <DeadlineResult: 1 window(s), 8 purchases, 5 in the last 10% (share 0.625, expected 0.1, p=0.000432)>
    >>> row = out.summary.iloc[0]
    >>> row["window"], int(row["purchases"]), int(row["in_last"]), float(row["share_last"])
    ('sale', 8, 5, 0.625)
    >>> round(float(out.total["p"]), 5)
    0.00043
    """
    purchases = _checks.check_frame(purchases, "purchases")
    windows = _checks.check_frame(windows, "windows")
    keys = _checks.as_list(key)
    _checks.check_columns(purchases, [time, *keys], "purchases")
    exp_cols = list(exposure) if exposure is not None else []
    if exposure is not None and len(exp_cols) != 2:
        raise DataError(
            f"'exposure' must name two columns of 'windows' (whole window, final "
            f"fraction): got {exposure!r}"
        )
    _checks.check_columns(windows, [start, end, *keys, *exp_cols], "windows")
    frac = _checks.check_probability(last, "last")
    if alternative not in ("two-sided", "greater", "less"):
        raise DataError(
            f"'alternative' must be 'two-sided', 'greater' or 'less': got {alternative!r}"
        )
    t = _checks.numeric(purchases, time, nonnegative=True, what="purchases")
    ws = _checks.numeric(windows, start, nonnegative=True, what="windows")
    we = _checks.numeric(windows, end, nonnegative=True, what="windows")
    _checks.check_start_stop(windows, ws, we, start, end)
    pk = [_checks.keys(purchases, k, "purchases") for k in keys]
    wk = [_checks.keys(windows, k, "windows") for k in keys]
    if exposure is not None:
        e_all = _checks.numeric(windows, exp_cols[0], positive=True, what="windows")
        e_last = _checks.numeric(windows, exp_cols[1], nonnegative=True, what="windows")
        bad = e_last > e_all
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"column {exp_cols[1]!r} of 'windows' must be <= {exp_cols[0]!r} "
                f"(final-fraction exposure within the window's): row "
                f"{windows.index[i]!r} has {e_last[i]!r} > {e_all[i]!r}"
            )
        expected = e_last / e_all
    else:
        expected = np.full(len(windows), frac)
    labels = windows["window"].tolist() if "window" in windows.columns else \
        list(windows.index)
    n_win, k_win = _window_counts(t, ws, we, frac, pk, wk)
    rows = []
    for i in range(len(windows)):
        n, k = int(n_win[i]), int(k_win[i])
        e = float(expected[i])
        if n == 0:
            warnings.warn(
                f"window {labels[i]!r} has no purchases: share and test are NaN",
                StatisticalWarning, stacklevel=2)
            share = ratio = p = float("nan")
        else:
            share = k / n
            ratio = share / e if e > 0 else float("inf")
            p = float(_st.binomtest(k, n, e, alternative=alternative).pvalue)
        rows.append(dict(window=labels[i], purchases=n, in_last=k, share_last=share,
                         expected_share=e, ratio=ratio, p=p))
    out = pd.DataFrame(rows, columns=_COLUMNS)
    N, K, e_tot, share_tot, ratio_tot, p_tot = _pooled(
        out["purchases"], out["in_last"], out["expected_share"], alternative)
    total = pd.DataFrame([dict(window="total", purchases=N, in_last=K,
                               share_last=share_tot, expected_share=e_tot,
                               ratio=ratio_tot, p=p_tot)], columns=_COLUMNS)
    summary = pd.concat([out, total], ignore_index=True)
    return DeadlineResult(summary, frac, alternative, exposure is not None)


def _window_counts(t: np.ndarray, ws: np.ndarray, we: np.ndarray, frac: float,
                   pk: Sequence[np.ndarray] = (), wk: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Each window's purchases (``ws <= t <= we``, keys equal) and those in its final fraction.

    The purchases are sorted once by their keys (as codes shared with the
    windows' keys) and time, so each window's counts are two binary searches
    in its keys' slice: the work grows with purchases plus windows, not their
    product.  Keys compare as ``==`` does (a code per distinct value).
    """
    n_p, n_w = len(t), len(ws)
    code_p, code_w = np.zeros(n_p, np.int64), np.zeros(n_w, np.int64)
    for a, b in zip(pk, wk, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind in "iu" and b.dtype.kind in "iu":  # integer keys (codes): hashed as numbers, the same
            both = np.concatenate([a.astype(np.int64), b.astype(np.int64)])  # codes, not an object per row
        else:
            both = np.concatenate([np.asarray(a, dtype=object), np.asarray(b, dtype=object)])
        c, uniq = pd.factorize(both)
        code_p = code_p * len(uniq) + c[:n_p]
        code_w = code_w * len(uniq) + c[n_p:]
        joint, _ = pd.factorize(np.concatenate([code_p, code_w]))  # keep the codes small
        code_p, code_w = joint[:n_p].astype(np.int64), joint[n_p:].astype(np.int64)
    o = np.lexsort((t, code_p))
    cs, ts = code_p[o], t[o]
    lo, hi = np.searchsorted(cs, code_w, side="left"), np.searchsorted(cs, code_w, side="right")
    cut = np.maximum(we - frac * (we - ws), ws)
    n = np.empty(n_w, np.int64)
    k = np.empty(n_w, np.int64)
    for i in range(n_w):  # each window searches its own keys' slice
        mine = ts[lo[i]:hi[i]]
        end = np.searchsorted(mine, we[i], side="right")
        n[i] = end - np.searchsorted(mine, ws[i], side="left")
        k[i] = end - np.searchsorted(mine, cut[i], side="left")
    return n, k


def _pooled(purchases: pd.Series, in_last: pd.Series, expected: pd.Series,
            alternative: str) -> tuple[int, int, float, float, float, float]:
    """The pooled ``total`` row of :func:`deadline_effect` from the windows' counts and expected shares:
    ``(purchases, in_last, expected_share, share_last, ratio, p)``."""
    N = int(purchases.sum())
    K = int(in_last.sum())
    if N > 0:
        w = purchases.to_numpy(dtype=float)
        e_tot = float((w * expected).sum() / N)
        if np.allclose(expected, expected.iloc[0]):
            p_tot = float(_st.binomtest(K, N, float(expected.iloc[0]), alternative=alternative).pvalue)
        else:
            ev = expected.to_numpy()
            mean = float((w * ev).sum())
            sd = float(np.sqrt((w * ev * (1 - ev)).sum()))
            zz = (K - mean) / sd if sd > 0 else 0.0
            p_tot = float({"two-sided": 2 * _st.norm.sf(abs(zz)),
                           "greater": _st.norm.sf(zz),
                           "less": _st.norm.cdf(zz)}[alternative])
        share_tot = K / N
        ratio_tot = share_tot / e_tot if e_tot > 0 else float("inf")
    else:
        e_tot = float(np.mean(expected.to_numpy()))
        share_tot = ratio_tot = p_tot = float("nan")
    return N, K, e_tot, share_tot, ratio_tot, p_tot
