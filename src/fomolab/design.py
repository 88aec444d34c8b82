"""From an experiment to the list of runs it needs, each a self-contained RunSpec.

An experiment expands to arm x point x replicate runs.  Each :class:`RunSpec`
carries everything :func:`fomolab.engine.simulate` needs (picklable, so any
executor can run it) and an identity, ``run_id``, the hash of its resolved
scenario, its seed and its place in the design.

It also carries the thinning *envelope* of each product: an upper bound of the
purchase hazard, piecewise constant in time, shared by every arm of the same
point.  Because all arms draw their candidate purchase times and uniforms
against the same bound, sampling is coupled monotonically across arms: a
viewer who buys in the control buys, no later, in an arm that only raises
hazards (see ``docs/MODEL.md``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from fomolab.seeds import arm_key, replicate_seed
from fomolab.spec import Experiment, Scenario
from fomolab.tactics import KINDS

__all__ = ["Envelope", "HazardTraits", "RunSpec", "expand", "envelopes", "assign_points", "point_key"]


class HazardTraits(NamedTuple):
    """The traits of viewers that enter the purchase hazard (arrays of equal length)."""

    interest: np.ndarray
    impulsiveness: np.ndarray
    price_sensitivity: np.ndarray


@dataclass(frozen=True)
class Envelope:
    """Upper bound of one product's purchase hazard over epochs of the stream.

    For a viewer with interest ``q``, impulsiveness ``z`` and price sensitivity
    ``b``, the bound in epoch ``j`` is
    ``base[j] * q * (1 - discount[j]) ** -b * prod_k (1 + gains[j][k] * z)``.
    Outside ``[edges[0], edges[-1])`` the product is not on show in any arm.
    """

    edges: tuple[float, ...]
    base: tuple[float, ...]
    discount: tuple[float, ...]
    gains: tuple[tuple[float, ...], ...]  # epoch x kind, kinds as envelope_kinds() lists them

    def rate(self, j: int, traits: HazardTraits) -> np.ndarray:
        """Bound of epoch ``j`` for viewers with the given traits."""
        r = self.base[j] * traits.interest * (1.0 - self.discount[j]) ** (-traits.price_sensitivity)
        for g in self.gains[j]:
            if g > 0:
                r = r * (1.0 + g * traits.impulsiveness)
        return r


def envelope_kinds(scenarios: list[Scenario]) -> list[str]:
    """The kinds with a column in an envelope: those of fomolab 0.1 (``always_listed``), whose
    columns every run id hashes, and the other kinds the scenarios configure, in registry order.

    A new tactic therefore changes no existing run's identity.
    """
    used = {k for s in scenarios for p in s.lineup.values() for k, _ in p.tactics.items()}
    return [k for k, cls in KINDS.items() if cls.always_listed or k in used]


@dataclass(frozen=True)
class RunSpec:
    """One run: an arm of an experiment at one sweep point and replicate."""

    experiment: str
    arm: str
    replicate: int
    point: int
    seed: int
    scenario: Scenario = field(repr=False)
    envelope: dict[str, Envelope] = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""

    def identity(self) -> str:
        """The hash that names this run's partition in a results folder.

        It is the SHA-256 of the canonical JSON (keys sorted, no spaces) of the
        experiment's name, the arm, replicate, seed and sweep parameters, the
        resolved scenario and the envelopes.  :func:`expand` computes the same
        hash with the parts that its runs share encoded once (:class:`_Identities`).
        """
        payload = {
            "experiment": self.experiment, "arm": self.arm, "replicate": self.replicate,
            "seed": self.seed, "params": self.params,
            "scenario": self.scenario.model_dump(mode="json"),
            "envelope": {k: vars(v) for k, v in self.envelope.items()},
        }
        return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:20]


def _canonical(value: Any) -> str:
    """The JSON text that run identities hash (keys sorted, no spaces, other types as ``str``)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class _Identities:
    """:meth:`RunSpec.identity` of many runs, the scenario and envelopes of each arm and point encoded once.

    The canonical JSON of a dict is ``{`` + ``"key":value`` pairs in sorted key
    order + ``}``, each value encoded as it would be alone; so the hash can be
    fed piece by piece, and the pieces that all replicates of an arm share
    (the scenario, the envelopes: nearly all of the text) are encoded once.
    Keys in sorted order: arm, envelope, experiment, params, replicate,
    scenario, seed.
    """

    def __init__(self) -> None:
        self._head: dict[tuple[Any, ...], tuple[Any, bytes]] = {}

    def __call__(self, experiment: str, arm: str, scenario: Scenario, envelope: dict[str, Envelope],
                 params: dict[str, Any], replicate: int, seed: int) -> str:
        # the shared objects themselves (kept alive by the runs) name the shared parts
        key = (experiment, arm, id(scenario), id(envelope), id(params))
        if key not in self._head:
            head = hashlib.sha256(
                f'{{"arm":{_canonical(arm)},"envelope":'
                f'{_canonical({k: vars(v) for k, v in envelope.items()})},'
                f'"experiment":{_canonical(experiment)},"params":{_canonical(params)},'
                f'"replicate":'.encode())
            tail = f',"scenario":{_canonical(scenario.model_dump(mode="json"))},"seed":'.encode()
            self._head[key] = (head, tail)
        head, tail = self._head[key]
        h = head.copy()
        h.update(_integer(replicate))
        h.update(tail)
        h.update(_integer(seed) + b"}")
        return str(h.hexdigest()[:20])


