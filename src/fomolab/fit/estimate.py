"""Maximum-likelihood estimates of spec parameters from field data.

Each parameter is a dotted spec path (as in sweeps and arms' ``set``), with
an index for an array element (``population.segments.S.impulsiveness.beta[0]``),
a ``*`` part for one value shared by every match (``lineup.*.base_rate_per_s``),
optionally bounded, ``PATH=LOW:HIGH``.  The optimiser (L-BFGS-B) works on
transformed parameters: ``log`` for a positive one, ``logit`` of the
position in ``(LOW, HIGH)`` for a bounded one.  Standard errors come from the
observed information (the Hessian of the log-likelihood by central finite
differences at the optimum, on the transformed scale); 95 % Wald intervals
are formed on that scale and mapped back, so they respect the bounds.
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats

from fomolab.errors import ConvergenceWarning, DataError
from fomolab.fit.data import FieldData
from fomolab.fit.likelihood import VisitLikelihood, untractable
from fomolab.spec import Experiment, Scenario
from fomolab.spec.paths import PathError, set_path

__all__ = ["Parameter", "FitResult", "parse_parameter", "fit_mle", "arm_scenario_raw", "get_path", "put_path",
           "expand_path", "cox_snell_bias"]

METHOD = "maximum likelihood"
_INDEX = re.compile(r"^(.*)\[(\d+)\]$")


@dataclass(frozen=True)
class Parameter:
    """A parameter to estimate: its dotted path and optional bounds."""

    path: str
    low: float | None = None
    high: float | None = None

    @property
    def bounded(self) -> bool:
        return self.low is not None

    def to_free(self, x: float) -> float:
        if self.bounded:
            p = (x - self.low) / (self.high - self.low)  # type: ignore[operator]
            return float(np.log(p / (1 - p)))
        return float(np.log(x))

    def from_free(self, u: np.ndarray | float) -> Any:
        if self.bounded:
            return self.low + (self.high - self.low) * special_expit(u)  # type: ignore[operator]
        return np.exp(u)

    def inside(self, x: float) -> bool:
        """Whether ``x`` lies in the parameter's space."""
        return bool(self.low < x < self.high) if self.bounded else bool(x > 0)  # type: ignore[operator]

    def natural_mean_corrected(self, u: float, bias: float, var: float) -> float:
        """The natural-scale estimate less its first-order bias, ``f(u) - f'(u) b - f''(u) var / 2``.

        ``b`` is the transformed estimate's bias and ``var`` its variance; the
        second term is the bias of mapping a transformed estimate back.
        """
        if self.bounded:
            p = float(special_expit(u))
            span = self.high - self.low  # type: ignore[operator]
            f, d1, d2 = self.low + span * p, span * p * (1 - p), span * p * (1 - p) * (1 - 2 * p)  # type: ignore[operator]
        else:
            f = d1 = d2 = float(np.exp(u))
        return float(f - d1 * bias - 0.5 * d2 * var)

    def jacobian(self, u: float) -> float:
        """``d natural / d free`` at ``u``."""
        if self.bounded:
            p = float(special_expit(u))
            return (self.high - self.low) * p * (1 - p)  # type: ignore[operator]
        return float(np.exp(u))


def special_expit(u: Any) -> Any:
    from scipy.special import expit

    return expit(u)


def parse_parameter(text: str) -> Parameter:
    """``PATH`` or ``PATH=LOW:HIGH`` as a :class:`Parameter`.

    >>> parse_parameter("lineup.gloss.base_rate_per_s=0:0.01")
    Parameter(path='lineup.gloss.base_rate_per_s', low=0.0, high=0.01)
    """
    path, sep, rng = text.partition("=")
    path = path.strip()
    if not path:
        raise DataError(f"--param {text!r}: give a dotted spec path, optionally PATH=LOW:HIGH")
    if not sep:
        return Parameter(path)
    lo, colon, hi = rng.partition(":")
    try:
        low, high = float(lo), float(hi)
    except ValueError:
        raise DataError(f"--param {text!r}: bounds must be numbers, PATH=LOW:HIGH") from None
    if not colon or not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise DataError(f"--param {text!r}: bounds must be finite with LOW < HIGH, PATH=LOW:HIGH")
    return Parameter(path, low, high)


