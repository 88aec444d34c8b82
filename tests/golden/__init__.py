"""Golden outputs: checksums of the tables that small specs simulate, pinned in git.

Each spec in ``specs/`` exercises one family of mechanisms (no tactic, a lightning
sale with a quota, countdown timers, a scarcity cue, social proof, an exclusive
code, deceptive variants with learning, valuations, a marketplace, a sweep).  Every
run of every spec is simulated in memory and each table it produces is hashed
canonically, column by column: the column's name, its dtype and its values (numbers
by their little-endian bytes, so floats are compared bit for bit; strings and
categories by their text, missing values marked).  ``checksums.json`` holds the
pinned digests; ``tests/test_golden.py`` compares them with today's.

Results must not change by accident.  When they change on purpose, describe the
change under ``## Unreleased`` in ``CHANGELOG.md`` in a bullet that starts with
"Results change" and re-pin::

    PYTHONPATH=src python -m tests.golden --repin

Re-pinning refuses to run without such a bullet that is not already recorded in
``checksums.json``.  ``python -m tests.golden`` alone checks and lists what differs.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SPECS = HERE / "specs"
CHECKSUMS = HERE / "checksums.json"
ROOT = HERE.parents[1]
CHANGELOG = ROOT / "CHANGELOG.md"
#: The marker a CHANGELOG bullet must start with to justify a re-pin.
MARKER = "results change"
REPIN = "PYTHONPATH=src python -m tests.golden --repin"

__all__ = ["spec_paths", "simulate_spec", "column_digest", "digest_tables", "compute", "load_pinned",
           "compare", "repin", "results_change_entries", "RepinRefused"]


class RepinRefused(RuntimeError):
    """Re-pinning needs a new "Results change" bullet under ``## Unreleased`` in CHANGELOG.md."""


def spec_paths() -> list[Path]:
    """The golden specs, in name order."""
    return sorted(SPECS.glob("*.toml"))


def simulate_spec(path: Path) -> list[tuple[str, dict[str, pd.DataFrame]]]:
    """Simulate every run of a spec in memory, in design order: ``[(label, {table: df})]``."""
    from fomolab.design import expand
    from fomolab.engine import simulate
    from fomolab.spec import load_experiment

    out = []
    for r in expand(load_experiment(path)):
        tables = dict(iter(simulate(r)))
        out.append((f"{r.arm}/point {r.point}/replicate {r.replicate}", tables))
    return out


def _encode(series: pd.Series) -> bytes:
    """The canonical bytes of a column's values."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        values = series.to_numpy()
        return np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes()
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(dtype, pd.CategoricalDtype) \
            and dtype.kind in "biuf":
        mask = series.isna().to_numpy()
        numpy_dtype = np.dtype(dtype.numpy_dtype).newbyteorder("<")
        data = series.to_numpy(dtype=numpy_dtype, na_value=0)
        return mask.astype(np.uint8).tobytes() + np.ascontiguousarray(data, dtype=numpy_dtype).tobytes()
    return json.dumps([_text(v) for v in series.tolist()], ensure_ascii=False).encode()


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else repr(value)


def column_digest(series: pd.Series) -> str:
    """SHA-256 of one column: name, dtype and values."""
    h = hashlib.sha256()
    h.update(f"{series.name}\0{series.dtype}\0".encode())
    h.update(_encode(series))
    return h.hexdigest()


def digest_tables(runs: Iterable[tuple[str, dict[str, pd.DataFrame]]]) -> dict[str, Any]:
    """Digests of each table over the runs, in order: ``{table: {rows, columns, table}}``.

    A column's digest chains its per-run digests; a table's chains its columns' in order.
    """
    acc: dict[str, dict[str, Any]] = {}
    for _, tables in runs:
        for name, df in tables.items():
            entry = acc.setdefault(name, {"rows": 0, "columns": {}})
            entry["rows"] += len(df)
            cols = entry["columns"]
            if cols and list(cols) != list(df.columns):
                raise AssertionError(f"table {name!r}: runs disagree on the columns: "
                                     f"{list(cols)} vs {list(df.columns)}")
            for col in df.columns:
                prev = cols.get(col, "")
                cols[col] = hashlib.sha256((prev + column_digest(df[col])).encode()).hexdigest()
    for entry in acc.values():
        entry["table"] = hashlib.sha256(json.dumps(entry["columns"]).encode()).hexdigest()
    return {name: acc[name] for name in sorted(acc)}


def compute(paths: Iterable[Path] | None = None) -> dict[str, dict[str, Any]]:
    """Today's digests of every golden spec: ``{spec name: {table: digest}}``."""
    return {p.stem: digest_tables(simulate_spec(p)) for p in (spec_paths() if paths is None else paths)}


