"""Experiment specs: TOML in, a frozen and validated :class:`Experiment` out.

A spec states a stream, a lineup, a population and the arms to compare.  It is
parsed, its population profile resolved (from ``agents/``), and validated once;
nothing downstream re-checks or mutates it.  Every problem is reported as one
:class:`~fomolab.errors.SpecError` naming the file, the key path, the value and
the rule, with the nearest valid key for a typo.

Layout of a spec (see ``docs/MODEL.md`` for every parameter)::

    [experiment]      name, description, seed, replicates, control
    [stream]          duration_s, [stream.arrivals] rate_per_s | schedule
    [population]      profile = "mixed" (a file in agents/) and/or segments
    [lineup.NAME]     price, base_rate_per_s, stock, slot_s,
                      [lineup.NAME.tactics.KIND] the tactic's parameters
    [arms.NAME]       tactics = ["NAME.KIND", "*.social_proof", ...],
                      set = {"dotted.path" = value}  (overrides for this arm)
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import hashlib
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from fomolab.errors import SpecError
from fomolab.lineup import Product, fill_defaults
from fomolab.market import Market
from fomolab.population import Population
from fomolab.stream import Stream
from fomolab.sweep import Sweep, column_name
from fomolab.tactics._base import FrozenModel

__all__ = ["Header", "ArmSpec", "Scenario", "SpecModel", "Arm", "Experiment", "load_experiment", "parse_spec"]


#: The parts of a spec that make an arm's scenario (arms and sweeps may override them).
SCENARIO_KEYS = ("stream", "population", "lineup", "market")


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
    set: dict[str, Any] = {}


class Scenario(FrozenModel):
    """What one arm simulates: a stream, its viewers, and its lineup.

    Only the tactics switched on in the arm are present in ``lineup``.
    """

    stream: Stream
    population: Population
    lineup: dict[str, Product] = Field(min_length=1)
    market: Market | None = None


class SpecModel(FrozenModel):
    """The whole spec as written (after profile resolution)."""

    experiment: Header
    stream: Stream
    population: Population
    lineup: dict[str, Product] = Field(min_length=1)
    market: Market | None = None
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
    points: tuple["Point", ...] = field(default=(), repr=False)
    common_random_numbers: bool = True

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

    def with_overrides(self, *, replicates: int | None = None, seed: int | None = None) -> "Experiment":
        """The same experiment with another number of replicates or master seed."""
        spec = copy.deepcopy(self.spec)
        if replicates is not None:
            spec["experiment"]["replicates"] = replicates
        if seed is not None:
            spec["experiment"]["seed"] = seed
        return parse_spec(spec, source=self.source, resolve=False)


def _hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------
# Loading and profile resolution
# --------------------------------------------------------------------------


def load_experiment(path: str | Path) -> Experiment:
    """Read, resolve and validate an experiment spec.

    Parameters
    ----------
    path : str or Path
        The spec's TOML file.  Population profiles are looked up by name in an
        ``agents/`` folder beside the spec's folder, then in ``./agents/``.

    Returns
    -------
    Experiment

    Raises
    ------
    SpecError
        If the file is missing, is not TOML, or breaks a rule.

    Examples
    --------
    >>> exp = load_experiment("experiments/reference_flash.toml")  # doctest: +SKIP
    >>> list(exp.arms)  # doctest: +SKIP
    ['control', 'flash']
    """
    path = Path(path)
    raw = _read_toml(path)
    return parse_spec(raw, source=str(path), base_dir=path.parent)


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SpecError(str(path), "", str(path), "the file does not exist; give the path of a TOML spec")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(str(path), "", _toml_line(path, exc), f"is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(str(path), "", exc.object[exc.start : exc.end], "must be UTF-8 text") from None


def _toml_line(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    lineno = getattr(exc, "lineno", None)
    if lineno is None:
        import re

        m = re.search(r"line (\d+)", str(exc))
        lineno = int(m.group(1)) if m else None
    if lineno is None:
        return ""
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[lineno - 1] if 0 < lineno <= len(lines) else ""


def profile_dirs(base_dir: Path | None) -> list[Path]:
    """Folders searched for population profiles, in order."""
    dirs = []
    if base_dir is not None:
        dirs += [base_dir / "agents", base_dir.parent / "agents"]
    dirs.append(Path.cwd() / "agents")
    return list(dict.fromkeys(d.resolve() for d in dirs))


def _find_profile(name: str, base_dir: Path | None, source: str, where: str) -> Path:
    candidates = [Path(name)] if name.endswith(".toml") else []
    if base_dir is not None and name.endswith(".toml"):
        candidates.insert(0, base_dir / name)
    for d in profile_dirs(base_dir):
        candidates.append(d / f"{name}.toml")
    for c in candidates:
        if c.is_file():
            return c
    known = sorted({p.stem for d in profile_dirs(base_dir) if d.is_dir() for p in d.glob("*.toml")})
    raise SpecError(
        source, where, name,
        f"unknown population profile{_suggest(name, known)}; profiles are TOML files in "
        f"{', '.join(str(d) for d in profile_dirs(base_dir))} (known: {', '.join(known) or 'none'})",
    )


def _resolve_population(pop: Any, source: str, base_dir: Path | None, where: str = "population",
                        seen: tuple[str, ...] = ()) -> Any:
    """Inline profiles: a population or segment naming ``profile`` gets its segments."""
    if not isinstance(pop, dict):
        return pop
    pop = dict(pop)
    segments = pop.get("segments", {})
    if not isinstance(segments, dict):
        return pop
    resolved: dict[str, Any] = {}
    if "profile" in pop:
        name = pop["profile"]
        if not isinstance(name, str):
            raise SpecError(source, f"{where}.profile", name, "must be the name or path of a profile (a string)")
        if name in seen:
            raise SpecError(source, f"{where}.profile", name, f"profiles refer to each other in a cycle: {' -> '.join(seen + (name,))}")
        file = _find_profile(name, base_dir, source, f"{where}.profile")
        prof = _read_toml(file)
        unknown = set(prof) - {"description", "segments"}
        if unknown:
            key = sorted(unknown)[0]
            raise SpecError(str(file), key, prof[key], f"unknown key in a profile{_suggest(key, ['description', 'segments'])}")
        prof_pop = _resolve_population({"segments": prof.get("segments", {})}, str(file), file.parent.parent, "", seen + (name,))
        resolved.update(copy.deepcopy(prof_pop["segments"]))
    for seg_name, seg in segments.items():
        if isinstance(seg, dict) and "profile" in seg:
            seg = dict(seg)
            name = seg.pop("profile")
            path = f"{where}.segments.{seg_name}.profile".lstrip(".")
            if not isinstance(name, str):
                raise SpecError(source, path, name, "must be the name or path of a profile (a string)")
            file = _find_profile(name, base_dir, source, path)
            prof = _resolve_population({"profile": name}, source, base_dir, path.rsplit(".", 1)[0], seen)
            subs = prof["segments"]
            if len(subs) != 1:
                raise SpecError(source, path, name, f"a segment can inherit from a one-segment profile only; {file} has {len(subs)}")
            base = copy.deepcopy(next(iter(subs.values())))
            base.update(seg)
            seg = base
        if isinstance(seg, dict) and isinstance(resolved.get(seg_name), dict):
            seg = {**resolved[seg_name], **seg}
        resolved[seg_name] = seg
    pop["segments"] = resolved
    return pop


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def parse_spec(raw: dict[str, Any], *, source: str = "<spec>", base_dir: Path | None = None,
               resolve: bool = True) -> Experiment:
    """Validate a spec given as a dict (the parsed TOML) into an :class:`Experiment`."""
    raw = copy.deepcopy(raw)
    if resolve and "population" in raw:
        raw["population"] = _resolve_population(raw["population"], source, base_dir)
    model = _validate(SpecModel, _with_defaults(raw), source)
    header = model.experiment
    base = Scenario(stream=model.stream, population=model.population, lineup=model.lineup, market=model.market)
    _check_scenario(base, source, "", configured=True)
    if header.control not in model.arms:
        raise SpecError(source, "experiment.control", header.control,
                        f"must name one of the arms{_suggest(header.control, list(model.arms))} "
                        f"(arms: {', '.join(model.arms)})")
    model = model.model_copy(update={"arms": _inherit(model.arms, source)})
    arms = {name: _build_arm(name, arm, raw, source) for name, arm in model.arms.items()}
    points = (Point({}, arms),)
    if model.sweep is not None:
        points = tuple(_point(raw, values, model, source, i) for i, values in
                       enumerate(model.sweep.values(header.seed)))
    return Experiment(name=header.name, description=header.description, seed=header.seed,
                      replicates=header.replicates, control=header.control, arms=arms,
                      common_random_numbers=header.common_random_numbers,
                      spec=raw, source=source, sweep=model.sweep, points=points)


def _point(raw: dict[str, Any], values: dict[str, Any], model: SpecModel, source: str, index: int) -> Point:
    """Apply a sweep point to the spec and resolve its arms."""
    scen = {k: copy.deepcopy(raw[k]) for k in SCENARIO_KEYS if k in raw}
    applied = {}
    for path, value in values.items():
        applied[path] = _set_path(scen, path, value, source, "sweep.parameters", round_ints=True)
    _rescale_shares(scen, applied)
    where = f"sweep point {index} ({', '.join(f'{k} = {v!r}' for k, v in applied.items())}) → "
    # every configured tactic is checked at the point, switched on in an arm or not
    _check_scenario(_validate(Scenario, _with_defaults(scen), source, prefix=where), source, where, configured=True)
    point_raw = {**raw, **scen}
    arms = {name: _build_arm(name, arm, point_raw, source, where) for name, arm in model.arms.items()}
    return Point(applied, arms)


def _rescale_shares(scen: dict[str, Any], applied: dict[str, Any]) -> None:
    """Segments whose share a sweep sets keep it; the others share the rest in proportion."""
    fixed = {p.split(".")[2] for p in applied if p.startswith("population.segments.") and p.endswith(".share")}
    if not fixed:
        return
    segs = scen["population"].get("segments", {})
    rest = [k for k in segs if k not in fixed]
    total_rest = sum(float(segs[k].get("share", 0)) for k in rest)
    left = 1.0 - sum(float(segs[k]["share"]) for k in fixed)
    if rest and total_rest > 0 and left >= 0:
        for k in rest:
            segs[k]["share"] = float(segs[k]["share"]) * left / total_rest


def _inherit(arms: dict[str, ArmSpec], source: str) -> dict[str, ArmSpec]:
    """Resolve ``base``: an arm gets its base's tactics, removals and overrides first."""
    out: dict[str, ArmSpec] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> ArmSpec:
        if name in out:
            return out[name]
        arm = arms[name]
        if arm.base is not None:
            if arm.base not in arms:
                raise SpecError(source, f"arms.{name}.base", arm.base,
                                f"must name another arm{_suggest(arm.base, list(arms))} (arms: {', '.join(arms)})")
            if arm.base in chain:
                raise SpecError(source, f"arms.{name}.base", arm.base,
                                f"arms build on each other in a cycle: {' -> '.join(chain + (arm.base,))}")
            b = resolve(arm.base, chain + (arm.base,))
            arm = arm.model_copy(update={"tactics": b.tactics + arm.tactics, "remove": b.remove + arm.remove,
                                         "set": {**b.set, **arm.set}, "base": None})
        out[name] = arm
        return arm

    for name in arms:
        resolve(name, (name,))
    return {name: out[name] for name in arms}


