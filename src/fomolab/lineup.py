"""The lineup: the products a stream shows, each in its slot, with its tactics.

The picture: a host holds up one product after another; each is on show for a
slot of the stream, has a list price, a stock (unlimited unless given) and a
base purchase hazard, and may carry any of the five tactics.  Which tactics are
switched on is decided by the experiment's arms, not here.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from fomolab.tactics import CountdownTimer, ExclusiveCode, LightningSale, ScarcityCue, SocialProof, Tactic
from fomolab.tactics._base import FrozenModel

__all__ = ["Tactics", "Product", "fill_defaults"]


def fill_defaults(lineup: dict[str, Any], duration_s: Any = None) -> dict[str, Any]:
    """Defaults that depend on other keys, filled in the raw lineup tables.

    A countdown timer without a window counts down its product's lightning
    sale; a resetting timer shows until the end of the product's slot; a
    deceptive scarcity cue shows throughout the slot.  Returns a new dict.
    """
    out = {}
    for name, prod in lineup.items():
        tactics = prod.get("tactics") if isinstance(prod, dict) else None
        if not isinstance(tactics, dict):
            out[name] = prod
            continue
        tactics = dict(tactics)
        slot = prod.get("slot_s") or ([0.0, duration_s] if duration_s is not None else None)
        if isinstance(tactics.get("countdown_timer"), dict):
            timer = dict(tactics["countdown_timer"])
            sale = tactics.get("lightning_sale")
            if isinstance(sale, dict):
                timer.setdefault("start_s", sale.get("start_s"))
                timer.setdefault("deadline_s", sale.get("end_s"))
            if timer.get("resets") is True and slot is not None:
                timer.setdefault("until_s", slot[1])
            tactics["countdown_timer"] = timer
        cue = tactics.get("scarcity_cue")
        if isinstance(cue, dict) and cue.get("displayed_stock") is not None and slot is not None:
            tactics["scarcity_cue"] = {**cue, "slot_s": slot}
        out[name] = {**prod, "tactics": tactics}
    return out


class Tactics(FrozenModel):
    """The tactics configured on one product (each optional)."""

    lightning_sale: LightningSale | None = None
    countdown_timer: CountdownTimer | None = None
    scarcity_cue: ScarcityCue | None = None
    social_proof: SocialProof | None = None
    exclusive_code: ExclusiveCode | None = None

    def items(self) -> list[tuple[str, Tactic]]:
        """The configured tactics as ``(kind, tactic)`` pairs, in engine order."""
        return [(k, getattr(self, k)) for k in type(self).model_fields if getattr(self, k) is not None]


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
    def _timer_window(self) -> "Product":
        timer = self.tactics.countdown_timer
        if timer is not None and (timer.start_s is None or timer.deadline_s is None):
            raise ValueError(
                "tactics.countdown_timer needs start_s and deadline_s "
                "(or a lightning_sale on the same product to count down)"
            )
        if self.slot_s is not None and self.slot_s[1] <= self.slot_s[0]:
            raise ValueError(f"slot_s must be [start, end] with end > start: {list(self.slot_s)}")
        return self

    def slot(self, duration_s: float) -> tuple[float, float]:
        """The product's slot, the whole stream if none was given."""
        return self.slot_s if self.slot_s is not None else (0.0, duration_s)
