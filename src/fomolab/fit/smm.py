"""Simulated method of moments: estimates where the visit-level likelihood does not serve.

Two cases need it: aggregate data (a platform's dashboard gives only viewers
and sales per minute, ``docs/schema.md``), and scenarios whose likelihood is
not tractable (finite stock, quotas, social proof: each purchase depends on
the others').  The moments are the data's per-minute means, ``m = (sales per
minute, mean viewers present per minute)``; the model's moments are their
means over ``S`` datasets simulated by fomolab's own engine at ``theta``,
always from the same seeds (replicates ``0 .. S - 1`` of the spec's seed:
common random numbers, so the objective changes with ``theta`` and not with
fresh noise).  The estimate minimises

``Q(theta) = (m_obs - mbar_S(theta))' W (m_obs - mbar_S(theta))``

with ``W`` the inverse of the moments' simulated variances at the starting
values (diagonal), over the transformed parameters of
:mod:`fomolab.fit.estimate` (Nelder–Mead: with common random numbers the
simulated moments are piecewise constant in ``theta`` on a fine scale).
Standard errors come from the sandwich with the simulation-noise factor of
McFadden (1989) and Gouriéroux & Monfort (1996):

``V = (1 + 1/S) (G'WG)^-1 G'W Omega W G (G'WG)^-1``

where ``G`` is the moments' Jacobian (central differences of +-0.2 on the
transformed scale, over ``4 S`` datasets: the engine's draws change with a
gain, since its thinning envelope does, so common random numbers smooth the
objective only partly and a narrow step would be mostly noise) and
``Omega`` the covariance of one dataset's moments, both at the estimate.
The simulated objective is not smooth in ``theta``; the estimator is still
consistent and asymptotically normal (Pakes & Pollard 1989).
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize

from fomolab.errors import ConvergenceWarning, DataError
from fomolab.fit.estimate import FitResult, Parameter, check_parameters, get_path, put_path

__all__ = ["AggregateData", "read_aggregate_data", "aggregate_from_tables", "minute_moments", "fit_smm",
           "METHOD", "AGGREGATE_COLUMNS", "SIMULATIONS"]

METHOD = "simulated method of moments"
AGGREGATE_COLUMNS = ("minute", "viewers", "sales")
#: Datasets simulated per evaluation of the objective.
SIMULATIONS = 16
#: Step of the moments' Jacobian on the transformed scale.
JACOBIAN_STEP = 0.2
#: Datasets per point of the Jacobian and of the moments' covariance, as a multiple of ``S``.
JACOBIAN_FACTOR = 4
#: Most problems listed per rule and column (the rest are counted).
MAX_LISTED = 5


@dataclass(frozen=True)
class AggregateData:
    """Viewers and sales per minute of one stream, checked.

    Attributes
    ----------
    viewers : ndarray
        Mean viewers present in each minute ``0 .. n - 1`` of the stream.
    sales : ndarray
        Purchases (of any product) in each minute.
    """

    viewers: np.ndarray
    sales: np.ndarray
    source: str = "<data>"

    @property
    def n_minutes(self) -> int:
        return len(self.sales)

    def moments(self) -> np.ndarray:
        """The moment vector: sales per minute, then viewers per minute."""
        return np.concatenate([self.sales, self.viewers])

    def __repr__(self) -> str:
        return f"AggregateData({self.source!r}, minutes={self.n_minutes}, sales={int(self.sales.sum())})"


def aggregate_from_tables(minutes: Any, *, duration_s: float, name: str = "minutes",
                          source: str = "<data>") -> AggregateData:
    """Check a per-minute table (``minute, viewers, sales``) against the rules and the stream's duration.

    Every minute ``0 .. ceil(duration_s / 60) - 1`` appears once; ``viewers``
    is a number >= 0 and ``sales`` a whole number >= 0.

    Raises
    ------
    DataError
        With one line per problem (``DataError.problems``).
    """
    import pandas as pd

    problems: list[str] = []

    def rows(column: str, mask: np.ndarray, values: Any, rule: str) -> None:
        idx = np.flatnonzero(mask)
        for i in idx[:MAX_LISTED]:
            v = values[i]
            shown = repr(v.item() if hasattr(v, "item") else v)
            problems.append(f"{name}: column '{column}', row {int(i) + 1} (value {shown}): {rule}")
        if len(idx) > MAX_LISTED:
            problems.append(f"{name}: column '{column}', {len(idx) - MAX_LISTED} more rows: {rule}")

    def fail() -> None:
        exc = DataError(f"{source}: {len(problems)} problem{'s' * (len(problems) != 1)} with the field data:\n"
                        + "\n".join(problems))
        exc.problems = list(problems)  # type: ignore[attr-defined]
        raise exc

    for c in AGGREGATE_COLUMNS:
        if c not in minutes.columns:
            problems.append(f"{name}: column '{c}': missing (the table needs {', '.join(AGGREGATE_COLUMNS)})")
    if problems:
        fail()
    cols = {}
    for c in AGGREGATE_COLUMNS:
        raw = minutes[c]
        num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        rows(c, ~np.isfinite(num), raw.to_numpy(), "must be a finite number")
        cols[c] = num
    ok = {c: np.isfinite(v) for c, v in cols.items()}
    n_min = int(np.ceil(duration_s / 60.0 - 1e-9))
    m = cols["minute"]
    rows("minute", ok["minute"] & ((m != np.round(m)) | (m < 0) | (m >= n_min)), m,
         f"must be a whole minute from 0 to {n_min - 1} (the stream lasts {duration_s:g} s)")
    rows("viewers", ok["viewers"] & (cols["viewers"] < 0), cols["viewers"], "must be >= 0")
    s = cols["sales"]
    rows("sales", ok["sales"] & ((s < 0) | (s != np.round(s))), s, "must be a whole number >= 0")
    good = ok["minute"] & (m == np.round(m)) & (m >= 0) & (m < n_min)
    seen: set[int] = set()
    dup = np.zeros(len(m), bool)
    for i in np.flatnonzero(good):
        if int(m[i]) in seen:
            dup[i] = True
        seen.add(int(m[i]))
    rows("minute", dup, m, "each minute appears once (this one is repeated)")
    missing = sorted(set(range(n_min)) - seen)
    if missing:
        shown = ", ".join(map(str, missing[:MAX_LISTED])) + (f" and {len(missing) - MAX_LISTED} more"
                                                             if len(missing) > MAX_LISTED else "")
        problems.append(f"{name}: column 'minute': minutes {shown} are missing (every minute of the stream, "
                        f"0 to {n_min - 1}, needs a row)")
    if problems:
        fail()
    order = np.argsort(m)
    return AggregateData(viewers=cols["viewers"][order], sales=cols["sales"][order], source=source)


def read_aggregate_data(path: str | Path, *, duration_s: float) -> AggregateData:
    """Read and check ``minutes.csv`` or ``minutes.parquet`` (``docs/schema.md``)."""
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False) if path.suffix == ".csv" else pd.read_parquet(path)
    except Exception as exc:
        err = DataError(f"{path}: cannot be read as {path.suffix[1:]}: {type(exc).__name__}: {exc}")
        err.problems = [str(err)]  # type: ignore[attr-defined]
        raise err from None
    return aggregate_from_tables(df, duration_s=duration_s, name=str(path), source=str(path.parent))


def minute_moments(arrival_s: np.ndarray, departure_s: np.ndarray, purchase_s: np.ndarray,
                   duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``(viewers, sales)`` per minute of visit-level data: mean viewers present, purchases."""
    n_min = int(np.ceil(duration_s / 60.0 - 1e-9))
    edges = np.minimum(np.arange(n_min + 1) * 60.0, duration_s)
    lo, hi = edges[:-1], edges[1:]
    a, d = np.asarray(arrival_s, float)[:, None], np.asarray(departure_s, float)[:, None]
    present = np.clip(np.minimum(d, hi) - np.maximum(a, lo), 0.0, None).sum(axis=0) / (hi - lo)
    sales = np.histogram(np.asarray(purchase_s, float), bins=edges)[0].astype(float)
    return present, sales


