"""Lightning sale: a discount for a short window, optionally on a stock quota.

The picture: the host shouts "5 minutes only, 30 % off, 500 units!" and a banner
appears.  While the sale runs its signal is 1, and the discount lowers the
price the viewer pays (which raises the hazard through ``price_term``).  With a
``quota``, the sale ends early once that many units have sold at the sale price.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field, model_validator

from fomolab.tactics._base import Covariate, Gate, Tactic

if TYPE_CHECKING:
    from fomolab.tactics._context import EpisodeContext, ProductContext

__all__ = ["LightningSale"]


class _Quota(Gate):
    """The sale's quota in its product's walk: the sale ends when it is sold."""

    def __init__(self, sale: LightningSale, quota: int, ctx: ProductContext) -> None:
        self.sale, self.ctx = sale, ctx
        self.quota = self.left = quota
        self.open = self.left != 0

    def sold(self, t: float) -> None:
        self.left -= 1
        if self.left == 0:
            self.open = False
            self.ctx.event(t, "tactic_end", self.sale.kind, self.quota)

    def close(self) -> None:
        if self.left > 0:
            self.ctx.event(self.sale.end_s, "tactic_end", self.sale.kind, self.quota - self.left)


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
    order: ClassVar[int] = 10
    summary: ClassVar[str] = "a discount for a short window (optional quota)"
    time_fields: ClassVar[tuple[str, ...]] = ("start_s", "end_s")
    retention_cause: ClassVar[str | None] = "deal"
    offer: ClassVar[bool] = True
    gated: ClassVar[bool] = True
    has_deadline: ClassVar[bool] = True
    deadline_shares: ClassVar[bool] = True
    record_rank: ClassVar[int] = 10
    covariates: ClassVar[tuple[Covariate, ...]] = (Covariate("sale_active", "sale", "int64"),)
    always_listed: ClassVar[bool] = True

    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)
    discount: float = Field(default=0.0, ge=0, lt=1)
    quota: int | None = Field(default=None, ge=1)
    arrival_boost: float = Field(default=1.0, ge=1)

    def is_interactive(self) -> bool:
        return self.quota is not None

    @model_validator(mode="after")
    def _ordered(self) -> LightningSale:
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s must be after start_s ({self.start_s}): {self.end_s}")
        return self

    def window(self) -> tuple[float, float]:
        return (self.start_s, self.end_s)

    def price_keep(self, t, arrival_s, departure_s):
        return 1.0 - self.discount * self.signal(t)

    def gate(self, ctx: ProductContext) -> Gate | None:
        return _Quota(self, self.quota, ctx) if self.quota is not None else None

    def schedule(self, ctx: ProductContext) -> None:
        ctx.event(self.start_s, "tactic_start", self.kind, self.discount)
        if self.quota is None:  # with a quota, the walk records when the sale ends
            ctx.event(self.end_s, "tactic_end", self.kind)

    def episode_covariates(self, ctx: EpisodeContext) -> dict[str, np.ndarray]:
        """``sale_active``: 1 inside the sale's window as it ran (a quota ends it early)."""
        return {"sale_active": ctx.in_windows(self.kind)}

#: This module's tactic, found by :func:`fomolab.tactics.registry`.
PLUGIN = LightningSale
