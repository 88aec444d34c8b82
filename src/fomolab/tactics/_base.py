"""What every tactic shares: a frozen, validated config and a signal in [0, 1].

A tactic is attached to one product of the lineup.  Its *signal* ``s(t)`` enters
the purchase hazard as the factor ``1 + gain * z * s(t)``, where ``z`` is the
viewer's impulsiveness (see ``docs/MODEL.md``).  Tactics with a fixed window know
their signal in advance (``static``); the others (scarcity cue, social proof)
depend on what other viewers do and are evaluated by the engine in event order.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Tactic", "FrozenModel"]


class FrozenModel(BaseModel):
    """A frozen pydantic model that refuses unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class Tactic(FrozenModel):
    """Base class of the five tactics.

    Attributes
    ----------
    gain : float
        Strength of the tactic: the hazard of a viewer with impulsiveness ``z``
        is multiplied by ``1 + gain * z * s(t)``.
    """

    kind: ClassVar[str] = "tactic"

    gain: float = Field(default=1.0, ge=0, description="hazard gain per unit of z * signal")

    def is_interactive(self) -> bool:
        """True when the signal depends on other viewers (stock, purchases)."""
        return False

    def window(self) -> tuple[float, float] | None:
        """The scheduled window ``[start, end)`` in stream seconds, or None."""
        return None

    @property
    def boost(self) -> float:
        """Multiplier of the arrival rate while the window runs (1 = none)."""
        return float(getattr(self, "arrival_boost", 1.0))

    def breakpoints(self) -> list[float]:
        """Times where the signal's upper bound changes (for the thinning envelope)."""
        w = self.window()
        return [] if w is None else [w[0], w[1]]

    def signal_bound(self, a: float, b: float) -> float:
        """Largest signal on ``[a, b)``; 1 for tactics without a window."""
        w = self.window()
        if w is None:
            return 1.0
        return 1.0 if (a < w[1] and b > w[0]) else 0.0

    def signal(self, t: np.ndarray) -> np.ndarray:
        """The signal at times ``t`` (static tactics only)."""
        w = self.window()
        assert w is not None, f"{self.kind} has no static signal"
        return ((t >= w[0]) & (t < w[1])).astype(float)

    def factor(self, t: np.ndarray, z: np.ndarray, arrival_s: np.ndarray, departure_s: np.ndarray) -> np.ndarray:
        """Multiplier of the hazard at ``t`` for viewers with impulsiveness ``z``
        who arrived at ``arrival_s`` and leave at ``departure_s`` (static tactics)."""
        return 1.0 + self.gain * z * self.signal(t)

    def exposures(self, t: np.ndarray, arrival_s: np.ndarray) -> np.ndarray:
        """How often a viewer present since ``arrival_s`` has seen this claim prove
        false by ``t`` (deceptive variants; 0 for honest tactics)."""
        return np.zeros(np.shape(t))

    def learned(self, f: np.ndarray, t: np.ndarray, arrival_s: np.ndarray) -> np.ndarray:
        """A factor ``f`` after learning: ``1 + credibility ** exposures * (f - 1)``."""
        c = getattr(self, "credibility", 1.0)
        if c == 1.0:
            return f
        return 1.0 + c ** self.exposures(t, arrival_s) * (f - 1.0)
