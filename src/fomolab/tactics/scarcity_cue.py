"""Scarcity cue: "only N left!" once stock falls to a threshold.

The picture: a red badge appears when the warehouse count drops low.  The cue is
shown while the product is on show and ``0 < stock <= threshold``; its signal
grows as stock falls, ``(threshold - stock + 1) / threshold``, reaching 1 at the
last unit.  It needs a finite stock.

The deceptive variant ``displayed_stock = N`` shows "only N left" throughout
the product's slot whatever the real stock (which may be unlimited).  With
``credibility = c < 1`` viewers learn: each ``recheck_s`` seconds a viewer sees
the claim unchanged ("still only 3 left") it proves false once more, and their
response is scaled by ``c``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from fomolab.tactics._base import Tactic

__all__ = ["ScarcityCue", "scarcity_signal"]


def scarcity_signal(stock: int, threshold: int) -> float:
    """Signal of an "only ``stock`` left" cue with the given threshold.

    >>> scarcity_signal(10, 5), scarcity_signal(5, 5), scarcity_signal(1, 5)
    (0.0, 0.2, 1.0)
    """
    if stock <= 0 or stock > threshold:
        return 0.0
    return (threshold - stock + 1) / threshold


class ScarcityCue(Tactic):
    """An "only N left" cue on one product.

    Attributes
    ----------
    threshold : int
        The cue shows once remaining stock is at most this many units.
    """

    kind: ClassVar[str] = "scarcity_cue"

    threshold: int = Field(ge=1)
    displayed_stock: int | None = Field(default=None, ge=1)
    credibility: float = Field(default=1.0, gt=0, le=1)
    recheck_s: float = Field(default=60.0, gt=0)
    #: The product's slot, filled in by the lineup for the deceptive variant.
    slot_s: tuple[float, float] | None = None

    @property
    def fake(self) -> bool:
        """True for the deceptive variant (a fixed displayed count)."""
        return self.displayed_stock is not None

    def window(self) -> tuple[float, float] | None:
        return self.slot_s if self.fake else None

    def signal(self, t: np.ndarray) -> np.ndarray:
        assert self.fake and self.slot_s is not None, "an honest cue's signal depends on the stock"
        a, b = self.slot_s
        return ((t >= a) & (t < b)) * scarcity_signal(self.displayed_stock, self.threshold)

    def factor(self, t, z, arrival_s, departure_s):
        return self.learned(1.0 + self.gain * z * self.signal(t), t, arrival_s)

    def exposures(self, t: np.ndarray, arrival_s: np.ndarray) -> np.ndarray:
        """Times the unchanged claim was seen again: whole ``recheck_s`` periods watched."""
        if not self.fake:
            return np.zeros(np.shape(t))
        start = np.maximum(arrival_s, self.slot_s[0])
        return np.floor(np.maximum(t - start, 0.0) / self.recheck_s)

    def is_interactive(self) -> bool:
        return not self.fake
