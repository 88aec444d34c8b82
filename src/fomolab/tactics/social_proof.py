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

from typing import ClassVar

import numpy as np
from pydantic import Field

from fomolab.tactics._base import Tactic

__all__ = ["SocialProof"]


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
