"""Whether viewers buy: logistic conversion models and risk differences.

A viewer either buys during the visit or not.  :func:`conversion` fits a
logistic regression of that outcome on covariates (the arm's tactics, the
viewer's traits); :func:`risk_difference` compares each arm's conversion rate
with a control arm's.  Viewers of one simulated stream (a replicate) share the
stream, so their outcomes are correlated: with ``cluster`` the standard errors
are cluster-robust with the conventions of R's ``sandwich::vcovCL``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats as _st

from fomolab.errors import ConvergenceWarning, DataError, StatisticalWarning
from fomolab.stats import _checks
from fomolab.stats._compat import deprecated_attribute, renamed_kwargs
from fomolab.stats._result import StatsResult

#: ``stacklevel`` of warnings from the public functions: past the ``renamed_kwargs``
#: wrapper to the caller's line.
_CALLER = 3

__all__ = [
    "ConversionResult",
    "RiskDifferenceResult",
    "cluster_vcov",
    "conversion",
    "risk_difference",
]


def cluster_vcov(scores: np.ndarray, bread: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """Cluster-robust sandwich ``G/(G-1) * B (sum_g u_g u_g') B``.

    This is ``sandwich::vcovCL(fit, cluster, type = "HC0", cadjust = TRUE)``,
    the default of ``vcovCL`` for a ``glm``: the per-cluster sums ``u_g`` of the
    estimating-function rows (``scores``, n x k), the bread ``B`` (the inverse
    of the information, k x k) and the only small-sample factor ``G/(G-1)``.
    statsmodels' ``cov_type="cluster"`` and Stata's ``vce(cluster)`` multiply by
    an extra ``(N-1)/(N-K)``, which R's default for a glm does not.
    """
    codes = pd.factorize(cluster)[0]
    G = int(codes.max()) + 1
    if G < 2:
        raise DataError(
            f"cluster-robust errors need at least 2 clusters: got {G} "
            "(pass cluster=None, or more replicates)"
        )
    U = np.zeros((G, scores.shape[1]))
    np.add.at(U, codes, scores)
    meat = U.T @ U
    return np.asarray((G / (G - 1.0)) * bread @ meat @ bread)


@dataclass(frozen=True, eq=False)
class ConversionResult(StatsResult):
    """A fitted logistic conversion model.

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by term (``intercept`` first), columns ``COLUMNS``: ``coef,
        odds_ratio, se, z, p, ci_lower, ci_upper, naive_se`` (the interval is
        for the odds ratio).  With a cluster ``se`` is cluster-robust and
        ``naive_se`` model-based; without one both are model-based.
    vcov : pandas.DataFrame
        Covariance used for inference.
    n : int
        Rows used.
    n_clusters : int or None
        Clusters, with ``cluster``.
    converged : bool
    event : str
        The 0/1 column modelled.
    loglik : float
        Log likelihood at the estimate.
    cluster : str or None
    conf_level : float
        Level of the odds-ratio intervals.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("coef", "odds_ratio", "se", "z", "p", "ci_lower",
                                          "ci_upper", "naive_se")
    summary: pd.DataFrame
    vcov: pd.DataFrame
    n: int
    n_clusters: int | None
    converged: bool
    event: str
    loglik: float
    cluster: str | None = None
    conf_level: float = 0.95

    outcome = deprecated_attribute("outcome", "event")

    def __repr__(self) -> str:
        cl = f", {self.n_clusters} clusters" if self.n_clusters else ""
        return (f"<ConversionResult: logit of {self.event!r} on "
                f"{len(self.summary) - 1} covariate(s), n={self.n}{cl}>")

    def _show_index(self) -> bool:
        return True


def _separation(X: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    """Reject a binary covariate with no outcome variation in one of its levels.

    Then its coefficient runs off to +-infinity whatever the other covariates
    (quasi-complete separation); statsmodels would return a huge number.
    """
    for j, name in enumerate(names):
        col = X[:, j]
        levels = np.unique(col)
        if len(levels) != 2:  # a binary covariate (dummy, tactic on/off)
            continue
        for lv in levels:
            m = col == lv
            if y[m].min() == y[m].max():
                kind = "buys" if y[m][0] == 1 else "does not buy"
                raise DataError(
                    f"covariate {name!r} separates the outcome: every row with "
                    f"{name} == {float(lv):g} ({int(m.sum())} rows) {kind}, so its "
                    "log odds ratio is infinite (quasi-complete separation); "
                    "merge levels, drop the covariate, or report rates instead"
                )


def _separation_lp(X: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    """Detect (quasi-)complete separation by linear programming.

    The logistic MLE fails to exist exactly when some direction ``b != 0``
    has ``s_i x_i'b >= 0`` for every row (``s_i = +1`` for buyers, ``-1``
    otherwise), with at least one strict inequality (Albert & Anderson 1984;
    the check of R's ``detectseparation`` / ``safeBinaryRegression``).  We
    maximise ``sum_i s_i x_i'b`` over ``-1 <= b <= 1`` under those constraints
    on standardised covariates: a positive optimum is a separating direction.
    """
    from scipy.optimize import linprog

    sd = X.std(axis=0)
    sd[sd == 0] = 1.0
    Z = (X - np.r_[0.0, X[:, 1:].mean(axis=0)]) / sd  # keep the intercept column
    Z[:, 0] = 1.0
    S = np.where(y > 0.5, 1.0, -1.0)[:, None] * Z
    res = linprog(-S.sum(axis=0), A_ub=-S, b_ub=np.zeros(len(y)),
                  bounds=[(-1.0, 1.0)] * Z.shape[1], method="highs")
    if res.status == 0 and -res.fun > 1e-7 * len(y):
        direction = res.x
        involved = [n for n, b in zip(names, direction, strict=True) if abs(b) > 1e-6 and n != "intercept"]
        which = ", ".join(repr(n) for n in involved) or "the intercept"
        raise DataError(
            f"covariate(s) {which} separate buyers from non-buyers "
            "((quasi-)complete separation): the maximum likelihood estimate does "
            "not exist and the coefficients diverge; drop or coarsen them, or "
            "report conversion rates by level instead"
        )


@renamed_kwargs({"outcome": "event"})
def conversion(
    data: pd.DataFrame,
    event: str,
    covariates: str | Sequence[str],
    *,
    cluster: str | None = None,
    conf_level: float = 0.95,
) -> ConversionResult:
    """Logistic regression of a 0/1 conversion outcome, R ``glm`` numbers.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per viewer (visit).
    event : str
        0/1 (or boolean) column: did the viewer buy?  (Formerly ``outcome``,
        which still works until fomolab 0.3, with a DeprecationWarning.)
    covariates : str or list of str
        Numeric or boolean columns (dummy-code categories first).  An intercept
        is added.
    cluster : str, optional
        Column of cluster ids (e.g. replicate).  Standard errors are then
        ``sandwich::vcovCL(fit, cluster)`` for a glm: HC0 with the single
        adjustment ``G/(G-1)``.  The model-based errors are kept in
        ``naive_se``.
    conf_level : float, default 0.95
        Level of the odds-ratio intervals.

    Returns
    -------
    ConversionResult
        ``.summary`` with ``coef, odds_ratio, se, z, p, ci_lower, ci_upper``.

    Raises
    ------
    DataError
        On bad input, a constant outcome, or (quasi-)complete separation, where
        maximum likelihood estimates do not exist.

    Warns
    -----
    StatisticalWarning
        When fitted probabilities are numerically 0 or 1 (R's warning of the
        same name): estimates are then fragile.

    Notes
    -----
    The fit is statsmodels' ``GLM`` with a binomial family (IRLS), which gives
    the coefficients and model-based errors of R's ``glm(family = binomial)``;
    the robust sandwich is formed here from the score rows ``x_i (y_i - mu_i)``
    and the inverse information, so the factor is R's and not statsmodels'.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"x": rng.normal(size=400), "rep": np.repeat(range(20), 20)})
    >>> df["bought"] = (rng.random(400) < 1 / (1 + np.exp(-(-1 + df["x"])))).astype(int)
    >>> fit = conversion(df, "bought", ["x"], cluster="rep")
    >>> fit
    <ConversionResult: logit of 'bought' on 1 covariate(s), n=400, 20 clusters>
    >>> list(fit.summary.index)
    ['intercept', 'x']
    >>> bool(fit.summary.loc["x", "odds_ratio"] > 1)
    True
    """
    import statsmodels.api as sm

    data = _checks.check_frame(data)
    covs = _checks.as_list(covariates)
    _checks.check_columns(data, [event, cluster, *covs])
    level = _checks.check_probability(conf_level, "conf_level")
    y = _checks.events01(data, event)
    if y.min() == y.max():
        raise DataError(
            f"column {event!r} is constant ({int(y[0])} in every row): a "
            "conversion model needs both buyers and non-buyers"
        )
    Xc = np.column_stack([_checks.numeric(data, c) for c in covs]) if covs else \
        np.empty((len(y), 0))
    for j, c in enumerate(covs):
        if np.all(Xc[:, j] == Xc[0, j]):
            raise DataError(
                f"covariate {c!r} is constant ({Xc[0, j]!r} in every row): drop it"
            )
    _separation(Xc, y, covs)
    X = np.column_stack([np.ones(len(y)), Xc])
    names = ["intercept", *covs]
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise DataError(
            f"covariates {covs} are collinear (with each other or the "
            "intercept): drop a redundant one"
        )
    _separation_lp(X, y, names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sm.GLM(y, X, family=sm.families.Binomial()).fit(tol=1e-10, maxiter=100)
    beta = np.asarray(res.params)
    mu = np.asarray(res.fittedvalues)
    converged = bool(res.converged)
    if not converged:
        warnings.warn("logistic fit did not converge in 100 iterations",
                      ConvergenceWarning, stacklevel=_CALLER)
    eps = 10 * np.finfo(float).eps
    if np.all(np.abs(mu - y) < 1e-6):
        raise DataError(
            "the covariates separate buyers from non-buyers perfectly: the "
            "maximum likelihood estimate does not exist (coefficients diverge); "
            "drop or coarsen the separating covariate"
        )
    if np.any((mu < eps) | (mu > 1 - eps)):
        warnings.warn(
            "fitted probabilities numerically 0 or 1 occurred: some covariate "
            "nearly separates buyers from non-buyers, so its coefficient and "
            "standard error are unreliable", StatisticalWarning, stacklevel=_CALLER)
    W = mu * (1.0 - mu)
    info = X.T @ (W[:, None] * X)
    bread = np.linalg.inv(info)
    naive_se = np.sqrt(np.diag(bread))
    vc = bread
    n_clusters = None
    if cluster is not None:
        cl = _checks.keys(data, cluster)
        vc = cluster_vcov(X * (y - mu)[:, None], bread, cl)
        n_clusters = int(pd.factorize(cl)[0].max()) + 1
    se = np.sqrt(np.diag(vc))
    z = beta / se
    q = float(_st.norm.ppf(1.0 - (1.0 - level) / 2.0))
    with np.errstate(over="ignore"):  # only for warned, near-separated fits
        summary = pd.DataFrame({
            "coef": beta, "odds_ratio": np.exp(beta), "se": se, "z": z,
            "p": 2.0 * _st.norm.sf(np.abs(z)),
            "ci_lower": np.exp(beta - q * se), "ci_upper": np.exp(beta + q * se),
        }, index=pd.Index(names, name="term"))
    summary["naive_se"] = naive_se
    return ConversionResult(
        summary=summary, vcov=pd.DataFrame(vc, index=names, columns=names),
        n=len(y), n_clusters=n_clusters, converged=converged, event=event,
        loglik=float(res.llf), cluster=cluster, conf_level=level,
    )


@dataclass(frozen=True, eq=False)
class RiskDifferenceResult(StatsResult):
    """Risk differences of each group against a control group.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per non-control group, columns ``COLUMNS``: ``group, risk,
        control_risk, risk_difference, se, ci_lower, ci_upper, p, n,
        control_n, method`` (``method`` names the interval and test:
        ``"wald"``, ``"newcombe_score"`` or ``"cluster_wald"``).
    control : object
        The reference group.
    cluster : str or None
    conf_level : float
        Level of the intervals.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("group", "risk", "control_risk", "risk_difference", "se",
                                          "ci_lower", "ci_upper", "p", "n", "control_n", "method")
    summary: pd.DataFrame
    control: object
    cluster: str | None = None
    conf_level: float = 0.95

    def __repr__(self) -> str:
        cl = f", cluster={self.cluster!r}" if self.cluster else ""
        return (f"<RiskDifferenceResult: {len(self.summary)} group(s) vs "
                f"control {self.control!r}{cl}>")


def _wilson(x: float, n: int, q: float) -> tuple[float, float]:
    """Wilson score interval of a proportion x / n."""
    p = x / n
    den = 1.0 + q * q / n
    centre = (p + q * q / (2 * n)) / den
    half = q * np.sqrt(p * (1 - p) / n + q * q / (4 * n * n)) / den
    return float(centre - half), float(centre + half)


def _newcombe(x1: float, n1: int, x0: float, n0: int, q: float) -> tuple[float, float, float]:
    """Newcombe's hybrid score interval of p1 - p0 and the score test's two-sided p.

    >>> lo, hi, p = _newcombe(0, 50, 5, 50, 1.959963984540054)
    >>> round(lo, 4), round(hi, 4), round(p, 4)
    (-0.2136, -0.009, 0.0218)
    """
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = _wilson(x1, n1, q)
    l0, u0 = _wilson(x0, n0, q)
    d = p1 - p0
    lo = d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    hi = d + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    pool = (x1 + x0) / (n1 + n0)
    var0 = pool * (1 - pool) * (1 / n1 + 1 / n0)
    p = float(2.0 * _st.norm.sf(abs(d) / np.sqrt(var0))) if var0 > 0 else float("nan")
    return float(lo), float(hi), p


@renamed_kwargs({"outcome": "event", "group": "by"})
def risk_difference(
    data: pd.DataFrame,
    event: str,
    by: str,
    *,
    control: object,
    cluster: str | None = None,
    conf_level: float = 0.95,
) -> RiskDifferenceResult:
    """Difference in conversion rate of each group against a control group.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per viewer.
    event : str
        0/1 (or boolean) conversion column (formerly ``outcome``).
    by : str
        Column naming each row's group (e.g. ``"arm"``; formerly ``group``).
    control : object
        The value of ``by`` used as the reference.
    cluster : str, optional
        Column of cluster ids (e.g. replicate).  The standard error is then the
        cluster-robust sandwich of the two group means with factor ``G/(G-1)``
        (``sandwich::vcovCL(lm(y ~ group), cluster, type = "HC0")``), which
        accounts for clusters containing both groups (paired replicates).
    conf_level : float, default 0.95
        Level of the Wald interval.

    Returns
    -------
    RiskDifferenceResult
        ``.summary``: ``group, risk, control_risk, risk_difference, se,
        ci_lower, ci_upper, p``.

    Notes
    -----
    Without a cluster the standard error is the unpooled Wald
    ``sqrt(p1 (1 - p1) / n1 + p0 (1 - p0) / n0)`` (HC0 for the difference of
    means) and ``p`` the matching two-sided normal test.  Where either risk
    is 0 or 1 the Wald interval ignores that group's uncertainty (its
    variance estimate is 0) and its p value is far too small; there the
    interval is Newcombe's hybrid score interval (Newcombe 1998, method 10:
    Wilson intervals of both risks combined by the square-and-add rule) and
    ``p`` the score (pooled-variance) test, ``method = "newcombe_score"``.
    With a cluster and a risk of 0 or 1 the cluster-robust Wald interval is
    kept, with a :class:`~fomolab.errors.StatisticalWarning`.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"arm": ["c"] * 100 + ["t"] * 100,
    ...                    "bought": [1] * 10 + [0] * 90 + [1] * 20 + [0] * 80})
    >>> rd = risk_difference(df, "bought", by="arm", control="c")
    >>> rd
    <RiskDifferenceResult: 1 group(s) vs control 'c'>
    >>> row = rd.summary.iloc[0]
    >>> round(float(row["risk_difference"]), 3), round(float(row["se"]), 4)
    (0.1, 0.05)
    """
    data = _checks.check_frame(data)
    _checks.check_columns(data, [event, by, cluster])
    level = _checks.check_probability(conf_level, "conf_level")
    y = _checks.events01(data, event)
    g = _checks.keys(data, by)
    is_ctrl = g == control
    if not is_ctrl.any():
        have = ", ".join(map(repr, pd.unique(g)[:10]))
        raise DataError(
            f"control {control!r} not found in column {by!r} (values: {have})"
        )
    cl = _checks.keys(data, cluster) if cluster is not None else None
    q = float(_st.norm.ppf(1.0 - (1.0 - level) / 2.0))
    others = [v for v in pd.unique(g) if v != control]
    if not others:
        raise DataError(
            f"column {by!r} holds only the control {control!r}: nothing to compare"
        )
    with contextlib.suppress(TypeError):  # mixed types: keep the order of appearance
        others.sort()
    y0 = y[is_ctrl]
    n0, p0 = len(y0), float(y0.mean())
    rows = []
    for lv in others:
        m = g == lv
        y1 = y[m]
        n1, p1 = len(y1), float(y1.mean())
        rd = p1 - p0
        boundary = p1 in (0.0, 1.0) or p0 in (0.0, 1.0)
        if cl is None and boundary and p1 != p0:
            lo, hi, p = _newcombe(y1.sum(), n1, y0.sum(), n0, q)
            se = float(np.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0))
            rows.append(dict(group=lv, risk=p1, control_risk=p0, risk_difference=rd, se=se,
                             ci_lower=lo, ci_upper=hi, p=p, n=n1, control_n=n0,
                             method="newcombe_score"))
            continue
        if cl is not None and boundary:
            warnings.warn(
                f"group {lv!r}: a risk is {p1 if p1 in (0.0, 1.0) else p0:g} in one group, so the "
                "cluster-robust Wald interval counts no uncertainty for it and is too narrow; "
                "compare without cluster for a score interval, or pool more replicates",
                StatisticalWarning, stacklevel=_CALLER)
        if cl is None:
            var = p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0
        else:
            use = m | is_ctrl
            infl = np.where(m[use], (y[use] - p1) / n1, -(y[use] - p0) / n0)
            var = float(cluster_vcov(infl[:, None], np.eye(1), cl[use])[0, 0])
        se = float(np.sqrt(var))
        if se > 0:
            p = float(2.0 * _st.norm.sf(abs(rd) / se))
        else:
            warnings.warn(
                f"group {lv!r}: risk difference has zero standard error (no "
                "variation in the outcome); p set to NaN", StatisticalWarning,
                stacklevel=_CALLER)
            p = float("nan")
        rows.append(dict(group=lv, risk=p1, control_risk=p0, risk_difference=rd,
                         se=se, ci_lower=rd - q * se, ci_upper=rd + q * se, p=p,
                         n=n1, control_n=n0, method="wald" if cl is None else "cluster_wald"))
    summary = pd.DataFrame(rows, columns=list(RiskDifferenceResult.COLUMNS))
    return RiskDifferenceResult(summary, control, cluster, level)
