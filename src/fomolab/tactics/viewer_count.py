"""Viewer count: the number watching, shown on screen, as a cue.

The picture: "12,408 watching" in the corner of the stream.  A crowd is
social proof of its own: the more people watch, the more a viewer trusts the
product is worth buying.  While the count is shown (the product's slot, or
``start_s`` to ``end_s``) the hazard is multiplied by ``1 + gain * z * s(t)``
with

    s(t) = N(t) / (N(t) + half_viewers),

``N(t)`` the viewers present on the product's stream at ``t`` (the viewer
included): ``s`` grows with the audience and saturates, half way at
``half_viewers``.  The count depends on who is present, not on who buys, so
it is known before the purchases are decided (departures are drawn first,
retention included): the factor is static and exact under thinning, with
envelope ``1 + gain * z``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field, model_validator

from fomolab.tactics._base import Tactic

if TYPE_CHECKING:
    from fomolab.tactics._context import ProductContext

__all__ = ["ViewerCount"]


class ViewerCount(Tactic):
    """The concurrent-viewer count as a social cue on one product.

    Attributes
    ----------
    half_viewers : float
        Viewers at which the signal is one half.
    start_s, end_s : float or None
        When the count is shown (default: while the product is on show).
    """

    kind: ClassVar[str] = "viewer_count"
    order: ClassVar[int] = 70
    summary: ClassVar[str] = "the number watching, shown on screen, raises the hazard as the audience grows"
    time_fields: ClassVar[tuple[str, ...]] = ("start_s", "end_s")

    half_viewers: float = Field(default=100.0, gt=0)
    start_s: float | None = Field(default=None, ge=0)
    end_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> ViewerCount:
        if (self.start_s is None) != (self.end_s is None):
            raise ValueError("give both start_s and end_s, or neither (shown while the product is on show)")
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"end_s must be after start_s ({self.start_s}): {self.end_s}")
        return self

    def window(self) -> tuple[float, float] | None:
        return None if self.start_s is None or self.end_s is None else (self.start_s, self.end_s)

    def shown(self, t: np.ndarray) -> np.ndarray:
        """1 where the count is shown (always without a window: the hazard is 0 off the slot)."""
        w = self.window()
        return np.ones(np.shape(t)) if w is None else ((t >= w[0]) & (t < w[1])).astype(float)

    def audience_signal(self, count: np.ndarray) -> np.ndarray:
        """``N / (N + half_viewers)``."""
        n = np.asarray(count, dtype=float)
        return n / (n + self.half_viewers)

    def hazard_factor(self, ctx: ProductContext, t: np.ndarray, z: np.ndarray, arrival_s: np.ndarray,
                      departure_s: np.ndarray) -> np.ndarray:
        here = ctx.visits_here
        starts = np.sort(ctx.visits_start_s[here])
        ends = np.sort(ctx.visits_end_s[here])
        count = np.searchsorted(starts, t, side="right") - np.searchsorted(ends, t, side="right")
        return 1.0 + self.gain * z * self.shown(t) * self.audience_signal(count)

    def factor(self, t, z, arrival_s, departure_s):
        raise TypeError("viewer_count's factor depends on the run's audience: use hazard_factor")

    def analytic_problem(self) -> str | None:
        return "viewer_count depends on how many others are watching"

    def audience_problem(self) -> str | None:
        return "the viewer count is computed from departures known before the purchases are decided"

    def likelihood_problem(self) -> str | None:
        return "depends on how many others are watching (the audience size is not in the visit data)"

    def time_degree(self) -> int | None:
        return None


#: This module's tactic, found by :func:`fomolab.tactics.registry`.
PLUGIN = ViewerCount
