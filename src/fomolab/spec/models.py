"""What a spec becomes: the tables as written, and the resolved experiment.

:class:`SpecModel` mirrors the TOML tables; :class:`Experiment` is what the
rest of fomolab uses: the arms resolved (each with its own
:class:`Scenario`), the sweep's points, and the resolved spec recorded in
results folders.  All are frozen.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, model_serializer

from fomolab._frozen import FrozenModel
from fomolab.lineup import Product
from fomolab.market import Market
from fomolab.population import Population
from fomolab.stream import Stream
from fomolab.sweep import Sweep, column_name
from fomolab.value import Shopper

__all__ = ["SCENARIO_KEYS", "Header", "ArmSpec", "Scenario", "SpecModel", "Arm", "Point", "Experiment"]


#: The parts of a spec that make an arm's scenario (arms and sweeps may override them).
SCENARIO_KEYS = ("stream", "population", "lineup", "market", "shopper")


class Header(FrozenModel):
    """The ``[experiment]`` table."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    description: str = ""
    seed: int = Field(ge=0)
    replicates: int = Field(default=20, ge=1)
    control: str = "control"
    common_random_numbers: bool = True


class ArmSpec(FrozenModel):
    """An ``[arms.NAME]`` table: which tactics are on, and parameter overrides.

    ``base`` starts from another arm (its tactics and overrides); ``remove``
    switches tactics off again: a "ban" arm is ``base = "all"`` with
    ``remove = ["lipstick.countdown_timer"]``.
    """

    description: str = ""
    base: str | None = None
    tactics: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    set: dict[str, Any] = {}  # noqa: RUF012 - pydantic copies field defaults


class Scenario(FrozenModel):
    """What one arm simulates: a stream, its viewers, and its lineup.

    Only the tactics switched on in the arm are present in ``lineup``.
    """

    stream: Stream
    population: Population
    lineup: dict[str, Product] = Field(min_length=1)
    market: Market | None = None
    shopper: Shopper | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """``shopper`` is left out when absent, so that a spec without one keeps its run identities."""
        data = handler(self)
        if isinstance(data, dict) and data.get("shopper", 0) is None:
            del data["shopper"]
        return data


class SpecModel(FrozenModel):
    """The whole spec as written (after profile resolution)."""

    experiment: Header
    stream: Stream
    population: Population
    lineup: dict[str, Product] = Field(min_length=1)
    market: Market | None = None
    shopper: Shopper | None = None
    arms: dict[str, ArmSpec] = Field(min_length=1)
    sweep: Sweep | None = None


@dataclass(frozen=True)
class Arm:
    """One arm of an experiment, resolved: its name and what it simulates."""

    name: str
    description: str
    tactics: tuple[str, ...]
    scenario: Scenario

    def __repr__(self) -> str:
        return f"Arm({self.name!r}, tactics={list(self.tactics)})"


@dataclass(frozen=True)
class Point:
    """One point of a sweep: the parameter values and the arms resolved at them."""

    values: dict[str, Any]
    arms: dict[str, Arm] = field(repr=False)

    @property
    def params(self) -> dict[str, Any]:
        """The values keyed by their ``runs`` column names."""
        return {column_name(k): v for k, v in self.values.items()}


@dataclass(frozen=True)
class Experiment:
    """A validated experiment: arms to compare, replicates, and the master seed.

    Build it with :func:`load_experiment`.  ``spec`` is the resolved spec as a
    plain dict (profiles inlined), which is what results folders record.
    """

    name: str
    description: str
    seed: int
    replicates: int
    control: str
    arms: dict[str, Arm]
    spec: dict[str, Any] = field(repr=False)
    source: str = field(default="<spec>", repr=False)
    sweep: Sweep | None = field(default=None, repr=False)
    points: tuple[Point, ...] = field(default=(), repr=False)
    common_random_numbers: bool = True
    #: Names of the products a ``[lineup_template]`` made (empty without one); ``spec`` holds them expanded.
    generated: tuple[str, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:
        sweep = f", points={len(self.points)} ({self.sweep.design})" if self.sweep else ""
        return (
            f"Experiment({self.name!r}, arms={list(self.arms)}{sweep}, replicates={self.replicates}, "
            f"seed={self.seed})"
        )

    @property
    def swept(self) -> list[str]:
        """Dotted paths of the swept parameters (empty without a sweep)."""
        return self.sweep.paths if self.sweep else []

    @property
    def n_runs(self) -> int:
        return len(self.arms) * len(self.points) * self.replicates

    @property
    def spec_hash(self) -> str:
        """SHA-256 of the resolved spec (canonical JSON)."""
        return _hash(self.spec)

    @property
    def fingerprint(self) -> str:
        """Hash of everything but the number of replicates and the sweep's points.

        A results folder is tied to it: replicates and points may be added (each
        run records its own parameters), the swept parameters and everything
        else may not change.
        """
        spec = copy.deepcopy(self.spec)
        spec["experiment"].pop("replicates", None)
        spec.pop("sweep", None)
        return _hash({"spec": spec, "swept": self.swept})

    def with_overrides(self, *, replicates: int | None = None, seed: int | None = None) -> Experiment:
        """The same experiment with another number of replicates or master seed."""
        spec = copy.deepcopy(self.spec)
        if replicates is not None:
            spec["experiment"]["replicates"] = replicates
        if seed is not None:
            spec["experiment"]["seed"] = seed
        from fomolab.spec.parse import parse_spec

        return parse_spec(spec, source=self.source, resolve=False)


def _hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
