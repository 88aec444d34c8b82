"""Perceived and experienced value: a viewer buys only what seems worth its price.

The picture: a viewer feels the pull to buy (a purchase *impulse*, an event of
the purchase hazard) and, in that moment, weighs what the product seems worth
against the price on screen.  A countdown makes them act sooner; an "only 3
left" banner or a stream of "X just bought" makes the product *seem* worth
more (scarcity raises perceived value: Lynn 1991, a quantitative review of
commodity theory; Worchel, Lee & Adewole 1975).  Afterwards they find out
what it is really worth to them, the *experienced* valuation; a purchase is
regretted when that is below the price paid.

With a ``[shopper]`` table in a spec:

- the *experienced* valuation of product ``p`` by a viewer is the valuation
  every run already draws, ``V = price_p * interest * LogNormal(mean, cv)``
  (:class:`fomolab.population.Valuation`);
- the *perceived* valuation at an impulse at time ``t`` is
  ``W(t) = V * M * (1 + sum_k lift_k * s_k(t))``, where ``M`` is a mean-one
  log-normal misperception with coefficient of variation ``misperception_cv``
  (one draw per viewer and product), and ``s_k(t)`` in [0, 1] is the signal
  tactic ``k`` shows the viewer (what they see, not what is true: a fake
  "only 3 left" is a full signal);
- the impulse becomes a purchase only when the perceived surplus
  ``W(t) - price faced(t)`` is positive (the *valuation gate*).

With no misperception and no lift, ``W = V``: every purchase has ``V`` above
the price paid and none is regretted.  Tactics that only add urgency (a sale's
timing, a timer, a code) change *when* viewers with a positive surplus buy, not
*whether* they value it; a lift is what makes a tactic sell what viewers later
regret.  Without a ``[shopper]`` table none of this applies and every spec
keeps its meaning (no valuation gate; surplus is only accounted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from fomolab._frozen import FrozenModel

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Shopper", "misperception", "lift_factor"]


class Shopper(FrozenModel):
    """The ``[shopper]`` table: how viewers decide on value.

    Attributes
    ----------
    valuation_gate : bool
        Buy at an impulse only when the perceived surplus is positive (default true).
    misperception_cv : float
        Coefficient of variation of the mean-one log-normal factor between
        perceived and experienced valuation (0: viewers perceive what they will
        experience).  Dimensionless; illustrative.
    value_lift : dict of str to float
        Per tactic kind, the share by which a full signal raises perceived
        valuation (``0.2``: a product seems worth 20 % more while the tactic
        shows at full strength).  Dimensionless; default none.
    """

    valuation_gate: bool = True
    misperception_cv: float = Field(default=0.0, ge=0, le=5)
    value_lift: dict[str, float] = Field(default_factory=dict)

    @field_validator("value_lift")
    @classmethod
    def _known_kinds(cls, v: dict[str, float]) -> dict[str, float]:
        from fomolab.tactics import KINDS

        for kind, lift in v.items():
            if kind not in KINDS:
                raise ValueError(f"value_lift.{kind}: not a tactic kind (kinds: {', '.join(KINDS)})")
            if not lift >= 0 or lift > 10:
                raise ValueError(f"value_lift.{kind} must be in [0, 10] (a share of the valuation): {lift!r}")
        return v

    def lift(self, kind: str) -> float:
        """The value lift of tactic ``kind`` (0 when none is given)."""
        return float(self.value_lift.get(kind, 0.0))


def misperception(cv: float, normal: np.ndarray) -> np.ndarray:
    """Mean-one log-normal factors ``M`` with coefficient of variation ``cv``, from standard normals.

    >>> import numpy as np
    >>> misperception(0.0, np.array([1.0, -2.0])).tolist()
    [1.0, 1.0]
    """
    import numpy as np

    if cv == 0:
        return np.ones(len(normal))
    s2 = np.log1p(cv**2)
    out: np.ndarray = np.exp(np.sqrt(s2) * normal - s2 / 2)
    return out


def lift_factor(shopper: Shopper, ctx: Any, tactics: list[Any], t: np.ndarray, arrival_s: np.ndarray,
                gate_on: np.ndarray | None = None) -> np.ndarray:
    """``1 + sum_k lift_k * s_k(t)`` over the *static* tactics (live signals are added in the walk).

    A gated tactic (a sale) lifts only where ``gate_on``; a tactic whose
    viewers learn (``credibility < 1``) lifts by ``credibility ** exposures``
    of its full lift, as its hazard factor does (``Tactic.value_signal``).
    """
    import numpy as np

    out = np.ones(len(t))
    for x in tactics:
        lift = shopper.lift(x.kind)
        if lift == 0 or x.is_interactive():
            continue
        s = x.value_signal(ctx, t, arrival_s)
        if x.gated and gate_on is not None:
            s = s * gate_on
        out = out + lift * s
    return out


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


def valued_walk(state: Any, env: Any, rows: tuple[np.ndarray, ...], vals: Valued, lifts: list[float]) -> Any:
    """SimPy process: :meth:`fomolab.engine.ProductState.walk` with the valuation gate decided in event order.

    A candidate the thinning accepts is a purchase only when
    ``V * M * (1 + static lifts + sum_j lift_j * level_j(t))`` exceeds the
    price it faces, with the live signals' levels at that instant.
    """
    from fomolab.engine import _rows

    rec, pname = state.ctx.recorder, state.ctx.product
    gate, bought = state.gate, state.bought
    sig = [(x.gain, x.level, lift) for x, lift in zip(state.live, lifts, strict=True)]
    told = [x.bought for x in state.live]
    stock = state.stock
    terms = _rows(vals.vm, vals.add_on, vals.add_off)
    for (i, w, tk, lev, hon, hoff, zk, son, pon, poff, val), (vm, aon, aoff) in zip(_rows(*rows), terms,
                                                                                    strict=True):
        if stock == 0:
            break
        if w in bought:
            continue
        on = son and (gate is None or gate.open)
        h = hon if on else hoff
        add = aon if on else aoff
        for gain, level_at, lift in sig:
            x = level_at(tk, stock)
            h *= 1.0 + gain * zk * x
            add += lift * x
        paid = pon if on else poff
        if lev >= h or vm * add <= paid:
            continue
        if tk > env.now:
            yield env.timeout(tk - env.now)
        bought.add(w)
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
