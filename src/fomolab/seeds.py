"""Seeds: one master seed per experiment, everything else derived from it.

``numpy.random.SeedSequence`` derives a *replicate seed* from the master seed,
the sweep point and the replicate index; each purpose then gets its own
generator from the replicate seed.  Arms of the same replicate share the
replicate seed, so they see the same arriving viewers with the same traits and
the same decision randomness (common random numbers); viewers that an arm's
arrival boost attracts come from a stream keyed by the arm's name, on top.

A run's randomness therefore depends only on (master seed, point, replicate,
arm name): never on the executor, the number of workers or the order of runs.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["PURPOSES", "replicate_seed", "generator", "arm_key"]

#: Each purpose's first spawn-key element.  Never renumber: it would change results.
PURPOSES = {"arrivals": 0, "traits": 1, "decisions": 2, "boost": 3, "valuation": 4, "fabricated": 5, "choice": 6,
            "switch": 7, "tactic": 8, "hawkes": 9, "perception": 10, "budget": 11, "returns": 12,
            "purchase_cascade": 13}


def replicate_seed(master: int, point: int, replicate: int, arm: int | None = None) -> int:
    """The seed shared by every arm of one replicate at one sweep point.

    ``point`` is the point's key (:func:`fomolab.design.point_key`), 0 without a
    sweep.  ``arm`` (an :func:`arm_key`) gives each arm seeds of its own, for
    experiments that switch common random numbers off.

    >>> replicate_seed(1, 0, 0) == replicate_seed(1, 0, 0) != replicate_seed(1, 0, 1)
    True
    """
    key = (point, replicate) if arm is None else (point, replicate, arm)
    state = np.random.SeedSequence(master, spawn_key=key).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def arm_key(name: str) -> int:
    """A stable integer for an arm's name (for its own arrival-boost stream)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def generator(seed: int, purpose: str, *extra: int) -> np.random.Generator:
    """The generator for one purpose of one run."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(PURPOSES[purpose], *extra)))
