"""Dotted paths into a spec: ``lineup.lipstick.tactics.lightning_sale.discount``.

Arms (``set``) and sweeps (``parameters``) address a parameter by its dotted
path in the spec's scenario tables (stream, population, lineup, market).  A
path is checked against the models' fields, so a typo is named with the
nearest valid path.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from typing import Any

from pydantic import BaseModel

__all__ = ["PathError", "set_path", "leaf_paths", "keys_of", "keys_at", "child_type", "unwrap"]


class PathError(Exception):
    """A dotted path that addresses no parameter (internal: becomes a ``bad_path`` problem)."""

    def __init__(self, rule: str, code: str = "bad_path") -> None:
        super().__init__(rule)
        self.rule = rule
        self.code = code


def set_path(scen: dict[str, Any], dotted: str, value: Any, model: Any, *, round_ints: bool = False) -> Any:
    """Set ``dotted`` in the raw scenario tables ``scen``; return the value set.

    Parameters
    ----------
    scen : dict
        The raw scenario tables (changed in place).
    dotted : str
        The path, e.g. ``"stream.arrivals.rate_per_s"``.
    value : object
        The value to set.
    model : type
        The model of ``scen`` (:class:`~fomolab.spec.models.Scenario`).
    round_ints : bool
        Round a finite float to the nearest integer where the field is an
        integer (sweep designs sample floats).

    Raises
    ------
    PathError
        If the path addresses no key of the model.
    """
    if not isinstance(dotted, str) or not dotted:
        raise PathError("must be a dotted path such as 'lineup.PRODUCT.price'")
    parts = dotted.split(".")
    node: Any = scen
    tp: Any = model

    def fail(rule: str) -> PathError:
        near = difflib.get_close_matches(dotted, leaf_paths(scen, model), n=1, cutoff=0.6)
        return PathError(rule + (f"; did you mean '{near[0]}'?" if near else ""))

    for i, part in enumerate(parts):
        keys = keys_of(tp)
        if keys is not None and part not in keys:
            raise fail(f"unknown key '{part}' (paths address stream, population, lineup or market)"
                       if i == 0 else f"unknown key '{part}'")
        if keys is None and isinstance(node, dict) and part not in node:
            raise fail(f"unknown name '{part}' (known: {', '.join(map(str, node)) or 'none'})")
        if keys is None and not isinstance(node, dict):
            raise fail(f"'{parts[i - 1]}' is not a table")
        tp = child_type(tp, part)
        if i == len(parts) - 1:
            if (round_ints and unwrap(tp) is int and isinstance(value, float) and math.isfinite(value)):
                value = round(value)
            node[part] = value
        else:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise fail(f"'{part}' is not a table")
            node = nxt
    return value


def leaf_paths(scen: Any, model: Any = None, prefix: str = "") -> list[str]:
    """Every settable numeric path of a raw scenario (for suggestions; ``model`` defaults to Scenario)."""
    if model is None:
        from fomolab.spec.models import Scenario

        model = Scenario
    out = []
    tp = unwrap(model)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            sub = scen.get(name) if isinstance(scen, dict) else None
            ann = unwrap(f.annotation)
            if ann in (int, float):
                out.append(prefix + name)
            elif sub is not None:
                out += leaf_paths(sub, f.annotation, f"{prefix}{name}.")
    elif typing.get_origin(tp) is dict and isinstance(scen, dict):
        for k, v in scen.items():
            out += leaf_paths(v, typing.get_args(tp)[1], f"{prefix}{k}.")
    return out


def unwrap(tp: Any) -> Any:
    """``X`` of ``X | None``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is not type(None):
                return unwrap(arg)
    return tp


def keys_of(tp: Any) -> list[str] | None:
    """The field names of a model type (None if ``tp`` is not a model)."""
    tp = unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return None


def child_type(tp: Any, part: Any) -> Any:
    """The type of key ``part`` inside type ``tp`` (None if unknown)."""
    tp = unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        f = tp.model_fields.get(part) if isinstance(part, str) else None
        return f.annotation if f else None
    origin = typing.get_origin(tp)
    if origin is dict:
        return typing.get_args(tp)[1]
    if origin in (tuple, list):
        args = typing.get_args(tp)
        return args[0] if args else None
    return None


def keys_at(model: Any, loc: list[Any]) -> list[str] | None:
    """The field names of the table at ``loc`` inside ``model``."""
    tp: Any = model
    for part in loc:
        tp = child_type(tp, part)
        if tp is None:
            return None
    return keys_of(tp)