def _split(path: str) -> tuple[str, int | None]:
    m = _INDEX.match(path)
    return (m.group(1), int(m.group(2))) if m else (path, None)


def expand_path(raw: dict[str, Any], path: str) -> list[str]:
    """The concrete paths a path with ``*`` parts matches in raw tables (the path itself if it has none).

    A ``*`` part matches every key at its level, so that one parameter is
    shared by, e.g., every product: ``lineup.*.base_rate_per_s``.

    >>> expand_path({"lineup": {"a": {"x": 1}, "b": {"x": 2}, "c": {}}}, "lineup.*.x")
    ['lineup.a.x', 'lineup.b.x']
    """
    if "*" not in path:
        return [path]
    base, idx = _split(path)
    tail = f"[{idx}]" if idx is not None else ""
    found: list[str] = []

    def walk(node: Any, parts: list[str], done: list[str]) -> None:
        if not parts:
            found.append(".".join(done) + tail)
            return
        if not isinstance(node, dict):
            return
        head, rest = parts[0], parts[1:]
        for key in (list(node) if head == "*" else [head] if head in node else []):
            walk(node[key], rest, [*done, str(key)])

    walk(raw, base.split("."), [])
    return found


def get_path(raw: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (with an optional ``[i]``) of raw scenario tables
    (for a path with ``*``, the value at its first match)."""
    if "*" in path:
        matches = expand_path(raw, path)
        if not matches:
            raise KeyError(path)
        path = matches[0]
    base, idx = _split(path)
    node: Any = raw
    for part in base.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node[idx] if idx is not None else node


def put_path(raw: dict[str, Any], path: str, value: float) -> None:
    """Set a dotted path (with an optional ``[i]``; every match of a path with ``*``) in raw scenario tables."""
    if "*" in path:
        for p in expand_path(raw, path):
            put_path(raw, p, value)
        return
    base, idx = _split(path)
    if idx is None:
        set_path(raw, base, value, Scenario)
        return
    arr = list(get_path(raw, base))
    arr[idx] = value
    set_path(raw, base, arr, Scenario)


def arm_scenario_raw(exp: Experiment, arm: str) -> dict[str, Any]:
    """The arm's scenario as raw tables (tactics the arm switches off left out)."""
    if arm not in exp.arms:
        raise DataError(f"--arm {arm!r}: not an arm of {exp.source} (arms: {', '.join(exp.arms)})")
    return exp.arms[arm].scenario.model_dump(mode="json", exclude_none=True)


@dataclass
class FitResult:
    """Estimates, their standard errors and 95 % intervals.

    Attributes
    ----------
    table : DataFrame
        ``parameter, estimate, ci_lower, ci_upper, se, method``, and ``uncorrected`` (the
        maximum-likelihood estimate) where ``estimate`` is bias-corrected.
    scenario : Scenario
        The arm's scenario at the estimates.
    loglik : float
        Maximised log-likelihood (simulated method of moments: minus the objective).
    method : str
        ``"maximum likelihood"`` or ``"simulated method of moments"``.
    cov_free : ndarray
        Covariance of the transformed parameters (inverse observed information).
    """

    parameters: list[Parameter]
    estimate: np.ndarray
    free: np.ndarray
    cov_free: np.ndarray
    loglik: float
    scenario: Scenario
    raw: dict[str, Any]
    converged: bool
    n_visits: int
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)
    method: str = METHOD
    simulations: int = 0
    evaluations: int = 0
    mle: np.ndarray | None = None
    bias_free: np.ndarray | None = None

    @property
    def se(self) -> np.ndarray:
        jac = np.array([p.jacobian(u) for p, u in zip(self.parameters, self.free, strict=True)])
        return np.sqrt(np.diag(self.cov_free)) * jac

    def intervals(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        zq = stats.norm.ppf(0.5 + level / 2)
        s = np.sqrt(np.diag(self.cov_free))
        lo = np.array([p.from_free(u - zq * e) for p, u, e in zip(self.parameters, self.free, s, strict=True)])
        hi = np.array([p.from_free(u + zq * e) for p, u, e in zip(self.parameters, self.free, s, strict=True)])
        return lo, hi

    @property
    def table(self) -> Any:
        import pandas as pd

        lo, hi = self.intervals()
        out = pd.DataFrame({"parameter": [p.path for p in self.parameters], "estimate": self.estimate,
                            "ci_lower": lo, "ci_upper": hi, "se": self.se, "method": self.method})
        if self.bias_free is not None and np.any(self.bias_free != 0):
            out["uncorrected"] = self.mle
        return out

    def draws(self, n: int, seed: int) -> np.ndarray:
        """``n`` parameter vectors from the fitted normal approximation (transformed scale), mapped back."""
        rng = np.random.default_rng(seed)
        u = rng.multivariate_normal(self.free, self.cov_free, size=n, method="eigh")
        return np.column_stack([p.from_free(u[:, k]) for k, p in enumerate(self.parameters)])

    def __repr__(self) -> str:
        rows = zip(self.parameters, self.estimate, self.se, strict=True)
        body = ", ".join(f"{p.path}={e:.4g} (se {s:.2g})" for p, e, s in rows)
        return f"FitResult({body}; loglik={self.loglik:.2f}, visits={self.n_visits})"


def _scenario(raw: dict[str, Any], params: list[Parameter], values: np.ndarray) -> Scenario:
    r = copy.deepcopy(raw)
    for p, v in zip(params, values, strict=True):
        put_path(r, p.path, float(v))
    return Scenario.model_validate(r)


def _hessian(f, x: np.ndarray, step: float = 1e-3) -> np.ndarray:
    k = len(x)
    H = np.empty((k, k))
    f0 = f(x)
    for i in range(k):
        for j in range(i, k):
            if i == j:
                e = np.zeros(k)
                e[i] = step
                H[i, i] = (f(x + e) - 2 * f0 + f(x - e)) / step**2
            else:
                ei, ej = np.zeros(k), np.zeros(k)
                ei[i], ej[j] = step, step
                H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * step**2)
    return H


