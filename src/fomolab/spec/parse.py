"""From TOML to a validated :class:`~fomolab.spec.models.Experiment`, in stages.

1. the file: it exists, is at most 1 MB, is UTF-8 TOML, nests at most 16 deep;
2. the values: no NaN or infinity anywhere, no dates, sizes within
   :data:`~fomolab.spec.limits.LIMITS`; profiles inlined; every table
   validated by pydantic in strict mode (no ``true`` for a number, no
   ``"no"`` for a bool, no decimal for an integer);
3. the rules that span keys: the control arm, arms' bases, tactics and
   overrides, windows inside the stream, shares that sum to 1, and each
   sweep point.

Each stage collects every problem it finds; the spec is refused with all of
them (one :class:`~fomolab.errors.SpecError`) at the end of the first stage
that found any, since later stages would only repeat them.
"""

from __future__ import annotations

import copy
import datetime
import fnmatch
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from fomolab.lineup import fill_defaults
from fomolab.spec.limits import check_depth, check_finite, check_sizes, read_toml
from fomolab.spec.models import SCENARIO_KEYS, Arm, ArmSpec, Experiment, Point, Scenario, SpecModel
from fomolab.spec.paths import PathError, set_path
from fomolab.spec.problems import Problems, format_path, suggest, translate
from fomolab.spec.profiles import resolve_population
from fomolab.spec.rules import check_scenario
from fomolab.spec.template import TEMPLATE_KEY, expand_template
from fomolab.tactics import KINDS

__all__ = ["load_experiment", "parse_spec"]

#: Most sweep points whose problems are listed one by one.
MAX_POINTS_LISTED = 5


def load_experiment(path: str | Path) -> Experiment:
    """Read, resolve and validate an experiment spec.

    Parameters
    ----------
    path : str or Path
        The spec's TOML file.  Population profiles are looked up by name in an
        ``agents/`` folder in or beside the spec's folder, then among the
        profiles shipped with fomolab (see :mod:`fomolab.spec.profiles`).

    Returns
    -------
    Experiment

    Raises
    ------
    SpecError
        If the file is missing, is not TOML, or breaks rules; it lists every
        problem found (``SpecError.errors``).

    Examples
    --------
    >>> exp = load_experiment("experiments/reference_flash.toml")  # doctest: +SKIP
    >>> list(exp.arms)  # doctest: +SKIP
    ['control', 'flash']
    """
    path = Path(path)
    problems = Problems(str(path))
    raw = read_toml(path, problems)
    problems.raise_if_any()
    assert raw is not None
    return parse_spec(raw, source=str(path), base_dir=path.parent)


def parse_spec(raw: dict[str, Any], *, source: str = "<spec>", base_dir: Path | None = None,
               resolve: bool = True, strict: bool | None = None) -> Experiment:
    """Validate a spec given as a dict (the parsed TOML) into an :class:`Experiment`.

    Parameters
    ----------
    raw : dict
        The spec's tables.
    source : str
        Name of the spec in messages (its file).
    base_dir : Path, optional
        The spec's folder, where profiles are looked up first.
    resolve : bool
        Inline population profiles (False for a spec already resolved, as
        results folders record it).
    strict : bool, optional
        Refuse values that pydantic's lax mode would convert (a bool for a
        number, a string for a bool, ``500.0`` for an integer).  Default:
        True for a spec as written (``resolve=True``), False for a resolved
        one, so that the specs recorded by results folders of earlier
        versions stay readable.

    Raises
    ------
    SpecError
        With every problem found.
    """
    problems = Problems(source, strict=resolve if strict is None else strict)
    if not isinstance(raw, dict):
        problems.add("", type(raw).__name__, "a spec is a table of tables ([experiment], [stream], ...)",
                     "wrong_type")
        problems.raise_if_any()
    if not check_depth(raw, problems):
        problems.raise_if_any()
    raw = copy.deepcopy(raw)
    check_finite(raw, problems)
    _check_plain(raw, problems)
    check_sizes(raw, problems)
    unexpanded = False
    generated: tuple[str, ...] = ()
    if TEMPLATE_KEY in raw:  # a [lineup_template] becomes products of [lineup]
        if not problems:
            generated = tuple(expand_template(raw, problems))
        unexpanded = raw.pop(TEMPLATE_KEY, None) is not None  # its problems are named; the lineup is incomplete
    before_profiles = len(problems)
    if resolve and "population" in raw:
        raw["population"] = resolve_population(raw["population"], source, base_dir, problems)
        check_finite(raw["population"], problems, prefix=("population",))
    skip = [p.path for p in problems.items]
    if len(problems) > before_profiles:
        skip.append("population")
    if unexpanded:
        skip.append("lineup")  # a profile that failed leaves the population incomplete
    _check_control(raw, problems)
    model = _validate(SpecModel, _with_defaults(raw), problems, skip=skip, derived=_derived(raw))
    problems.raise_if_any()
    assert model is not None
    header = model.experiment

    base = Scenario(stream=model.stream, population=model.population, lineup=model.lineup, market=model.market,
                    shopper=model.shopper)
    check_scenario(base, problems, "", configured=True)
    arm_specs = _inherit(model.arms, problems)
    arms = _build_arms(model.arms, arm_specs, raw, problems)
    problems.raise_if_any()

    points: tuple[Point, ...] = (Point({}, arms),)
    if model.sweep is not None:
        points = _points(raw, model, arm_specs, problems)
    problems.raise_if_any()
    return Experiment(name=header.name, description=header.description, seed=header.seed,
                      replicates=header.replicates, control=header.control, arms=arms,
                      common_random_numbers=header.common_random_numbers,
                      spec=raw, source=source, sweep=model.sweep, points=points, generated=generated)


