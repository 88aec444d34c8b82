"""The engine: one run of a stream, sampled exactly, on a SimPy clock.

``simulate(run_spec) -> Tables`` is a pure function of its :class:`RunSpec`.

How a run is sampled (``docs/MODEL.md`` gives the model):

1. *Viewers.*  Arrivals are a Poisson process with a piecewise-constant rate;
   traits come from the population; each viewer stays for their dwell time
   (cut at the stream's end).  Viewers an arm's arrival boost attracts come from
   a separate stream, on top of the baseline viewers every arm shares.
   In a marketplace (:mod:`fomolab.market`) each viewer's time is split into
   *visits* to streams; with one stream a viewer's visit is their whole stay.
2. *Candidate purchase times.*  For every visit and product, candidates are a
   Poisson process at the product's *envelope* rate (an upper bound of the
   hazard, the same in every arm), each with a uniform ``u``.  This is the
   thinning construction: a candidate at ``t`` is a purchase when
   ``u < h(t) / bound``.  Hazards that are piecewise constant or continuous in
   time (sale, timer, exclusive code, price) are exact under thinning with no
   time step.
3. *Decisions.*  Where no viewer's hazard depends on another's (unlimited stock,
   no social proof, no quota), candidates are decided in bulk with numpy.
   Otherwise a SimPy process per product (:class:`ProductState`) walks the
   candidates that could be accepted in time order, keeping the shared state
   (stock, a gated tactic such as a sale's quota, live signals such as the
   recent-purchase ticker) exact at each event.  Cost per viewer is constant:
   no viewer is ever woken by another's purchase.

The engine knows no tactic by name: it asks each tactic (a plugin of
:mod:`fomolab.tactics`) for its factor, its price effect, its gate, its live
signal and its events.  With ``FOMOLAB_CHECK_BOUNDS=1`` in the environment (the
test suite sets it) it checks that every candidate's hazard stays under the
envelope the tactics declare, and raises :class:`~fomolab.errors.EnvelopeError`
otherwise.

*Shape for interacting processes.*  Every product's walk is a process on one
``simpy.Environment`` per run, every stream's products included, and the clock
only moves to purchases; all the vectorised work (arrivals, visits, candidate
times, static hazards) is done before ``env.run``.  A mechanism where products
or streams interact (a viewer's budget across products, a host reacting to
sales) adds a process or a shared resource to that environment, and the walks
meet there at the purchase times; what does not interact stays in numpy.
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator, Iterator
from typing import Any

import numpy as np
import simpy

from fomolab._libm import exp, power
from fomolab.basket import Basket, outcomes, shopper_walk, value_gate
from fomolab.design import Envelope, RunSpec
from fomolab.errors import EnvelopeError, OrderError
from fomolab.host import host_reacts, host_signals
from fomolab.lineup import Product
from fomolab.market import Market, StreamView, Visits, streams_of, visits
from fomolab.population import Traits, draw_traits
from fomolab.recorder import BOOSTED_ID_OFFSET, Recorder, Tables, ViewerArrays
from fomolab.retention import OwnPurchase, Retention, retain
from fomolab.seeds import arm_key, generator
from fomolab.stream import poisson_times, rate_function
from fomolab.tactics import Gate, LiveSignal, ProductContext
from fomolab.value import Shopper, misperception

__all__ = ["simulate", "boost_schedule", "ProductState", "check_bounds"]

#: Relative slack of the envelope check (the bound and the hazard round differently).
_BOUND_RTOL = 1e-9
#: A group of viewers: arrival times, traits, decision generator, boosted, the stream boosting them (-1: none).
Group = tuple[np.ndarray, Traits, np.random.Generator, bool, int]
#: Candidate purchases: visit index, time, bound rate, uniform.
Candidates = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def check_bounds() -> bool:
    """True when the engine checks hazards against their envelope (``FOMOLAB_CHECK_BOUNDS=1``)."""
    return os.environ.get("FOMOLAB_CHECK_BOUNDS", "") not in ("", "0")


def simulate(run: RunSpec) -> Tables:
    """Simulate one run and return its tables.

    Parameters
    ----------
    run : RunSpec
        The run, from :func:`fomolab.design.expand`.

    Returns
    -------
    Tables
        ``shoppers``, ``events`` and ``runs`` as DataFrames (``docs/schema.md``).
    """
    sc = run.scenario
    T = sc.stream.duration_s
    market = sc.market if sc.market is not None else Market()  # a single stream is a one-stream marketplace
    streams = streams_of(sc.lineup, market, T)
    rec = Recorder(run.run_id, run.arm, run.replicate, run.point, run.seed, dict(run.params))

    edges, rates = sc.stream.arrivals.pieces(T)
    arrival = poisson_times(edges, rates, generator(run.seed, "arrivals"))
    if sc.stream.arrivals.hawkes is not None:  # bursts: each arrival brings more (fomolab.hawkes)
        arrival = sc.stream.arrivals.hawkes.cascade(arrival, T, generator(run.seed, "hawkes"))
    groups: list[Group] = [(arrival, draw_traits(sc.population, generator(run.seed, "traits"), len(arrival)),
               generator(run.seed, "decisions"), False, -1)]
    for stream in streams:  # viewers an arrival boost brings come to the boosting stream
        b_edges, b_rates = boost_schedule(stream.lineup, edges, rates, T)
        if b_rates.any():
            rng_b = generator(run.seed, "boost", arm_key(run.arm), *((stream.index,) if stream.index else ()))
            extra = poisson_times(b_edges, b_rates, rng_b)
            groups.append((extra, draw_traits(sc.population, rng_b, len(extra)), rng_b, True, stream.index))

    viewers = _viewer_arrays(groups, T)
    if sc.stream.retention is not None:  # tactics hold viewers: departures move (fomolab.retention)
        viewers = retain(sc.stream.retention, sc.lineup, viewers, np.concatenate([g[1].dwell_s for g in groups]),
                         T, rec)
    if sc.stream.reactive_host is not None:  # a host who reacts to the audience adds sales (fomolab.host)
        sc, viewers = host_reacts(sc, viewers, np.concatenate([g[1].dwell_s for g in groups]), rec, T)
        streams = streams_of(sc.lineup, market, T)
    own = None  # retention from a viewer's own purchase: departures change at purchases (fomolab.retention)
    hawkes = sc.stream.arrivals.hawkes
    bursts_from_purchases = hawkes is not None and hawkes.purchase_branching > 0
    if (sc.stream.retention is not None and sc.stream.retention.own_purchase) or bursts_from_purchases:
        own = OwnPurchase(sc.stream.retention or Retention(), sc.lineup, viewers.arrival_s,
                          np.concatenate([g[1].dwell_s for g in groups]), T, viewers.departure_s)
    offsets = np.cumsum([0] + [len(g[0]) for g in groups])
    basket = None  # budgets shared across products ([shopper], fomolab.basket): off unless a spec asks for it
    if sc.shopper is not None and sc.shopper.walks:
        basket = Basket.draw(sc.shopper, list(sc.population.segments), viewers.segment, [len(g[0]) for g in groups],
                             [generator(run.seed, "budget", *(() if k == 0 else (arm_key(run.arm),) if k == 1
                                                              else (arm_key(run.arm), k))) for k in range(len(groups))])
    vis = _visits(streams, market, viewers, groups, offsets, run.seed, T)
    drawn = vis if own is None else Visits(vis.viewer, vis.stream, vis.start_s, own.horizon, vis.switched_in)
    decisions = [g[2] for g in groups]
    del groups, arrival  # their arrivals and traits are in ``viewers`` now: free the copies
    mu, sigma = (np.array(x)[viewers.segment] for x in
                 zip(*(seg.valuation.lognormal() for seg in sc.population.segments.values()), strict=True))
    env = simpy.Environment()  # one clock for every product of every stream: their processes can meet
    joint = Joint(run, sc, viewers, own, env, T, check_bounds()) if bursts_from_purchases and own else None
    P = len(sc.lineup)
    checking = check_bounds()
    after: list[tuple[ProductContext, Product]] = []
    for stream in streams:
        here = vis.stream == stream.index
        for j, (pname, prod) in enumerate(stream.lineup.items()):
            pnum = stream.index * P + j
            ctx = ProductContext(rec, pnum, prod.stock, prod.price, prod.slot(T), T, run.seed,
                                 vis.start_s, vis.end_s, here)
            if sc.stream.reactive_host is not None and prod.stock is not None:  # the host restocks in the walk
                ctx.restock = sc.stream.reactive_host.restock
            if sc.stream.reactive_host is not None and sc.stream.reactive_host.cues:  # cues when sales slow
                ctx.host_live = host_signals(sc.stream.reactive_host, ctx, prod)
            _schedule_events(ctx, prod)
            after.append((ctx, prod))
            envelope = _stream_envelope(run.envelope[pname], stream)
            if joint is not None:  # purchases bring viewers: their candidates are drawn at the purchase
                joint.product(ctx, prod, envelope, stream.host.trust)
            cands: list[Candidates] = []
            for i, rng in enumerate(decisions):
                mine = np.flatnonzero(here & (vis.viewer >= offsets[i]) & (vis.viewer < offsets[i + 1]))
                cands.append(_candidates(envelope, viewers, drawn, mine, rng))
            cand = tuple(np.concatenate(c) for c in zip(*cands, strict=True))
            del cands
            value = _valuations(run, pnum, prod, viewers, offsets, vis.viewer[cand[0]], mu, sigma)
            perceived = None  # the valuation gate ([shopper], fomolab.value): off unless a spec asks for it
            if sc.shopper is not None and sc.shopper.valuation_gate:
                perceived = value * misperception(sc.shopper.misperception_cv, _normals(
                    run, pnum, offsets, vis.viewer[cand[0]], "perception"))
            _decide(env, ctx, prod, viewers, drawn, cand, value, stream.host.trust, checking, perceived, sc.shopper,
                    basket, sc.shopper.units(pname) if sc.shopper is not None else 1, own, joint)
            del cand, value, perceived  # the walk keeps what it needs
    del mu, sigma
    env.run(until=T)
    if joint is not None:  # the viewers the purchases brought join the tables
        viewers, vis = joint.finish(viewers, vis, rec)
    if own is not None and own.r != 1.0:  # the departures are final now (``vis.end_s`` is ``own.departure``)
        rec.shopper_columns["held_by_purchase_s"] = own.held()
    for ctx, prod in after:
        for _, tactic in prod.tactics.items():
            tactic.after_run(ctx)
    tables = rec.tables(viewers, vis, list(sc.population.segments), list(sc.lineup),
                        streams if sc.market is not None else None, T,  # a [market] table asks for its tables
                        [s.lineup for s in streams])
    if sc.shopper is not None:  # budgets and returns ([shopper]): columns of their own
        outcomes(tables, rec.purchase_arrays(), sc.shopper, basket, vis,
                 [p if s.index == 0 else f"{p}@{s.index}" for s in streams for p in s.lineup], run.seed)
    return tables


def _visits(streams: list[StreamView], market: Market, v: ViewerArrays, groups: list[Group], offsets: np.ndarray,
            seed: int, T: float) -> Visits:
    """Every viewer's visits to the streams (one visit per viewer with a single stream).

    The shared viewers choose with uniforms from a stream of their own (the
    same in every arm); boosted viewers go to the stream that boosted them.
    With one stream there is no choice: a viewer's visit is their whole stay.
    """
    if len(streams) == 1:
        return visits(streams, market, v.arrival_s, v.departure_s, None, None, None, T)
    fixed = np.concatenate([np.full(len(g[0]), g[4]) for g in groups])
    order = np.argsort(v.arrival_s, kind="stable")
    u = np.full(len(fixed), np.nan)
    u[:offsets[1]] = generator(seed, "choice").random(int(offsets[1]))
    out = visits(streams, market, v.arrival_s[order], v.departure_s[order], fixed[order], u[order],
                 generator(seed, "switch"), T)
    viewer = order[out.viewer]
    keep = np.lexsort((out.start_s, viewer >= offsets[1], out.stream))  # by stream, group, start
    return Visits(viewer[keep], out.stream[keep], out.start_s[keep], out.end_s[keep], out.switched_in[keep])


def _stream_envelope(env: Envelope, stream: StreamView) -> Envelope:
    """The product's envelope in a stream: shifted with its schedule, scaled by its host's trust."""
    dt = stream.shift_s
    if dt == 0 and stream.host.trust == 1.0:
        return env
    return Envelope(tuple(e + dt for e in env.edges), tuple(b * stream.host.trust for b in env.base),
                    env.discount, env.gains)


def boost_schedule(lineup: dict[str, Product], edges: np.ndarray, rates: np.ndarray,
                   T: float) -> tuple[np.ndarray, np.ndarray]:
    """Extra arrival rate brought by tactics' arrival boosts, piecewise constant.

    While tactics with boosts ``b1, b2, ...`` run, the arrival rate is
    ``rate(t) * b1 * b2 * ...``; the extra part is ``rate(t) * (prod - 1)``.
    """
    windows = [(w, t.boost) for p in lineup.values() for _, t in p.tactics.items()
               if t.boost > 1 and (w := t.window()) is not None]
    if not windows:
        return np.array([0.0, T]), np.array([0.0])
    cuts = np.unique(np.concatenate([edges, [x for (a, b), _ in windows for x in (a, b)]]))
    mids = (cuts[:-1] + cuts[1:]) / 2
    mult = np.ones(len(mids))
    for (a, b), boost in windows:
        mult *= np.where((mids >= a) & (mids < b), boost, 1.0)
    return cuts, rate_function(edges, rates, mids) * (mult - 1.0)


def _viewer_arrays(groups: list[Group], T: float) -> ViewerArrays:
    parts: list[dict[str, np.ndarray]] = []
    boosted_so_far = 0  # boosted viewers of every stream get ids of their own, in group order
    for arrival, tr, _, boosted, _ in groups:
        n = len(arrival)
        first = BOOSTED_ID_OFFSET + boosted_so_far if boosted else 0
        boosted_so_far += n if boosted else 0
        parts.append(dict(
            shopper_id=np.arange(first, first + n, dtype=np.int64), boosted=np.full(n, boosted),
            segment=tr.segment, impulsiveness=tr.impulsiveness, interest=tr.interest,
            price_sensitivity=tr.price_sensitivity, arrival_s=arrival,
            departure_s=np.minimum(arrival + tr.dwell_s, T),
        ))
    return ViewerArrays(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


def _candidates(env: Envelope, v: ViewerArrays, vis: Visits, rows: np.ndarray, rng: np.random.Generator
                ) -> Candidates:
    """Candidate purchase times of the visits ``rows`` (one group, sorted by start) at the envelope rate.

    Returns visit index, time, bound rate and uniform of every candidate.  The
    draws depend only on the visits and the envelope, both the same in every
    arm: this is what couples the arms.

    A group's visits are sorted by start, so those starting before an epoch
    ends are a prefix (``searchsorted``); only those still going are kept.
    The work is proportional to the visits a product's slot overlaps, not to
    the whole audience times the number of epochs.
    """
    e = env.edges
    starts = vis.start_s[rows]
    end = int(np.searchsorted(starts, e[-1], side="left"))  # started before the last edge
    keep = np.flatnonzero(vis.end_s[rows[:end]] > e[0])  # and still going at the first
    idx = rows[keep]
    a, d = vis.start_s[idx], vis.end_s[idx]
    who = vis.viewer[idx]
    vs: list[np.ndarray] = []
    ts: list[np.ndarray] = []
    rs: list[np.ndarray] = []
    for j in range(len(e) - 1):
        if env.base[j] == 0:
            continue
        k = int(np.searchsorted(a, e[j + 1], side="left"))  # started before the epoch ends
        sel = np.flatnonzero(d[:k] > e[j])  # and still going when it starts
        if not len(sel):
            continue
        w = who[sel]
        start = np.maximum(a[sel], e[j])
        length = np.minimum(d[sel], e[j + 1]) - start
        rate = env.rate(j, v.hazard_traits(w))
        n = rng.poisson(rate * length)
        rep = np.repeat(np.arange(len(w)), n)
        vs.append(idx[sel][rep])
        ts.append(start[rep] + rng.random(len(rep)) * length[rep])
        rs.append(rate[rep])
    if not vs:
        return np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0)
    vi = np.concatenate(vs)
    return vi, np.concatenate(ts), np.concatenate(rs), rng.random(len(vi))


def _valuations(run: RunSpec, pnum: int, prod: Product, v: ViewerArrays, offsets: np.ndarray, vi: np.ndarray,
                mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Valuations of product ``pnum`` by the viewers of its candidates ``vi`` (one per candidate).

    The shared viewers' come from a stream of the product's own, the boosted
    ones' from one of the arm's, on top: viewer ``i`` of a group gets the
    ``i``-th normal draw of its stream.  Only the draws up to the last viewer
    with a candidate are made (a prefix of the same stream, so the same
    numbers), and valuations are computed only where a candidate needs them:
    the cost follows the viewers the product's slot reaches, not the audience.
    """
    normal = _normals(run, pnum, offsets, vi, "valuation")
    out: np.ndarray = prod.price * v.interest[vi] * exp(mu[vi] + sigma[vi] * normal)
    return out


