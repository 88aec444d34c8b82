"""Advice on a valid spec: each arm's overrides, and tactics that cannot act as the spec sets them.

A spec can be valid and still not say what its author meant: a countdown
timer switched on without the lightning sale it counts down shows a deadline
that no offer has; two arms that simulate the same scenario compare nothing.
:func:`arm_warnings` names such cases (``fomolab validate`` prints them as
warnings; ``--strict`` makes them errors); :func:`arm_overrides` gives each
arm's ``set`` overrides, its bases' included, as ``validate`` shows them.
"""

from __future__ import annotations

from typing import Any

from fomolab.spec.models import Experiment
from fomolab.tactics import KINDS

__all__ = ["arm_overrides", "arm_warnings"]


def arm_overrides(experiment: Experiment) -> dict[str, dict[str, Any]]:
    """Each arm's ``set`` overrides, with those it inherits from its ``base`` arms (its own win).

    An override whose value is a table is given leaf by leaf, and a list of
    tables item by item (``stream.reactive_host.rules[0].viewers_below``), so
    each setting prints as one short ``path = value`` line.

    >>> from fomolab.spec import load_experiment
    >>> exp = load_experiment("experiments/dark_patterns.toml")
    >>> arm_overrides(exp)["resetting_timer"]
    {'lineup.skincare.tactics.countdown_timer.resets': True}
    >>> arm_overrides(exp)["control"]
    {}
    >>> _leaves("host", {"every_s": 30.0, "rules": [{"below": 420}]})
    {'host.every_s': 30.0, 'host.rules[0].below': 420}
    """
    raw: dict[str, Any] = experiment.spec.get("arms", {})

    def resolved(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        arm = raw.get(name) or {}
        base = arm.get("base")
        inherited = resolved(base, (*seen, name)) if base and base not in seen and base in raw else {}
        return {**inherited, **(arm.get("set") or {})}

    return {name: {k: v for path, value in resolved(name).items() for k, v in _leaves(path, value).items()}
            for name in experiment.arms}


def _leaves(path: str, value: Any) -> dict[str, Any]:
    """``value`` set at ``path``, as the leaf settings it makes."""
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in _leaves(f"{path}.{key}", item).items()}
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return {k: v for i, item in enumerate(value) for k, v in _leaves(f"{path}[{i}]", item).items()}
    return {path: value}


def arm_warnings(experiment: Experiment) -> list[str]:
    """Why some arms' tactics cannot act as the spec sets them, one sentence each (empty: none found).

    Each tactic kind says when it cannot act (:meth:`~fomolab.tactics.Tactic.idle_problem`);
    arms that simulate the same scenario as another arm are named too.
    """
    out: list[str] = []
    lineup: dict[str, Any] = experiment.spec.get("lineup", {})
    overrides = arm_overrides(experiment)
    swept = set(experiment.swept)
    for arm in experiment.arms.values():
        on: dict[str, set[str]] = {}
        for item in arm.tactics:
            product, kind = item.split(".", 1)
            on.setdefault(product, set()).add(kind)
        for product, kinds in on.items():
            configured = (lineup.get(product) or {}).get("tactics") or {}
            for kind in sorted(kinds):
                path = f"lineup.{product}.tactics.{kind}"
                raw = dict(configured.get(kind) or {})
                for dotted in [*overrides[arm.name], *swept]:  # keys an arm or the sweep sets count as given
                    if dotted.startswith(path + "."):
                        raw.setdefault(dotted[len(path) + 1:].split(".")[0], True)
                why = KINDS[kind].idle_problem(raw, configured, kinds, path) if kind in KINDS else None
                if why:
                    out.append(f"{experiment.source}: arms.{arm.name}: {product}.{kind} {why}")
    if not swept:
        seen: dict[str, str] = {}
        for arm in experiment.arms.values():
            key = arm.scenario.model_dump_json()
            if key in seen:
                out.append(f"{experiment.source}: arms.{arm.name}: simulates the same scenario as "
                           f"arms.{seen[key]} (same tactics and parameters): the comparison of the two measures "
                           "nothing but chance; switch on another tactic or set a parameter")
            else:
                seen[key] = arm.name
    return out