def _build_arm(name: str, arm: ArmSpec, raw: dict[str, Any], source: str, prefix: str = "") -> Arm:
    where = f"{prefix}arms.{name}"
    scen = {k: copy.deepcopy(raw[k]) for k in SCENARIO_KEYS if k in raw}
    for dotted, value in arm.set.items():
        _set_path(scen, dotted, value, source, f"{where}.set")
    scen = _with_defaults(scen)
    configured = [f"{p}.{k}" for p, prod in scen["lineup"].items() if isinstance(prod, dict)
                  for k in (prod.get("tactics") or {})]
    on: set[str] = set()
    for pattern in arm.tactics:
        hits = fnmatch.filter(configured, pattern)
        if not hits:
            raise SpecError(source, f"{where}.tactics", pattern,
                            "names no tactic configured in the lineup"
                            f"{_suggest(pattern, configured)}; write PRODUCT.KIND with a tactic "
                            f"configured under [lineup.PRODUCT.tactics.KIND] (configured: {', '.join(configured) or 'none'})")
        on.update(hits)
    for pattern in arm.remove:
        hits = fnmatch.filter(sorted(on), pattern)
        if not hits:
            raise SpecError(source, f"{where}.remove", pattern,
                            f"removes no tactic that is on in this arm{_suggest(pattern, sorted(on))} "
                            f"(on: {', '.join(sorted(on)) or 'none'})")
        on.difference_update(hits)
    for pname, prod in scen["lineup"].items():
        tactics = prod.get("tactics") or {}
        prod["tactics"] = {k: v for k, v in tactics.items() if f"{pname}.{k}" in on}
    scenario = _validate(Scenario, scen, source, prefix=f"{where}.set → " if arm.set else prefix)
    _check_scenario(scenario, source, f"{where}.set → " if arm.set else prefix)
    return Arm(name=name, description=arm.description, tactics=tuple(sorted(on)), scenario=scenario)


