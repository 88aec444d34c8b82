"""Piecewise-exponential Poisson model on aggregated person-time.

A proportional-hazards model whose baseline hazard is constant on each piece
of the time axis is a Poisson regression of the event counts of each
(piece, covariate pattern) cell, with ``log(exposure)`` as offset and one
fixed effect per piece.  The data it needs are sums — person-time and events
per cell — so a folder of any size reduces, run by run, to a table whose size
is pieces x patterns, and the fit costs nothing next to reading the rows.

Two kinds of pieces (:func:`person_time`):

* ``breaks=[...]`` — pieces between given times (e.g. the tactic epochs), with
  each cell's exposure the person-time at risk in the piece.  The hazard
  ratios approximate the Cox model's: they coincide when the baseline hazard
  is constant within each piece, and differ by how much it varies there.
* ``breaks="event_times"`` — one piece per distinct event time, with each
  cell's exposure the number at risk at that time (the person-time of an
  infinitesimal piece ending there, up to its common length, which the piece
  effect absorbs).  Then the profile likelihood of the Poisson model *is* the
  Cox partial likelihood with Breslow ties: same coefficients, same
  model-based and cluster-robust standard errors, same log likelihood.

The fit (:func:`piecewise_exponential`) eliminates the piece effects
analytically (their maximum given the coefficients is
``events_k / sum(exposure * exp(x'beta))``) and maximises the profile
likelihood by Newton–Raphson as :func:`fomolab.stats.cox` does, so thousands
of pieces cost no more than a few.  The iterations see the cells only
through the events and exposure of each (piece, covariate pattern), so cells
of one piece and pattern (e.g. of different clusters) are pooled first; the
clustered errors take each cell's score once, at the estimate.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats as _st

from fomolab.errors import ConvergenceWarning, DataError
from fomolab.stats import _checks, _newton
from fomolab.stats._result import StatsResult

__all__ = ["PiecewiseExponentialResult", "person_time", "piecewise_exponential"]

_ITER_MAX = 30


def person_time(
    data: pd.DataFrame,
    duration: str,
    event: str,
    covariates: str | Sequence[str],
    *,
    start: str | None = None,
    breaks: Sequence[float] | np.ndarray | str = "event_times",
    event_times: Sequence[float] | np.ndarray | None = None,
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
) -> pd.DataFrame:
    """Aggregate ``(start, stop]`` rows into person-time and events per (piece, pattern).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject or per ``(start, stop]`` interval (e.g.
        :func:`fomolab.stats.episodes`).
    duration, event : str
        Columns of stop times and 0/1 event indicators.
    covariates : str or list of str
        Discrete covariate columns (tactic indicators, arm dummies): each
        combination of their values is one pattern.  Continuous covariates
        make as many patterns as rows, which defeats the aggregation.
    start : str, optional
        Column of interval starts (at risk for ``start < t <= stop``); 0 without it.
    breaks : sequence of float or "event_times", default "event_times"
        Piece boundaries: pieces are ``(b_k, b_k+1]`` from 0 to infinity
        (boundaries <= 0 are ignored); exposure is person-time.
        ``"event_times"``: one piece per distinct event time, exposure the
        number at risk then, which makes :func:`piecewise_exponential` equal
        the Cox model with Breslow ties.
    event_times : array of float, optional
        With ``breaks="event_times"``: the distinct event times of the whole
        data set (default: those of ``data``).  Give them to aggregate a large
        data set part by part (every part needs every part's event times);
        every event of ``data`` must be at one of them.
    strata : str or list of str, optional
        Columns kept as keys of the table, so that the fit can give each
        stratum its own piece effects.
    cluster : str, optional
        Column kept as a key, for cluster-robust standard errors.

    Returns
    -------
    pandas.DataFrame
        One row per (strata, piece, cluster, pattern) cell with positive
        exposure: the key columns, ``piece`` (0, 1, ...), ``piece_start``,
        ``piece_stop``, ``exposure`` and ``events``.  Tables of disjoint parts
        of the data (e.g. one run each) with the same ``breaks`` add up:
        ``pd.concat(parts).groupby(keys).sum()`` is the table of the whole.

    Notes
    -----
    O(n log n) in the rows (sorts and cumulative sums, no Python loop over
    rows), O(pieces x patterns) in memory.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"t0": [0, 0, 5], "t": [5, 8, 9], "e": [0, 1, 1], "x": [0, 0, 1]})
    >>> person_time(d, "t", "e", "x", start="t0", breaks=[6])
       piece  piece_start  piece_stop  x  exposure  events
    0      0          0.0         6.0  0      11.0       0
    1      0          0.0         6.0  1       1.0       0
    2      1          6.0         inf  0       2.0       1
    3      1          6.0         inf  1       3.0       1
    """
    data = _checks.check_frame(data)
    covs = _checks.as_list(covariates)
    strata_cols = _checks.as_list(strata)
    keys = [*strata_cols, *([cluster] if cluster else []), *covs]
    _checks.check_columns(data, [duration, event, start, *keys])
    stop = _checks.numeric(data, duration, nonnegative=True)
    st = np.zeros(len(stop)) if start is None else _checks.numeric(data, start, nonnegative=True)
    if start is not None:
        _checks.check_start_stop(data, st, stop, start, duration)
    ev = _checks.events01(data, event).astype(bool)
    if keys:
        g = data.groupby(keys, sort=True, observed=True, dropna=False).ngroup().to_numpy()
        first = pd.Series(np.arange(len(g))).groupby(g).first().to_numpy()
        patterns = data[keys].iloc[first].reset_index(drop=True)
    else:
        g = np.zeros(len(stop), dtype=np.int64)
        patterns = pd.DataFrame(index=range(1))
    n_pat = len(patterns)
    if isinstance(breaks, str):
        if breaks != "event_times":
            raise DataError(f"'breaks' must be piece boundaries or 'event_times': got {breaks!r}")
        tau = np.unique(stop[ev] if event_times is None else np.asarray(event_times, float))
        missing = ~np.isin(stop[ev], tau)
        if missing.any():
            raise DataError(f"'event_times' must hold every event time of column {duration!r}: "
                            f"{stop[ev][missing][0]!r} is not among them")
        # at risk at tau: rows with stop >= tau minus rows with start >= tau, per pattern
        exposure = (_count_ge(stop, g, n_pat, tau) - _count_ge(st, g, n_pat, tau)).astype(float)
        k_ev = np.searchsorted(tau, stop[ev])
        events = np.bincount(g[ev] * len(tau) + k_ev, minlength=n_pat * len(tau))
        lo = np.concatenate(([0.0], tau[:-1]))
        hi = tau
    else:
        b = np.asarray(breaks, dtype=float)
        if b.ndim != 1 or not np.all(np.isfinite(b)):
            raise DataError(f"'breaks' must be a list of finite times: got {breaks!r}")
        # the same pieces whatever the data: parts of a folder add up
        edges = np.unique(np.concatenate(([0.0], b[b > 0], [np.inf])))
        # F(t) = sum over rows of the time at risk before t, per pattern
        F = _at_risk_before(stop, g, n_pat, edges) - _at_risk_before(st, g, n_pat, edges)
        exposure = np.diff(F, axis=1).ravel()
        k_ev = np.clip(np.searchsorted(edges, stop[ev], side="left") - 1, 0, len(edges) - 2)
        events = np.bincount(g[ev] * (len(edges) - 1) + k_ev, minlength=exposure.size)
        lo, hi = edges[:-1], edges[1:]
    n_piece = len(lo)
    pat = np.repeat(np.arange(n_pat), n_piece)
    piece = np.tile(np.arange(n_piece), n_pat)
    keep = exposure > 0
    out = patterns.iloc[pat[keep]].reset_index(drop=True)
    out.insert(0, "piece", piece[keep])
    out.insert(1, "piece_start", lo[piece[keep]])
    out.insert(2, "piece_stop", hi[piece[keep]])
    out["exposure"] = exposure[keep]
    out["events"] = events[keep]
    front = [*strata_cols, "piece", "piece_start", "piece_stop",
             *([cluster] if cluster else []), *covs, "exposure", "events"]
    return out[front].sort_values([*strata_cols, "piece"], kind="stable").reset_index(drop=True)


def _count_ge(t: np.ndarray, g: np.ndarray, n_pat: int, tau: np.ndarray) -> np.ndarray:
    """``[pattern, k]``: rows of the pattern with ``t >= tau[k]`` (flattened)."""
    width = len(tau) + 1
    # rank of each time among tau: t >= tau[k]  iff  k < searchsorted(tau, t, "right")
    r = np.searchsorted(tau, t, side="right")
    c = np.bincount(g * width + r, minlength=n_pat * width).reshape(n_pat, width)
    ge = np.cumsum(c[:, ::-1], axis=1)[:, ::-1]  # ge[:, j] = rows with rank >= j
    return np.asarray(ge[:, 1:].ravel())


def _at_risk_before(t: np.ndarray, g: np.ndarray, n_pat: int, edges: np.ndarray) -> np.ndarray:
    """``[pattern, j]``: the sum of ``min(t, edges[j])`` over the pattern's rows."""
    width = len(edges) + 1
    r = np.searchsorted(edges, t, side="left")  # t <= edges[j]  iff  r <= j
    idx = g * width + r
    cnt = np.bincount(idx, minlength=n_pat * width).reshape(n_pat, width)
    tot = np.bincount(idx, weights=t, minlength=n_pat * width).reshape(n_pat, width)
    below_n = np.cumsum(cnt, axis=1)[:, :-1]  # rows with t <= edges[j]
    below_s = np.cumsum(tot, axis=1)[:, :-1]
    above = cnt.sum(axis=1, keepdims=True) - below_n
    with np.errstate(invalid="ignore"):  # inf * 0 at the last edge
        return np.asarray(below_s + np.where(above > 0, edges[None, :] * above, 0.0))