def _normals(run: RunSpec, pnum: int, offsets: np.ndarray, vi: np.ndarray, purpose: str) -> np.ndarray:
    """One standard normal per viewer of product ``pnum`` from ``purpose``'s stream, for the candidates ``vi``."""
    normal = np.empty(len(vi))
    for k in range(len(offsets) - 1):
        mine = (vi >= offsets[k]) & (vi < offsets[k + 1])
        if not mine.any():
            continue
        local = vi[mine] - offsets[k]
        keys = (pnum,) if k == 0 else (pnum, arm_key(run.arm)) if k == 1 else (pnum, arm_key(run.arm), k)
        normal[mine] = generator(run.seed, purpose, *keys).standard_normal(int(local.max()) + 1)[local]
    return normal


def _schedule_events(ctx: ProductContext, prod: Product) -> None:
    """The product's slot and the events its tactics know in advance."""
    a, b = ctx.slot
    ctx.recorder.event(a, "slot_start", ctx.product)
    ctx.recorder.event(b, "slot_end", ctx.product)
    for tactic in sorted((t for _, t in prod.tactics.items()), key=lambda t: t.record_rank):
        tactic.schedule(ctx)


def _check_envelope(h: np.ndarray, bound: np.ndarray, t: np.ndarray, ctx: ProductContext, prod: Product) -> None:
    """Raise :class:`EnvelopeError` where a hazard exceeds its thinning bound."""
    bad = np.flatnonzero(h > bound * (1.0 + _BOUND_RTOL))
    if len(bad):
        i = bad[0]
        kinds = ", ".join(k for k, _ in prod.tactics.items()) or "none"
        raise EnvelopeError(
            f"product {ctx.product}: the purchase hazard {h[i]:.6g}/s at t = {t[i]:g} s exceeds its envelope "
            f"{bound[i]:.6g}/s ({len(bad)} candidates); tactics: {kinds}.  A tactic's factor must stay under "
            "1 + envelope_gain(a, b) * z and its price effect under its discount_bound(a, b)")