def _with_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw.get("lineup"), dict):
        stream = raw.get("stream")
        duration = stream.get("duration_s") if isinstance(stream, dict) else None
        return {**raw, "lineup": fill_defaults(raw["lineup"], duration)}
    return raw


def _set_path(scen: dict[str, Any], dotted: str, value: Any, source: str, where: str,
              round_ints: bool = False) -> Any:
    """Set ``dotted`` in the raw scenario tables; return the value set."""
    parts = dotted.split(".")
    node: Any = scen
    model: Any = Scenario

    def fail(rule: str) -> SpecError:
        paths = leaf_paths(scen)
        near = difflib.get_close_matches(dotted, paths, n=1, cutoff=0.6)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        return SpecError(source, f"{where}.{dotted}", value, rule + hint)

    for i, part in enumerate(parts):
        keys = _keys_of(model)
        if keys is not None and part not in keys:
            raise fail(f"unknown key '{part}' (paths address stream, population, lineup or market)"
                       if i == 0 else f"unknown key '{part}'")
        if keys is None and isinstance(node, dict) and part not in node:
            raise fail(f"unknown name '{part}' (known: {', '.join(map(str, node)) or 'none'})")
        model = _child_type(model, part)
        if i == len(parts) - 1:
            if round_ints and _unwrap(model) is int and isinstance(value, float) and math.isfinite(value):
                value = int(round(value))
            node[part] = value
        else:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise fail(f"'{part}' is not a table")
    return value