@dataclass(frozen=True, eq=False)
class PiecewiseExponentialResult(StatsResult):
    """A fitted piecewise-exponential model, laid out like :class:`~fomolab.stats.CoxResult`.

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by covariate, columns ``COLUMNS`` (as ``CoxResult``): with a
        cluster, ``se`` is the robust (sandwich) error and ``naive_se`` the
        model-based one.
    tests : pandas.DataFrame
        ``likelihood_ratio, wald, score`` with ``statistic, df, p``.
    loglik : tuple of float
        Profile log likelihood at 0 and at the estimate, without the terms
        free of the coefficients (with one piece per event time, the Breslow
        log partial likelihood).
    vcov, naive_vcov : pandas.DataFrame
    baseline : pandas.DataFrame
        Per piece (and stratum): ``events``, ``exposure`` and ``hazard``, the
        fitted baseline rate per unit of exposure at covariates 0.
    cells, events : int
    exposure : float
    converged : bool
    iterations : int
    cluster : str or None
    conf_level : float
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("coef", "hazard_ratio", "se", "z", "p", "ci_lower",
                                          "ci_upper", "naive_se")
    summary: pd.DataFrame
    tests: pd.DataFrame
    loglik: tuple[float, float]
    vcov: pd.DataFrame
    naive_vcov: pd.DataFrame
    baseline: pd.DataFrame
    cells: int
    events: int
    exposure: float
    converged: bool
    iterations: int
    cluster: str | None = None
    conf_level: float = 0.95

    def __repr__(self) -> str:
        cl = f", cluster={self.cluster!r}" if self.cluster else ""
        return (f"<PiecewiseExponentialResult: {len(self.summary)} covariate(s), "
                f"{len(self.baseline)} piece(s), {self.cells} cells, events={self.events}{cl}>")

    def _show_index(self) -> bool:
        return True

    def _extra(self) -> list[tuple[str, pd.DataFrame | str]]:
        return [("", self.tests)]


def _profile(beta: np.ndarray, X: np.ndarray, n: np.ndarray, y: np.ndarray, k: np.ndarray,
             d: np.ndarray, K: int) -> tuple[float, np.ndarray, np.ndarray]:
    eta = X @ beta
    w = n * np.exp(eta)
    p = X.shape[1]
    s0 = np.bincount(k, weights=w, minlength=K)
    s1 = np.empty((K, p))
    for j in range(p):
        s1[:, j] = np.bincount(k, weights=w * X[:, j], minlength=K)
    pos = d > 0
    ll = float(y @ eta - (d[pos] * np.log(s0[pos])).sum())
    a = np.zeros_like(s1)
    a[pos] = s1[pos] / s0[pos, None]
    u = y @ X - d @ a
    info = np.zeros((p, p))
    for i in range(p):
        for j in range(i, p):
            s2 = np.bincount(k, weights=w * X[:, i] * X[:, j], minlength=K)
            v = float((d[pos] * (s2[pos] / s0[pos] - a[pos, i] * a[pos, j])).sum())
            info[i, j] = info[j, i] = v
    return ll, u, info


#: ``scores(m, z) -> D``: each cluster's score at the estimate, ``sum (y - exposure * m[c]) * z[c]`` over its
#: cells, where ``c`` is the pooled cell (piece and pattern) a cell belongs to.
Scores = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _pool(data: pd.DataFrame, covs: list[str], kcode: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pooled cell of each cell (the same piece key and covariate values), numbered by first appearance,
    and each pooled cell's first cell."""
    combo = kcode.astype(np.int64)
    width = int(combo.max()) + 1
    for c in covs:
        code, values = pd.factorize(_checks.numeric(data, c))
        if width * len(values) >= 1 << 62:  # renumber what is there before the codes overflow
            combo, seen = pd.factorize(combo)
            width = len(seen)
        combo = combo * len(values) + code
        width *= len(values)
        del code
    g, _ = pd.factorize(combo)
    del combo
    # numbered by first appearance: a pooled cell's first cell is where the running maximum grows
    top = np.maximum.accumulate(g)
    first = np.flatnonzero(np.concatenate(([True], top[1:] > top[:-1])))
    small = np.int32 if len(first) < np.iinfo(np.int32).max else np.int64
    return g.astype(small), first


