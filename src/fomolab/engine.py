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
   Otherwise a SimPy process per product walks the candidates that could be
   accepted in time order, keeping the shared state (stock, sale quota, the
   recent-purchase ticker) exact at each event.  Cost per viewer is constant:
   no viewer is ever woken by another's purchase.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import simpy

from fomolab.design import Envelope, RunSpec
from fomolab.lineup import Product
from fomolab.population import draw_traits
from fomolab.recorder import BOOSTED_ID_OFFSET, Recorder, Tables, ViewerArrays
from fomolab.seeds import arm_key, generator
from fomolab.market import Market, StreamView, Visits, streams_of, visits
from fomolab.stream import poisson_times, rate_function
from fomolab.tactics import scarcity_signal

__all__ = ["simulate", "boost_schedule"]


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
    streams = streams_of(sc.lineup, sc.market, T)
    market = sc.market if len(streams) > 1 else None
    rec = Recorder(run.run_id, run.arm, run.replicate, run.point, run.seed, dict(run.params))

    edges, rates = sc.stream.arrivals.pieces(T)
    arrival = poisson_times(edges, rates, generator(run.seed, "arrivals"))
    groups = [(arrival, draw_traits(sc.population, generator(run.seed, "traits"), len(arrival)),
               generator(run.seed, "decisions"), False, -1)]
    for stream in streams:  # viewers an arrival boost brings come to the boosting stream
        b_edges, b_rates = boost_schedule(stream.lineup, edges, rates, T)
        if b_rates.any():
            rng_b = generator(run.seed, "boost", arm_key(run.arm), *((stream.index,) if stream.index else ()))
            extra = poisson_times(b_edges, b_rates, rng_b)
            groups.append((extra, draw_traits(sc.population, rng_b, len(extra)), rng_b, True, stream.index))

    viewers = _viewer_arrays(groups, T)
    offsets = np.cumsum([0] + [len(g[0]) for g in groups])
    vis = _visits(streams, market, viewers, groups, offsets, run.seed, T)
    mu, sigma = (np.array(x)[viewers.segment] for x in
                 zip(*(seg.valuation.lognormal() for seg in sc.population.segments.values())))
    env = simpy.Environment()
    P = len(sc.lineup)
    for stream in streams:
        here = vis.stream == stream.index
        for j, (pname, prod) in enumerate(stream.lineup.items()):
            pnum = stream.index * P + j
            _schedule_events(rec, pnum, prod, T)
            envelope = _stream_envelope(run.envelope[pname], stream)
            cands = []
            for i, g in enumerate(groups):
                mine = np.flatnonzero(here & (vis.viewer >= offsets[i]) & (vis.viewer < offsets[i + 1]))
                cands.append(_candidates(envelope, viewers, vis, mine, g[2]))
            cand = tuple(np.concatenate(c) for c in zip(*cands))
            value = _valuations(run, pnum, prod, viewers, offsets, vis.viewer[cand[0]], mu, sigma)
            notices = _fabricated(prod, run.seed, pnum, T)
            _decide(env, rec, pnum, prod, viewers, vis, cand, T, value, notices, stream.host.trust)
    env.run(until=T)
    return rec.tables(viewers, vis, list(sc.population.segments), list(sc.lineup),
                      streams if sc.market is not None else None, T)


def _visits(streams: list[StreamView], market: Market | None, v: ViewerArrays, groups, offsets: np.ndarray,
            seed: int, T: float) -> Visits:
    """Every viewer's visits to the streams (one visit per viewer with a single stream).

    The shared viewers choose with uniforms from a stream of their own (the
    same in every arm); boosted viewers go to the stream that boosted them.
    """
    if market is None:
        n = len(v.arrival_s)
        return Visits(np.arange(n), np.zeros(n, np.int64), v.arrival_s, v.departure_s, np.zeros(n, bool))
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
    windows = [(t.window(), t.boost) for p in lineup.values() for _, t in p.tactics.items()
               if t.boost > 1 and t.window() is not None]
    if not windows:
        return np.array([0.0, T]), np.array([0.0])
    cuts = np.unique(np.concatenate([edges, [x for (a, b), _ in windows for x in (a, b)]]))
    mids = (cuts[:-1] + cuts[1:]) / 2
    mult = np.ones(len(mids))
    for (a, b), boost in windows:
        mult *= np.where((mids >= a) & (mids < b), boost, 1.0)
    return cuts, rate_function(edges, rates, mids) * (mult - 1.0)


def _viewer_arrays(groups, T: float) -> ViewerArrays:
    parts = []
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