def _decide(env: simpy.Environment, ctx: ProductContext, prod: Product, v: ViewerArrays, vis: Visits,
            cand: tuple[np.ndarray, ...], value: np.ndarray, trust: float = 1.0, checking: bool = False,
            perceived: np.ndarray | None = None, shopper: Shopper | None = None, basket: Basket | None = None,
            limit: int = 1, own: OwnPurchase | None = None, joint: Joint | None = None
            ) -> tuple[np.ndarray, ...] | None:
    """Turn a product's candidates into purchases for this arm.

    ``cand`` holds visit indices; ``value`` each candidate's valuation;
    ``trust`` the stream host's multiplier of the hazard.  A viewer buys a
    product at most once, whatever their visits.

    Static tactics multiply the hazard and the share of the price paid here,
    in registry order; a *gated* tactic's factor and price effect make a
    second hazard, ``h_on``, that applies while its gate is open; interactive
    tactics' live signals are evaluated in the product's walk.

    With ``own`` (retention from a viewer's own purchase) ``vis`` ends each
    visit at the latest it can end (``own.horizon``, so that is the ``dep``
    the tactics see: it is past every candidate that can count, which is
    all a tactic's use of it needs), and every product is decided by a walk
    on the shared clock that counts a candidate only before its viewer's
    current departure (:meth:`ProductState.walk`).
    """
    vi, t, bound, u = cand
    who = vis.viewer[vi]
    tactics = [x for _, x in prod.tactics.items()]
    z, q, beta = v.impulsiveness[who], v.interest[who], v.price_sensitivity[who]
    arr, dep = vis.start_s[vi], vis.end_s[vi]
    slot_a, slot_b = ctx.slot
    rate = prod.base_rate_per_s * trust if trust != 1.0 else prod.base_rate_per_s
    base = np.where((t >= slot_a) & (t < slot_b), rate * q, 0.0)
    keep = np.ones(len(t))  # share of the list price paid, after static price effects
    gated = [x for x in tactics if x.gated]
    if len(gated) > 1:
        raise TypeError(f"at most one gated tactic per product: {[x.kind for x in gated]}")
    for tactic in tactics:
        if tactic.gated or tactic.is_interactive():
            continue  # the gated one below; shared-state tactics in the walk
        base = base * tactic.hazard_factor(ctx, t, z, arr, dep)  # each <= 1 + gain z s: the envelope holds
        k = tactic.price_keep(t, arr, dep)
        if k is not None:
            keep = keep * k
    # keep ** -beta: 1 where no viewer is price-sensitive (x ** -0.0 is 1 for every x)
    priced = np.any(beta)
    h_off = base * (power(keep, -beta) if priced else 1.0)
    if gated:
        g = gated[0]
        s_on = g.signal(t)
        k = g.price_keep(t, arr, dep)
        keep_on = keep * k if k is not None else keep
        h_on = base * g.factor(t, z, arr, dep) * (power(keep_on, -beta) if priced else 1.0)
    else:
        g = None
        s_on, keep_on, h_on = np.zeros(len(t)), keep, h_off
    price_on, price_off = prod.price * keep_on, prod.price * keep
    rec, pname = ctx.recorder, ctx.product
    valued = None
    if perceived is not None and shopper is not None:  # the valuation gate (fomolab.value)
        h_on, h_off, valued = value_gate(shopper, ctx, tactics, g, t, arr, perceived, s_on, price_on, price_off,
                                         h_on, h_off)

    interactive = prod.stock is not None or any(x.is_interactive() for x in tactics) or (
        shopper is not None and shopper.walks) or bool(ctx.host_live) or own is not None
    if not interactive:
        if checking:
            _check_envelope(h_on, bound, t, ctx, prod)
        acc = np.flatnonzero(u * bound < h_on)
        acc = acc[np.lexsort((t[acc], who[acc]))]
        first = acc[np.unique(who[acc], return_index=True)[1]]
        rec.purchases(vi[first], pname, t[first], price_on[first], value[first] - price_on[first])
        return None
    live = [x for x in tactics if x.is_interactive() and not x.gated]
    extra = np.ones(len(t))
    for x in [*live, *ctx.host_live]:  # the host's cues (fomolab.host) are live signals too
        extra = extra * (1.0 + x.gain * z)
    top = np.maximum(h_on, h_off) * extra
    if checking:
        _check_envelope(top, bound, t, ctx, prod)
    maybe = np.flatnonzero(u * bound < top)
    maybe = maybe[np.argsort(t[maybe], kind="stable")]
    vi_m = vi[maybe]
    who_m = vi_m if np.array_equal(who, vi) else who[maybe]  # one stream: visits are viewers, one array for both
    rows = (vi_m, who_m, t[maybe], (u * bound)[maybe], h_on[maybe], h_off[maybe], z[maybe],
            s_on[maybe] > 0, price_on[maybe], price_off[maybe], value[maybe])
    if joint is not None and joint.rows_only:  # a purchase's new viewers: their rows join the product's walk
        return rows
    pairs = [(x, x.live(ctx)) for x in sorted(live, key=lambda x: x.live_rank)]
    state = ProductState(ctx, [*(s for _, s in pairs if s is not None), *ctx.host_live],
                         g.gate(ctx) if g is not None else None, checking)
    if own is not None:  # departures move at purchases: one time order for every product's candidates
        if shopper is not None and (valued is not None or shopper.walks):
            raise TypeError("retention from a viewer's own purchase is not modelled with [shopper] walks")
        if joint is not None:  # purchases bring viewers: the walk admits them as they come
            joint.add(state, env.process(state.walk_joint(env, own, joint, *rows)))
            return None
        env.process(state.walk(env, *rows, own=own))
        return None
    if shopper is not None and (valued is not None or shopper.walks):  # live lifts, budgets, several units
        live_lifts = [shopper.lift(x.kind) if valued is not None else 0.0 for x, s in pairs if s is not None]
        env.process(shopper_walk(state, env, rows, valued.take(maybe) if valued is not None else None, live_lifts,
                                 basket, limit))
        return None
    env.process(state.walk(env, *rows))
    return None


