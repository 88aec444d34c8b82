"""The lineup: the products a stream shows, each in its slot, with its tactics.

The picture: a host holds up one product after another; each is on show for a
slot of the stream, has a list price, a stock (unlimited unless given) and a
base purchase hazard, and may carry any of the tactics of the registry
(:mod:`fomolab.tactics`).  Which tactics are switched on is decided by the
experiment's arms, not here.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, create_model, model_serializer, model_validator

from fomolab._frozen import FrozenModel
from fomolab.tactics import KINDS, Tactic

__all__ = ["Tactics", "Product", "fill_defaults"]


def fill_defaults(lineup: dict[str, Any], duration_s: Any = None) -> dict[str, Any]:
    """Defaults that depend on other keys, filled in the raw lineup tables.

    Each tactic fills its own (``Tactic.fill_defaults``): for example a
    countdown timer without a window counts down its product's lightning
    sale.  Returns a new dict.
    """
    out = {}
    for name, prod in lineup.items():
        tactics = prod.get("tactics") if isinstance(prod, dict) else None
        if not isinstance(tactics, dict):
            out[name] = prod
            continue
        tactics = dict(tactics)
        slot = prod.get("slot_s") or ([0.0, duration_s] if duration_s is not None else None)
        for kind, cls in KINDS.items():
            if isinstance(tactics.get(kind), dict):
                tactics[kind] = cls.fill_defaults(tactics[kind], tactics, slot)
        out[name] = {**prod, "tactics": tactics}
    return out


class _TacticsBase(FrozenModel):
    """The tactics configured on one product (each optional), one field per registered kind."""

    def items(self) -> list[tuple[str, Tactic]]:
        """The configured tactics as ``(kind, tactic)`` pairs, in registry order."""
        return [(k, getattr(self, k)) for k in type(self).model_fields if getattr(self, k) is not None]

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """Unused kinds are left out, except those every run's identity lists (``always_listed``),
        so that registering a tactic changes no existing run id."""
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None or KINDS[k].always_listed}


#: The tactics configured on one product: one optional field per kind of the registry, in its order.
Tactics = create_model(  # type: ignore[call-overload]
    "Tactics", __base__=_TacticsBase, __module__=__name__,
    **{kind: (cls | None, None) for kind, cls in KINDS.items()},
)


class Product(FrozenModel):
    """A product in the lineup.

    Attributes
    ----------
    price : float
        List price (currency units).
    base_rate_per_s : float
        Purchase hazard of a viewer with interest 1 and no tactic, per second.
    stock : int or None
        Units in stock; None means unlimited.
    slot_s : (float, float) or None
        When the product is on show, ``[start, end)``; None means the whole stream.
    tactics : Tactics
        Tactics configured on the product (arms switch them on).
    """

    price: float = Field(gt=0)
    base_rate_per_s: float = Field(gt=0)
    stock: int | None = Field(default=None, ge=0)
    slot_s: tuple[float, float] | None = None
    tactics: Tactics = Tactics()

    @model_validator(mode="after")
    def _resolved(self) -> Product:
        for _, tactic in self.tactics.items():
            problem = tactic.unresolved()
            if problem is not None:
                raise ValueError(problem)
        if self.slot_s is not None and self.slot_s[1] <= self.slot_s[0]:
            raise ValueError(f"slot_s must be [start, end] with end > start: {list(self.slot_s)}")
        return self

    def slot(self, duration_s: float) -> tuple[float, float]:
        """The product's slot, the whole stream if none was given."""
        return self.slot_s if self.slot_s is not None else (0.0, duration_s)
