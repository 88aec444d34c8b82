"""The stream: how long it runs and how viewers arrive.

The picture: a host goes live for an hour; viewers drop in as a Poisson process
whose rate follows a schedule (a slow start, a peak), and more of them come
while a tactic is being announced ("arrival boost").  Arrivals are drawn exactly
for piecewise-constant rates: a Poisson count per piece, then uniform times.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from pydantic import Field, model_serializer, model_validator

from fomolab._frozen import FrozenModel
from fomolab.hawkes import Hawkes
from fomolab.host import ReactiveHost
from fomolab.retention import Retention

if TYPE_CHECKING:  # numpy is imported where arrivals are drawn, so validating a spec does not pay for it
    import numpy as np

__all__ = ["RatePiece", "Arrivals", "Stream", "poisson_times", "rate_function"]


class RatePiece(FrozenModel):
    """From ``start_s`` on (until the next piece), viewers arrive at ``rate_per_s``."""

    start_s: float = Field(ge=0)
    rate_per_s: float = Field(ge=0)


class Arrivals(FrozenModel):
    """Viewer arrivals: a constant ``rate_per_s`` or a piecewise ``schedule``.

    With ``hawkes`` (:mod:`fomolab.hawkes`) these are the *immigrants* of a
    self-exciting process: each arrival brings more.
    """

    rate_per_s: float | None = Field(default=None, gt=0)
    schedule: tuple[RatePiece, ...] | None = None
    hawkes: Hawkes | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """``hawkes`` is left out when not given, so that a run's identity is what it was before it existed."""
        data = handler(self)
        if data.get("hawkes", 0) is None:
            del data["hawkes"]
        return data

    @model_validator(mode="after")
    def _one_of(self) -> Arrivals:
        if (self.rate_per_s is None) == (self.schedule is None):
            raise ValueError("give exactly one of 'rate_per_s' or 'schedule'")
        if self.schedule is not None:
            starts = [p.start_s for p in self.schedule]
            if not starts or starts[0] != 0:
                raise ValueError(f"the schedule must start at start_s = 0: {starts[:1]}")
            if any(b <= a for a, b in itertools.pairwise(starts)):
                raise ValueError(f"schedule start_s must increase: {starts}")
            if not any(p.rate_per_s > 0 for p in self.schedule):
                raise ValueError("at least one piece of the schedule needs rate_per_s > 0")
        return self

    def pieces(self, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Edges (n + 1) and rates (n) of the rate schedule over the stream."""
        import numpy as np

        if self.schedule is None:
            return np.array([0.0, duration_s]), np.array([self.rate_per_s], dtype=float)
        starts = np.array([p.start_s for p in self.schedule])
        rates = np.array([p.rate_per_s for p in self.schedule])
        return np.append(starts, duration_s), rates


class Stream(FrozenModel):
    """A live stream: its duration, its viewer arrival process and, optionally, how its tactics
    hold viewers (``retention``, :mod:`fomolab.retention`)."""

    duration_s: float = Field(gt=0)
    arrivals: Arrivals
    retention: Retention | None = None
    reactive_host: ReactiveHost | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """``retention`` and ``reactive_host`` are left out when not given (a run's identity is what it
        was before they existed)."""
        data = handler(self)
        for key in ("retention", "reactive_host"):
            if data.get(key, 0) is None:
                del data[key]
        return data


def rate_function(edges: np.ndarray, rates: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Value at times ``t`` of the piecewise-constant rate (0 outside)."""
    import numpy as np

    idx = np.searchsorted(edges, t, side="right") - 1
    inside = (idx >= 0) & (idx < len(rates))
    return np.where(inside, rates[np.clip(idx, 0, len(rates) - 1)], 0.0)


def poisson_times(edges: np.ndarray, rates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted event times of a Poisson process with a piecewise-constant rate.

    >>> import numpy as np
    >>> t = poisson_times(np.array([0.0, 10.0]), np.array([100.0]), np.random.default_rng(0))
    >>> bool(np.all(np.diff(t) >= 0)), 800 < len(t) < 1200
    (True, True)
    """
    import numpy as np

    widths = np.diff(edges)
    counts = rng.poisson(np.maximum(rates, 0.0) * widths)
    starts = np.repeat(edges[:-1], counts)
    times = starts + rng.random(counts.sum()) * np.repeat(widths, counts)
    return np.sort(times)
