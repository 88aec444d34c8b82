"""The marketplace: many concurrent streams competing for the same viewers.

The picture: a shopping app's live tab.  Viewers arrive to the marketplace
(the spec's arrival process), pick one of the streams that are live, may jump
to another stream when it announces a deal, and leave after their dwell time.
Each stream has a host, with an appeal (how much viewers prefer the stream), a
trust (a multiplier of the purchase hazard of the stream's products) and a
cost per hour; hosts may be human or virtual (AI).

Choice is multinomial logit (McFadden 1974): a viewer arriving at ``t``
chooses stream ``s`` with probability ``exp(U_s(t)) / sum_r exp(U_r(t))``,
``U_s(t) = appeal_weight * appeal_s + offer_weight * offer_s(t)``, where
``offer_s(t)`` is 1 while a tactic that makes an offer (``Tactic.offer``: a
lightning sale, countdown timer or exclusive code) runs on one of the stream's
products.  With switching on, when a stream ``s``
announces a tactic (a window starts) each viewer watching another stream ``r``
switches to ``s`` with probability
``probability * exp(U_s) / (exp(U_s) + exp(U_r))``.  Viewers an arrival boost
brings go to the boosting stream.

A marketplace of ``streams`` streams replicates the spec's lineup in each
(products keep their names; the ``stream`` column tells them apart), with
stream ``k``'s tactic windows shifted by ``k * stagger_s`` (all streams are live
together, products on show in the same slots).  Host appeals spread
around the host's appeal by ``appeal_spread`` standard deviations, at the
normal quantiles ``(k + 1/2) / streams`` (stream 0 the most appealing: the
superstar), so the design has no randomness of its own.  The last
``virtual_hosts`` streams have the virtual host.  Without a ``[market]``
table, or with one stream and no switching, a run is the single-stream model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from fomolab._frozen import FrozenModel
from fomolab._libm import exp
from fomolab.lineup import Product

__all__ = ["Host", "Choice", "Switching", "Market", "StreamView", "Visits", "streams_of", "visits"]


class Host(FrozenModel):
    """A stream's host."""

    kind: Literal["human", "virtual"] = "human"
    appeal: float = 0.0
    trust: float = Field(default=1.0, gt=0)
    cost_per_hour: float = Field(default=0.0, ge=0)


class Choice(FrozenModel):
    """Weights of the multinomial-logit choice of a stream."""

    appeal_weight: float = 1.0
    offer_weight: float = 1.0


class Switching(FrozenModel):
    """Switching to a stream that announces a tactic."""

    enabled: bool = False
    probability: float = Field(default=0.3, ge=0, le=1)


class Market(FrozenModel):
    """The ``[market]`` table: concurrent streams and how viewers move between them."""

    streams: int = Field(default=1, ge=1, le=1000)
    stagger_s: float = Field(default=0.0, ge=0)
    appeal_spread: float = Field(default=0.0, ge=0)
    host: Host = Host()
    virtual_hosts: int = Field(default=0, ge=0)
    virtual_host: Host = Host(kind="virtual")
    choice: Choice = Choice()
    switching: Switching = Switching()

    @model_validator(mode="after")
    def _hosts_fit(self) -> Market:
        if self.virtual_hosts > self.streams:
            raise ValueError(f"virtual_hosts must not exceed streams ({self.streams}): {self.virtual_hosts}")
        return self

    def hosts(self) -> list[Host]:
        """Each stream's host: appeals at normal quantiles, the last ones virtual."""
        n = self.streams
        if n > 1:
            from scipy.stats import norm

            offsets = -norm.ppf((np.arange(n) + 0.5) / n) * self.appeal_spread
        else:
            offsets = np.zeros(1)
        out = []
        for k, off in enumerate(offsets):
            base = self.virtual_host if k >= n - self.virtual_hosts else self.host
            out.append(base.model_copy(update={"appeal": base.appeal + float(off)}))
        return out


@dataclass(frozen=True)
class StreamView:
    """One stream of a run: its host and its products (schedule shifted)."""

    index: int
    host: Host
    lineup: dict[str, Product]
    shift_s: float = 0.0

    def offer_windows(self) -> list[tuple[float, float]]:
        """Windows of the tactics that make the stream an offer (``Tactic.offer``)."""
        out = []
        for prod in self.lineup.values():
            for _, tac in prod.tactics.items():
                w = tac.window()
                if tac.offer and w is not None:
                    out.append(w)
        return out


def shift_product(prod: Product, dt: float) -> Product:
    """The product with every tactic's time fields (``Tactic.time_fields``) moved by ``dt``
    seconds (the slot stays: streams run together)."""
    if dt == 0:
        return prod
    tactics = {kind: tac.shifted(dt) for kind, tac in prod.tactics.items()}
    return prod.model_copy(update={"tactics": prod.tactics.model_copy(update=tactics)})