class _Checked(LiveSignal):
    """A live signal whose level is checked to lie in [0, 1] (test mode)."""

    def __init__(self, inner: LiveSignal) -> None:
        self.inner, self.gain = inner, inner.gain

    def start(self, stock: int | None) -> None:
        self.inner.start(stock)

    def level(self, t: float, stock: int | None) -> float:
        x = self.inner.level(t, stock)
        if not 0.0 <= x <= 1.0:
            raise EnvelopeError(f"a live signal ({type(self.inner).__name__}) is {x!r} at t = {t:g} s; "
                                "signals must lie in [0, 1] for the envelope to hold")
        return x

    def bought(self, t: float, stock: int | None) -> None:
        self.inner.bought(t, stock)

    def finish(self, stock: int | None) -> None:
        self.inner.finish(stock)


class ProductState:
    """The state of one product whose viewers interact: its stock, its gated tactic
    (a sale's quota), the live signals of its interactive tactics (scarcity, ticker).

    Its :meth:`walk` is the product's SimPy process.
    """

    def __init__(self, ctx: ProductContext, live: list[LiveSignal], gate: Gate | None, checking: bool = False) -> None:
        self.ctx = ctx
        self.stock = ctx.stock
        self.gate = gate
        self.live: list[LiveSignal] = [_Checked(x) for x in live] if checking else live
        self.bought: set[int] = set()
        for x in self.live:
            x.start(self.stock)
        if self.stock == 0:
            ctx.recorder.event(ctx.slot[0], "stock_out", ctx.product)

    def walk(self, env: simpy.Environment, vi: np.ndarray, who: np.ndarray, t: np.ndarray, level: np.ndarray,
             h_on: np.ndarray, h_off: np.ndarray, z: np.ndarray, gate_on: np.ndarray, price_on: np.ndarray,
             price_off: np.ndarray, value: np.ndarray, own: OwnPurchase | None = None
             ) -> Generator[Any, Any, None]:
        """SimPy process: decide the candidates in time order.

        A rejected candidate is not an event (thinning: nothing happens), so
        the clock moves only to purchases: each is a timeout on the SimPy clock,
        and the stock, gate and live signals it changes are exact at that
        instant.  The product's state belongs to this process alone, so
        evaluating the candidates between two purchases before the clock
        reaches them sees the same state.  Arrays are walked as Python lists
        (scalar arithmetic on Python floats is several times faster than on
        numpy scalars, with the same IEEE results).

        With ``own`` (a viewer's own purchase moves their departure) the
        candidates were drawn up to the latest a viewer can leave
        (``own.horizon``), and one counts only before the viewer's *current*
        departure, which any product's purchase may have moved.  The clock
        reaches each candidate that passes the thinning test before the
        departure is read (every product's walk shares ``own``, and the
        clock has then decided every earlier candidate of every product).
        A Poisson candidate stream restricted to an interval that a stopping
        time ends is thinned exactly so.
        """
        gate, bought = self.gate, self.bought
        levels = [(x.gain, x.level) for x in self.live]  # bound methods: no attribute lookups per candidate
        stock = self.stock
        left = [r.times for r in self.ctx.restock]
        for i, w, tk, lev, hon, hoff, zk, son, pon, poff, val in _rows(vi, who, t, level, h_on, h_off, z, gate_on,
                                                                   price_on, price_off, value):
            if stock == 0:
                break
            if w in bought:
                continue
            on = son and (gate is None or gate.open)
            h = hon if on else hoff
            for gain, level_at in levels:
                h *= 1.0 + gain * zk * level_at(tk, stock)
            if lev >= h:
                continue
            if tk > env.now:
                yield env.timeout(tk - env.now)
            if own is not None:
                if tk >= own.departure[w]:
                    continue  # gone by now: the candidate lies past the viewer's current departure
                own.purchase(w, tk)
            bought.add(w)
            stock = self._sell(i, tk, on, pon if on else poff, val, stock, left)
        self.stock = stock
        self.finish()

    def _sell(self, i: int, tk: float, on: bool, paid: float, val: float, stock: int | None, left: list[int]
              ) -> int | None:
        """Record a purchase at ``tk`` (visit ``i``, price ``paid``): the gate's quota, the stock and its
        restocks, the live signals told; the stock after it."""
        rec, pname = self.ctx.recorder, self.ctx.product
        rec.purchase(i, pname, tk, paid, val - paid)
        if on and self.gate is not None:
            self.gate.sold(tk)
        if stock is not None:
            stock -= 1
            if self.ctx.restock:
                stock = self._restock(tk, stock, self.ctx.restock, left)
        for x in self.live:
            x.bought(tk, stock)
        if stock == 0:
            rec.event(tk, "stock_out", pname)
        return stock

    def walk_joint(self, env: simpy.Environment, own: OwnPurchase, joint: Joint, vi: np.ndarray, who: np.ndarray,
                   t: np.ndarray, level: np.ndarray, h_on: np.ndarray, h_off: np.ndarray, z: np.ndarray,
                   gate_on: np.ndarray, price_on: np.ndarray, price_off: np.ndarray, value: np.ndarray
                   ) -> Generator[Any, Any, None]:
        """SimPy process: :meth:`walk` with ``own`` when purchases bring viewers (:class:`Joint`).

        New viewers' candidates come into the walk's inbox (a heap) while it
        runs, at times after the purchase that brought them; so the walk
        does not evaluate even the thinning test ahead of the clock: it
        yields to each candidate (the next of its drawn rows or of its inbox)
        and decides it there, with the product's state and the viewer's
        departure at that instant.  A purchase elsewhere that brings an
        earlier candidate interrupts the wait (:meth:`Joint.admit`).
        """
        import heapq

        pname = self.ctx.product
        gate, bought = self.gate, self.bought
        levels = [(x.gain, x.level) for x in self.live]
        left = [r.times for r in self.ctx.restock]
        inbox = joint.inbox(self)
        drawn = _rows(vi, who, t, level, h_on, h_off, z, gate_on, price_on, price_off, value)
        head = next(drawn, None)
        while self.stock != 0:
            if inbox and (head is None or inbox[0][0] < head[2]):
                row = heapq.heappop(inbox)[2]
            elif head is not None:
                row, head = head, next(drawn, None)
            else:  # nothing to decide until a purchase brings viewers
                try:
                    joint.waiting(self, math.inf)
                    yield env.event()
                except simpy.Interrupt:
                    pass
                continue
            i, w, tk, lev, hon, hoff, zk, son, pon, poff, val = row
            if tk > env.now:
                try:
                    joint.waiting(self, tk)
                    yield env.timeout(tk - env.now)
                except simpy.Interrupt:  # an earlier candidate came in: decide that first
                    joint.push(self, row)
                    continue
            joint.waiting(self, None)
            if joint.checking:
                joint.decided(pname, tk)
            if w in bought:
                continue
            stock = self.stock
            on = son and (gate is None or gate.open)
            h = hon if on else hoff
            for gain, level_at in levels:
                h *= 1.0 + gain * zk * level_at(tk, stock)
            if lev >= h or tk >= own.leaves(w):
                continue
            bought.add(w)
            own.purchase(w, tk)
            self.stock = self._sell(i, tk, on, pon if on else poff, val, stock, left)
            joint.bought(w, pname, tk)
        joint.waiting(self, None)

    def finish(self) -> None:
        """Close the gate and the live signals (a walk that :class:`Joint` keeps waiting ends here)."""
        if self.gate is not None:
            self.gate.close()
        for x in self.live:
            x.finish(self.stock)

    def _restock(self, t: float, stock: int, rules: tuple[Any, ...], left: list[int]) -> int:
        """The stock after the host's restock rules (the first with restocks left whose level is passed acts)."""
        for k, rule in enumerate(rules):
            if left[k] > 0 and stock < rule.stock_below:
                left[k] -= 1
                self.ctx.recorder.event(t, "host_action", self.ctx.product, None, rule.units)
                return stock + int(rule.units)
        return stock


