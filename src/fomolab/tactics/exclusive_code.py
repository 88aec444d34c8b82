"""Exclusive code: a discount code announced live, for those watching now.

The picture: "Type FOMO20 at checkout in the next ten minutes, only for you
watching right now!"  Viewers present at the announcement hold the code: their
signal is 1 (and their price discounted) from the announcement until it
expires.  Viewers who arrive later never see it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field, model_validator

from fomolab.tactics._base import Covariate, Tactic

if TYPE_CHECKING:
    from fomolab.tactics._context import EpisodeContext, ProductContext

__all__ = ["ExclusiveCode"]


class ExclusiveCode(Tactic):
    """An exclusive discount code on one product.

    Attributes
    ----------
    announce_s, expires_s : float
        The code is announced at ``announce_s`` and valid until ``expires_s``.
    discount : float
        Fraction off the list price for holders of the code, in ``[0, 1)``.
    arrival_boost : float
        Multiplier of the arrival rate while the code is valid (word spreads;
        the newcomers do not hold the code).
    """

    kind: ClassVar[str] = "exclusive_code"
    order: ClassVar[int] = 50
    summary: ClassVar[str] = "a code for viewers present at its announcement"
    time_fields: ClassVar[tuple[str, ...]] = ("announce_s", "expires_s")
    retention_cause: ClassVar[str | None] = "deal"
    offer: ClassVar[bool] = True
    has_deadline: ClassVar[bool] = True
    record_rank: ClassVar[int] = 30
    covariates: ClassVar[tuple[Covariate, ...]] = (Covariate("code_active", "code", "int64"),)
    always_listed: ClassVar[bool] = True

    announce_s: float = Field(ge=0)
    expires_s: float = Field(gt=0)
    discount: float = Field(default=0.0, ge=0, lt=1)
    arrival_boost: float = Field(default=1.0, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> ExclusiveCode:
        if self.expires_s <= self.announce_s:
            raise ValueError(f"expires_s must be after announce_s ({self.announce_s}): {self.expires_s}")
        return self

    def window(self) -> tuple[float, float]:
        return (self.announce_s, self.expires_s)

    def factor(self, t, z, arrival_s, departure_s):
        return 1.0 + self.gain * z * self.signal(t) * self.holders(arrival_s, departure_s)

    def holders(self, arrival_s: np.ndarray, departure_s: np.ndarray) -> np.ndarray:
        """Which viewers hold the code: those present at the announcement."""
        return (arrival_s <= self.announce_s) & (departure_s > self.announce_s)

    def price_keep(self, t, arrival_s, departure_s):
        return 1.0 - self.discount * self.signal(t) * self.holders(arrival_s, departure_s)

    def schedule(self, ctx: ProductContext) -> None:
        ctx.event(self.announce_s, "tactic_start", self.kind, self.discount)
        ctx.event(min(self.expires_s, ctx.duration_s), "tactic_end", self.kind)

    def holder_time(self) -> float | None:
        return self.announce_s

    def analytic(self, t, z, holder):
        s = self.signal(t) * holder
        return 1 + self.gain * z * s, self._analytic_keep(s)

    def episode_covariates(self, ctx: EpisodeContext) -> dict[str, np.ndarray]:
        """``code_active``: 1 for holders (present at the announcement) while the code is valid."""
        s = self.signal(ctx.mid) * self.holders(ctx.arrival_s, ctx.departure_s)
        return {"code_active": np.where(ctx.on, s, 0.0)}

#: This module's tactic, found by :func:`fomolab.tactics.registry`.
PLUGIN = ExclusiveCode
