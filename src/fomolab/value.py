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
regret.  Budgets shared across products, several units and returns are
decided in the products' walks (:mod:`fomolab.basket`).  Without a
``[shopper]`` table none of this applies and every spec keeps its meaning (no
valuation gate; surplus is only accounted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from fomolab._frozen import FrozenModel

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Shopper", "Budget", "Returns", "misperception", "lift_factor"]


class Budget(FrozenModel):
    """What a viewer can spend in the stream: log-normal with mean ``mean`` (currency units) and cv ``cv``."""

    mean: float = Field(gt=0, description="mean budget, currency units")
    cv: float = Field(default=0.5, ge=0, le=5)


class Returns(FrozenModel):
    """Returns of one product: a share of its regretted purchases comes back within ``window_s``."""

    share: float = Field(ge=0, le=1, description="share of regretted purchases returned")
    window_s: float = Field(default=7 * 86400.0, gt=0, description="seconds after the purchase")


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
    budget, segment_budgets : Budget
        What a viewer can spend over the stream, drawn once per viewer (every
        segment, or per segment); shared by every product the viewer sees.
        Default: no budget.
    max_units, product_max_units : int
        The most units of a product one viewer buys (default 1; per product).
    returns : dict of str to Returns
        Per product, the share of regretted purchases returned within a window.
    """

    valuation_gate: bool = True
    misperception_cv: float = Field(default=0.0, ge=0, le=5)
    value_lift: dict[str, float] = Field(default_factory=dict)
    budget: Budget | None = None
    segment_budgets: dict[str, Budget] = Field(default_factory=dict)
    max_units: int = Field(default=1, ge=1, le=1000)
    product_max_units: dict[str, int] = Field(default_factory=dict)
    returns: dict[str, Returns] = Field(default_factory=dict)

    @property
    def walks(self) -> bool:
        """True when purchases must be decided in event order: budgets are shared across products,
        or viewers may buy several units."""
        return (self.budget is not None or bool(self.segment_budgets) or self.max_units > 1
                or any(n > 1 for n in self.product_max_units.values()))

    def units(self, product: str) -> int:
        """The most units of ``product`` one viewer buys."""
        return self.product_max_units.get(product, self.max_units)

    def problems(self, segments: list[str], products: list[str]) -> list[tuple[str, object, str]]:
        """``(key, value, rule)`` for names that are not the spec's segments or products."""
        out: list[tuple[str, object, str]] = []
        for key, names, known in (("segment_budgets", self.segment_budgets, segments),
                                  ("product_max_units", self.product_max_units, products),
                                  ("returns", self.returns, products)):
            for name in names:
                if name not in known:
                    out.append((f"shopper.{key}.{name}", name, f"must name one of: {', '.join(known)}"))
        return out

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
    import math

    import numpy as np

    from fomolab._libm import exp

    if cv == 0:
        return np.ones(len(normal))
    s2 = math.log1p(cv**2)
    out: np.ndarray = exp(math.sqrt(s2) * normal - s2 / 2)
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