def check_parameters(raw: dict[str, Any], params: list[Parameter], source: str = "--param") -> None:
    """Refuse paths that address nothing numeric, starting values off their scale, and repeats."""
    problems = []
    seen = set()
    for p in params:
        if p.path in seen:
            problems.append(f"--param {p.path}: given twice")
        seen.add(p.path)
        try:
            v = get_path(raw, p.path)
        except (KeyError, IndexError, TypeError):
            problems.append(f"--param {p.path}: addresses no value of the arm's scenario (a dotted path as in "
                            "sweeps, e.g. lineup.PRODUCT.base_rate_per_s, an array element as "
                            "population.segments.S.impulsiveness.beta[0]; a tactic must be on in the arm)")
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            problems.append(f"--param {p.path}: is not a number (got {v!r})")
            continue
        tied = {m: get_path(raw, m) for m in expand_path(raw, p.path)}
        if len(set(map(repr, tied.values()))) > 1:
            problems.append(f"--param {p.path}: its matches hold different starting values "
                            f"({', '.join(f'{m} = {x!r}' for m, x in tied.items())}); a shared parameter "
                            "starts from one value")
            continue
        try:
            put_path(copy.deepcopy(raw), p.path, float(v))
        except PathError as exc:
            problems.append(f"--param {p.path}: {exc.rule}")
            continue
        if p.bounded and not p.low < v < p.high:  # type: ignore[operator]
            problems.append(f"--param {p.path}: the spec's starting value {v} is not inside ({p.low}, {p.high})")
        if not p.bounded and v <= 0:
            problems.append(f"--param {p.path}: the starting value {v} must be > 0 (estimated on the log scale); "
                            "or give bounds, PATH=LOW:HIGH")
    if problems:
        err = DataError("\n".join(problems))
        err.problems = problems  # type: ignore[attr-defined]
        raise err


