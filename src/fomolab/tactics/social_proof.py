"""Social proof: "Anna just bought!" notifications.

The picture: a ticker of recent buyers scrolls over the stream.  The signal is
the number of purchases of the product in the last ``window_s`` seconds divided
by ``saturation`` and capped at 1: a busy ticker persuades, a quiet one does not.
Because it depends on other viewers' purchases, the engine evaluates it in event
order (thinning against the bound ``s <= 1``), never by waking every viewer.
"""

from __future__ import annotations

from typing import ClassVar

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

    def is_interactive(self) -> bool:
        return True
