"""The store: a results folder of Parquet partitions and a manifest.

The picture: a lab notebook that is never torn.  Each finished run is written
as its own partition (one Parquet file per table, named by the run id),
staged in ``.staging/`` and moved into place with atomic renames, the ``runs``
partition last: a run is finished exactly when ``runs/<run_id>.parquet``
exists.  A crash leaves at worst staged files and orphan partitions, which are
ignored and overwritten on the next attempt; finished runs are never touched.

A folder belongs to one experiment: its ``manifest.json`` records the resolved
spec and its fingerprint.  Opening the folder for a spec with another
fingerprint is refused, with the keys that differ; only the number of
replicates may grow.

Layout::

    DIR/manifest.json
    DIR/runs/<run_id>.parquet       one row per run
    DIR/shoppers/<run_id>.parquet   one row per viewer visit
    DIR/events/<run_id>.parquet     one row per event
    DIR/streams/<run_id>.parquet    marketplace runs: one row per stream
    DIR/stream_series/<run_id>.parquet  marketplace runs: per stream and minute
    DIR/failures/<run_id>.parquet   runs that raised (removed once they succeed)
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from fomolab.errors import ResultsError
from fomolab.recorder import Tables
from fomolab.spec import Experiment

__all__ = ["Store", "TABLES", "spec_differences"]

#: Tables of every run, in the order they are committed (``runs`` last).
TABLES = ("shoppers", "events", "runs")
#: Tables only a marketplace run has.
MARKET_TABLES = ("streams", "stream_series")
MANIFEST = "manifest.json"


class Store:
    """A results folder, opened for one experiment."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- opening ------------------------------------------------------------
    @classmethod
    def open_for(cls, path: str | Path, experiment: Experiment) -> "Store":
        """Check that ``path`` can hold ``experiment`` (creating nothing yet).

        Raises
        ------
        ResultsError
            If the folder holds another experiment, or files that are not a
            fomolab results folder.
        """
        store = cls(path)
        if store.path.exists() and not store.path.is_dir():
            raise ResultsError(f"{store.path}: is a file, not a results folder; choose another --out")
        manifest = store.path / MANIFEST
        if manifest.is_file():
            old = store.manifest()
            if old.get("fingerprint") != experiment.fingerprint:
                diffs = [d for d in spec_differences(old.get("spec", {}), experiment.spec)
                         if not d.startswith("experiment.replicates")]
                shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
                raise ResultsError(
                    f"{store.path}: holds results of a different experiment "
                    f"({old.get('experiment', '?')}, spec {old.get('spec_hash', '?')[:12]}); "
                    f"what changed: {shown or 'the spec'}. Finished results are never overwritten: "
                    f"write to a new folder with --out NEW_DIR (only adding replicates extends a folder)"
                )
        elif store.path.is_dir() and any(p.name != ".staging" for p in store.path.iterdir()):
            raise ResultsError(
                f"{store.path}: is not empty and has no {MANIFEST}, so it is not a fomolab results "
                f"folder; choose an empty or new folder with --out"
            )
        return store

    def create(self, manifest: dict[str, Any]) -> None:
        """Create the folder (if needed) and write or refresh the manifest."""
        for name in (*TABLES, "failures", ".staging"):
            (self.path / name).mkdir(parents=True, exist_ok=True)
        self.write_manifest(manifest)

    # -- manifest -----------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        """The folder's manifest."""
        try:
            return json.loads((self.path / MANIFEST).read_text())
        except FileNotFoundError:
            raise ResultsError(f"{self.path}: no {MANIFEST}; not a fomolab results folder (run `fomolab run` first)") from None
        except json.JSONDecodeError as exc:
            raise ResultsError(f"{self.path / MANIFEST}: is not valid JSON ({exc})") from None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Write the manifest atomically."""
        tmp = self.path / f".{MANIFEST}.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str))
        os.replace(tmp, self.path / MANIFEST)

    # -- runs ---------------------------------------------------------------
    def finished(self) -> set[str]:
        """Run ids whose partitions are complete."""
        d = self.path / "runs"
        return {p.stem for p in d.glob("*.parquet")} if d.is_dir() else set()

    def write_run(self, run_id: str, tables: Tables) -> None:
        """Write one run's tables atomically (``runs`` last)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        stage = self.path / ".staging" / f"{run_id}.{uuid.uuid4().hex[:8]}"
        stage.mkdir(parents=True)
        try:
            names = []
            for name, df in tables:
                # one thread: runs are already parallel across workers
                pq.write_table(pa.Table.from_pandas(df, preserve_index=False, nthreads=1), stage / f"{name}.parquet")
                names.append(name)
            for name in names:  # in the Tables' order: runs last
                (self.path / name).mkdir(exist_ok=True)
                os.replace(stage / f"{name}.parquet", self.path / name / f"{run_id}.parquet")
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        failed = self.path / "failures" / f"{run_id}.parquet"
        failed.unlink(missing_ok=True)

    def write_failure(self, run_id: str, row: dict[str, Any]) -> None:
        """Record a run that raised (replaced if it fails again)."""
        tmp = self.path / ".staging" / f"{run_id}.failure.{uuid.uuid4().hex[:8]}.parquet"
        pd.DataFrame([row]).to_parquet(tmp, index=False)
        os.replace(tmp, self.path / "failures" / f"{run_id}.parquet")

    def clean_staging(self) -> None:
        """Remove what interrupted writers left behind."""
        shutil.rmtree(self.path / ".staging", ignore_errors=True)
        (self.path / ".staging").mkdir(exist_ok=True)


def spec_differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted paths where two resolved specs differ, with both values.

    >>> spec_differences({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}})
    ['a.c: 2 -> 3']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            p = f"{path}.{k}" if path else str(k)
            if k not in new:
                out.append(f"{p}: removed")
            elif k not in old:
                out.append(f"{p}: added")
            else:
                out += spec_differences(old[k], new[k], p)
        return out
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]
