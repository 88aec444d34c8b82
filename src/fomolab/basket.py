"""The grounded shopper in a run: the valuation gate, budgets shared across products, several units.

The picture: a viewer with 60 in their pocket watches a lipstick, then a
serum, then a palette.  What they spend on the lipstick is gone when the
serum comes: the products' walks (:class:`fomolab.engine.ProductState`) meet
on one SimPy clock through the viewers' budgets, and a purchase is decided
when the clock reaches it.  What does not interact (a product whose only new
mechanism is a static valuation gate) stays vectorised: its hazards are set
to 0 where the perceived surplus is not positive (:func:`value_gate`).

The model is in :mod:`fomolab.value` and ``docs/MODEL.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fomolab.value import Shopper, lift_factor, misperception

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Valued", "value_gate", "Basket", "shopper_walk", "outcomes"]


class Valued:
    """Per-candidate terms of the perceived valuation, for a walk with live value lifts.

    ``vm``: ``V * M``; ``add_on`` and ``add_off``: ``1 + sum`` of the static
    lifts with the gated tactic on and off.
    """

    def __init__(self, vm: np.ndarray, add_on: np.ndarray, add_off: np.ndarray) -> None:
        self.vm, self.add_on, self.add_off = vm, add_on, add_off

    def take(self, idx: np.ndarray) -> Valued:
        """The terms of the candidates ``idx``."""
        return Valued(self.vm[idx], self.add_on[idx], self.add_off[idx])


def value_gate(shopper: Shopper, ctx: Any, tactics: list[Any], gated: Any, t: np.ndarray, arrival_s: np.ndarray,
               perceived: np.ndarray, s_on: np.ndarray, price_on: np.ndarray, price_off: np.ndarray,
               h_on: np.ndarray, h_off: np.ndarray) -> tuple[np.ndarray, np.ndarray, Valued | None]:
    """Apply the valuation gate to a product's candidates.

    ``perceived`` is ``V * M`` per candidate.  Where every lift is static, the
    hazards are set to 0 where the perceived surplus is not positive (an
    impulse there is no purchase) and no walk terms are returned; where an
    interactive tactic (scarcity, social proof) has a lift, the hazards are
    left as they are and the walk decides with the returned terms.
    """
    import numpy as np

    others = [x for x in tactics if not x.gated]
    add_off = lift_factor(shopper, ctx, others, t, arrival_s)
    add_on = add_off
    if gated is not None and shopper.lift(gated.kind):
        add_on = add_off + shopper.lift(gated.kind) * s_on
    if any(shopper.lift(x.kind) > 0 for x in others if x.is_interactive()):
        return h_on, h_off, Valued(perceived, add_on, add_off)
    h_on = np.where(perceived * add_on > price_on, h_on, 0.0)
    h_off = np.where(perceived * add_off > price_off, h_off, 0.0)
    return h_on, h_off, None


class Basket:
    """What the viewers of a run can still spend, shared by every product's walk.

    ``left[w]`` is viewer ``w``'s budget left (a Python list: the walks read
    and write it one purchase at a time); ``inf`` where the viewer's segment
    has no budget.
    """

    def __init__(self, left: list[float]) -> None:
        self.budget = list(left)
        self.left = left
        #: Purchases the viewers wanted (impulse, perceived surplus) but could not afford.
        self.refused = 0

    @classmethod
    def draw(cls, shopper: Shopper, segments: list[str], segment: np.ndarray, sizes: list[int],
             streams: list[np.random.Generator]) -> Basket:
        """Budgets of the viewers of each group (``sizes`` viewers, drawn from ``streams``), in group order."""
        import numpy as np

        normal = np.concatenate([g.standard_normal(n) for g, n in zip(streams, sizes, strict=True)])
        left = np.full(len(segment), np.inf)
        for k, name in enumerate(segments):
            b = shopper.segment_budgets.get(name, shopper.budget)
            if b is None:
                continue
            mine = segment == k
            left[mine] = b.mean * misperception(b.cv, normal[mine])
        return cls(left.tolist())


def shopper_walk(state: Any, env: Any, rows: tuple[np.ndarray, ...], vals: Valued | None, lifts: list[float],
                 basket: Basket | None, limit: int) -> Any:
    """SimPy process: :meth:`fomolab.engine.ProductState.walk` for the grounded shopper.

    Beyond the stock, gate and live signals of the plain walk:

    - with ``vals``, a candidate the thinning accepts is a purchase only when
      ``V * M * (1 + static lifts + sum_j lift_j * level_j(t))`` exceeds the
      price it faces, with the live signals' levels at that instant;
    - a viewer buys up to ``limit`` units of the product, one per impulse;
    - with a ``basket``, a purchase needs the viewer's budget left to cover
      the price, checked when the SimPy clock reaches the purchase: every
      product's walk runs on the same clock and spends from the same budgets,
      so a purchase of one product lowers what the viewer can spend on the
      next, in time order.
    """
    from fomolab.engine import _rows

    rec, pname = state.ctx.recorder, state.ctx.product
    gate = state.gate
    units: dict[int, int] = {}
    sig = [(x.gain, x.level, lift) for x, lift in zip(state.live, lifts, strict=True)]
    told = [x.bought for x in state.live]
    stock = state.stock
    left = basket.left if basket is not None else None
    valued = vals is not None
    if vals is None:  # no gate in the walk (static lifts were gated before): placeholders, never read
        vals = Valued(rows[0], rows[0], rows[0])
    gains = [(gain, level_at) for gain, level_at, _ in sig]
    for i, w, tk, lev, hon, hoff, zk, son, pon, poff, val, vm, aon, aoff in _rows(*rows, vals.vm, vals.add_on,
                                                                                 vals.add_off):
        if stock == 0:
            break
        if units.get(w, 0) >= limit:
            continue
        on = son and (gate is None or gate.open)
        h = hon if on else hoff
        paid = pon if on else poff
        if valued:
            add = aon if on else aoff
            for gain, level_at, lift in sig:
                x = level_at(tk, stock)
                h *= 1.0 + gain * zk * x
                add += lift * x
            if lev >= h or vm * add <= paid:
                continue
        else:
            for gain, level_at in gains:
                h *= 1.0 + gain * zk * level_at(tk, stock)
            if lev >= h:
                continue
        if tk > env.now:
            yield env.timeout(tk - env.now)
        if left is not None:
            if left[w] < paid:  # other products' purchases up to now have been spent
                basket.refused += 1  # type: ignore[union-attr]
                continue
            left[w] -= paid
        units[w] = units.get(w, 0) + 1
        rec.purchase(i, pname, tk, paid, val - paid)
        if on and gate is not None:
            gate.sold(tk)
        if stock is not None:
            stock -= 1
        for tell in told:
            tell(tk, stock)
        if stock == 0:
            rec.event(tk, "stock_out", pname)
    state.stock = stock
    if gate is not None:
        gate.close()
    for x in state.live:
        x.finish(stock)


def outcomes(tables: Any, purchases: tuple[np.ndarray, ...], shopper: Shopper, basket: Basket | None,
             vis: Any, products: list[str], seed: int) -> None:
    """Add the grounded shopper's outcomes to a run's tables (only for a spec with ``[shopper]``).

    With budgets: ``shoppers.budget`` (the viewer's budget) and
    ``runs.budget_refusals`` (purchases wanted but not affordable).  With
    returns: each regretted purchase of a product with ``returns`` is returned
    with probability ``share``, ``U(0, window_s]`` seconds after it;
    ``shoppers.units_returned``, ``refunds``, ``surplus_after_returns`` (a
    return gives the price back: the purchase's surplus becomes 0) and
    ``last_return_s``; ``runs.units_returned`` and ``refunds``.
    """
    import numpy as np

    from fomolab.seeds import generator

    sh, runs = tables.shoppers, tables.runs
    if basket is not None:
        sh["budget"] = np.asarray(basket.budget)[vis.viewer]
        runs["budget_refusals"] = basket.refused
    if not shopper.returns:
        return
    pv, pp, pt, price, surplus = purchases
    n = len(vis.viewer)
    back = np.zeros(len(pv), dtype=bool)
    when = np.full(len(pv), np.nan)
    for j, name in enumerate(products):
        rule = shopper.returns.get(name.split("@")[0])
        if rule is None:
            continue
        mine = np.flatnonzero((pp == j) & (surplus < 0))
        mine = mine[np.lexsort((pv[mine], pt[mine]))]  # time order, ties by visit: the same in every executor
        u = generator(seed, "returns", j).random((2, len(mine)))
        keep = u[0] < rule.share
        back[mine[keep]] = True
        when[mine[keep]] = pt[mine[keep]] + rule.window_s * (1.0 - u[1][keep])
    units = np.bincount(pv[back], minlength=n)
    refunds = np.bincount(pv[back], weights=price[back], minlength=n)
    sh["units_returned"] = units.astype(np.int64)
    sh["refunds"] = refunds
    sh["surplus_after_returns"] = sh["surplus"].to_numpy() - np.bincount(pv[back], weights=surplus[back],
                                                                         minlength=n)
    last = np.full(n, -np.inf)
    np.maximum.at(last, pv[back], when[back])
    sh["last_return_s"] = np.where(np.isfinite(last), last, np.nan)
    runs["units_returned"] = int(back.sum())
    runs["refunds"] = float(price[back].sum())