def load_pinned(path: Path = CHECKSUMS) -> dict[str, Any]:
    """The pinned checksums file (``{"specs": {...}, "changelog": [...]}``); empty without one."""
    if not path.is_file():
        return {"specs": {}, "changelog": []}
    return json.loads(path.read_text())


def compare(spec: str, pinned: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """What differs between a spec's pinned and current digests, one line per difference."""
    if pinned is None:
        return [f"golden spec {spec!r} has no pinned checksums"]
    out = []
    for table in sorted(set(pinned) | set(current)):
        where = f"spec {spec!r}, table {table!r}"
        if table not in current:
            out.append(f"{where}: pinned but no longer produced")
            continue
        if table not in pinned:
            out.append(f"{where}: produced but not pinned (a new table)")
            continue
        old, new = pinned[table], current[table]
        if old["rows"] != new["rows"]:
            out.append(f"{where}: {new['rows']} rows, pinned {old['rows']}")
        oc, nc = old["columns"], new["columns"]
        gone = [c for c in oc if c not in nc]
        added = [c for c in nc if c not in oc]
        changed = [c for c in nc if c in oc and oc[c] != nc[c]]
        if gone:
            out.append(f"{where}: columns gone: {', '.join(gone)}")
        if added:
            out.append(f"{where}: new columns: {', '.join(added)}")
        if changed:
            out.append(f"{where}: values or dtype changed in columns: {', '.join(changed)}")
        if not (gone or added or changed) and list(oc) != list(nc):
            out.append(f"{where}: columns reordered: {list(nc)}, pinned {list(oc)}")
    return out


def results_change_entries(changelog: Path = CHANGELOG) -> list[str]:
    """The bullets under ``## Unreleased`` in the changelog that start with "Results change"."""
    if not changelog.is_file():
        return []
    text = changelog.read_text()
    m = re.search(r"^## Unreleased[^\n]*\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    if m is None:
        return []
    bullets = re.split(r"^\s*[-*]\s+", m.group(1), flags=re.M)[1:]
    entries = [" ".join(b.split()) for b in bullets]
    return [e for e in entries if e.lower().lstrip("*_ ").startswith(MARKER)]


def repin(*, checksums: Path = CHECKSUMS, changelog: Path = CHANGELOG,
          current: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Pin today's digests, after checking that the changelog records the change.

    A first pin (no checksums file yet) needs no entry.  Otherwise, unless nothing
    changed, ``## Unreleased`` in the changelog must hold a bullet starting with
    "Results change" that no earlier re-pin recorded; it is recorded in the file.

    Raises
    ------
    RepinRefused
        Without such a bullet; nothing is written.
    """
    pinned = load_pinned(checksums)
    current = compute() if current is None else current
    record = list(pinned.get("changelog", []))
    if checksums.is_file() and pinned.get("specs") != current:
        fresh = [e for e in results_change_entries(changelog) if e not in record]
        if not fresh:
            raise RepinRefused(
                f"re-pinning changes the golden checksums; first add a bullet under '## Unreleased' in "
                f"{changelog} that starts with 'Results change' and says what changed and why "
                f"(already recorded: {len(record)} entr{'y' if len(record) == 1 else 'ies'})")
        record.extend(fresh)
    data = {"note": f"Pinned golden-output checksums; see tests/golden/__init__.py. Re-pin: {REPIN}",
            "changelog": record, "specs": current}
    checksums.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    return data