def _candidates(env: Envelope, v: ViewerArrays, vis: Visits, rows: np.ndarray, rng: np.random.Generator):
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
    vs, ts, rs = [], [], []
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
        rate = env.rate(j, v.interest[w], v.impulsiveness[w], v.price_sensitivity[w])
        n = rng.poisson(rate * length)
        rep = np.repeat(np.arange(len(w)), n)
        vs.append(idx[sel][rep])
        ts.append(start[rep] + rng.random(len(rep)) * length[rep])
        rs.append(rate[rep])
    if not vs:
        return np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0)
    vs, ts, rs = np.concatenate(vs), np.concatenate(ts), np.concatenate(rs)
    return vs, ts, rs, rng.random(len(vs))


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
    normal = np.empty(len(vi))
    for k in range(len(offsets) - 1):
        mine = (vi >= offsets[k]) & (vi < offsets[k + 1])
        if not mine.any():
            continue
        local = vi[mine] - offsets[k]
        keys = (pnum,) if k == 0 else (pnum, arm_key(run.arm)) if k == 1 else (pnum, arm_key(run.arm), k)
        normal[mine] = generator(run.seed, "valuation", *keys).standard_normal(int(local.max()) + 1)[local]
    return prod.price * v.interest[vi] * np.exp(mu[vi] + sigma[vi] * normal)


def _fabricated(prod: Product, seed: int, pnum: int, T: float) -> np.ndarray | None:
    """Times of the fabricated notifications of a deceptive ticker (None if honest).

    They come from a stream of the product's own, so every arm with the same
    fake ticker shows the same notifications.
    """
    sp = prod.tactics.social_proof
    if sp is None or not sp.fake:
        return None
    a, b = prod.slot(T)
    return poisson_times(np.array([a, b]), np.array([sp.fabricated_rate_per_s]), generator(seed, "fabricated", pnum))


def _schedule_events(rec: Recorder, pname: int, prod: Product, T: float) -> None:
    a, b = prod.slot(T)
    rec.event(a, "slot_start", pname)
    rec.event(b, "slot_end", pname)
    tac = prod.tactics
    if tac.lightning_sale is not None:
        rec.event(tac.lightning_sale.start_s, "tactic_start", pname, "lightning_sale", tac.lightning_sale.discount)
        if tac.lightning_sale.quota is None:
            rec.event(tac.lightning_sale.end_s, "tactic_end", pname, "lightning_sale")
    for kind in ("countdown_timer", "exclusive_code"):
        t = getattr(tac, kind)
        if t is not None:
            s, e = t.window()
            e = min(e, T)
            rec.event(s, "tactic_start", pname, kind, getattr(t, "discount", float("nan")))
            if kind == "countdown_timer":
                for k, r in enumerate(t.resets_at(T), 1):  # a deceptive timer restarts: the deadline never comes
                    rec.event(r, "tactic_end", pname, kind, k)
                    rec.event(r, "tactic_start", pname, kind, k)
            rec.event(e, "tactic_end", pname, kind)
    cue = tac.scarcity_cue
    if cue is not None and cue.fake:  # "only N left", whatever the real stock
        s, e = cue.window()
        rec.event(s, "tactic_start", pname, "scarcity_cue", cue.displayed_stock)
        rec.event(e, "tactic_end", pname, "scarcity_cue", cue.displayed_stock)


def _decide(env: simpy.Environment, rec: Recorder, pname: int, prod: Product, v: ViewerArrays, vis: Visits,
            cand: tuple[np.ndarray, ...], T: float, value: np.ndarray, notices: np.ndarray | None,
            trust: float = 1.0) -> None:
    """Turn a product's candidates into purchases for this arm.

    ``cand`` holds visit indices; ``value`` each candidate's valuation;
    ``trust`` the stream host's multiplier of the hazard.  A viewer buys a
    product at most once, whatever their visits.
    """
    vi, t, bound, u = cand
    who = vis.viewer[vi]
    tac = prod.tactics
    z, q, beta = v.impulsiveness[who], v.interest[who], v.price_sensitivity[who]
    arr, dep = vis.start_s[vi], vis.end_s[vi]
    slot_a, slot_b = prod.slot(T)
    rate = prod.base_rate_per_s * trust if trust != 1.0 else prod.base_rate_per_s
    base = np.where((t >= slot_a) & (t < slot_b), rate * q, 0.0)
    keep_code = np.ones(len(t))  # price kept after the exclusive code's discount
    for kind, tactic in tac.items():
        if kind == "lightning_sale" or tactic.is_interactive():
            continue  # the sale below (price and quota); shared-state tactics in the walk
        if kind == "social_proof":  # fabricated notifications: known in advance
            base = base * (1.0 + tactic.gain * z * tactic.ticker_signal(t, notices))
            continue
        base = base * tactic.factor(t, z, arr, dep)  # each <= 1 + gain z s: the envelope holds
        if kind == "exclusive_code":
            keep_code = 1.0 - tactic.discount * tactic.signal(t) * tactic.holders(arr, dep)
    h_off = base * keep_code ** (-beta)
    sale = tac.lightning_sale
    if sale is not None:
        s_sale = sale.signal(t)
        keep_on = keep_code * (1.0 - sale.discount * s_sale)
        h_on = base * (1.0 + sale.gain * z * s_sale) * keep_on ** (-beta)
    else:
        s_sale, keep_on, h_on = np.zeros(len(t)), keep_code, h_off
    price_on, price_off = prod.price * keep_on, prod.price * keep_code

    interactive = prod.stock is not None or any(x.is_interactive() for _, x in tac.items())
    if not interactive:
        acc = np.flatnonzero(u * bound < h_on)
        acc = acc[np.lexsort((t[acc], who[acc]))]
        first = acc[np.unique(who[acc], return_index=True)[1]]
        rec.purchases(vi[first], pname, t[first], price_on[first], value[first] - price_on[first])
        return
    extra = np.ones(len(t))
    for x in (tac.scarcity_cue, tac.social_proof):
        if x is not None and x.is_interactive():
            extra = extra * (1.0 + x.gain * z)
    maybe = np.flatnonzero(u * bound < np.maximum(h_on, h_off) * extra)
    maybe = maybe[np.argsort(t[maybe], kind="stable")]
    market = _Market(rec, pname, prod, (slot_a, slot_b))
    env.process(market.walk(env, vi[maybe], who[maybe], t[maybe], (u * bound)[maybe], h_on[maybe], h_off[maybe],
                            z[maybe], s_sale[maybe] > 0, price_on[maybe], price_off[maybe], value[maybe]))