def leaf_paths(scen: dict[str, Any], model: Any = Scenario, prefix: str = "") -> list[str]:
    """Every settable numeric path of a raw scenario (for suggestions)."""
    out = []
    tp = _unwrap(model)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            sub = scen.get(name) if isinstance(scen, dict) else None
            ann = _unwrap(f.annotation)
            if ann in (int, float):
                out.append(prefix + name)
            elif sub is not None:
                out += leaf_paths(sub, f.annotation, f"{prefix}{name}.")
    elif typing.get_origin(tp) is dict and isinstance(scen, dict):
        for k, v in scen.items():
            out += leaf_paths(v, typing.get_args(tp)[1], f"{prefix}{k}.")
    return out


def _check_scenario(s: Scenario, source: str, prefix: str, *, configured: bool = False) -> None:
    """Rules that span several keys (pydantic checks each key on its own).

    ``configured``: ``s`` holds every configured tactic, not one arm's; rules
    that bind only a tactic switched on (a scarcity cue needs a finite stock,
    which an arm may set) wait for the arms.
    """
    T = s.stream.duration_s
    sched = s.stream.arrivals.schedule or ()
    for i, piece in enumerate(sched):
        if piece.start_s >= T:
            raise SpecError(source, f"{prefix}stream.arrivals.schedule[{i}].start_s", piece.start_s,
                            f"must lie inside the stream, before duration_s = {T}")
    shares = {k: seg.share for k, seg in s.population.segments.items()}
    if not math.isclose(sum(shares.values()), 1.0, abs_tol=1e-6):
        raise SpecError(source, f"{prefix}population.segments", shares,
                        f"segment shares must sum to 1 (they sum to {sum(shares.values()):.6g})")
    m = s.market
    shift = (m.streams - 1) * m.stagger_s if m is not None else 0.0
    if shift:
        ends = [t.window()[1] for prod in s.lineup.values() for _, t in prod.tactics.items() if t.window()]
        if max(ends, default=0.0) + shift > T:
            raise SpecError(source, f"{prefix}market.stagger_s", m.stagger_s,
                            f"the last of {m.streams} streams is shifted by {shift:g} s, which moves a tactic window "
                            f"ending at {max(ends):g} s past the stream's end ({T:g} s); lower stagger_s")
    for pname, prod in s.lineup.items():
        where = f"{prefix}lineup.{pname}"
        if prod.slot_s is not None and not (0 <= prod.slot_s[0] and prod.slot_s[1] <= T):
            raise SpecError(source, f"{where}.slot_s", list(prod.slot_s), f"must lie inside the stream [0, {T}]")
        for kind, tactic in prod.tactics.items():
            w = tactic.window()
            if w is not None and not (0 <= w[0] and w[1] <= T):
                key = {"lightning_sale": "end_s", "countdown_timer": "until_s" if getattr(tactic, "resets", False)
                       else "deadline_s", "exclusive_code": "expires_s", "scarcity_cue": "slot_s"}[kind]
                raise SpecError(source, f"{where}.tactics.{kind}.{key}", list(w),
                                f"the window must lie inside the stream [0, {T}]")
            if kind == "scarcity_cue" and prod.stock is None and not tactic.fake and not configured:
                raise SpecError(source, f"{where}.tactics.scarcity_cue", "stock unlimited",
                                f"a scarcity cue needs a finite stock: set lineup.{pname}.stock "
                                "(or displayed_stock for the deceptive variant)")


