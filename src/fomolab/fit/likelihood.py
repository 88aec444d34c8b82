"""The visit-level likelihood of field data under the model.

For visit ``i`` (arrival ``a``, departure ``d``) and each product ``p`` on
show, purchases form an inhomogeneous Poisson process stopped at the first
purchase (the engine sells at most one unit of a product per visit), with
hazard ``h_p(t) = r_p q price_term(t) prod_k f_k(t, z)`` given the viewer's
impulsiveness ``z`` and interest ``q`` (each tactic's factor ``f_k`` from its
public class, ``docs/MODEL.md`` 3.2).  Given ``(z, q)`` the products are
independent, so a visit contributes

``L_i = sum_s share_s f_s(d - a) int int prod_p h_p(t_ip)^b_ip exp(-H_p(a, e_ip)) dBeta_s(z) dGamma_s(q)``

with ``b_ip`` whether ``p`` was bought, ``e_ip`` the purchase time or
departure, ``f_s`` the exponential dwell density (survival where the visit
runs to the stream's end), ``z`` integrated by Gauss–Jacobi and ``q`` by
generalised Gauss–Laguerre nodes (:mod:`fomolab.theory`).  ``H_p`` is
integrated by Gauss–Legendre on the pieces between the signals'
breakpoints, exact for the piecewise constant and linear signals up to
rounding, and to ``1e-12`` relative for hyperbolic timers.  Arrivals add
the Poisson process's log-likelihood ``sum log lambda(a_i) - int lambda``.

Refused (their likelihood depends on other viewers in ways the data do not
fix): finite stock, sale quotas, scarcity cues on real stock, social proof,
marketplaces, non-exponential dwell.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from fomolab.errors import DataError
from fomolab.fit.data import FieldData
from fomolab.spec import Scenario
from fomolab.theory import arrival_intensity

__all__ = ["VisitLikelihood", "untractable"]

#: Gauss-Legendre nodes per piece of a visit.
GL_NODES = 8
#: Quadrature nodes for impulsiveness and interest.
Z_NODES = 24
Q_NODES = 12


def untractable(sc: Scenario) -> list[str]:
    """Reasons the visit-level likelihood does not hold for a scenario (empty if it does)."""
    out = []
    if sc.market is not None and sc.market.streams > 1:
        out.append("a marketplace of several streams (visits switch between streams)")
    for name, p in sc.lineup.items():
        if p.stock is not None:
            out.append(f"lineup.{name}.stock is finite (sell-outs make each purchase depend on the others')")
        for kind, tac in p.tactics.items():
            reason = tac.likelihood_problem()
            if reason is not None:
                out.append(f"lineup.{name}.tactics.{kind} {reason}")
    for sname, seg in sc.population.segments.items():
        if seg.dwell.distribution != "exponential":
            out.append(f"population.segments.{sname}.dwell.distribution is {seg.dwell.distribution!r} "
                       "(the likelihood needs exponential dwell)")
    return out


def _nodes_z(seg: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    imp = seg.impulsiveness
    if imp.fixed is not None:
        return np.array([imp.fixed]), np.array([1.0])
    a, b = imp.beta
    x, w = special.roots_jacobi(n, b - 1, a - 1)
    return (x + 1) / 2, w / w.sum()


def _nodes_q(seg: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    if seg.interest.cv == 0:
        return np.array([seg.interest.mean]), np.array([1.0])
    k = 1 / seg.interest.cv ** 2
    x, w = special.roots_genlaguerre(n, k - 1)
    return x * seg.interest.mean / k, w / w.sum()


class VisitLikelihood:
    """Log-likelihood of field data for scenarios of one design.

    Parameters
    ----------
    data : FieldData
        The observed visits and purchases.
    products : list of str
        The lineup's products, in spec order.
    """

    def __init__(self, data: FieldData, products: list[str]) -> None:
        self.data = data
        self.products = products
        self.bought, self.tbuy = data.purchase_matrix(products)
        self.a = data.arrival_s
        self.d = data.departure_s
        self.end = np.where(self.bought, self.tbuy, self.d[:, None])  # visits x products

    @staticmethod
    def _nodes(sc: Scenario, pname: str) -> tuple[np.ndarray, np.ndarray]:
        """Gauss-Legendre nodes per piece: few where the hazard is a low polynomial in time.

        Between breakpoints every signal is constant or linear in time (a
        linear timer; ``deferral`` makes its factor quadratic), so the
        hazard is a polynomial of degree at most 2 per linear timer, and
        ``n`` nodes integrate degree ``2n - 1`` exactly.  A hyperbolic timer
        or a price sensitivity with a time-varying discount gets
        :data:`GL_NODES`.
        """
        degrees = [tac.time_degree() for _, tac in sc.lineup[pname].tactics.items()]
        smooth = any(d is None for d in degrees)
        degree = sum(d for d in degrees if d is not None)
        n = GL_NODES if smooth else max(1, (degree + 2) // 2)
        return np.polynomial.legendre.leggauss(n)

    def __repr__(self) -> str:
        return f"VisitLikelihood(visits={len(self.a)}, products={self.products})"

    # -- the hazard ---------------------------------------------------------
    def _hazard(self, sc: Scenario, pname: str, t: np.ndarray, z: np.ndarray, beta: float,
                arr: np.ndarray, dep: np.ndarray) -> np.ndarray:
        """Hazard of ``pname`` at ``t`` (interest 1) for impulsiveness ``z`` (last axis)."""
        prod = sc.lineup[pname]
        T = sc.stream.duration_s
        lo, hi = prod.slot(T)
        t4 = t[..., None]
        h = np.where((t4 >= lo) & (t4 < hi), prod.base_rate_per_s, 0.0) * np.ones_like(z)
        keep = np.ones_like(t4)
        for _, tac in prod.tactics.items():
            h = h * tac.factor(t4, z, arr, dep)
            paid = tac.price_keep(t4, arr, dep)
            if paid is not None:
                keep = keep * paid
        if beta:
            h = h * keep ** (-beta)
        return h

    def _breaks(self, sc: Scenario, pname: str) -> np.ndarray:
        prod = sc.lineup[pname]
        T = sc.stream.duration_s
        cuts = {0.0, T, *prod.slot(T)}
        for _, tac in prod.tactics.items():
            cuts.update(tac.kinks(T))
        return np.array(sorted(c for c in cuts if 0.0 <= c <= T))

    def cumulative(self, sc: Scenario, pname: str, z: np.ndarray, beta: float) -> np.ndarray:
        """``H_p(a_i, e_ip)`` at interest 1: visits x z-nodes."""
        j = self.products.index(pname)
        B = self._breaks(sc, pname)
        a, e = self.a[:, None], self.end[:, j][:, None]
        lo = np.clip(a, B[:-1], B[1:])
        hi = np.clip(e, B[:-1], B[1:])
        width = hi - lo  # visits x pieces
        x, w = self._nodes(sc, pname)
        t = lo[..., None] + width[..., None] * (x + 1) / 2  # visits x pieces x nodes
        arr = self.a[:, None, None, None]
        dep = self.d[:, None, None, None]
        h = self._hazard(sc, pname, t, z, beta, arr, dep)
        return np.einsum("ikgz,ikg->iz", h, width[..., None] * w / 2)

    def log_rates(self, sc: Scenario, pname: str, z: np.ndarray, beta: float) -> np.ndarray:
        """``log h_p(t_ip)`` at interest 1 for the visits that bought ``p``, else 0: visits x z-nodes."""
        j = self.products.index(pname)
        rows = np.flatnonzero(self.bought[:, j])
        out = np.zeros((len(self.a), len(z)))
        if len(rows):
            h = self._hazard(sc, pname, self.tbuy[rows, j], z, beta, self.a[rows, None], self.d[rows, None])
            with np.errstate(divide="ignore"):
                out[rows] = np.log(h)
        return out

    # -- the likelihood -----------------------------------------------------
    def per_visit(self, sc: Scenario) -> np.ndarray:
        """Log-likelihood of each visit's purchases and departure (arrivals apart)."""
        T = sc.stream.duration_s
        n = len(self.a)
        ended = self.d < T
        nbuy = self.bought.sum(axis=1)
        parts = []
        for seg in sc.population.segments.values():
            z, wz = _nodes_z(seg, Z_NODES)
            q, wq = _nodes_q(seg, Q_NODES)
            H = np.zeros((n, len(z)))
            L = np.zeros((n, len(z)))
            for pname in self.products:
                H += self.cumulative(sc, pname, z, seg.price_sensitivity)
                L += self.log_rates(sc, pname, z, seg.price_sensitivity)
            # q enters as q^(purchases) exp(-q H): visits x z x q
            expo = (L[:, :, None] + nbuy[:, None, None] * np.log(q)[None, None, :] - H[:, :, None] * q)
            logw = np.log(wz)[:, None] + np.log(wq)[None, :]
            purch = special.logsumexp(expo + logw[None], axis=(1, 2))
            m = seg.dwell.mean_s
            dwell = np.where(ended, -np.log(m), 0.0) - (self.d - self.a) / m
            parts.append(np.log(seg.share) + dwell + purch)
        return special.logsumexp(np.vstack(parts), axis=0)

    def arrivals(self, sc: Scenario) -> float:
        """Log-likelihood of the arrival times (Poisson process, boosts included)."""
        from fomolab.engine import boost_schedule

        T = sc.stream.duration_s
        edges, rates = sc.stream.arrivals.pieces(T)
        b_edges, _ = boost_schedule(sc.lineup, edges, rates, T)
        cuts = np.unique(np.concatenate([edges, b_edges, [0.0, T]]))
        cuts = cuts[(cuts >= 0) & (cuts <= T)]
        mids = (cuts[:-1] + cuts[1:]) / 2
        total = float(np.sum(arrival_intensity(sc, mids) * np.diff(cuts)))
        lam = arrival_intensity(sc, self.a)
        if np.any(lam <= 0):
            return -np.inf
        return float(np.sum(np.log(lam)) - total)

    def arrivals_per_visit(self, sc: Scenario) -> np.ndarray:
        """:meth:`arrivals` split over the visits: ``log lambda(a_i) - Lambda / n`` each."""
        n = max(len(self.a), 1)
        lam = arrival_intensity(sc, self.a)
        with np.errstate(divide="ignore"):
            return np.log(lam) - (float(np.sum(np.log(lam))) - self.arrivals(sc)) / n

    def loglik(self, sc: Scenario, *, arrivals: bool = True) -> float:
        """The data's log-likelihood under scenario ``sc``."""
        reasons = untractable(sc)
        if reasons:
            raise DataError("the visit-level likelihood does not hold for this scenario: " + "; ".join(reasons))
        ll = float(np.sum(self.per_visit(sc)))
        return ll + self.arrivals(sc) if arrivals else ll