def _integer(value: int) -> bytes:
    """``_canonical(value).encode()`` of a whole number, without ``json.dumps``'s cost for the common case."""
    return str(value).encode() if type(value) is int else _canonical(value).encode()


def envelopes(scenarios: list[Scenario]) -> dict[str, Envelope]:
    """The envelope of each product over the arms' scenarios (same point)."""
    out: dict[str, Envelope] = {}
    T = scenarios[0].stream.duration_s
    columns = envelope_kinds(scenarios)
    for pname in scenarios[0].lineup:
        prods = [s.lineup[pname] for s in scenarios]
        slots = [p.slot(T) for p in prods]
        lo, hi = min(s[0] for s in slots), max(s[1] for s in slots)
        cuts = {lo, hi}
        for p, (a, b) in zip(prods, slots, strict=True):
            cuts.update((a, b))
            for _, tactic in p.tactics.items():
                cuts.update(x for x in tactic.breakpoints() if lo < x < hi)
        edges = sorted(cuts)
        base, disc, gains = [], [], []
        hosts = [s.stream.reactive_host for s in scenarios]
        for a, b in itertools.pairwise(edges):
            on = [(p, h) for p, s, h in zip(prods, slots, hosts, strict=True) if s[0] < b and s[1] > a]
            base.append(max((p.base_rate_per_s for p, _ in on), default=0.0))
            d, g = 0.0, [0.0] * len(columns)
            for p, host in on:
                keep = 1.0
                for kind, tactic in p.tactics.items():
                    k = columns.index(kind)
                    g[k] = max(g[k], tactic.envelope_gain(a, b))
                    off = tactic.discount_bound(a, b)
                    if off > 0:
                        keep *= 1.0 - off
                term = host.envelope_term(p) if host is not None else None  # a sale the host may start
                if term is not None:
                    kind, gain, off = term
                    g[columns.index(kind)] = max(g[columns.index(kind)], gain)
                    keep *= 1.0 - off
                for kind, gain in host.envelope_gains(pname, p) if host is not None else ():  # cues, timer
                    g[columns.index(kind)] = max(g[columns.index(kind)], gain)
                d = max(d, 1.0 - keep)
            disc.append(d)
            gains.append(tuple(g))
        out[pname] = Envelope(tuple(edges), tuple(base), tuple(disc), tuple(gains))
    return out


def point_key(values: dict[str, Any]) -> int:
    """A stable integer for a sweep point's values (0 without a sweep).

    Seeds derive from it, not from the point's position, so adding points to a
    sweep leaves the seeds (and results) of the existing points unchanged.
    """
    if not values:
        return 0
    text = json.dumps(values, sort_keys=True, default=str)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def assign_points(experiment: Experiment, registry: list[dict[str, Any]] | None = None
                  ) -> tuple[list[int], list[dict[str, Any]]]:
    """Number the experiment's points, keeping the numbers a folder gave before.

    ``registry`` is the folder's list of ``{"point": i, "values": {...}}``; new
    points are appended.  Returns each point's number and the new registry.
    """
    registry = [dict(r) for r in (registry or [])]
    known = {json.dumps(r["values"], sort_keys=True, default=str): r["point"] for r in registry}
    ids = []
    for p in experiment.points:
        key = json.dumps(p.values, sort_keys=True, default=str)
        if key not in known:
            known[key] = len(registry)
            registry.append({"point": known[key], "values": p.values})
        ids.append(known[key])
    return ids, registry


def expand(experiment: Experiment, replicates: range | None = None,
           registry: list[dict[str, Any]] | None = None) -> list[RunSpec]:
    """All runs of an experiment: replicates x points x arms.

    Runs are ordered replicate-major, then point, then arm (spec order), so the
    first runs finished cover every arm and point.  A point listed twice (as
    Saltelli designs do) is run once.
    """
    reps = replicates if replicates is not None else range(experiment.replicates)
    ids, _ = assign_points(experiment, registry)
    unique: dict[int, Any] = {}
    for pid, p in zip(ids, experiment.points, strict=True):
        unique.setdefault(pid, p)
    envs = {pid: envelopes([a.scenario for a in p.arms.values()]) for pid, p in unique.items()}
    runs = []
    identity = _Identities()  # the shared parts of the hashed text encoded once per arm and point
    keys = {pid: point_key(p.values) for pid, p in unique.items()}
    params = {pid: p.params for pid, p in unique.items()}  # one dict per point, shared by its runs
    for r in reps:
        for pid, p in unique.items():
            shared = replicate_seed(experiment.seed, keys[pid], r)
            for arm in p.arms.values():
                seed = shared if experiment.common_random_numbers else replicate_seed(
                    experiment.seed, keys[pid], r, arm_key(arm.name))
                run_id = identity(experiment.name, arm.name, arm.scenario, envs[pid], params[pid], r, seed)
                runs.append(RunSpec(experiment=experiment.name, arm=arm.name, replicate=r, point=pid, seed=seed,
                                    scenario=arm.scenario, envelope=envs[pid], params=params[pid], run_id=run_id))
    return runs
