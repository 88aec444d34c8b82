"""Giveaway: a lucky draw at an announced time among the viewers present.

The picture: "At 20:30 we draw one lucky viewer who gets this blender for
free, stay tuned!"  From the announcement until the draw the giveaway is
pending: its signal is 1 and it raises the purchase hazard of every viewer
present, ``1 + gain * z``.  At ``draw_s`` the host draws ``winners`` viewers
(fewer if fewer are watching) uniformly among those present on the product's
stream, each of whom wins one free unit (a ``prize`` event; the prize is not a
purchase and comes on top of the stock).  The draw uses a random stream of the
giveaway's own, the same in every arm of a replicate.

With ``[stream.retention] draw = r`` (:mod:`fomolab.retention`) the pending
draw multiplies the leaving hazard of the viewers present by ``r``: ``r < 1``
holds them until the draw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field, model_validator

from fomolab.tactics._base import Covariate, Tactic

if TYPE_CHECKING:
    from fomolab.tactics._context import EpisodeContext, ProductContext

__all__ = ["Giveaway"]


class Giveaway(Tactic):
    """A lucky draw on one product.

    Attributes
    ----------
    announce_s, draw_s : float
        The giveaway is announced at ``announce_s``; the draw takes place at ``draw_s``.
    winners : int
        Viewers drawn (each wins one unit).
    arrival_boost : float
        Multiplier of the arrival rate while the draw is pending.
    """

    kind: ClassVar[str] = "giveaway"
    order: ClassVar[int] = 60
    summary: ClassVar[str] = "a lucky draw among the viewers present at an announced time"
    time_fields: ClassVar[tuple[str, ...]] = ("announce_s", "draw_s")
    retention_cause: ClassVar[str | None] = "draw"
    offer: ClassVar[bool] = True
    record_rank: ClassVar[int] = 60
    event_kinds: ClassVar[tuple[str, ...]] = ("prize",)
    covariates: ClassVar[tuple[Covariate, ...]] = (Covariate("draw_pending", "draw", "int64"),)

    announce_s: float = Field(ge=0)
    draw_s: float = Field(gt=0)
    winners: int = Field(default=1, ge=1)
    arrival_boost: float = Field(default=1.0, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Giveaway:
        if self.draw_s <= self.announce_s:
            raise ValueError(f"draw_s must be after announce_s ({self.announce_s}): {self.draw_s}")
        return self

    def window(self) -> tuple[float, float]:
        return (self.announce_s, self.draw_s)

    def schedule(self, ctx: ProductContext) -> None:
        ctx.event(self.announce_s, "tactic_start", self.kind, self.winners)

    def draw(self, ctx: ProductContext) -> np.ndarray:
        """The visits that win: ``winners`` (or all) of those present at ``draw_s``, sorted."""
        present = ctx.present(self.draw_s)
        rng = ctx.tactic_generator(self.kind)
        k = min(self.winners, len(present))
        return np.sort(present[rng.choice(len(present), size=k, replace=False)]) if k else present[:0]

    def after_run(self, ctx: ProductContext) -> None:
        won = self.draw(ctx)
        ctx.event(self.draw_s, "tactic_end", self.kind, len(won))
        ctx.shopper_event(self.draw_s, "prize", won, self.kind, ctx.price)

    def episode_covariates(self, ctx: EpisodeContext) -> dict[str, np.ndarray]:
        """``draw_pending``: 1 from the announcement until the draw."""
        return {"draw_pending": ctx.in_windows(self.kind)}


#: This module's tactic, found by :func:`fomolab.tactics.registry`.
PLUGIN = Giveaway