def _check_plain(raw: Any, problems: Problems) -> None:
    """TOML dates and times have no place in a spec (JSON cannot record them either)."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(raw, ())]
    while stack:
        node, loc = stack.pop()
        if isinstance(node, (datetime.date, datetime.time)):
            problems.add(format_path(loc), node, "a date or time is not a value a spec uses "
                         "(give seconds as a number)", "wrong_type")
        elif isinstance(node, dict):
            stack.extend((v, loc + (k,)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, loc + (i,)) for i, v in enumerate(node))


def _check_control(raw: dict[str, Any], problems: Problems) -> None:
    exp = raw.get("experiment")
    arms = raw.get("arms")
    control = exp.get("control", "control") if isinstance(exp, dict) else None
    if isinstance(control, str) and isinstance(arms, dict) and arms and control not in arms:
        problems.add("experiment.control", control,
                     f"must name one of the arms{suggest(control, list(arms))} (arms: {', '.join(map(str, arms))})",
                     "unknown_name")


def _json(data: Any) -> str:
    return json.dumps(data, default=str)


def _validate(model: type[BaseModel], data: Any, problems: Problems, prefix: str = "",
              key_prefix: str | None = None, skip: list[str] | tuple[str, ...] = (),
              same_prefix: str | list[str] | None = None, derived: dict[str, str] | None = None) -> Any:
    """``model`` validated strictly from ``data``, or None with its problems added.

    Validation goes through JSON in strict mode: arrays fill tuples and tables
    fill models (as in lax mode), but a bool is no number, a string no bool
    and a decimal no integer.  ``problems.strict`` False validates in lax mode.
    """
    try:
        if problems.strict:
            return model.model_validate_json(_json(data), strict=True)
        return model.model_validate(data)
    except ValidationError as exc:
        translate(exc, data, model, problems, prefix=prefix, key_prefix=key_prefix, skip=skip,
                  same_prefix=same_prefix, derived=derived)
        return None


def _build_arms(written: dict[str, ArmSpec], arm_specs: dict[str, ArmSpec], raw: dict[str, Any],
                problems: Problems, prefix: str = "") -> dict[str, Arm]:
    """The arms that resolve, in the spec's order (the others add their problems).

    An arm is built after the arms it builds on, and names only its own
    problems: a tactic pattern, a removal or an override it inherits is named
    at the arm that wrote it.
    """
    built: dict[str, Arm | None] = {}
    order = list(arm_specs)

    def chain(name: str) -> list[str]:
        out, base = [], written[name].base
        while base is not None and base in written and base not in out:
            out.append(base)
            base = written[base].base
        return out

    def build(name: str) -> Arm | None:
        if name not in built:
            bases = chain(name)
            for b in reversed(bases):
                if b in arm_specs:
                    build(b)
            built[name] = _build_arm(name, arm_specs[name], raw, problems, prefix, written[name], bases)
        return built[name]

    for name in order:
        build(name)
    return {name: arm for name in order if (arm := built[name]) is not None}


def _points(raw: dict[str, Any], model: SpecModel, arm_specs: dict[str, ArmSpec],
            problems: Problems) -> tuple[Point, ...]:
    """The sweep's points, each applied to the spec and its arms resolved."""
    assert model.sweep is not None
    out = []
    failing = 0
    values = model.sweep.values(model.experiment.seed)
    for i, point in enumerate(values):
        before = problems.attempts
        if failing >= MAX_POINTS_LISTED:
            # listed enough: count the others without their messages
            counter = Problems(problems.source, strict=problems.strict)
            _point(raw, point, model.arms, arm_specs, counter, i)
            failing += counter.attempts > 0
            continue
        p = _point(raw, point, model.arms, arm_specs, problems, i)
        if problems.attempts > before:
            failing += 1
        elif p is not None:
            out.append(p)
    if failing > MAX_POINTS_LISTED:
        problems.add("sweep", f"{failing} of {len(values)} points",
                     f"{failing} of the sweep's {len(values)} points break rules (the first {MAX_POINTS_LISTED} "
                     "are listed)", "inconsistent")
    return tuple(out)


