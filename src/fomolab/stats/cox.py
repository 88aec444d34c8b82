"""Cox proportional-hazards regression of time to purchase, as R's ``coxph``.

The simulation's purchase hazard is proportional by construction, so the Cox
model is its natural read-out: a tactic's hazard ratio says how much faster the
viewers exposed to it buy.  This module fits the model with the numbers R's
``survival::coxph`` prints: Efron (default) or Breslow ties, strata with their
own baseline hazards, counting-process ``(start, stop]`` rows for time-varying
covariates, and cluster-robust (sandwich) standard errors.

Why not statsmodels' ``PHReg``?  It is used in the tests as a cross-check, but
it cannot give R's numbers reliably:

* it defaults to Breslow ties, where R (and this module) default to Efron;
* it counts a row as at risk at ``t == entry``, while R's ``(start, stop]``
  rows are at risk only for ``start < t <= stop``;
* its cluster-robust covariance is wrong under Efron ties and NaN when a row is
  censored before the first event of its stratum;
* it reports neither the likelihood-ratio nor the score test nor the
  concordance; and it accepts a 1/2 status code silently.

So the partial likelihood, its score and information are implemented here with
numpy (with case weights as R's ``coxph(weights = )``: under Efron ties
each tied death counts with the mean weight of its tie group) and maximised
by Newton–Raphson exactly as R's ``coxph.fit`` /
``agreg.fit`` do (start at 0, step-halving when the log likelihood falls,
converged when the relative change of the log likelihood is <= 1e-9, at most
20 iterations).  Risk-set sums use sorted cumulative sums on exact integer
time ranks, so ties and the ``(start, stop]`` convention are exact, with no
epsilon shifts.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats as _st

from fomolab.errors import DataError, StatisticalWarning
from fomolab.stats import _checks, _newton
from fomolab.stats._result import StatsResult

__all__ = ["CoxResult", "cox"]



class _RiskSets:
    """Sorted risk-set bookkeeping for (stratum, start, stop, event) rows."""

    def __init__(self, start: np.ndarray | None, stop: np.ndarray, event: np.ndarray,
                 strata: np.ndarray) -> None:
        n = len(stop)
        # exact integer ranks of every time: ties stay ties, no float fuzz
        times = stop if start is None else np.concatenate((stop, start))
        uniq, inv = np.unique(times, return_inverse=True)
        r_stop = inv[:n] + 1
        r_start = np.zeros(n, dtype=np.int64) if start is None else inv[n:] + 1
        width = len(uniq) + 2
        self.key_stop = strata.astype(np.int64) * width + r_stop
        self.key_start = strata.astype(np.int64) * width + r_start
        self.event = event.astype(bool)
        self.strata = strata
        self.has_start = start is not None
        self.n = n
        self.o_stop = np.argsort(self.key_stop, kind="mergesort")
        self.o_start = np.argsort(self.key_start, kind="mergesort")
        ks = self.key_stop[self.o_stop]
        kst = self.key_start[self.o_start]
        ev_rows = np.flatnonzero(self.event)
        ev_rows = ev_rows[np.argsort(self.key_stop[ev_rows], kind="mergesort")]
        self.ev_rows = ev_rows
        ev_keys = self.key_stop[ev_rows]
        self.gkeys, self.ev_group, counts = np.unique(ev_keys, return_inverse=True,
                                                      return_counts=True)
        self.ev_d = counts[self.ev_group].astype(float)
        # position of each event within its tie group: 0..d-1
        gstart = np.concatenate(([0], np.cumsum(counts)[:-1]))
        self.ev_l = (np.arange(len(ev_rows)) - gstart[self.ev_group]).astype(float)
        # rows with stop >= t  minus rows with start >= t  =  start < t <= stop
        self.i_stop = np.asarray(np.searchsorted(ks, self.gkeys, side="left"))
        self.i_start = np.asarray(np.searchsorted(kst, self.gkeys, side="left"))
        self.n_groups = len(self.gkeys)
        # for residuals: event-time groups in (start_i, stop_i]
        self.lo = np.searchsorted(self.gkeys, self.key_start, side="right")
        self.hi = np.searchsorted(self.gkeys, self.key_stop, side="right")
        self.row_group = np.full(n, -1)
        self.row_group[ev_rows] = self.ev_group
        self.wt = np.ones(n)
        self.piece_wt = np.ones(len(ev_rows))

    def set_weights(self, wt: np.ndarray) -> None:
        """Case weights; each tied death's piece counts with its group's mean weight."""
        self.wt = wt
        tot = np.bincount(self.ev_group, weights=wt[self.ev_rows], minlength=self.n_groups)
        self.piece_wt = (tot / np.bincount(self.ev_group, minlength=self.n_groups))[self.ev_group]

    def _tail(self, values: np.ndarray, order: np.ndarray, idx: np.ndarray) -> np.ndarray:
        v = values[order]
        cs = np.cumsum(v[::-1], axis=0)[::-1]
        cs = np.concatenate((cs, np.zeros((1,) + v.shape[1:])), axis=0)
        return np.asarray(cs[idx])

    def risk_sums(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` over each event time's risk set."""
        return np.asarray(self._tail(values, self.o_stop, self.i_stop)
                          - self._tail(values, self.o_start, self.i_start))

    def death_sums(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` over the deaths at each event time."""
        out = np.zeros((self.n_groups,) + values.shape[1:])
        np.add.at(out, self.ev_group, values[self.ev_rows])
        return out


def _efron_frac(rs: _RiskSets, ties: str) -> np.ndarray:
    return rs.ev_l / rs.ev_d if ties == "efron" else np.zeros(len(rs.ev_rows))


def _loglik(beta: np.ndarray, X: np.ndarray, rs: _RiskSets, ties: str,
            need: int = 2) -> tuple[float, np.ndarray, np.ndarray]:
    """Partial log likelihood, score and information at ``beta``."""
    eta = X @ beta
    w = rs.wt * np.exp(eta)
    wx = w[:, None] * X
    f = _efron_frac(rs, ties)
    g = rs.ev_group
    pw = rs.piece_wt
    dw = rs.wt[rs.ev_rows]
    s0 = rs.risk_sums(w)[g] - f * rs.death_sums(w)[g]
    s1 = rs.risk_sums(wx)[g] - f[:, None] * rs.death_sums(wx)[g]
    ll = float(dw @ eta[rs.ev_rows] - pw @ np.log(s0))
    a = s1 / s0[:, None]
    u = dw @ X[rs.ev_rows] - pw @ a
    if need < 2:
        return ll, u, np.empty((0, 0))
    wxx = wx[:, :, None] * X[:, None, :]
    s2 = rs.risk_sums(wxx)[g] - f[:, None, None] * rs.death_sums(wxx)[g]
    info = np.einsum("k,kij->ij", pw, s2 / s0[:, None, None]) - (a * pw[:, None]).T @ a
    return ll, u, info


def _score_residuals(beta: np.ndarray, X: np.ndarray, rs: _RiskSets, ties: str
                     ) -> np.ndarray:
    """Score residuals per row, R's ``residuals(fit, type = "score")``.

    For Efron ties the hazard increment at a time with d deaths is split in d
    pieces with denominators ``S0 - (l/d) S0_D``; a row dying there is at risk
    for piece l with weight ``1 - l/d`` and owns 1/d of each piece's jump.
    """
    eta = X @ beta
    w = rs.wt * np.exp(eta)
    wx = w[:, None] * X
    f = _efron_frac(rs, ties)
    g = rs.ev_group
    den = (rs.risk_sums(w)[g] - f * rs.death_sums(w)[g]) / rs.piece_wt  # per unit hazard jump
    w = np.exp(eta)  # the row's own risk score; its case weight multiplies outside
    xbar = (rs.risk_sums(wx)[g] - f[:, None] * rs.death_sums(wx)[g]) / (den * rs.piece_wt)[:, None]
    G, p = rs.n_groups, X.shape[1]
    A = np.bincount(g, weights=1.0 / den, minlength=G)
    B = np.zeros((G, p))
    np.add.at(B, g, xbar / den[:, None])
    A2 = np.bincount(g, weights=(1.0 - f) / den, minlength=G)
    B2 = np.zeros((G, p))
    np.add.at(B2, g, xbar * ((1.0 - f) / den)[:, None])
    mbar = np.zeros((G, p))
    np.add.at(mbar, g, xbar / rs.ev_d[:, None])  # mean of the d piece means
    cA = np.concatenate(([0.0], np.cumsum(A)))
    cB = np.concatenate((np.zeros((1, p)), np.cumsum(B, axis=0)))
    sumA = cA[rs.hi] - cA[rs.lo]
    sumB = cB[rs.hi] - cB[rs.lo]
    ev = rs.ev_rows
    ge = rs.row_group[ev]
    sumA[ev] += A2[ge] - A[ge]
    sumB[ev] += B2[ge] - B[ge]
    resid = -w[:, None] * (X * sumA[:, None] - sumB)
    resid[ev] += X[ev] - mbar[ge]
    return np.asarray(resid)


def _solve_pd(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.linalg.solve(m, v)


def _check_varies_at_risk(i0: np.ndarray, X: np.ndarray, rs: _RiskSets,
                          names: Sequence[str]) -> None:
    """Refuse a covariate that takes one value among everyone at risk at every event.

    Its information (the sum over event times of its variance within the risk
    set) is then 0: the data say nothing about its effect, whatever its values
    elsewhere (e.g. an arm indicator in a one-arm data set, or a covariate
    constant within every stratum).
    """
    scale = np.maximum((X ** 2).mean(axis=0), 1e-300) * max(len(rs.ev_rows), 1)
    _newton.refuse_flat(names, np.diag(i0), scale)


def _fit(X: np.ndarray, rs: _RiskSets, ties: str, names: Sequence[str] = ()) -> dict[str, Any]:
    p = X.shape[1]
    beta = np.zeros(p)
    ll0, u0, i0 = _loglik(beta, X, rs, ties)
    _check_varies_at_risk(i0, X, rs, names)
    try:
        score_test = float(u0 @ _solve_pd(i0, u0))
        newbeta = beta + _solve_pd(i0, u0)
    except np.linalg.LinAlgError:
        raise DataError(
            "the covariates are collinear (the information matrix at 0 is "
            "singular): drop a redundant covariate"
        ) from None
    beta, ll, u, info, converged, iters = _newton.maximise(lambda b: _loglik(b, X, rs, ties), beta, ll0, u0, i0,
                                                           newbeta, _solve_pd)
    var = _newton.inverse(info)
    return dict(beta=beta, ll0=ll0, ll=ll, u=u, var=var, score=score_test,
                converged=converged, iterations=iters)


@dataclass(frozen=True, eq=False)
class CoxResult(StatsResult):
    """A fitted Cox model, laid out like R's ``summary(coxph)``.

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by covariate, columns ``COLUMNS``: ``coef, hazard_ratio, se,
        z, p, ci_lower, ci_upper, naive_se`` (the interval is for the hazard
        ratio).  With a cluster ``se``, ``z``, ``p`` and the interval use the
        robust standard error (R's ``robust se``) and ``naive_se`` is the
        model-based one; without a cluster both are the model-based error.
    tests : pandas.DataFrame
        Rows ``likelihood_ratio, wald, score`` (and ``robust_score`` with a
        cluster), columns ``statistic, df, p``.  With a cluster the Wald test
        uses the robust variance, as R does.
    loglik : tuple of float
        Log partial likelihood at 0 and at the estimate.
    vcov : pandas.DataFrame
        The covariance matrix used for inference (robust with a cluster).
    naive_vcov : pandas.DataFrame
        The inverse information.
    n, events : int
        Rows used and events.
    converged : bool
    iterations : int
    ties : str
    strata : str or list of str or None
    cluster : str or None
    conf_level : float
        Level of the hazard-ratio intervals.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("coef", "hazard_ratio", "se", "z", "p", "ci_lower",
                                          "ci_upper", "naive_se")
    summary: pd.DataFrame
    tests: pd.DataFrame
    loglik: tuple[float, float]
    vcov: pd.DataFrame
    naive_vcov: pd.DataFrame
    n: int
    events: int
    converged: bool
    iterations: int
    ties: str = "efron"
    strata: str | Sequence[str] | None = None
    cluster: str | None = None
    conf_level: float = 0.95
    weights: str | None = None
    _lp: np.ndarray | None = field(default=None, repr=False)
    _rs: _RiskSets | None = field(default=None, repr=False)
    _x: np.ndarray | None = field(default=None, repr=False)
    _time: np.ndarray | None = field(default=None, repr=False)
    _start: np.ndarray | None = field(default=None, repr=False)

    @functools.cached_property
    def concordance(self) -> pd.Series:
        """Harrell's C as R's ``concordance(fit)`` reports it.

        A Series with ``concordance, se, concordant, discordant, tied_x,
        tied_y, tied_xy``.  Pairs are compared within strata and within the risk
        set of the earlier event (``start < t <= stop``); pairs of events at the
        same time are ``tied_y`` and left out, ties in the linear predictor count
        one half.  ``se`` is the infinitesimal-jackknife standard error R
        reports.  Computed on first access, in O(n log n)
        (:mod:`fomolab.stats.concordance`).
        """
        if self._lp is None or self._rs is None:
            raise AttributeError("this CoxResult was built without its risk sets: no concordance")
        if self.weights is not None:
            raise DataError(
                f"concordance of a fit with case weights ({self.weights!r}) is not "
                "computed: it would count unweighted pairs; refit without weights, or "
                "replicate the rows")
        from fomolab.stats.concordance import _counts

        rs = self._rs
        return _counts(self._lp, rs.key_start, rs.key_stop, rs.event, rs.strata, rs.has_start)

    def __repr__(self) -> str:
        cl = f", cluster={self.cluster!r}" if self.cluster else ""
        st = f", strata={self.strata!r}" if self.strata else ""
        wt = f", weights={self.weights!r}" if self.weights else ""
        return (f"<CoxResult: {len(self.summary)} covariate(s), n={self.n}, "
                f"events={self.events}, ties={self.ties!r}{st}{cl}{wt}>")

    def _show_index(self) -> bool:
        return True

    def _extra(self) -> list[tuple[str, pd.DataFrame | str]]:
        return [("", self.tests)]


def cox(
    data: pd.DataFrame,
    duration: str,
    event: str,
    covariates: str | Sequence[str],
    *,
    start: str | None = None,
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
    ties: str = "efron",
    weights: str | None = None,
    conf_level: float = 0.95,
) -> CoxResult:
    """Cox proportional-hazards regression with R ``coxph`` numbers.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject, or per (start, stop] interval of a subject.
    duration : str
        Column of event/censoring times (the ``stop`` time with ``start``); >= 0.
    event : str
        Column of 0/1 (or boolean) event indicators.  R's 1/2 coding is rejected
        with a :class:`~fomolab.errors.DataError`.
    covariates : str or list of str
        Numeric (or boolean) covariate columns; dummy-code categories first.
    start : str, optional
        Column of interval starts for counting-process data: a row is at risk
        at time t iff ``start < t <= stop`` (R's ``Surv(start, stop, event)``).
    strata : str or list of str, optional
        Column(s) whose combinations get separate baseline hazards
        (R's ``strata()``).
    cluster : str, optional
        Column of cluster ids (e.g. viewer, or replicate).  Standard errors
        become the robust sandwich ``D'D`` with D the per-cluster sums of the
        dfbeta residuals, as R's ``cluster(id)``; the model-based ones are kept
        in ``naive_se`` and a robust score test is added.
    ties : {"efron", "breslow"}, default "efron"
        Handling of tied event times (R's ``ties``/``method``).
    weights : str, optional
        Column of case weights (> 0), R's ``coxph(weights = )``.  Under
        Breslow ties a row of integer weight w counts exactly as w identical
        rows; under Efron ties each tied death counts with the mean weight of
        its tie group, as in R.  Concordance is not computed for weighted fits.
    conf_level : float, default 0.95
        Level of the hazard-ratio intervals.

    Returns
    -------
    CoxResult
        ``.summary``, ``.tests``, ``.concordance`` and more.

    Warns
    -----
    ConvergenceWarning
        If Newton–Raphson does not converge in 20 iterations, or a coefficient
        seems infinite (monotone likelihood: some covariate separates buyers
        from non-buyers), the checks of R's ``coxph.fit``.
    StatisticalWarning
        With a ``cluster`` column holding a single cluster: a sandwich from
        one cluster is 0 by construction, so the robust standard errors,
        Wald and robust score tests are NaN.

    Raises
    ------
    DataError
        Bad columns; no events; a covariate constant in every row, or taking
        one value among the rows at risk at every event time; collinear
        covariates.

    Examples
    --------
    >>> import pandas as pd
    >>> test1 = pd.DataFrame({"time": [4, 3, 1, 1, 2, 2, 3],
    ...                       "status": [1, 1, 1, 0, 1, 1, 0],
    ...                       "x": [0, 2, 1, 1, 1, 0, 0],
    ...                       "sex": [0, 0, 0, 0, 1, 1, 1]})
    >>> fit = cox(test1, "time", "status", ["x"], strata="sex")
    >>> fit
    <CoxResult: 1 covariate(s), n=7, events=5, ties='efron', strata='sex'>
    >>> round(float(fit.summary.loc["x", "coef"]), 4)
    0.8023
    >>> round(float(fit.tests.loc["likelihood_ratio", "statistic"]), 2)
    1.09
    """
    data = _checks.check_frame(data)
    covs = _checks.as_list(covariates)
    if not covs:
        raise DataError("'covariates' must name at least one column: got none")
    strata_cols = _checks.as_list(strata)
    _checks.check_columns(data, [duration, event, start, cluster, weights, *covs, *strata_cols])
    if ties not in ("efron", "breslow"):
        raise DataError(f"'ties' must be 'efron' or 'breslow': got {ties!r}")
    level = _checks.check_probability(conf_level, "conf_level")
    stop = _checks.numeric(data, duration, nonnegative=True)
    st = None
    if start is not None:
        st = _checks.numeric(data, start, nonnegative=True)
        _checks.check_start_stop(data, st, stop, start, duration)
    ev = _checks.events01(data, event)
    if ev.sum() == 0:
        raise DataError(
            f"column {event!r} has no events (all rows censored): a Cox model "
            "needs at least one event"
        )
    X = np.column_stack([_checks.numeric(data, c) for c in covs])
    for j, c in enumerate(covs):
        if np.all(X[:, j] == X[0, j]):
            raise DataError(
                f"covariate {c!r} is constant ({X[0, j]!r} in every row): it has "
                "no effect to estimate; drop it"
            )
    if strata_cols:
        sk = [_checks.keys(data, c) for c in strata_cols]
        scode = pd.MultiIndex.from_arrays(sk).factorize()[0] if len(sk) > 1 else \
            pd.factorize(sk[0])[0]
    else:
        scode = np.zeros(len(stop), dtype=np.int64)
    Xc = X - X.mean(axis=0)  # R centres the covariates; estimates are unchanged
    if np.linalg.matrix_rank(Xc) < Xc.shape[1]:
        raise DataError(
            f"covariates {covs} are collinear (one is a linear combination of "
            "the others): drop a redundant one"
        )
    rs = _RiskSets(st, stop, ev, np.asarray(scode))
    wt = None
    if weights is not None:
        wt = _checks.numeric(data, weights, positive=True)
        rs.set_weights(wt)
    fit = _fit(Xc, rs, ties, covs)
    beta, var = fit["beta"], fit["var"]
    p = len(covs)
    # R's coxph.fit checks: a last Newton step still large relative to the coefficient (the
    # likelihood keeps rising as it runs to infinity), or a log likelihood of exactly 0
    degenerate = _newton.warn_fit(fit["u"], var, beta, fit["ll"], fit["converged"], covs, stacklevel=2)
    if fit["ll"] == 0.0 or degenerate.any():
        # The partial likelihood reached its supremum 0 (every event is the only
        # row at risk with its risk score, to machine precision): the data are
        # fitted perfectly and the information vanishes.
        var = np.where(np.outer(degenerate, degenerate) | (fit["ll"] == 0.0), np.nan, var)
        fit["converged"] = False
        fit["var"] = var
    naive_se = np.sqrt(np.diag(var))
    use_var = var
    robust_score = None
    if cluster is not None:
        cl = _checks.keys(data, cluster)
        codes = pd.factorize(cl)[0]
        ngroups = int(codes.max()) + 1
        resid = _score_residuals(beta, Xc, rs, ties) * rs.wt[:, None]
        dfb = resid @ var
        D = np.zeros((ngroups, p))
        np.add.at(D, codes, dfb)
        use_var = D.T @ D
        r0 = _score_residuals(np.zeros(p), Xc, rs, ties) * rs.wt[:, None]
        T = np.zeros((ngroups, p))
        np.add.at(T, codes, r0)
        u0 = T.sum(axis=0)
        try:
            robust_score = float(u0 @ np.linalg.solve(T.T @ T, u0))
        except np.linalg.LinAlgError:
            robust_score = float("nan")
        if ngroups < 2:
            warnings.warn(
                f"column {cluster!r} holds a single cluster ({_checks._py(cl[0])!r}): a "
                "cluster-robust variance needs at least 2 clusters (from one it is 0 "
                "by construction); robust standard errors and tests are NaN. Use a "
                "finer cluster, or no cluster for model-based errors",
                StatisticalWarning, stacklevel=2)
            use_var = np.full((p, p), np.nan)
            robust_score = float("nan")
    se = np.sqrt(np.diag(use_var))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = beta / se
    pval = 2.0 * _st.norm.sf(np.abs(z))
    q = float(_st.norm.ppf(1.0 - (1.0 - level) / 2.0))
    with np.errstate(over="ignore"):  # only after a warned divergence
        summary = pd.DataFrame({
            "coef": beta, "hazard_ratio": np.exp(beta), "se": se, "z": z, "p": pval,
            "ci_lower": np.exp(beta - q * se), "ci_upper": np.exp(beta + q * se),
        }, index=pd.Index(covs, name="covariate"))
    summary["naive_se"] = naive_se
    lr = 2.0 * (fit["ll"] - fit["ll0"])
    try:
        wald = float(beta @ np.linalg.solve(use_var, beta)) if np.isfinite(use_var).all() \
            else float("nan")
    except np.linalg.LinAlgError:
        wald = float("nan")
    rows = {"likelihood_ratio": lr, "wald": wald, "score": fit["score"]}
    if robust_score is not None:
        rows["robust_score"] = robust_score
    tests = pd.DataFrame({"statistic": pd.Series(rows), "df": p})
    tests["p"] = _st.chi2.sf(tests["statistic"], p)
    return CoxResult(
        summary=summary, tests=tests, loglik=(fit["ll0"], fit["ll"]),
        vcov=pd.DataFrame(use_var, index=covs, columns=covs),
        naive_vcov=pd.DataFrame(var, index=covs, columns=covs),
        n=len(stop), events=int(ev.sum()), converged=fit["converged"],
        iterations=fit["iterations"], ties=ties, strata=strata, cluster=cluster,
        conf_level=level, weights=weights, _lp=Xc @ beta, _rs=rs, _x=Xc, _time=stop, _start=st,
    )
