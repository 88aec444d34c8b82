"""What a tactic plugin is handed: its product in a run, or a run's episodes.

:class:`ProductContext` is built by the engine for each product of a run;
:class:`EpisodeContext` by :func:`fomolab.stats.episodes` for each product of a
run's stored facts.  Plugins read them and record through them; they never
import the engine or the statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ProductContext", "EpisodeContext"]


@dataclass
class ProductContext:
    """One product of one run, as its tactics see it.

    Attributes
    ----------
    recorder : fomolab.recorder.Recorder
        Where events go.
    product : int
        The product's number in the run's tables.
    stock : int or None
        Units in stock at the start (None: unlimited).
    price : float
        List price.
    slot : (float, float)
        When the product is on show.
    duration_s : float
        The stream's end.
    seed : int
        The run's replicate seed (for :meth:`generator`).
    visits_start_s, visits_end_s : numpy.ndarray
        Every visit of the run (index = visit number in the tables).
    visits_here : numpy.ndarray of bool
        The visits to the product's stream.
    """

    recorder: Any
    product: int
    stock: int | None
    price: float
    slot: tuple[float, float]
    duration_s: float
    seed: int
    visits_start_s: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    visits_end_s: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    visits_here: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, bool))
    #: The host's restock rules for this product (:class:`fomolab.host.Restock`; empty: none).
    restock: tuple[Any, ...] = ()
    #: The host's live signals on this product (its cues when sales slow, :func:`fomolab.host.host_signals`).
    host_live: list[Any] = field(default_factory=list)

    def present(self, time_s: float) -> np.ndarray:
        """The visits to the product's stream under way at ``time_s`` (started, not yet over)."""
        return np.flatnonzero(self.visits_here & (self.visits_start_s <= time_s) & (self.visits_end_s > time_s))

    def audience(self, t: np.ndarray | float) -> np.ndarray:
        """The number of visits to the product's stream under way at each ``t`` (the concurrent viewers)."""
        cache = self.__dict__.get("_audience")
        if cache is None:
            cache = (np.sort(self.visits_start_s[self.visits_here]), np.sort(self.visits_end_s[self.visits_here]))
            object.__setattr__(self, "_audience", cache)
        starts, ends = cache
        return np.searchsorted(starts, t, side="right") - np.searchsorted(ends, t, side="right")

    def generator(self, purpose: str, *extra: int) -> np.random.Generator:
        """The run's generator for ``purpose`` (:mod:`fomolab.seeds`), keyed by this product."""
        from fomolab.seeds import generator

        return generator(self.seed, purpose, self.product, *extra)

    def tactic_generator(self, kind: str) -> np.random.Generator:
        """A generator of the tactic ``kind``'s own on this product: the same in every arm
        of a replicate (so arms compare paired), independent of every other purpose."""
        from fomolab.seeds import arm_key, generator

        return generator(self.seed, "tactic", self.product, arm_key(kind))

    def event(self, time_s: float, kind: str, tactic: str, value: float = float("nan")) -> None:
        """Record a stream event of this product (no shopper)."""
        self.recorder.event(time_s, kind, self.product, tactic, value)

    def shopper_event(self, time_s: float, kind: str, visits: np.ndarray, tactic: str,
                      value: float = float("nan")) -> None:
        """Record an event of the visits ``visits`` (one row each) for this product."""
        self.recorder.shopper_events(time_s, kind, visits, self.product, tactic, value)


@dataclass
class EpisodeContext:
    """The episodes of one run's visits while one product is on show.

    Attributes
    ----------
    start, stop, mid : numpy.ndarray
        Each episode's ``(start, stop]`` and midpoint.
    on : numpy.ndarray of bool
        The product is on show at the midpoint.
    arrival_s, departure_s : numpy.ndarray
        The visit of each episode.
    windows : pandas.DataFrame
        The product's windows in the run (``tactic``, ``start_s``, ``end_s``), as stored.
    purchases_s : numpy.ndarray
        The product's purchase times in the run, sorted.
    options : dict
        ``timer_pieces``, ``social_proof_step_s`` (see :func:`fomolab.stats.episodes`).
    """

    start: np.ndarray
    stop: np.ndarray
    mid: np.ndarray
    on: np.ndarray
    arrival_s: np.ndarray
    departure_s: np.ndarray
    windows: Any
    purchases_s: np.ndarray | None
    options: dict[str, Any]

    def in_windows(self, kind: str) -> np.ndarray:
        """1.0 where the midpoint lies in one of the product's stored ``kind`` windows (on show), else 0."""
        out = np.zeros(len(self.mid))
        w = self.windows
        for ws, we in zip(w.start_s[w.tactic == kind], w.end_s[w.tactic == kind], strict=True):
            np.maximum(out, (self.on & (self.mid >= ws) & (self.mid < we)).astype(float), out=out)
        return out