def _point(raw: dict[str, Any], values: dict[str, Any], written: dict[str, ArmSpec], arm_specs: dict[str, ArmSpec],
           problems: Problems, index: int) -> Point | None:
    """Apply a sweep point to the spec and resolve its arms (None with problems added)."""
    scen = {k: copy.deepcopy(raw[k]) for k in SCENARIO_KEYS if k in raw}
    applied = {}
    ok = True
    for path, value in values.items():
        try:
            applied[path] = set_path(scen, path, value, Scenario, round_ints=True)
        except PathError as exc:
            problems.add(f"sweep.parameters.{path}" if raw["sweep"].get("design") != "list"
                         else f"sweep.points[{index}].{path}", value, exc.rule, exc.code,
                         key=f"sweep.parameters.{path}")
            ok = False
    if not ok:
        return None
    _rescale_shares(scen, applied)
    where = f"sweep point {index} ({', '.join(f'{k} = {v!r}' for k, v in applied.items())}) → "
    before = problems.attempts
    # every configured tactic is checked at the point, switched on in an arm or not
    scenario = _validate(Scenario, _with_defaults(scen), problems, prefix=where, derived=_derived(scen))
    if scenario is None:
        return None
    check_scenario(scenario, problems, where, configured=True)
    if problems.attempts > before:
        return None
    point_raw = {**raw, **scen}
    arms = _build_arms(written, arm_specs, point_raw, problems, where)
    if len(arms) < len(arm_specs):
        return None
    return Point(applied, arms)


def _rescale_shares(scen: dict[str, Any], applied: dict[str, Any]) -> None:
    """Segments whose share a sweep sets keep it; the others share the rest in proportion."""
    fixed = {p.split(".")[2] for p in applied if p.startswith("population.segments.") and p.endswith(".share")}
    if not fixed:
        return
    segs = scen["population"].get("segments", {})

    def share(k: str) -> float | None:
        v = segs[k].get("share", 0) if isinstance(segs.get(k), dict) else None
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    shares = {k: share(k) for k in segs}
    if any(v is None for v in shares.values()):
        return  # a share that is not a number: validation names it
    rest = [k for k in segs if k not in fixed]
    total_rest = sum(shares[k] or 0.0 for k in rest)
    left = 1.0 - sum(shares[k] or 0.0 for k in fixed)
    if rest and total_rest > 0 and left >= 0:
        for k in rest:
            segs[k]["share"] = float(segs[k]["share"]) * left / total_rest


def _inherit(arms: dict[str, ArmSpec], problems: Problems) -> dict[str, ArmSpec]:
    """Resolve ``base``: an arm gets its base's tactics, removals and overrides first.

    Arms whose base is unknown or in a cycle are left out (with the problem added).
    """
    out: dict[str, ArmSpec | None] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> ArmSpec | None:
        if name in out:
            return out[name]
        arm = arms[name]
        if arm.base is not None:
            if arm.base not in arms:
                problems.add(f"arms.{name}.base", arm.base,
                             f"must name another arm{suggest(arm.base, list(arms))} (arms: {', '.join(arms)})",
                             "unknown_name")
                out[name] = None
                return None
            if arm.base in chain:
                problems.add(f"arms.{name}.base", arm.base,
                             f"arms build on each other in a cycle: {' -> '.join(chain + (arm.base,))}", "cycle")
                out[name] = None
                return None
            b = resolve(arm.base, chain + (arm.base,))
            if b is None:
                out[name] = None
                return None
            arm = arm.model_copy(update={"tactics": b.tactics + arm.tactics, "remove": b.remove + arm.remove,
                                         "set": {**b.set, **arm.set}, "base": None})
        out[name] = arm
        return arm

    for name in arms:
        resolve(name, (name,))
    return {name: a for name, a in out.items() if a is not None}