def aggregate_of_visits(visits: Any, purchases: Any, duration_s: float, source: str = "<data>") -> AggregateData:
    """Visit-level tables summarised per minute."""
    v, s = minute_moments(visits["arrival_s"].to_numpy(float), visits["departure_s"].to_numpy(float),
                          purchases["time_s"].to_numpy(float), duration_s)
    return AggregateData(viewers=v, sales=s, source=source)


class _Simulator:
    """The moments of ``S`` engine datasets of one arm at given parameter values, always from the same seeds."""

    def __init__(self, spec: dict[str, Any], arm: str, params: list[Parameter], simulations: int) -> None:
        self.spec, self.arm, self.params, self.S = spec, arm, params, simulations
        self.calls = 0

    def experiment(self, values: np.ndarray) -> Any:
        from fomolab.spec import parse_spec

        raw = copy.deepcopy(self.spec)
        raw.pop("sweep", None)
        for p, v in zip(self.params, values, strict=True):
            put_path(raw, p.path, float(v))
        return parse_spec(raw, resolve=False)

    def each(self, values: np.ndarray, n: int | None = None) -> np.ndarray:
        """Moment vectors of ``n`` (default ``S``) datasets: n x moments."""
        from fomolab.design import expand
        from fomolab.engine import simulate

        exp = self.experiment(values)
        T = exp.arms[self.arm].scenario.stream.duration_s
        out = []
        for run in (r for r in expand(exp, range(n or self.S)) if r.arm == self.arm):
            tb = simulate(run)
            sh, ev = tb.shoppers, tb.events
            buy = ev[ev["kind"] == "purchase"]["time_s"].to_numpy(float)
            v, s = minute_moments(sh["arrival_s"].to_numpy(float), sh["departure_s"].to_numpy(float), buy, T)
            out.append(np.concatenate([s, v]))
        self.calls += 1
        return np.array(out)

    def mean(self, values: np.ndarray, n: int | None = None) -> np.ndarray:
        return self.each(values, n).mean(axis=0)


