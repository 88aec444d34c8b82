"""Limits of a spec, checked before anything is built from it.

A spec is small text that may describe a large study; these limits keep a
typo (``replicates = 1000000000000``) from hanging the machine or filling its
memory, and keep messages short.  Each is checked on the raw TOML, before
pydantic or a sweep design sees it, and reported with the code
``limit_exceeded`` (``too_deep`` and ``file_too_large`` for the file itself).
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

from fomolab.spec.problems import Problems, format_path

__all__ = ["LIMITS", "read_toml", "check_depth", "check_finite", "check_sizes", "sweep_size"]

#: The limits, by name (documented in docs/schema.md).
LIMITS: dict[str, int] = {
    "file_bytes": 1_000_000,      # a spec or profile file
    "depth": 16,                  # tables and arrays nested in one another
    "replicates": 100_000,
    "arms": 1_000,
    "products": 1_000,
    "segments": 1_000,
    "schedule_pieces": 10_000,    # stream.arrivals.schedule
    "sweep_parameters": 100,
    "sweep_points": 10_000,       # each point holds its resolved arms in memory
    "runs": 1_000_000,            # arms x sweep points x replicates
    "viewers_per_run": 100_000_000,       # expected arrivals of one run, arrival boosts at their most
    "scheduled_events_per_run": 10_000_000,  # timer restarts, fabricated notifications (each, per product)
}


def read_toml(path: Path, problems: Problems, what: str = "spec") -> dict[str, Any] | None:
    """The parsed TOML of ``path``, or None with the problem added.

    The file's size is checked before it is read, and a file nested too
    deeply for the TOML parser is refused instead of crashing it.
    """
    file = str(path)
    if not path.is_file():
        problems.add("", file, f"the file does not exist; give the path of a TOML {what}", "file_not_found", file=file)
        return None
    size = path.stat().st_size
    if size > LIMITS["file_bytes"]:
        problems.add("", f"{size:,} bytes", f"a {what} file is at most {LIMITS['file_bytes']:,} bytes",
                     "file_too_large", file=file)
        return None
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.add("", f"byte {exc.start}", "must be UTF-8 text", "not_toml", file=file)
        return None
    return loads(text, file, problems, what)


def loads(text: str, file: str, problems: Problems, what: str = "spec",
          show_line: bool = True) -> dict[str, Any] | None:
    """Parse TOML text; None with the problem added if it is not TOML or nests too deep."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        lineno = getattr(exc, "lineno", None)
        if lineno is None:  # Python < 3.14 gives the line in the text only
            m = re.search(r"line (\d+)", str(exc))
            lineno = int(m.group(1)) if m else None
        lines = text.splitlines()
        line = lines[lineno - 1] if show_line and lineno and 0 < lineno <= len(lines) else ""
        # the parser's own text names the line and column
        problems.add("", line if show_line else "", f"is not valid TOML: {exc}", "not_toml", file=file)
        return None
    except RecursionError:
        problems.add("", f"more than {LIMITS['depth']} levels", f"tables or arrays nest deeper than a {what} may "
                     f"(at most {LIMITS['depth']} levels)", "too_deep", file=file)
        return None
    if not check_depth(raw, problems, file):
        return None
    return raw


def check_depth(raw: Any, problems: Problems, file: str | None = None) -> bool:
    """False (with the problem added) if tables or arrays nest deeper than the limit.

    Walks without recursion, so a deep value cannot overflow the stack.
    """
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(raw, 0, ())]
    while stack:
        node, depth, loc = stack.pop()
        if depth > LIMITS["depth"]:
            problems.add(format_path(loc[: LIMITS["depth"]]), f"more than {LIMITS['depth']} levels",
                         f"tables or arrays nest deeper than a spec may (at most {LIMITS['depth']} levels)",
                         "too_deep", file=file)
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1, loc + (k,)) for k, v in node.items())
        elif isinstance(node, (list, tuple)):
            stack.extend((v, depth + 1, loc + (i,)) for i, v in enumerate(node))
    return True


def check_finite(raw: Any, problems: Problems, prefix: tuple[Any, ...] = (), file: str | None = None) -> None:
    """Add a ``not_finite`` problem for every NaN or infinity anywhere in ``raw``."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(raw, prefix)]
    found = []
    while stack:
        node, loc = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            found.append((loc, node))
        elif isinstance(node, dict):
            stack.extend((v, loc + (k,)) for k, v in node.items())
        elif isinstance(node, (list, tuple)):
            stack.extend((v, loc + (i,)) for i, v in enumerate(node))
    for loc, value in sorted(found, key=lambda x: _order(raw, x[0])):
        problems.add(format_path(loc), value, "must be a finite number (not nan or inf)", "not_finite", file=file)


def _order(raw: Any, loc: tuple[Any, ...]) -> list[int]:
    """Position of ``loc`` in the spec's own order (for messages in file order)."""
    out, node = [], raw
    for part in loc:
        if isinstance(node, dict):
            keys = list(node)
            out.append(keys.index(part) if part in node else len(keys))
            node = node.get(part)
        elif isinstance(node, (list, tuple)) and isinstance(part, int):
            out.append(part)
            node = node[part] if 0 <= part < len(node) else None
        else:
            break
    return out