def _fit(n: np.ndarray, y: np.ndarray, k: np.ndarray, X: np.ndarray, K: int, covs: list[str], level: float,
         baseline: pd.DataFrame, *, cells: int, events: int, exposure: float, scores: Scores | None = None,
         cluster: str | None = None) -> PiecewiseExponentialResult:
    """The fit on pooled cells: exposure ``n``, events ``y``, piece key ``k`` (0 .. K - 1) and covariates
    ``X`` (changed in place) of each (piece, pattern) cell; ``scores`` gives the clustered errors' per-cluster
    scores from the original cells.  ``baseline``: per piece key, its key columns, ``events`` and ``exposure``;
    ``cells``, ``events``, ``exposure``: the original cells' number and totals.
    """
    for j, c in enumerate(covs):
        if np.all(X[:, j] == X[0, j]):
            raise DataError(f"covariate {c!r} is constant ({X[0, j]!r} in every cell): drop it")
    d = np.bincount(k, weights=y, minlength=K)
    centre = (n @ X) / n.sum()
    Xc = X  # centred in place: the same numbers as X - centre
    Xc -= centre
    del X
    # the rank of the pooled cells' covariates is that of every cell's (the same distinct rows)
    if np.linalg.matrix_rank(Xc) < Xc.shape[1]:
        raise DataError(f"covariates {covs} are collinear: drop a redundant one")
    p = len(covs)
    beta = np.zeros(p)
    ll0, u0, i0 = _profile(beta, Xc, n, y, k, d, K)
    # a covariate with one value in every cell of each piece has no information: the piece effects absorb it
    scale = np.maximum((n @ Xc**2) / n.sum(), 1e-300) * max(float(d.sum()), 1.0)
    _newton.refuse_flat(covs, np.diag(i0), scale)
    try:
        score = float(u0 @ np.linalg.solve(i0, u0))
        new = beta + np.linalg.solve(i0, u0)
    except np.linalg.LinAlgError:
        raise DataError("the covariates are collinear within pieces: drop a redundant one") from None
    beta, ll, _, info, converged, iters = _newton.maximise(lambda b: _profile(b, Xc, n, y, k, d, K), beta,
                                                           ll0, u0, i0, new, iter_max=_ITER_MAX)
    if not converged:
        warnings.warn(f"piecewise-exponential fit did not converge in {_ITER_MAX} iterations; "
                      "estimates are unreliable (an infinite coefficient?)",
                      ConvergenceWarning, stacklevel=3)
    var = _newton.inverse(info)
    e = np.exp(Xc @ beta)
    s0 = np.bincount(k, weights=n * e, minlength=K)
    rate = np.divide(d, s0, out=np.zeros(K), where=s0 > 0)
    use_var = var
    if scores is not None:
        xbar = np.empty((K, p))
        for j in range(p):
            xbar[:, j] = np.bincount(k, weights=n * e * Xc[:, j], minlength=K)
        xbar /= np.where(s0 > 0, s0, 1.0)[:, None]
        # a cell's score: (y - mu) (x - xbar), mu = exposure * exp(x'beta) * rate of its piece
        D = scores(e * rate[k], Xc - xbar[k])
        use_var = var @ (D.T @ D) @ var
    se = np.sqrt(np.diag(use_var))
    z = beta / se
    q = float(_st.norm.ppf(1.0 - (1.0 - level) / 2.0))
    summary = pd.DataFrame({
        "coef": beta, "hazard_ratio": np.exp(beta), "se": se, "z": z,
        "p": 2.0 * _st.norm.sf(np.abs(z)),
        "ci_lower": np.exp(beta - q * se), "ci_upper": np.exp(beta + q * se),
        "naive_se": np.sqrt(np.diag(var)),
    }, index=pd.Index(covs, name="covariate"))
    try:
        wald = float(beta @ np.linalg.solve(use_var, beta))
    except np.linalg.LinAlgError:
        wald = float("nan")
    tests = pd.DataFrame({"statistic": pd.Series({"likelihood_ratio": 2.0 * (ll - ll0),
                                                  "wald": wald, "score": score}), "df": p})
    tests["p"] = _st.chi2.sf(tests["statistic"], p)
    baseline["hazard"] = rate * np.exp(-centre @ beta)
    return PiecewiseExponentialResult(
        summary=summary, tests=tests, loglik=(ll0, ll),
        vcov=pd.DataFrame(use_var, index=covs, columns=covs),
        naive_vcov=pd.DataFrame(var, index=covs, columns=covs), baseline=baseline,
        cells=cells, events=events, exposure=exposure,
        converged=converged, iterations=iters, cluster=cluster, conf_level=level)