def fit_mle(raw: dict[str, Any], params: list[Parameter], data: FieldData, *,
            start: np.ndarray | None = None, bias_correction: bool = False) -> FitResult:
    """Maximum-likelihood estimates of ``params`` in the scenario ``raw``.

    Parameters
    ----------
    raw : dict
        The fitted arm's scenario tables (:func:`arm_scenario_raw`).
    params : list of Parameter
        What to estimate; the others keep their values in ``raw``.
    data : FieldData
        The observations.
    start : ndarray, optional
        Starting values (default: the values in ``raw``).
    bias_correction : bool
        Report estimates less their first-order bias (:func:`cox_snell_bias`
        on the transformed scale, then the bias of mapping back); the
        uncorrected ones are ``FitResult.mle``.  Intervals are the Wald
        intervals about the maximum-likelihood estimate either way.
        ``fomolab fit`` turns it on; off here by default, since the plug-in
        correction is itself noisy where a parameter is weakly identified
        (recovery of both forms: ``docs/VALIDATION.md``).

    Returns
    -------
    FitResult
    """
    import time

    t0 = time.perf_counter()
    check_parameters(raw, params)
    sc0 = Scenario.model_validate(raw)
    reasons = untractable(sc0)
    if reasons:
        raise DataError("the visit-level likelihood is not tractable for this arm, so maximum likelihood cannot "
                        "estimate its parameters (fomolab fit uses the simulated method of moments, "
                        "fomolab.fit.smm, for it): "
                        + "; ".join(reasons))
    products = list(sc0.lineup)
    lik = VisitLikelihood(data, products)
    x0 = np.array([get_path(raw, p.path) for p in params], float) if start is None else np.asarray(start, float)
    u0 = np.array([p.to_free(x) for p, x in zip(params, x0, strict=True)])
    n = data.n_visits

    def nll(u: np.ndarray) -> float:
        x = np.array([p.from_free(v) for p, v in zip(params, u, strict=True)])
        try:
            sc = _scenario(raw, params, x)
        except Exception:
            return 1e10
        ll = lik.loglik(sc)
        return -ll / n if np.isfinite(ll) else 1e10

    res = optimize.minimize(nll, u0, method="L-BFGS-B", bounds=[(-30, 30)] * len(u0),
                            options={"maxiter": 500, "ftol": 1e-14, "gtol": 1e-9})
    u = res.x
    H = _hessian(lambda v: -nll(v) * n, u)
    messages = []
    try:
        cov = np.linalg.inv(-H)
        ok = bool(np.all(np.isfinite(cov)) and np.all(np.diag(cov) > 0))
    except np.linalg.LinAlgError:
        cov, ok = np.full((len(u), len(u)), np.nan), False
    if not ok:
        messages.append("the observed information is not positive definite: the data do not identify every "
                        "parameter (fix some, or give bounds)")
        warnings.warn(messages[-1], ConvergenceWarning, stacklevel=2)
    if not res.success:
        messages.append(f"the optimiser stopped without converging: {res.message}")
        warnings.warn(messages[-1], ConvergenceWarning, stacklevel=2)
    mle = np.array([p.from_free(v) for p, v in zip(params, u, strict=True)])
    x = mle
    bias = np.zeros(len(u))
    if ok and bias_correction:
        def per_visit(v: np.ndarray) -> np.ndarray:
            sc = _scenario(raw, params, np.array([p.from_free(w) for p, w in zip(params, v, strict=True)]))
            return lik.per_visit(sc) + lik.arrivals_per_visit(sc)

        bias = cox_snell_bias(per_visit, u, cov)
        x = np.array([p.natural_mean_corrected(v, b, var) for p, v, b, var in
                      zip(params, u, bias, np.diag(cov), strict=True)])
        if not np.all(np.isfinite(x)) or not all(p.inside(v) for p, v in zip(params, x, strict=True)):
            messages.append("the bias correction leaves the parameter space; the estimates are the uncorrected "
                            "maximum-likelihood ones")
            x, bias = mle, np.zeros(len(u))
    fitted = copy.deepcopy(raw)
    for p, v in zip(params, x, strict=True):
        put_path(fitted, p.path, float(v))
    return FitResult(parameters=list(params), estimate=x, free=u, cov_free=cov, loglik=-res.fun * n,
                     scenario=Scenario.model_validate(fitted), raw=fitted, converged=bool(res.success) and ok,
                     n_visits=n, seconds=time.perf_counter() - t0, messages=messages, mle=mle, bias_free=bias)


