"""``fitted.toml``: the spec at the estimates, with the parameter uncertainty as sweep points.

The fitted spec is the original one (profiles inlined) with the estimates
written in.  With ``draws > 0`` it also holds a ``[sweep] design = "list"``
of parameter vectors drawn from the fitted normal approximation (on the
transformed scale, so draws keep their bounds): ``fomolab run fitted.toml``
then runs every arm at every draw, and effects pooled over the points carry
the parameter uncertainty on top of the simulation noise.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

import numpy as np

from fomolab.errors import DataError
from fomolab.fit.estimate import FitResult, _split, expand_path, get_path, put_path

__all__ = ["fitted_spec", "to_toml", "check_overrides"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def fitted_spec(spec: dict[str, Any], arm: str, result: FitResult, *, draws: int = 0, seed: int = 0) -> dict[str, Any]:
    """The resolved spec ``spec`` with the estimates of ``result`` filled in.

    Raises
    ------
    DataError
        If the fitted arm overrides an estimated parameter (its ``set``), so
        that the estimate would not be what the arm runs with.
    """
    out = copy.deepcopy(spec)
    out.pop("sweep", None)
    out["experiment"]["name"] = f"{spec['experiment']['name']}_fitted"[:100]
    check_overrides(spec, arm, result.parameters)
    for p, v in zip(result.parameters, result.estimate, strict=True):
        put_path(out, p.path, float(v))
    if draws:
        values = result.draws(draws, seed)
        points = []
        for row in values:
            pt: dict[str, Any] = {}
            for p, v in zip(result.parameters, row, strict=True):
                for m in expand_path(out, p.path):
                    base, idx = _split(m)
                    if idx is None:
                        pt[base] = float(v)
                    else:
                        arr = list(pt.get(base, get_path(out, base)))
                        arr[idx] = float(v)
                        pt[base] = arr
            points.append(pt)
        out["sweep"] = {"design": "list", "points": points}
    return out


def check_overrides(spec: dict[str, Any], arm: str, params: list[Any]) -> None:
    """Refuse a parameter the fitted arm overrides (its ``set``): the estimate would not be what it runs with."""
    sets = _arm_sets(spec, arm)
    for p in params:
        if any(_split(m)[0] in sets for m in expand_path(spec, p.path)):
            raise DataError(f"--param {p.path}: arm {arm!r} overrides it (arms.{arm}.set); estimate the value "
                            "the arm runs with in an arm without that override")


def _arm_sets(spec: dict[str, Any], arm: str) -> set[str]:
    arms = spec.get("arms", {})
    keys: set[str] = set()
    name: str | None = arm
    seen = set()
    while name is not None and name in arms and name not in seen:
        seen.add(name)
        keys.update(arms[name].get("set", {}))
        name = arms[name].get("base")
    return keys


def _key(k: str) -> str:
    return k if _BARE.match(k) else '"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"not a finite number: {v}")
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(data: dict[str, Any]) -> str:
    """A TOML document of nested tables (arrays of tables written inline).

    >>> print(to_toml({"a": {"b": 1, "c": {"d": [1.5, "x"]}}}), end="")
    [a]
    b = 1
    <BLANKLINE>
    [a.c]
    d = [1.5, "x"]
    """
    lines: list[str] = []

    def table(prefix: str, d: dict[str, Any]) -> None:
        def inline(k: str, v: Any) -> bool:  # an arm's dotted overrides read best inline
            return not isinstance(v, dict) or (k == "set" and prefix.startswith("arms."))

        scalars = [(k, v) for k, v in d.items() if inline(k, v)]
        subs = [(k, v) for k, v in d.items() if not inline(k, v)]
        if prefix and (scalars or not subs):
            if lines:
                lines.append("")
            lines.append(f"[{prefix}]")
        for k, v in scalars:
            lines.append(f"{_key(str(k))} = {_value(v)}")
        for k, v in subs:
            table(f"{prefix}.{_key(str(k))}" if prefix else _key(str(k)), v)

    table("", data)
    return "\n".join(lines) + "\n"
