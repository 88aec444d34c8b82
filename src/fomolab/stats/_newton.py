"""The Newton–Raphson of R's ``coxph.fit``, shared by the Cox fit on rows and the one on counts.

Both maximise a log partial likelihood with the same start, step halving,
stopping rule and warnings (``coxph.control``: ``eps``, ``toler.inf``,
``iter.max``); only how the likelihood, score and information are summed
differs (:mod:`fomolab.stats.cox` over the rows at risk,
:mod:`fomolab.stats._counts` over counts at the event times).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from fomolab.errors import ConvergenceWarning, DataError

EPS = 1e-9  # R coxph.control(eps)
TOLER_INF = np.sqrt(EPS)  # R coxph.control(toler.inf)
ITER_MAX = 20  # R coxph.control(iter.max)

Sums = Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]


def refuse_flat(names: Sequence[str], info_diag: np.ndarray, scale: np.ndarray) -> None:
    """Refuse covariates whose information is 0 (one value among the rows at risk at every event time)."""
    flat = [c for c, v, sc in zip(names, info_diag, scale, strict=True) if v <= 1e-12 * sc]
    if flat:
        raise DataError(
            f"covariate(s) {', '.join(map(repr, flat))} take a single value among the "
            "rows at risk at every event time (within each stratum), so their effect "
            "cannot be estimated (e.g. an arm indicator in a data set with one arm, or "
            "a covariate constant within every stratum): drop them")


def maximise(sums: Sums, beta: np.ndarray, ll0: float, u0: np.ndarray, i0: np.ndarray, first: np.ndarray,
             solve: Callable[[np.ndarray, np.ndarray], np.ndarray] = np.linalg.solve, iter_max: int = ITER_MAX
             ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, bool, int]:
    """R's iterations from ``beta`` (log likelihood ``ll0``, score ``u0``, information ``i0``) and the first
    step ``first``, at most ``iter_max``: returns ``(beta, ll, u, info, converged, iterations)``."""
    ll, u, info, new = ll0, u0, i0, first
    converged, halving, iters = False, 0, 0
    for iters in range(1, iter_max + 1):  # noqa: B007 - the count is read after the loop
        nll, nu, ninfo = sums(new)
        bad = not np.isfinite(nll)
        # R: |1 - ll/nll| <= eps, written without dividing (nll can be exactly 0)
        if not bad and halving == 0 and abs(nll - ll) <= EPS * abs(nll):
            beta, ll, u, info = new, nll, nu, ninfo
            converged = True
            break
        if bad or nll < ll:
            halving += 1
            new = (new + beta) / 2.0
        else:
            halving = 0
            beta, ll, u, info = new, nll, nu, ninfo
            try:
                new = beta + solve(info, u)
            except np.linalg.LinAlgError:
                break
    return beta, ll, u, info, converged, iters


def inverse(info: np.ndarray) -> np.ndarray:
    """The variance: the inverse information (NaN where it is singular)."""
    try:
        return np.linalg.inv(info)
    except np.linalg.LinAlgError:
        p = info.shape[0]
        return np.full((p, p), np.nan)


def warn_fit(u: np.ndarray, var: np.ndarray, beta: np.ndarray, ll: float, converged: bool, covs: Sequence[str],
             stacklevel: int) -> np.ndarray:
    """R's checks after the fit, as warnings; returns which covariates' variances are degenerate.

    A last Newton step still large relative to the coefficient means the
    likelihood keeps rising as it runs to infinity; a log likelihood of
    exactly 0 (its supremum) or a non-positive variance means the events are
    separated perfectly.  ``stacklevel`` is counted from this function.
    """
    with np.errstate(invalid="ignore"):
        step = np.abs(u @ var)
    inf = (step > TOLER_INF) & (step > TOLER_INF * np.abs(beta))
    vdiag = np.diag(var)
    degenerate = ~(np.isfinite(vdiag) & (vdiag > 0))
    if ll == 0.0 or degenerate.any():
        inf = inf | degenerate | (ll == 0.0)
        warnings.warn(
            f"the log partial likelihood reached {ll:.3g} (its maximum is 0): "
            f"covariate(s) {', '.join(c for c, b in zip(covs, inf, strict=True) if b)} separate the "
            "events from the rows at risk perfectly (monotone likelihood), so their "
            "coefficients are infinite and standard errors are NaN. Typical causes: very "
            "few events, or a covariate that is large only for the rows that have events",
            ConvergenceWarning, stacklevel=stacklevel + 1)
        return degenerate
    names = ", ".join(c for c, b in zip(covs, inf, strict=True) if b)
    if not converged:
        extra = (f"; covariate(s) {names} seem to have an infinite coefficient "
                 "(monotone likelihood, e.g. no events in one level)") if names else ""
        warnings.warn(
            f"Cox fit did not converge in {ITER_MAX} iterations; estimates are "
            f"unreliable{extra}", ConvergenceWarning, stacklevel=stacklevel + 1)
    elif inf.any():
        warnings.warn(
            f"log likelihood converged before covariate(s) {names}: the "
            "coefficient may be infinite (monotone likelihood, e.g. no "
            "events in one level); its standard error is not meaningful",
            ConvergenceWarning, stacklevel=stacklevel + 1)
    return degenerate
