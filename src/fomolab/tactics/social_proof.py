"""Social proof: "Anna just bought!" notifications.

The picture: a ticker of recent buyers scrolls over the stream.  The signal is
the number of purchases of the product in the last ``window_s`` seconds divided
by ``saturation`` and capped at 1: a busy ticker persuades, a quiet one does not.
Because it depends on other viewers' purchases, the engine evaluates it in event
order (thinning against the bound ``s <= 1``), never by waking every viewer.

The deceptive variant ``fabricated_rate_per_s = r`` shows invented
notifications, a Poisson process at rate ``r`` over the product's slot,
instead of real purchases: the signal no longer depends on what anyone buys.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field

from fomolab.tactics._base import Covariate, LiveSignal, Tactic

if TYPE_CHECKING:
    from fomolab.tactics._context import EpisodeContext, ProductContext

__all__ = ["SocialProof"]


class _Ticker(LiveSignal):
    """The honest ticker in its product's walk: the purchases of the last ``window_s`` seconds."""

    def __init__(self, sp: SocialProof) -> None:
        self.gain, self.window_s, self.saturation = sp.gain, sp.window_s, sp.saturation
        self.recent: deque[float] = deque()

    def level(self, t, stock):
        recent = self.recent
        cut = t - self.window_s
        while recent and recent[0] <= cut:
            recent.popleft()
        return min(1.0, len(recent) / self.saturation)

    def bought(self, t, stock):
        self.recent.append(t)


class SocialProof(Tactic):
    """Purchase notifications on one product.

    Attributes
    ----------
    window_s : float
        How long a purchase stays in the notification ticker, in seconds.
    saturation : int
        Purchases in the window at which the signal reaches 1.
    """

    kind: ClassVar[str] = "social_proof"
    order: ClassVar[int] = 40
    summary: ClassVar[str] = '"X just bought" notifications'
    live_rank: ClassVar[int] = 10
    record_rank: ClassVar[int] = 50
    covariates: ClassVar[tuple[Covariate, ...]] = (Covariate("social_proof_level", "social_proof", "float64"),)
    always_listed: ClassVar[bool] = True

    window_s: float = Field(default=60.0, gt=0)
    saturation: int = Field(default=5, ge=1)
    fabricated_rate_per_s: float | None = Field(default=None, gt=0)

    @property
    def fake(self) -> bool:
        """True for the deceptive variant (fabricated notifications)."""
        return self.fabricated_rate_per_s is not None

    def ticker_signal(self, t: np.ndarray, notices: np.ndarray) -> np.ndarray:
        """Signal at ``t`` for a ticker showing the (sorted) notification times ``notices``."""
        n = np.searchsorted(notices, t, side="left") - np.searchsorted(notices, t - self.window_s, side="right")
        return np.minimum(1.0, n / self.saturation)

    def is_interactive(self) -> bool:
        return not self.fake

    def notices(self, ctx: ProductContext) -> np.ndarray:
        """Times of the fabricated notifications over the product's slot.

        They come from a stream of the product's own, so every arm with the same
        fake ticker shows the same notifications.
        """
        from fomolab.stream import poisson_times

        a, b = ctx.slot
        return poisson_times(np.array([a, b]), np.array([self.fabricated_rate_per_s]), ctx.generator("fabricated"))

    def hazard_factor(self, ctx, t, z, arrival_s, departure_s):
        return 1.0 + self.gain * z * self.ticker_signal(t, self.notices(ctx))

    def value_signal(self, ctx, t, arrival_s):
        """The fabricated ticker's level (the deceptive variant is static)."""
        return self.ticker_signal(t, self.notices(ctx))

    def live(self, ctx: ProductContext) -> LiveSignal | None:
        return _Ticker(self) if not self.fake else None

    def analytic_problem(self) -> str | None:
        return "viewers interact (stock, quota or social proof)"

    def likelihood_problem(self) -> str | None:
        if self.fake:
            return "shows fabricated notifications not in the data"
        return super().likelihood_problem()

    def episode_cuts(self, slot, options):
        """The product's slot on a grid of ``social_proof_step_s`` (default half the ticker's window)."""
        step = options.get("social_proof_step_s")
        step = step if step is not None else self.window_s / 2.0
        return [np.arange(slot[0], slot[1], step)]

    def episode_covariates(self, ctx: EpisodeContext) -> dict[str, np.ndarray]:
        """``social_proof_level``: ``min(1, n / saturation)``, ``n`` the product's purchases in
        ``(start - window_s, start)`` (counted at the episode's start)."""
        if ctx.purchases_s is None:
            return {}
        pt = ctx.purchases_s
        cnt = np.searchsorted(pt, ctx.start, "left") - np.searchsorted(pt, ctx.start - self.window_s, "right")
        return {"social_proof_level": np.where(ctx.on, np.minimum(1.0, cnt / self.saturation), 0.0)}

#: This module's tactic, found by :func:`fomolab.tactics.registry`.
PLUGIN = SocialProof
