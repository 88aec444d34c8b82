"""What a spec may change and still extend its results folder.

The picture: a lab notebook whose protocol may be annotated and extended, never
rewritten.  A results folder records the spec that wrote it; running an edited
spec into it is judged key by key:

* **descriptive** keys (``description``, ``notes``, ``title``, anywhere)
  never block: the folder records the new text, no run changes;
* **extensions** are computed: more replicates; an added arm; sweep values or
  points added (every point the folder has stays in the design).  An added
  arm must leave the finished runs as they are: the arms of a point share one
  thinning envelope (``docs/MODEL.md``, common random numbers), so an arm
  whose tactics raise that envelope would change every other arm's runs, and
  is refused like any other change;
* **anything else** (a parameter, a seed, an arm's tactics or overrides, a
  removed arm, a removed sweep value) is refused with each changed key, its
  old and its new value, and nothing is written.

Asking for fewer replicates than the folder holds is not a change: the folder
keeps them all, and :func:`fomolab.run` returns the replicates asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fomolab.spec import Experiment

__all__ = ["DESCRIPTIVE", "SpecChanges", "compare", "leaf_changes"]

#: Keys that describe and never change a run: they may be edited in a folder's spec at any time.
DESCRIPTIVE = frozenset({"description", "notes", "title"})


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


#: The value of a key a spec does not have.
ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Change:
    """One key that differs between two specs, with its old and new value (``ABSENT`` where missing)."""

    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.path}: {_show(self.old)} -> {_show(self.new)}"


def _show(v: Any) -> str:
    if v is ABSENT:
        return "(absent)"
    text = json.dumps(v, sort_keys=True, default=str) if isinstance(v, dict | list) else repr(v)
    return text if len(text) <= 120 else text[:117] + "..."


def leaf_changes(old: Any, new: Any, path: str = "") -> list[Change]:
    """The keys where two specs differ; a key only one of them has is one change.

    >>> [str(c) for c in leaf_changes({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3, "d": 4}})]
    ['a.c: 2 -> 3', 'a.d: (absent) -> 4']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            p = f"{path}.{k}" if path else str(k)
            out += leaf_changes(old.get(k, ABSENT), new.get(k, ABSENT), p)
        return out
    return [] if old == new else [Change(path, old, new)]


@dataclass(frozen=True)
class SpecChanges:
    """How an edited spec relates to the one a folder recorded (see the module's rules).

    Attributes
    ----------
    descriptive : tuple of Change
        Edited descriptive keys (never block).
    extensions : tuple of str
        What the edit adds, one phrase each ("arm 'x' added", "2 sweep points added").
    refused : tuple of str
        Each refused change, ``key: old -> new``, or why an extension cannot be made.
    """

    descriptive: tuple[Change, ...]
    extensions: tuple[str, ...]
    refused: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        """Whether the folder may take the edited spec."""
        return not self.refused


def _key(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True, default=str)


def compare(old_spec: dict[str, Any], registry: list[dict[str, Any]] | None, new: Experiment) -> SpecChanges:
    """Judge ``new`` against the spec a folder recorded, ``old_spec``, and its sweep points ``registry``.

    Parameters
    ----------
    old_spec : dict
        The resolved spec in the folder's manifest.
    registry : list of dict, optional
        The folder's points, ``[{"point": i, "values": {...}}, ...]``.
    new : Experiment
        The experiment about to run into the folder.
    """
    descriptive: list[Change] = []
    extensions: list[str] = []
    refused: list[str] = []
    old_arms = old_spec.get("arms", {}) if isinstance(old_spec.get("arms"), dict) else {}
    added_arms = [a for a in new.spec.get("arms", {}) if a not in old_arms]
    sweep_changed: list[Change] = []
    for c in leaf_changes(old_spec, new.spec):
        parts = c.path.split(".")
        if parts[-1] in DESCRIPTIVE:
            descriptive.append(c)
        elif c.path == "experiment.replicates":
            if isinstance(c.new, int) and isinstance(c.old, int) and c.new > c.old:
                extensions.append(f"replicates {c.old} -> {c.new}")
        elif parts[0] == "arms" and len(parts) > 1 and parts[1] in added_arms:
            continue  # named once below
        elif parts[0] == "sweep":
            sweep_changed.append(c)
        else:
            refused.append(str(c))
    extensions += [f"arm {a!r} added" for a in added_arms]
    if sweep_changed:
        old_sweep, new_sweep = old_spec.get("sweep") or {}, new.spec.get("sweep") or {}
        old_paths = _swept_paths(old_sweep)
        now = {_key(p.values) for p in new.points}
        before = [r for r in (registry or []) if r.get("values")]
        lost = [r for r in before if _key(r["values"]) not in now]
        if old_paths != set(new.swept):
            refused += [str(c) for c in sweep_changed]
            refused.append(f"the swept parameters changed: {sorted(old_paths)} -> {sorted(new.swept)}")
        elif lost:
            refused += [str(c) for c in sweep_changed]
            refused.append(f"{len(lost)} sweep point{'s' * (len(lost) != 1)} with finished runs would leave the "
                           f"design, e.g. point {lost[0]['point']}: {_key(lost[0]['values'])}")
        else:
            added = len(now - {_key(r["values"]) for r in before})
            if added:
                extensions.append(f"{added} sweep point{'s' * (added != 1)} added")
            elif old_sweep.get("design") != new_sweep.get("design"):  # same points, another design: a rewrite
                refused += [str(c) for c in sweep_changed]
    if added_arms and not refused:
        moved = _runs_changed_by(old_spec, registry, new)
        if moved:
            refused.append(
                f"adding arm{'s' * (len(added_arms) != 1)} {', '.join(repr(a) for a in added_arms)} changes the "
                f"runs already computed ({moved}): the arms of a point share one thinning envelope (common random "
                "numbers), which the new arm's tactics raise; write the extended spec to a new folder with --out")
    return SpecChanges(tuple(descriptive), tuple(extensions), tuple(refused))


def _swept_paths(sweep: dict[str, Any]) -> set[str]:
    from fomolab.sweep import Sweep

    try:
        return set(Sweep.model_validate(sweep).paths) if sweep else set()
    except ValueError:
        return set()


def _runs_changed_by(old_spec: dict[str, Any], registry: list[dict[str, Any]] | None, new: Experiment) -> str:
    """Which finished arms' runs an added arm changes ("" when none): compared at the first replicate."""
    from fomolab.design import expand
    from fomolab.spec import parse_spec

    try:
        old = parse_spec(old_spec, source="<folder>", resolve=False)
    except Exception:  # the folder's spec no longer parses: compare nothing, refuse nothing here
        return ""
    before = {(r.arm, r.point): r.run_id for r in expand(old, replicates=range(1), registry=registry)}
    after = {(r.arm, r.point): r.run_id for r in expand(new, replicates=range(1), registry=registry)}
    arms = sorted({a for (a, p), rid in before.items() if after.get((a, p)) != rid})
    return f"arm{'s' * (len(arms) != 1)} {', '.join(repr(a) for a in arms)}" if arms else ""