def _build_arm(name: str, arm: ArmSpec, raw: dict[str, Any], problems: Problems, prefix: str = "",
               own: ArmSpec | None = None, bases: list[str] | tuple[str, ...] = ()) -> Arm | None:
    """Arm ``name`` resolved against the raw spec (None with its problems added).

    ``own`` is the arm as written (``arm`` has its bases' tactics, removals
    and overrides too) and ``bases`` the arms it builds on: an inherited
    problem is named at the arm that wrote it, not again here.
    """
    own = own if own is not None else arm
    where = f"{prefix}arms.{name}"
    before = problems.attempts
    failed = False
    scen = {k: copy.deepcopy(raw[k]) for k in SCENARIO_KEYS if k in raw}
    for dotted, value in arm.set.items():
        try:
            set_path(scen, dotted, value, Scenario)
        except PathError as exc:
            failed = True
            if dotted in own.set:
                problems.add(f"{where}.set.{dotted}", value, exc.rule, exc.code)
    derived = _derived(scen)
    scen = _with_defaults(scen)
    lineup: dict[str, Any] = scen["lineup"] if isinstance(scen.get("lineup"), dict) else {}
    configured = [f"{p}.{k}" for p, prod in lineup.items() if isinstance(prod, dict)
                  and isinstance(prod.get("tactics"), dict) for k in prod["tactics"]]
    on: set[str] = set()
    for pattern in arm.tactics:
        hits = fnmatch.filter(configured, pattern)
        if not hits:
            failed = True
        if not hits and pattern in own.tactics:
            problems.add(f"{where}.tactics", pattern,
                         "names no tactic configured in the lineup"
                         f"{suggest(pattern, configured)}; write PRODUCT.KIND with a tactic "
                         "configured under [lineup.PRODUCT.tactics.KIND] "
                         f"(configured: {', '.join(configured) or 'none'})",
                         "unknown_name", key=f"{where}.tactics {pattern}")
        on.update(hits)
    for pattern in arm.remove:
        hits = fnmatch.filter(sorted(on), pattern)
        if not hits:
            failed = True
        if not hits and pattern in own.remove:
            problems.add(f"{where}.remove", pattern,
                         f"removes no tactic that is on in this arm{suggest(pattern, sorted(on))} "
                         f"(on: {', '.join(sorted(on)) or 'none'})", "unknown_name", key=f"{where}.remove {pattern}")
        on.difference_update(hits)
    if failed or problems.attempts > before:
        return None
    for pname, prod in lineup.items():
        tactics = prod.get("tactics") or {}
        prod["tactics"] = {k: v for k, v in tactics.items() if f"{pname}.{k}" in on}
    # the spec's own problems (or the point's), or a base arm's, are not repeated for each arm
    shown = f"{where}.set → " if arm.set else prefix
    alike = [prefix] + [f"{prefix}arms.{b}.set → " for b in bases]
    scenario = _validate(Scenario, scen, problems, prefix=shown, same_prefix=alike, derived=derived)
    if scenario is None:
        return None
    check_scenario(scenario, problems, shown, same_prefix=alike)
    if problems.attempts > before:
        return None
    return Arm(name=name, description=arm.description, tactics=tuple(sorted(on)), scenario=scenario)


def _derived(raw: dict[str, Any]) -> dict[str, str]:
    """Keys that :func:`~fomolab.lineup.fill_defaults` fills from others: ``{filled path: source path}``.

    A broken source is named once, not again at each key filled from it.
    """
    out: dict[str, str] = {}
    lineup = raw.get("lineup")
    if not isinstance(lineup, dict):
        return out
    for name, prod in lineup.items():
        tactics = prod.get("tactics") if isinstance(prod, dict) else None
        if not isinstance(tactics, dict):
            continue
        p = f"lineup.{name}"
        slot = f"{p}.slot_s" if prod.get("slot_s") else "stream.duration_s"
        for kind, cls in KINDS.items():  # each tactic names the keys it fills from others
            if isinstance(tactics.get(kind), dict):
                out.update(cls.default_sources(tactics[kind], tactics, f"{p}.tactics.{kind}", slot))
    return out


def _with_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """The raw spec with the lineup's defaults that depend on other keys filled in."""
    if not isinstance(raw.get("lineup"), dict):
        return raw
    stream = raw.get("stream")
    duration = stream.get("duration_s") if isinstance(stream, dict) else None
    lineup = {}
    for name, prod in raw["lineup"].items():
        try:
            lineup.update(fill_defaults({name: prod}, duration))
        except (TypeError, ValueError, IndexError, KeyError, AttributeError):
            lineup[name] = prod  # a key the defaults come from is malformed: validation names it
    return {**raw, "lineup": lineup}

