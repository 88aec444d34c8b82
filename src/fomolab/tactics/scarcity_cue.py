"""Scarcity cue: "only N left!" once stock falls to a threshold.

The picture: a red badge appears when the warehouse count drops low.  The cue is
shown while the product is on show and ``0 < stock <= threshold``; its signal
grows as stock falls, ``(threshold - stock + 1) / threshold``, reaching 1 at the
last unit.  It needs a finite stock.
"""

from __future__ import annotations

from typing import ClassVar

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

    def is_interactive(self) -> bool:
        return True
