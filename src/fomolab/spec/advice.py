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

    >>> from fomolab.spec import load_experiment
    >>> exp = load_experiment("experiments/dark_patterns.toml")
    >>> arm_overrides(exp)["resetting_timer"]
    {'lineup.skincare.tactics.countdown_timer.resets': True}
    >>> arm_overrides(exp)["control"]
    {}
    """
    raw: dict[str, Any] = experiment.spec.get("arms", {})

    def resolved(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        arm = raw.get(name) or {}
        base = arm.get("base")
        inherited = resolved(base, (*seen, name)) if base and base not in seen and base in raw else {}
        return {**inherited, **(arm.get("set") or {})}

    return {name: resolved(name) for name in experiment.arms}


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