def _count(value: Any) -> int | None:
    return len(value) if isinstance(value, (dict, list, tuple)) else None


def check_sizes(raw: dict[str, Any], problems: Problems) -> None:
    """Add a ``limit_exceeded`` problem for each size over its limit."""
    exp = raw.get("experiment")
    reps = exp.get("replicates") if isinstance(exp, dict) else None
    if isinstance(reps, int) and not isinstance(reps, bool) and reps > LIMITS["replicates"]:
        problems.add("experiment.replicates", reps,
                     f"at most {LIMITS['replicates']:,} replicates (a limit of fomolab)", "limit_exceeded")
    for path, key, limit in (("arms", "arms", "arms"), ("lineup", "lineup", "products")):
        n = _count(raw.get(key))
        if n is not None and n > LIMITS[limit]:
            problems.add(path, f"{n:,} {limit}", f"at most {LIMITS[limit]:,} {limit} (a limit of fomolab)",
                         "limit_exceeded")
    pop = raw.get("population")
    segs = pop.get("segments") if isinstance(pop, dict) else None
    n_segs = _count(segs)
    if n_segs is not None and n_segs > LIMITS["segments"]:
        problems.add("population.segments", f"{n_segs:,} segments",
                     f"at most {LIMITS['segments']:,} segments (a limit of fomolab)", "limit_exceeded")
    stream = raw.get("stream")
    arrivals = stream.get("arrivals") if isinstance(stream, dict) else None
    sched = arrivals.get("schedule") if isinstance(arrivals, dict) else None
    n_pieces = _count(sched)
    if n_pieces is not None and n_pieces > LIMITS["schedule_pieces"]:
        problems.add("stream.arrivals.schedule", f"{n_pieces:,} pieces",
                     f"at most {LIMITS['schedule_pieces']:,} pieces (a limit of fomolab)", "limit_exceeded")
    sweep = raw.get("sweep")
    if isinstance(sweep, dict):
        params = sweep.get("parameters")
        n_params = _count(params)
        if n_params is not None and n_params > LIMITS["sweep_parameters"]:
            problems.add("sweep.parameters", f"{n_params:,} parameters",
                         f"at most {LIMITS['sweep_parameters']:,} swept parameters (a limit of fomolab)",
                         "limit_exceeded")
            return
        n = sweep_size(sweep)
        if n is not None and n > LIMITS["sweep_points"]:
            problems.add("sweep", f"{n:,} points",
                         f"a sweep has at most {LIMITS['sweep_points']:,} points (a limit of fomolab)",
                         "limit_exceeded")
            return
    total = total_runs(raw)
    if total is not None and total > LIMITS["runs"] and not problems.covers("experiment.replicates"):
        problems.add("experiment.replicates", f"{total:,} runs",
                     f"an experiment has at most {LIMITS['runs']:,} runs (arms x sweep points x replicates; "
                     "a limit of fomolab)", "limit_exceeded")


def sweep_size(sweep: dict[str, Any]) -> int | None:
    """Number of points the raw ``[sweep]`` table makes, without making them (None if unknown)."""
    design = sweep.get("design", "grid")
    params = sweep.get("parameters") or {}
    if design == "list":
        return _count(sweep.get("points"))
    if design == "grid":
        if not isinstance(params, dict):
            return None
        n = 1
        for values in params.values():
            if not isinstance(values, list):
                return None
            n *= len(values)  # Python integers: no overflow however many values
        return n
    samples = sweep.get("samples")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        return None
    if design == "saltelli":
        return samples * (len(params) + 2) if isinstance(params, dict) else None
    return samples


def total_runs(raw: dict[str, Any]) -> int | None:
    """Arms x sweep points x replicates of the raw spec (None if a part is not a number)."""
    exp = raw.get("experiment")
    reps = exp.get("replicates", 20) if isinstance(exp, dict) else None
    arms = _count(raw.get("arms"))
    if not isinstance(reps, int) or isinstance(reps, bool) or arms is None:
        return None
    points = sweep_size(raw["sweep"]) if isinstance(raw.get("sweep"), dict) else 1
    return None if points is None else reps * arms * points