def _validate(model: type[BaseModel], data: Any, source: str, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _translate(exc, model, source, prefix) from None


def _translate(exc: ValidationError, model: type[BaseModel], source: str, prefix: str) -> SpecError:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"] if not _is_union_tag(p)]
    path = prefix + ".".join(loc)
    value = err.get("input")
    kind = err["type"]
    if kind == "extra_forbidden":
        keys = _keys_at(model, loc[:-1]) or []
        rule = f"unknown key '{loc[-1]}'{_suggest(loc[-1], keys)}"
        if keys:
            rule += f" (valid keys: {', '.join(keys)})"
        return SpecError(source, path, value, rule)
    if kind == "missing":
        return SpecError(source, path, None, "a required key is missing")
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind in ("model_type", "dict_type"):
        msg = "must be a table"
    if isinstance(value, dict) and kind not in ("model_type", "dict_type"):
        value = {k: v for k, v in value.items() if not isinstance(v, dict)} or value
    return SpecError(source, path, value, msg[0].lower() + msg[1:])


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in {"int", "float", "str", "bool", "none", "tuple[float, float]"}
                                      or part.startswith(("function-", "tuple[", "list[", "dict[", "constrained-")))


def _unwrap(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is not type(None):
                return _unwrap(arg)
    return tp


def _keys_of(tp: Any) -> list[str] | None:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return None


def _child_type(tp: Any, part: str) -> Any:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        f = tp.model_fields.get(part)
        return f.annotation if f else None
    origin = typing.get_origin(tp)
    if origin is dict:
        return typing.get_args(tp)[1]
    if origin in (tuple, list):
        args = typing.get_args(tp)
        return args[0] if args else None
    return None


def _keys_at(model: Any, loc: list[str]) -> list[str] | None:
    tp: Any = model
    for part in loc:
        tp = _child_type(tp, part)
        if tp is None:
            return None
    return _keys_of(tp)


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