def fit_smm(spec: dict[str, Any], arm: str, raw: dict[str, Any], params: list[Parameter], data: AggregateData, *,
            start: np.ndarray | None = None, simulations: int = SIMULATIONS, max_evaluations: int | None = None,
            n_visits: int = 0) -> FitResult:
    """Simulated-method-of-moments estimates of ``params`` from per-minute viewers and sales.

    Parameters
    ----------
    spec : dict
        The resolved spec (its tables), simulated at each trial value.
    arm : str
        The arm that was on in the field.
    raw : dict
        That arm's scenario tables (:func:`~fomolab.fit.estimate.arm_scenario_raw`), for starting values.
    params : list of Parameter
        What to estimate.
    data : AggregateData
        The observed moments.
    start : ndarray, optional
        Starting values (default: the spec's).
    simulations : int
        Datasets simulated per evaluation (``S``).
    max_evaluations : int, optional
        Cap on the objective's evaluations (default ``60 + 40 k`` for ``k`` parameters).

    Returns
    -------
    FitResult
        With ``method`` :data:`METHOD`; ``loglik`` holds ``-Q`` at the estimate.
    """
    from fomolab.spec import Scenario

    t0 = time.perf_counter()
    check_parameters(raw, params)
    sim = _Simulator(spec, arm, params, simulations)
    x0 = np.array([get_path(raw, p.path) for p in params], float) if start is None else np.asarray(start, float)
    u0 = np.array([p.to_free(x) for p, x in zip(params, x0, strict=True)])
    m_obs = data.moments()
    if len(m_obs) != len(sim.mean(x0)):
        raise DataError(f"{data.source}: {data.n_minutes} minutes of data, but the spec's stream has "
                        f"{len(sim.mean(x0)) // 2}")
    var0 = sim.each(x0).var(axis=0, ddof=1)
    floor = max(float(np.median(var0[var0 > 0])) if np.any(var0 > 0) else 1.0, 1e-9) * 1e-3
    W = 1.0 / np.maximum(var0, floor)

    def nat(u: np.ndarray) -> np.ndarray:
        return np.array([p.from_free(v) for p, v in zip(params, u, strict=True)], float)

    def q(u: np.ndarray) -> float:
        if np.any(np.abs(u) > 30):
            return 1e12
        try:
            g = m_obs - sim.mean(nat(u))
        except Exception:
            return 1e12
        return float(g @ (W * g)) / len(g)

    k = len(params)
    res = optimize.minimize(q, u0, method="Nelder-Mead",
                            options={"maxfev": max_evaluations or 60 + 40 * k, "xatol": 1e-3, "fatol": 1e-6,
                                     "initial_simplex": np.vstack([u0, u0 + 0.3 * np.eye(k)])})
    u = res.x
    nj = JACOBIAN_FACTOR * simulations
    G = np.empty((len(m_obs), k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = JACOBIAN_STEP
        G[:, j] = (sim.mean(nat(u + e), nj) - sim.mean(nat(u - e), nj)) / (2 * JACOBIAN_STEP)
    each = sim.each(nat(u), nj)
    omega = np.cov(each, rowvar=False)
    messages = []
    A = G.T @ (W[:, None] * G)
    try:
        Ai = np.linalg.inv(A)
        cov = (1 + 1 / simulations) * Ai @ (G.T * W) @ omega @ (W[:, None] * G) @ Ai
        ok = bool(np.all(np.isfinite(cov)) and np.all(np.diag(cov) > 0))
    except np.linalg.LinAlgError:
        cov, ok = np.full((k, k), np.nan), False
    if not ok:
        messages.append("the moments do not identify every parameter (their Jacobian is singular): fix some")
        warnings.warn(messages[-1], ConvergenceWarning, stacklevel=2)
    converged = bool(res.success)
    if not converged:
        messages.append(f"the optimiser stopped without converging: {res.message}")
        warnings.warn(messages[-1], ConvergenceWarning, stacklevel=2)
    x = nat(u)
    fitted = copy.deepcopy(raw)
    for p, v in zip(params, x, strict=True):
        put_path(fitted, p.path, float(v))
    return FitResult(parameters=list(params), estimate=x, free=u, cov_free=cov, loglik=-float(res.fun),
                     scenario=Scenario.model_validate(fitted), raw=fitted, converged=converged and ok,
                     n_visits=n_visits, seconds=time.perf_counter() - t0, messages=messages, method=METHOD,
                     simulations=simulations, evaluations=sim.calls)