def streams_of(lineup: dict[str, Product], market: Market | None, duration_s: float) -> list[StreamView]:
    """The streams of a run; without a market, a one-stream marketplace (the lineup as it is)."""
    market = market if market is not None else Market()
    out = []
    for k, host in enumerate(market.hosts()):
        dt = k * market.stagger_s
        shifted = {name: shift_product(p, dt) for name, p in lineup.items()}
        out.append(StreamView(k, host, shifted, dt))
    return out


@dataclass(frozen=True)
class Visits:
    """Viewers' visits to streams: one row per (viewer, stream, start, end)."""

    viewer: np.ndarray
    stream: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    switched_in: np.ndarray  # the visit began with a switch


def _utilities(streams: list[StreamView], market: Market, t: np.ndarray) -> np.ndarray:
    """``U[s, j]`` of stream ``s`` at times ``t[j]``."""
    appeal = np.array([s.host.appeal for s in streams])[:, None]
    offer = np.zeros((len(streams), len(t)))
    for s in streams:
        for a, b in s.offer_windows():
            offer[s.index] = np.maximum(offer[s.index], (t >= a) & (t < b))
    return market.choice.appeal_weight * appeal + market.choice.offer_weight * offer


def _breaks(streams: list[StreamView], T: float) -> np.ndarray:
    cuts = {0.0, T}
    for s in streams:
        for a, b in s.offer_windows():
            cuts.update((a, b))
    return np.array(sorted(c for c in cuts if 0 <= c <= T))


def visits(streams: list[StreamView], market: Market, arrival_s: np.ndarray, departure_s: np.ndarray,
           fixed: np.ndarray | None, u: np.ndarray | None, rng_switch: np.random.Generator | None,
           T: float) -> Visits:
    """Who watches which stream when.

    Viewers with ``fixed >= 0`` start on that stream (boosted viewers); the
    others choose by logit at arrival, with their uniform ``u``.  Arrivals
    must be sorted.  Visits come out sorted by start.

    >>> v = visits(streams_of({}, Market(), 100.0), Market(), np.array([1.0, 5.0]), np.array([50.0, 90.0]),
    ...            None, None, None, 100.0)
    >>> v.stream.tolist(), v.start_s.tolist(), v.end_s.tolist()
    ([0, 0], [1.0, 5.0], [50.0, 90.0])
    """
    n = len(arrival_s)
    idx = np.arange(n)
    if len(streams) == 1:  # nowhere to choose or switch: each viewer's visit is their whole stay
        return Visits(idx, np.zeros(n, np.int64), arrival_s, departure_s, np.zeros(n, bool))
    cuts = _breaks(streams, T)
    mids = (cuts[:-1] + cuts[1:]) / 2
    U = _utilities(streams, market, mids)
    P = exp(U - U.max(axis=0))
    cum = np.cumsum(P / P.sum(axis=0), axis=0)  # streams x epochs
    cum[-1] = 1.0
    epoch = np.clip(np.searchsorted(cuts, arrival_s, side="right") - 1, 0, len(mids) - 1)
    cur = np.asarray(fixed, dtype=np.int64).copy() if fixed is not None else np.full(n, -1, np.int64)
    choose = cur < 0
    if u is None or rng_switch is None:
        raise TypeError("several streams need the viewers' choice uniforms and a switching generator")
    if choose.any():
        # stream s is chosen when cum[s-1] <= u < cum[s], at the arrival's epoch
        e = epoch[choose]
        cur[choose] = (u[choose][:, None] >= cum[:, e].T).sum(axis=1)
    start = arrival_s.copy()
    done_v, done_s, done_a, done_b, done_in = [], [], [], [], []
    came_by_switch = np.zeros(n, bool)
    if market.switching.enabled and market.switching.probability > 0:
        ann = sorted((w[0], s.index) for s in streams for w in s.offer_windows() if 0 <= w[0] < T)
        for tau, s in ann:
            k = int(np.searchsorted(arrival_s, tau, side="right"))  # arrived by tau
            present = idx[:k][(departure_s[:k] > tau) & (cur[:k] != s)]
            if not len(present):
                continue
            Ut = _utilities(streams, market, np.array([tau]))[:, 0]
            p = market.switching.probability / (1.0 + exp(Ut[cur[present]] - Ut[s]))
            go = present[rng_switch.random(len(present)) < p]
            done_v.append(go)
            done_s.append(cur[go])
            done_a.append(start[go])
            done_b.append(np.full(len(go), tau))
            done_in.append(came_by_switch[go])
            cur[go] = s
            start[go] = tau
            came_by_switch[go] = True
    viewer = np.concatenate(done_v + [idx])
    begin = np.concatenate(done_a + [start])
    order = np.lexsort((viewer, begin))
    return Visits(viewer[order], np.concatenate(done_s + [cur])[order], begin[order],
                  np.concatenate(done_b + [departure_s])[order], np.concatenate(done_in + [came_by_switch])[order])