def _rows(*arrays: np.ndarray, chunk: int = 4096) -> Iterator[tuple[Any, ...]]:
    """Rows of equal-length arrays as tuples of Python scalars, converted a chunk at a time
    (a walk that stops early, at a sell-out, converts only what it reads)."""
    for k in range(0, len(arrays[0]), chunk):
        yield from zip(*(a[k:k + chunk].tolist() for a in arrays), strict=True)


class Joint:
    """Purchases that bring viewers (``stream.arrivals.hawkes.purchase_branching``), on the run's clock.

    Each purchase at ``p`` brings Poisson(``n_buy``) viewers, each after an
    Exponential(``tau``) delay, and they bring their own arrival cascade
    (:func:`fomolab.hawkes.cascade`, branching ``n``); children at or after
    the stream's end are dropped.  All of a purchase's draws come from a
    stream of its own, keyed by the product and the buyer
    (``purchase_cascade``), so a run is reproducible and a buyer who buys the
    same product in two arms brings the same viewers (at the same delays).
    At the purchase the new viewers' traits, departures and candidates for
    every product are drawn, through the same functions as the run's first
    viewers, and their candidates go to the products' walks
    (:meth:`ProductState.walk_joint`), which decide them in time order.
    """

    def __init__(self, run: RunSpec, sc: Any, viewers: ViewerArrays, own: OwnPurchase, env: simpy.Environment,
                 T: float, checking: bool) -> None:
        hawkes = sc.stream.arrivals.hawkes
        self.run, self.sc, self.own, self.env, self.T, self.checking = run, sc, own, env, T, checking
        self.n_buy, self.n, self.tau = hawkes.purchase_branching, hawkes.branching, hawkes.decay_s
        self.n0 = len(viewers.arrival_s)
        self.next_id = int(np.count_nonzero(~viewers.boosted))  # after the baseline viewers' ids
        self.rows_only = False
        self.products: list[tuple[ProductContext, Product, Envelope, float]] = []
        self._walks: dict[int, tuple[ProductState, Any]] = {}
        self._inbox: dict[int, list[tuple[float, int, tuple[Any, ...]]]] = {}
        self._waiting: dict[int, float | None] = {}
        self._seq = 0
        self._last = 0.0
        self.parts: list[dict[str, np.ndarray]] = []
        self.columns: list[dict[str, np.ndarray]] = []
        segs = list(sc.population.segments.values())
        self._mu, self._sigma = (np.array(x) for x in zip(*(seg.valuation.lognormal() for seg in segs), strict=True))

    def product(self, ctx: ProductContext, prod: Product, envelope: Envelope, trust: float) -> None:
        """A product of the run (in lineup order), with its envelope and its host's trust."""
        self.products.append((ctx, prod, envelope, trust))

    def add(self, state: ProductState, proc: Any) -> None:
        self._walks[state.ctx.product] = (state, proc)

    def inbox(self, state: ProductState) -> list[tuple[float, int, tuple[Any, ...]]]:
        return self._inbox.setdefault(state.ctx.product, [])

    def waiting(self, state: ProductState, until: float | None) -> None:
        """The walk of ``state`` waits until ``until`` (inf: for new viewers; None: it is deciding)."""
        self._waiting[state.ctx.product] = until

    def decided(self, product: int, t: float) -> None:
        """Test mode: a walk decides a candidate at ``t``; every walk's decisions must come in one time order."""
        if t < self._last:
            raise OrderError(f"product {product}: a candidate at t = {t!r} s decided after one at {self._last!r} s")
        self._last = t

    def push(self, state: ProductState, row: tuple[Any, ...]) -> None:
        import heapq

        self._seq += 1
        heapq.heappush(self.inbox(state), (row[2], self._seq, row))

    def bought(self, viewer: int, product: int, t: float) -> None:
        """A purchase at ``t``: draw the viewers it brings and give their candidates to the walks."""
        from fomolab.hawkes import cascade

        rng = generator(self.run.seed, "purchase_cascade", product, viewer)
        k = int(rng.poisson(self.n_buy))
        if k == 0:
            return
        first = t + rng.exponential(self.tau, k)
        first = np.sort(first[first < self.T])
        times = cascade(first, self.n, self.tau, self.T, rng) if self.n > 0 else first
        if len(times):
            self.admit(times, rng)

    def admit(self, arrival: np.ndarray, rng: np.random.Generator) -> None:
        """New viewers arriving at ``arrival`` (all after the clock): their traits, departures and candidates."""
        import heapq

        from fomolab.retention import departures

        sc, T, k = self.sc, self.T, len(arrival)
        tr = draw_traits(sc.population, rng, k)
        if sc.stream.retention is not None:
            dep, held = departures(sc.stream.retention, sc.lineup, arrival, tr.dwell_s, T)
            self.columns.append({"dwell_s": tr.dwell_s, **held})
        else:
            dep = np.minimum(arrival + tr.dwell_s, T)
        base = self.n0 + len(self.own.later)
        horizon = self.own.extend(arrival, tr.dwell_s, dep)
        ids = np.arange(self.next_id, self.next_id + k, dtype=np.int64)
        self.next_id += k
        part = dict(shopper_id=ids, boosted=np.zeros(k, bool), segment=tr.segment, impulsiveness=tr.impulsiveness,
                    interest=tr.interest, price_sensitivity=tr.price_sensitivity, arrival_s=arrival,
                    departure_s=dep)
        self.parts.append(part)
        local = ViewerArrays(**part)
        idx = np.arange(k)
        vis = Visits(idx, np.zeros(k, np.int64), arrival, horizon, np.zeros(k, bool))
        mu, sigma = self._mu[tr.segment], self._sigma[tr.segment]
        self.rows_only = True
        try:
            for ctx, prod, envelope, trust in self.products:
                vi, t, bound, u = _candidates(envelope, local, vis, idx, rng)
                if not len(vi):
                    continue
                value = prod.price * local.interest[vi] * exp(mu[vi] + sigma[vi] * rng.standard_normal(len(vi)))
                rows = _decide(self.env, ctx, prod, local, vis, (vi, t, bound, u), value, trust, self.checking,
                               own=self.own, joint=self)
                if rows is None or not len(rows[0]):
                    continue
                rows = (rows[0] + base, rows[1] + base, *rows[2:])
                box = self._inbox.setdefault(ctx.product, [])
                for row in _rows(*rows):
                    self._seq += 1
                    heapq.heappush(box, (row[2], self._seq, row))
                until = self._waiting.get(ctx.product)
                walk = self._walks.get(ctx.product)
                if until is not None and until > float(rows[2][0]) and walk is not None and walk[1].is_alive:
                    self._waiting[ctx.product] = None  # interrupted once; it looks again when it resumes
                    walk[1].interrupt()
        finally:
            self.rows_only = False

    def finish(self, viewers: ViewerArrays, vis: Visits, recorder: Recorder) -> tuple[ViewerArrays, Visits]:
        """After the run: close the walks, and the viewers and visits with those the purchases brought."""
        for state, _ in self._walks.values():
            state.finish()
        final = self.own.final()
        if not self.parts:
            vis.end_s[:] = final
            return viewers, vis
        merged = {f: np.concatenate([getattr(viewers, f), *(p[f] for p in self.parts)])
                  for f in ViewerArrays.__dataclass_fields__}
        merged["departure_s"] = final
        out = ViewerArrays(**merged)
        n = len(final)
        visits = Visits(np.arange(n), np.zeros(n, np.int64), out.arrival_s, final, np.zeros(n, bool))
        for key, col in list(recorder.shopper_columns.items()):
            if key == "held_by_purchase_s":
                continue
            recorder.shopper_columns[key] = np.concatenate([col, *(c[key] for c in self.columns)])
        for ctx, *_ in self.products:
            ctx.visits_start_s, ctx.visits_end_s = visits.start_s, visits.end_s
            ctx.visits_here = np.ones(n, bool)
        return out, visits