def piecewise_exponential(
    data: pd.DataFrame,
    *,
    covariates: str | Sequence[str],
    exposure: str = "exposure",
    events: str = "events",
    pieces: str = "piece",
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
    conf_level: float = 0.95,
) -> PiecewiseExponentialResult:
    """Poisson regression of event counts on covariates, offset log exposure, one effect per piece.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per cell, as :func:`person_time` returns (any table of
        exposures and counts will do).
    covariates : str or list of str
        Numeric covariate columns.
    exposure : str, default "exposure"
        Column of person-time (or number at risk), > 0.
    events : str, default "events"
        Column of event counts, >= 0.
    pieces : str, default "piece"
        Column of piece ids: each gets its own baseline rate.
    strata : str or list of str, optional
        Columns whose levels get their own piece effects (the baseline of each
        stratum is free, as in a stratified Cox model).
    cluster : str, optional
        Column of cluster ids: robust sandwich standard errors (from the
        per-cell score contributions summed by cluster, as R's ``coxph``
        with ``cluster()``; no small-sample factor).
    conf_level : float, default 0.95

    Returns
    -------
    PiecewiseExponentialResult

    Warns
    -----
    ConvergenceWarning
        If Newton–Raphson does not converge.

    Examples
    --------
    >>> import pandas as pd
    >>> cells = pd.DataFrame({"piece": [0, 0, 1, 1], "x": [0, 1, 0, 1],
    ...                       "exposure": [100.0, 100.0, 50.0, 50.0], "events": [10, 20, 5, 10]})
    >>> fit = piecewise_exponential(cells, covariates="x")
    >>> round(float(fit.summary.loc["x", "hazard_ratio"]), 6)
    2.0
    """
    data = _checks.check_frame(data)
    covs = _checks.as_list(covariates)
    if not covs:
        raise DataError("'covariates' must name at least one column: got none")
    strata_cols = _checks.as_list(strata)
    _checks.check_columns(data, [exposure, events, pieces, cluster, *covs, *strata_cols])
    level = _checks.check_probability(conf_level, "conf_level")
    n = _checks.numeric(data, exposure, nonnegative=True)
    y = _checks.numeric(data, events, nonnegative=True)
    if (n <= 0).any():
        i = int(np.flatnonzero(n <= 0)[0])
        raise DataError(f"column {exposure!r} must be > 0 in every cell: row {i} has {n[i]!r}")
    if y.sum() == 0:
        raise DataError(f"column {events!r} has no events: nothing to fit")
    key_cols = [*strata_cols, pieces]
    kcode = (data.groupby(key_cols, sort=True, observed=True).ngroup().to_numpy()
             if len(key_cols) > 1 else pd.factorize(data[pieces], sort=True)[0])
    K = int(kcode.max()) + 1
    first_k = pd.Series(np.arange(len(kcode))).groupby(kcode).first().to_numpy()
    baseline = data[key_cols].iloc[first_k].reset_index(drop=True)
    baseline["events"] = np.bincount(kcode, weights=y, minlength=K)
    baseline["exposure"] = np.bincount(kcode, weights=n, minlength=K)
    # the Newton iterations need the cells only through the events and exposure of each (piece, pattern):
    # they run on those sums; the clustered errors take the cells themselves, once, at the estimate
    g, first = _pool(data, covs, kcode)
    G = len(first)
    n_p = np.bincount(g, weights=n, minlength=G)
    y_p = np.bincount(g, weights=y, minlength=G)
    X = np.empty((G, len(covs)))
    for j, c in enumerate(covs):
        X[:, j] = _checks.numeric(data, c)[first]
    k_p = kcode[first]
    del kcode
    scores: Scores | None = None
    if cluster is not None:
        codes = pd.factorize(data[cluster])[0]

        def by_cluster(m: np.ndarray, z: np.ndarray) -> np.ndarray:
            r = y - n * m[g]
            C = int(codes.max()) + 1
            # each cluster's sum in the cells' order, one covariate at a time (a few arrays of cells at once)
            return np.column_stack([np.bincount(codes, weights=r * z[g, j], minlength=C)
                                    for j in range(z.shape[1])])

        scores = by_cluster
    return _fit(n_p, y_p, k_p, X, K, covs, level, baseline, cells=len(n), events=int(y.sum()),
                exposure=float(n.sum()), scores=scores, cluster=cluster)
