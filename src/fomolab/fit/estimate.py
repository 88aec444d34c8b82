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
           "expand_path"]

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
        ``parameter, estimate, ci_lower, ci_upper, se, method, start``.
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
        return pd.DataFrame({"parameter": [p.path for p in self.parameters], "estimate": self.estimate,
                             "ci_lower": lo, "ci_upper": hi, "se": self.se, "method": self.method})

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
            start: np.ndarray | None = None) -> FitResult:
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
    x = np.array([p.from_free(v) for p, v in zip(params, u, strict=True)])
    fitted = copy.deepcopy(raw)
    for p, v in zip(params, x, strict=True):
        put_path(fitted, p.path, float(v))
    return FitResult(parameters=list(params), estimate=x, free=u, cov_free=cov, loglik=-res.fun * n,
                     scenario=Scenario.model_validate(fitted), raw=fitted, converged=bool(res.success) and ok,
                     n_visits=n, seconds=time.perf_counter() - t0, messages=messages)
