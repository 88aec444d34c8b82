"""Lightning sale: a discount for a short window, optionally on a stock quota.

The picture: the host shouts "5 minutes only, 30 % off, 500 units!" and a banner
appears.  While the sale runs its signal is 1, and the discount lowers the
price the viewer pays (which raises the hazard through ``price_term``).  With a
``quota``, the sale ends early once that many units have sold at the sale price.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from fomolab.tactics._base import Tactic

__all__ = ["LightningSale"]


class LightningSale(Tactic):
    """A lightning sale on one product.

    Attributes
    ----------
    start_s, end_s : float
        The sale's window ``[start_s, end_s)`` in stream seconds.
    discount : float
        Fraction off the list price during the sale, in ``[0, 1)``.
    quota : int or None
        Units available at the sale price; the sale ends when they are sold.
    arrival_boost : float
        Multiplier of the viewer arrival rate while the sale runs.
    """

    kind: ClassVar[str] = "lightning_sale"

    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)
    discount: float = Field(default=0.0, ge=0, lt=1)
    quota: int | None = Field(default=None, ge=1)
    arrival_boost: float = Field(default=1.0, ge=1)

    def is_interactive(self) -> bool:
        return self.quota is not None

    @model_validator(mode="after")
    def _ordered(self) -> "LightningSale":
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s must be after start_s ({self.start_s}): {self.end_s}")
        return self

    def window(self) -> tuple[float, float]:
        return (self.start_s, self.end_s)