class _Market:
    """Shared state of one product whose viewers interact: stock, quota, ticker."""

    def __init__(self, rec: Recorder, pname: int, prod: Product, slot: tuple[float, float]):
        self.rec, self.pname, self.prod, self.slot = rec, pname, prod, slot
        self.stock = prod.stock
        sale = prod.tactics.lightning_sale
        self.quota = sale.quota if sale is not None else None
        self.bought: set[int] = set()
        self.recent: deque[float] = deque()
        cue = prod.tactics.scarcity_cue
        self.cue = cue if cue is not None and cue.is_interactive() else None
        sp = prod.tactics.social_proof
        self.sp = sp if sp is not None and sp.is_interactive() else None
        cue = self.cue
        if cue is not None and self.stock is not None and 0 < self.stock <= cue.threshold:
            rec.event(slot[0], "tactic_start", pname, "scarcity_cue", self.stock)
        if self.stock == 0:
            rec.event(slot[0], "stock_out", pname)

    def walk(self, env, vi, who, t, level, h_on, h_off, z, sale_on, price_on, price_off, value):
        """SimPy process: decide the candidates in time order.

        A rejected candidate is not an event (thinning: nothing happens), so
        the clock moves only to purchases: each is a timeout on the SimPy clock,
        and the stock, quota and ticker it changes are exact at that instant.
        The product's state belongs to this process alone, so evaluating the
        candidates between two purchases before the clock reaches them sees the
        same state.  Arrays are walked as Python lists (scalar arithmetic on
        Python floats is several times faster than on numpy scalars, with the
        same IEEE results).
        """
        prod, rec, pname = self.prod, self.rec, self.pname
        sp, cue = self.sp, self.cue
        bought, recent = self.bought, self.recent
        sale = prod.tactics.lightning_sale
        stock, quota = self.stock, self.quota
        if sp is not None:
            sp_gain, sp_window, sp_sat = sp.gain, sp.window_s, sp.saturation
        if cue is not None:
            cue_gain, threshold = cue.gain, cue.threshold
        for i, w, tk, lev, hon, hoff, zk, son, pon, poff, val in _rows(vi, who, t, level, h_on, h_off, z, sale_on,
                                                                   price_on, price_off, value):
            if stock == 0:
                break
            if w in bought:
                continue
            on = son and quota != 0
            h = hon if on else hoff
            if sp is not None:
                while recent and recent[0] <= tk - sp_window:
                    recent.popleft()
                h *= 1.0 + sp_gain * zk * min(1.0, len(recent) / sp_sat)
            if cue is not None:
                h *= 1.0 + cue_gain * zk * scarcity_signal(stock, threshold)
            if lev >= h:
                continue
            if tk > env.now:
                yield env.timeout(tk - env.now)
            bought.add(w)
            paid = pon if on else poff
            rec.purchase(i, pname, tk, paid, val - paid)
            if sp is not None:
                recent.append(tk)
            if on and quota is not None:
                quota -= 1
                if quota == 0:
                    rec.event(tk, "tactic_end", pname, "lightning_sale", sale.quota)
            if stock is not None:
                stock -= 1
                if cue is not None and stock == threshold:
                    rec.event(tk, "tactic_start", pname, "scarcity_cue", stock)
                if stock == 0:
                    rec.event(tk, "stock_out", pname)
                    if cue is not None:
                        rec.event(tk, "tactic_end", pname, "scarcity_cue", 0)
        self.stock, self.quota = stock, quota
        if sale is not None and quota is not None and quota > 0:
            rec.event(sale.end_s, "tactic_end", pname, "lightning_sale", sale.quota - quota)
        if cue is not None and stock is not None and 0 < stock <= threshold:
            rec.event(self.slot[1], "tactic_end", pname, "scarcity_cue", stock)


def _rows(*arrays: np.ndarray, chunk: int = 4096):
    """Rows of equal-length arrays as tuples of Python scalars, converted a chunk at a time
    (a walk that stops early, at a sell-out, converts only what it reads)."""
    for k in range(0, len(arrays[0]), chunk):
        yield from zip(*(a[k:k + chunk].tolist() for a in arrays))
