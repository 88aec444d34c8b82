"""A small TOML writer for tests that write specs to disk (tomllib only reads)."""

from __future__ import annotations

import json
import math
from typing import Any


def _key(k: str) -> str:
    return json.dumps(str(k), ensure_ascii=False)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML: {v!r}")


def dumps(doc: dict[str, Any]) -> str:
    """TOML text of a dict: scalars and arrays inline, nested dicts as [tables]."""
    lines: list[str] = []

    def table(d: dict[str, Any], path: list[str]) -> None:
        plain = {k: v for k, v in d.items() if not isinstance(v, dict)}
        subs = {k: v for k, v in d.items() if isinstance(v, dict)}
        if path and (plain or not subs):
            lines.append("[" + ".".join(_key(p) for p in path) + "]")
        for k, v in plain.items():
            lines.append(f"{_key(k)} = {_value(v)}")
        if plain:
            lines.append("")
        for k, v in subs.items():
            table(v, [*path, k])

    table(doc, [])
    return "\n".join(lines) + "\n"
