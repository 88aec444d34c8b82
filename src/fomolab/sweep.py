"""Sweeps: the points of a parameter study, from the spec's ``[sweep]`` table.

The picture: a grid of knobs on a mixing desk.  Each swept parameter is
addressed by its dotted path in the spec (``lineup.lipstick.tactics.
lightning_sale.discount``, ``population.segments.impulsive.share``), and the
design says which settings to run:

==========  ==========================================================
design      points
==========  ==========================================================
``grid``    every combination of the listed values (``parameters``)
``list``    the explicit ``points`` given
``lhs``     ``samples`` Latin-hypercube points in ``[low, high]`` ranges
``sobol``   ``samples`` scrambled Sobol points (a power of 2)
``saltelli`` Saltelli's scheme for Sobol indices: ``samples * (D + 2)``
==========  ==========================================================

Integer parameters (stock, quota, threshold, ...) are rounded.  Sweeping a
segment's ``share`` rescales the other segments' shares so they still sum to 1.
Each point is validated like a spec of its own.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Literal

from pydantic import Field, model_validator

from fomolab._frozen import FrozenModel

__all__ = ["Range", "Sweep", "column_name"]


class Range(FrozenModel):
    """A range ``[low, high]`` for sampled designs."""

    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.high <= self.low:
            raise ValueError(f"high must be above low ({self.low}): {self.high}")
        return self


class Sweep(FrozenModel):
    """The ``[sweep]`` table."""

    design: Literal["grid", "list", "lhs", "sobol", "saltelli"] = "grid"
    parameters: dict[str, list[Any] | Range] = Field(default_factory=dict)
    points: list[dict[str, Any]] = Field(default_factory=list)
    samples: int | None = Field(default=None, ge=1)
    seed: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Sweep:
        d = self.design
        if d == "list":
            if not self.points:
                raise ValueError("design 'list' needs points = [{...}, ...]")
            if self.parameters or self.samples:
                raise ValueError("design 'list' takes points only, not parameters or samples")
            keys = set(self.points[0])
            for i, p in enumerate(self.points):
                if set(p) != keys:
                    raise ValueError(f"every point must set the same parameters; point {i} sets {sorted(p)}, "
                                     f"point 0 {sorted(keys)}")
            return self
        if self.points:
            raise ValueError(f"points are for design 'list', not '{d}'")
        if not self.parameters:
            raise ValueError(f"design '{d}' needs [sweep.parameters]")
        if d == "grid":
            for path, values in self.parameters.items():
                if not isinstance(values, list) or not values:
                    raise ValueError(f"grid parameter '{path}' needs a non-empty list of values")
            if self.samples is not None:
                raise ValueError("design 'grid' takes no samples; list the values instead")
            return self
        for path, rng in self.parameters.items():
            if not isinstance(rng, Range):
                raise ValueError(f"design '{d}' needs a range {{low = ..., high = ...}} for '{path}'")
        if self.samples is None:
            raise ValueError(f"design '{d}' needs samples = N")
        if d in ("sobol", "saltelli") and self.samples & (self.samples - 1):
            raise ValueError(f"design '{d}' needs samples to be a power of 2 (balance of the Sobol sequence): "
                             f"{self.samples}")
        return self

    @property
    def paths(self) -> list[str]:
        """The swept parameters' dotted paths."""
        return list(self.points[0]) if self.design == "list" else list(self.parameters)

    def values(self, master_seed: int) -> list[dict[str, Any]]:
        """The points, as ``{path: value}`` dicts, in design order."""
        if self.design == "list":
            return [dict(p) for p in self.points]
        if self.design == "grid":
            paths = self.paths
            return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*self.parameters.values())]
        return [dict(zip(self.paths, map(float, row), strict=True)) for row in self.unit_sample(master_seed)]

    def unit_sample(self, master_seed: int):
        """The sampled design scaled to the ranges (rows = points)."""
        import numpy as np

        seed = self.seed if self.seed is not None else master_seed
        ranges = self._ranges()
        lo = np.array([r.low for r in ranges])
        hi = np.array([r.high for r in ranges])
        if self.design == "saltelli":
            from fomolab._optional import require

            require("SALib", "Saltelli sweep designs")
            from SALib.sample import sobol as saltelli

            problem = {"num_vars": len(ranges), "names": self.paths, "bounds": [[r.low, r.high] for r in ranges]}
            return saltelli.sample(problem, self.samples, calc_second_order=False, seed=seed)
        from scipy.stats import qmc

        if self.design == "lhs":
            unit = qmc.LatinHypercube(d=len(ranges), seed=seed).random(self.samples)
        else:
            unit = qmc.Sobol(d=len(ranges), scramble=True, seed=seed).random(self.samples)
        return qmc.scale(unit, lo, hi)

    def problem(self) -> dict[str, Any]:
        """SALib's problem dict (for Sobol indices of a Saltelli design)."""
        return {"num_vars": len(self.parameters), "names": self.paths,
                "bounds": [[r.low, r.high] for r in self._ranges()]}

    def _ranges(self) -> list[Range]:
        """The ranges of a sampled design (validation makes every parameter a range)."""
        return [r for r in self.parameters.values() if isinstance(r, Range)]


def column_name(path: str) -> str:
    """The ``runs`` column of a swept parameter: its dotted path in snake_case.

    >>> column_name("lineup.lipstick.tactics.lightning_sale.discount")
    'lineup_lipstick_tactics_lightning_sale_discount'
    """
    return re.sub(r"[^0-9a-zA-Z]+", "_", path).strip("_").lower()
