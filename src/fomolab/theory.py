"""Analytic expectations of the model, for checking the engine against theory.

Where viewers do not interact (unlimited stock, no sale quota, no social
proof), a viewer's purchase process is an inhomogeneous Poisson process whose
hazard is a known function of time, their traits and whether they hold an
exclusive code.  With exponential dwell times the expected conversion and the
mean time from arrival to first purchase then follow by numerical integration
(no simulation):

- with ``G(t) = t / mean_dwell + H(t)`` and ``H`` the cumulative hazard of all
  products on show, a viewer arriving at ``a`` buys with probability
  ``P(a) = exp(G(a)) * K(a)``, ``K(a) = int_a^T h(t) exp(-G(t)) dt``, and
  ``E[(tau) 1{buy}] = exp(G(a)) * (J(a) - a K(a))``,
  ``J(a) = int_a^T t h(t) exp(-G(t)) dt`` (reverse cumulative integrals);
- a viewer arriving at or before a code's announcement (a tactic's
  ``holder_time``) follows the holder's hazard (it equals everyone's until
  the announcement), a later one does not;
- each tactic gives its factor and price effect (``Tactic.analytic``) and says
  when its hazard cannot be integrated (``Tactic.analytic_problem``);
- these are averaged over arrival times (rate times arrival boosts), segments,
  impulsiveness (Gauss-Jacobi nodes for the Beta law) and interest
  (generalised Gauss-Laguerre nodes for the gamma law).

Also: the mean number of viewers present, the M(t)/G/infinity formula
``E N(t) = int_0^t lambda(s) b(s) S(t - s) ds``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from fomolab.engine import boost_schedule
from fomolab.population import Segment
from fomolab.spec import Scenario
from fomolab.stream import rate_function

__all__ = ["Expectation", "expected_outcomes", "expected_viewers", "arrival_intensity"]


@dataclass(frozen=True)
class Expectation:
    """Expected outcomes per arriving viewer."""

    conversion: float
    mean_time_to_purchase_s: float
    viewers: float

    def __repr__(self) -> str:
        return (f"Expectation(conversion={self.conversion:.6f}, mean_time_to_purchase_s="
                f"{self.mean_time_to_purchase_s:.3f}, viewers={self.viewers:.1f})")


def arrival_intensity(sc: Scenario, t: np.ndarray) -> np.ndarray:
    """Arrival rate at ``t``, boosts included (viewers per second)."""
    T = sc.stream.duration_s
    edges, rates = sc.stream.arrivals.pieces(T)
    b_edges, b_rates = boost_schedule(sc.lineup, edges, rates, T)
    t = np.minimum(t, np.nextafter(T, 0))  # the rate just before the end holds at T
    return rate_function(edges, rates, t) + rate_function(b_edges, b_rates, t)


def _check(sc: Scenario) -> None:
    if sc.market is not None and sc.market.streams > 1:
        raise ValueError("the integration covers a single stream, not a marketplace of several")
    for name, p in sc.lineup.items():
        if p.stock is not None:
            raise ValueError(f"product {name!r}: viewers interact (stock, quota or social proof); "
                             "expectations need a scenario without interaction")
        for _, tac in p.tactics.items():
            problem = tac.analytic_problem()
            if problem is not None:
                need = "learning" if "learning" in problem else "interaction"
                raise ValueError(f"product {name!r}: {problem}; expectations need a scenario without {need}")
    for name, seg in sc.population.segments.items():
        if seg.dwell.distribution != "exponential":
            raise ValueError(f"segment {name!r}: the integration needs exponential dwell times, "
                             f"not {seg.dwell.distribution}")


def _nodes_z(seg: Segment, n: int) -> tuple[np.ndarray, np.ndarray]:
    imp = seg.impulsiveness
    if imp.fixed is not None:
        return np.array([imp.fixed]), np.array([1.0])
    a, b = imp.beta  # type: ignore[misc]
    x, w = special.roots_jacobi(n, b - 1, a - 1)  # weight (1-x)^(b-1) (1+x)^(a-1) on [-1, 1]
    return (x + 1) / 2, w / w.sum()


def _nodes_q(seg: Segment, n: int) -> tuple[np.ndarray, np.ndarray]:
    if seg.interest.cv == 0:
        return np.array([seg.interest.mean]), np.array([1.0])
    k = 1 / seg.interest.cv**2
    x, w = special.roots_genlaguerre(n, k - 1)  # weight x^(k-1) e^-x
    return x * seg.interest.mean / k, w / w.sum()


def _hazard(sc: Scenario, t: np.ndarray, z: float, q: float, beta: float, holder: bool) -> np.ndarray:
    """Total purchase hazard of all products at ``t`` (mirrors docs/MODEL.md, 3.2)."""
    T = sc.stream.duration_s
    h = np.zeros_like(t)
    for prod in sc.lineup.values():
        a, b = prod.slot(T)
        hp = np.where((t >= a) & (t < b), prod.base_rate_per_s * q, 0.0)
        keep = np.ones_like(t)
        for _, tac in prod.tactics.items():
            f, k = tac.analytic(t, z, holder)
            hp = hp * f
            if k is not None:
                keep = keep * k
        h += hp * keep ** (-beta)
    return h


def _rev_cumtrapz(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    seg = (y[1:] + y[:-1]) / 2 * np.diff(t)
    return np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]])


def expected_outcomes(sc: Scenario, *, dt: float = 0.25, nodes: int = 48) -> Expectation:
    """Expected conversion and mean time to first purchase (buyers) of an arm.

    Parameters
    ----------
    sc : Scenario
        An arm's scenario without interaction between viewers.
    dt : float
        Time grid step of the trapezoid rule, in seconds.
    nodes : int
        Quadrature nodes for impulsiveness and interest.

    Examples
    --------
    >>> from fomolab import load_experiment
    >>> exp = load_experiment("experiments/reference_flash.toml")
    >>> e = expected_outcomes(exp.arms["control"].scenario)
    >>> round(float(e.conversion), 4)  # closed form: (1/7) (1 - (1 - exp(-14)) / 14) = 0.13265
    0.1326
    """
    _check(sc)
    T = sc.stream.duration_s
    t = np.linspace(0.0, T, round(T / dt) + 1)
    lam = arrival_intensity(sc, t)
    announce = [x for p in sc.lineup.values() for _, tac in p.tactics.items()
                if (x := tac.holder_time()) is not None]
    if len(set(announce)) > 1:
        raise ValueError("the integration handles codes announced at one time only")
    cut = announce[0] if announce else -1.0
    buy = time = 0.0
    for seg in sc.population.segments.values():
        mu = 1 / seg.dwell.mean_s
        zs, wz = _nodes_z(seg, nodes)
        qs, wq = _nodes_q(seg, nodes)
        for z, w1 in zip(zs, wz, strict=True):
            for q, w2 in zip(qs, wq, strict=True):
                p_a = np.empty_like(t)
                m_a = np.empty_like(t)
                for holder in (True, False):
                    h = _hazard(sc, t, z, q, seg.price_sensitivity, holder)
                    H = np.concatenate([[0.0], np.cumsum((h[1:] + h[:-1]) / 2 * np.diff(t))])
                    G = t * mu + H
                    e = np.exp(-G)
                    K = _rev_cumtrapz(h * e, t)
                    J = _rev_cumtrapz(t * h * e, t)
                    rows = (t <= cut) if holder else (t > cut)
                    p_a[rows] = (np.exp(G) * K)[rows]
                    m_a[rows] = (np.exp(G) * (J - t * K))[rows]
                wt = seg.share * w1 * w2
                buy += wt * np.trapezoid(lam * p_a, t)
                time += wt * np.trapezoid(lam * m_a, t)
    viewers = float(np.trapezoid(lam, t))
    return Expectation(conversion=float(buy / viewers), mean_time_to_purchase_s=float(time / buy), viewers=viewers)


def expected_viewers(sc: Scenario, times: np.ndarray, *, dt: float = 0.25) -> np.ndarray:
    """Mean number of viewers present at ``times`` (M(t)/G/infinity).

    ``E N(t) = int_0^t lambda(s) b(s) P(dwell > t - s) ds``, with the
    segments' dwell laws mixed by share.
    """
    T = sc.stream.duration_s
    s = np.linspace(0.0, T, round(T / dt) + 1)
    lam = arrival_intensity(sc, s)
    out = []
    for t in np.atleast_1d(times):
        upto = s <= t
        surv = sum(seg.share * seg.dwell.survival(t - s[upto]) for seg in sc.population.segments.values())
        out.append(np.trapezoid(lam[upto] * surv, s[upto]))
    return np.array(out)
