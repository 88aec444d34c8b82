"""The log-rank test of equal time-to-purchase curves, as R's ``survdiff``.

Do viewers in a lightning-sale arm buy sooner than in the control arm?  At each
purchase time the log-rank test compares the purchases seen in each group with
those expected if every viewer still present had the same hazard, sums
observed minus expected over time (and over strata, e.g. replicates), and
refers the quadratic form to a chi-square with (groups - 1) degrees of freedom.
With ``rho`` the contributions at time t are weighted by ``S(t-)^rho``, the
pooled Kaplan–Meier curve just before t (the Fleming–Harrington G-rho family
as R's ``survdiff(rho = )`` defines it): ``rho = 0`` is the log-rank test,
``rho = 1`` the Peto & Peto modification of the Gehan–Wilcoxon test, which
weighs early differences more.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats as _st

from fomolab.errors import DataError, StatisticalWarning
from fomolab.stats import _checks
from fomolab.stats._result import StatsResult

__all__ = ["LogrankResult", "logrank"]


@dataclass(frozen=True, eq=False)
class LogrankResult(StatsResult):
    """Result of :func:`logrank`.

    Attributes
    ----------
    statistic : float
        The chi-square statistic (R's ``survdiff(...)$chisq``).
    df : int
        Degrees of freedom: groups with a positive expected count, minus one.
    p : float
        Upper-tail chi-square p value.
    summary : pandas.DataFrame
        One row per group, columns ``COLUMNS``: ``group, n, observed,
        expected, oe2_e, oe2_v`` (R's ``N, Observed, Expected, (O-E)^2/E,
        (O-E)^2/V``).
    variance : numpy.ndarray
        The k x k variance matrix of observed minus expected.
    strata : str or None
        The strata column, if any.
    rho : float
        The Fleming–Harrington weight exponent (0: log-rank).
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("group", "n", "observed", "expected", "oe2_e", "oe2_v")
    statistic: float
    df: int
    p: float
    summary: pd.DataFrame
    variance: np.ndarray
    strata: str | None = None
    rho: float = 0.0

    def __repr__(self) -> str:
        r = f", rho={self.rho:g}" if self.rho else ""
        return (f"<LogrankResult: chisq={self.statistic:.4g} on {self.df} df, "
                f"p={self.p:.4g}, {len(self.summary)} groups{r}>")

    def _extra(self) -> list[tuple[str, pd.DataFrame | str]]:
        return [("", f"Chisq= {self.statistic:.4g}  on {self.df} degrees of freedom, p= {self.p:.4g}")]


def _stratum(time: np.ndarray, event: np.ndarray, g: np.ndarray, k: int, rho: float = 0.0
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed, expected and variance contributions of one stratum."""
    exp_ = np.zeros(k)
    var = np.zeros((k, k))
    etimes = np.unique(time[event > 0])
    if len(etimes) == 0:
        return np.bincount(g, weights=event, minlength=k), exp_, var
    # at risk in each group at each event time: time_i >= t
    order = np.argsort(time, kind="mergesort")
    ts, gs, es = time[order], g[order], event[order]
    first = np.searchsorted(ts, etimes, side="left")  # first index with time >= t
    n_at = np.zeros((len(etimes), k))
    d_at = np.zeros((len(etimes), k))
    for j in range(k):
        in_j = (gs == j).astype(float)
        tail = np.concatenate((np.cumsum(in_j[::-1])[::-1], [0.0]))
        n_at[:, j] = tail[first]
        dj = np.bincount(np.searchsorted(etimes, ts[(gs == j) & (es > 0)]),
                         minlength=len(etimes))
        d_at[:, j] = dj
    n = n_at.sum(axis=1)
    d = d_at.sum(axis=1)
    if rho:
        # R's survdiff2.c: the pooled KM of the stratum, left-continuous
        km_left = np.concatenate(([1.0], np.cumprod(1.0 - d / n)[:-1]))
        wt = km_left ** rho
    else:
        wt = np.ones(len(etimes))
    obs = (d_at * wt[:, None]).sum(axis=0)
    exp_ = (n_at * (wt * d / n)[:, None]).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        fac = np.where(n > 1, wt * wt * d * (n - d) / (n * n * (n - 1.0)), 0.0)
    # V_jl = sum_t fac * (n * n_j * delta_jl - n_j * n_l)
    var = np.diag((fac * n) @ n_at) - (n_at * fac[:, None]).T @ n_at
    return obs, exp_, var


def logrank(
    data: pd.DataFrame,
    duration: str,
    event: str,
    by: str,
    strata: str | None = None,
    *,
    rho: float = 0.0,
) -> LogrankResult:
    """Log-rank (Mantel–Haenszel) test of k survival curves, R's ``survdiff``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    duration : str
        Column of follow-up times (>= 0).
    event : str
        Column of 0/1 (or boolean) event indicators.
    by : str
        Column defining the k >= 2 groups compared.
    strata : str, optional
        Column of strata (e.g. replicate): observed, expected and variance are
        summed over strata, each with its own risk sets.
    rho : float, default 0
        Weight exponent: each event time counts with weight ``S(t-)^rho``, the
        pooled Kaplan–Meier curve (within the stratum) just before t.  ``0`` is
        the log-rank test; ``1`` the Peto–Peto (Prentice) test, sensitive to
        early differences.  Observed and expected counts are then weighted
        sums, as R prints them.

    Returns
    -------
    LogrankResult
        ``statistic``, ``df``, ``p`` and a per-group ``summary``.

    Notes
    -----
    Equals ``survdiff(Surv(duration, event) ~ by + strata(strata), rho = rho)``.
    As in R, groups whose expected count is zero (never at risk at
    any event time) are dropped from the test and the degrees of freedom; the
    statistic uses the first k - 1 of the remaining groups.  A group without
    events, or a stratum without events, is kept exactly as R keeps it.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6, 7, 8],
    ...                    "e": [1, 1, 1, 0, 1, 1, 0, 1],
    ...                    "arm": ["a", "a", "a", "a", "b", "b", "b", "b"]})
    >>> res = logrank(df, "t", "e", by="arm")
    >>> res.df, round(res.statistic, 3)
    (1, 4.213)
    >>> res
    <LogrankResult: chisq=4.213 on 1 df, p=0.04012, 2 groups>
    """
    data = _checks.check_frame(data)
    _checks.check_columns(data, [duration, event, by, strata])
    t = _checks.numeric(data, duration, nonnegative=True)
    e = _checks.events01(data, event)
    gv = _checks.keys(data, by)
    levels = list(pd.unique(gv))
    with contextlib.suppress(TypeError):  # mixed types: keep the order of appearance
        levels.sort()
    k = len(levels)
    if k < 2:
        raise DataError(
            f"column {by!r} must hold at least 2 groups to compare: it holds "
            f"only {levels[0]!r}"
        )
    try:
        rho = float(rho)
    except (TypeError, ValueError):
        raise DataError(f"'rho' must be a number >= 0: got {rho!r}") from None
    if not (np.isfinite(rho) and rho >= 0):
        raise DataError(f"'rho' must be a number >= 0: got {rho!r}")
    g = pd.Categorical(gv, categories=levels).codes.astype(int)
    sv = _checks.keys(data, strata) if strata is not None else np.zeros(len(t))
    obs = np.zeros(k)
    exp_ = np.zeros(k)
    var = np.zeros((k, k))
    for s in pd.unique(sv):
        m = sv == s
        o, ex, v = _stratum(t[m], e[m], g[m], k, rho)
        obs += o
        exp_ += ex
        var += v
    keep = exp_ > 0
    if e.sum() == 0:
        warnings.warn(
            f"column {event!r} has no events: the log-rank test has nothing to "
            "compare (statistic and p are NaN on 0 degrees of freedom)",
            StatisticalWarning, stacklevel=2)
        chisq = float("nan")
    elif keep.sum() < 2:
        chisq = 0.0
    else:
        diff = (obs - exp_)[keep][1:]
        vv = var[np.ix_(keep, keep)][1:, 1:]
        try:
            chisq = float(diff @ np.linalg.solve(vv, diff))
        except np.linalg.LinAlgError:
            chisq = float("nan")
        if not np.isfinite(chisq):
            warnings.warn(
                "log-rank variance matrix is singular (e.g. every subject at "
                "risk dies at the same time): the test is undefined, statistic "
                "and p are NaN (R's survdiff stops with an error here)",
                StatisticalWarning, stacklevel=2)
            chisq = float("nan")
    df = max(int(keep.sum()) - 1, 0)
    p = float(_st.chi2.sf(chisq, df)) if df > 0 and np.isfinite(chisq) else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        summary = pd.DataFrame({
            "group": levels,
            "n": np.bincount(g, minlength=k),
            "observed": obs,
            "expected": exp_,
            "oe2_e": (obs - exp_) ** 2 / exp_,
            "oe2_v": (obs - exp_) ** 2 / np.diag(var),
        })
    return LogrankResult(chisq, df, p, summary[list(LogrankResult.COLUMNS)], var, strata,
                         rho)