def _stencil(f: Any, u: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-observation gradient (k x n) and Hessian (k x k x n) of ``f`` (returning n values) by central differences."""
    k = len(u)
    eye = np.eye(k) * h
    f0 = f(u)
    fp = np.array([f(u + eye[i]) for i in range(k)])
    fm = np.array([f(u - eye[i]) for i in range(k)])
    g = (fp - fm) / (2 * h)
    H = np.empty((k, k, len(f0)))
    for i in range(k):
        H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h**2
        for j in range(i + 1, k):
            H[i, j] = H[j, i] = (f(u + eye[i] + eye[j]) - f(u + eye[i] - eye[j]) - f(u - eye[i] + eye[j])
                                 + f(u - eye[i] - eye[j])) / (4 * h**2)
    return g, H


def _third(f: Any, u: np.ndarray, d: float) -> np.ndarray:
    """Third derivatives of scalar ``f`` at ``u`` by central differences (step ``d``; points shared)."""
    k = len(u)
    cache: dict[tuple[int, ...], float] = {}

    def at(*steps: tuple[int, int]) -> float:
        off = [0] * k
        for i, m in steps:
            off[i] += m
        key = tuple(off)
        if key not in cache:
            cache[key] = f(u + d * np.array(off, float))
        return cache[key]

    T = np.empty((k, k, k))
    for r in range(k):
        T[r, r, r] = (at((r, 2)) - 2 * at((r, 1)) + 2 * at((r, -1)) - at((r, -2))) / (2 * d**3)
        for t in range(k):
            if t == r:
                continue
            # d^2/dr^2 d/dt
            x = ((at((r, 1), (t, 1)) - 2 * at((t, 1)) + at((r, -1), (t, 1)))
                 - (at((r, 1), (t, -1)) - 2 * at((t, -1)) + at((r, -1), (t, -1)))) / (2 * d**3)
            T[r, r, t] = T[r, t, r] = T[t, r, r] = x
        for t in range(r + 1, k):
            for v in range(t + 1, k):
                x = sum(a * b * c * at((r, a), (t, b), (v, c)) for a in (1, -1) for b in (1, -1) for c in (1, -1))
                x /= 8 * d**3
                for i, j, m in ((r, t, v), (r, v, t), (t, r, v), (t, v, r), (v, r, t), (v, t, r)):
                    T[i, j, m] = x
    return T


def cox_snell_bias(per_obs: Any, u: np.ndarray, cov: np.ndarray, h: float = 1e-3, delta: float = 1e-2) -> np.ndarray:
    """First-order bias of the maximum-likelihood estimate ``u`` (Cox & Snell 1968; Cordeiro & Klein 1994).

    ``b_s = sum_{r,t,v} K^{sr} K^{tv} (kappa_{rtv} / 2 + kappa_{rt,v})``, with
    ``K^{-1} = cov`` (inverse observed information), ``kappa_{rtv}`` the third
    derivatives of the log-likelihood and ``kappa_{rt,v} = sum_i l_{rt,i} l_{v,i}``
    over observations ``i``, all by central differences at ``u`` (steps ``h``
    for the Hessians, ``delta`` for the third derivatives).

    Parameters
    ----------
    per_obs : callable
        ``u -> per-observation log-likelihoods`` (their sum is the log-likelihood).

    >>> rng = np.random.default_rng(1)
    >>> n = 40_000
    >>> x = rng.exponential(2.0, n)  # mean m = exp(u): E[log x-bar] - log m = -1 / (2 n) to first order
    >>> f = lambda u: -u[0] - x / np.exp(u[0])
    >>> u = np.array([np.log(x.mean())])
    >>> round(float(cox_snell_bias(f, u, np.array([[1 / n]]))[0] * 2 * n), 1)  # plug-in: within O(n^-1/2)
    -1.0
    """
    g, H = _stencil(per_obs, u, h)
    C = np.einsum("rti,vi->rtv", H, g)
    T = _third(lambda v: float(np.sum(per_obs(v))), u, delta)
    A = np.einsum("tv,rtv->r", cov, 0.5 * T + C)
    return cov @ A
