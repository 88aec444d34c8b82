"""Results: a results folder's tables as DataFrames.

``Results(path)`` reads lazily: each table is loaded (and cached) the first
time it is asked for, from the partitions of finished runs only (those with a
commit record; any other file in the table folders is ignored), in a fixed
order (point, replicate, arm as in the spec), so the same experiment gives the
same DataFrames whatever executor wrote them.  It never writes into the
folder.  Before the first table is read, every finished run's partitions are
checked against their commit record's sizes; a damaged folder is refused with
the command that repairs it.  :attr:`Results.completeness` says how much of
the design has finished ("5 of 10 replicates finished").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from fomolab.errors import ResultsError
from fomolab.store import LAYOUT, FolderState, Store

__all__ = ["Results", "Completeness"]

#: Columns stored as strings that Results turns into categoricals.
CATEGORICAL = ("run_id", "arm", "segment", "kind", "product", "tactic", "host_kind")


@dataclass(frozen=True)
class Completeness:
    """How much of a folder's design has finished.

    Attributes
    ----------
    runs_expected, runs_finished : int
        Runs of the design (arms x points x replicates, as the manifest
        records it) and those of them that have finished.
    replicates : int
        Replicates the design asks of every arm at every point.
    cells : pandas.DataFrame
        One row per point and arm (spec order): ``point``, ``arm``,
        ``expected`` and ``finished`` replicates.
    damaged : int
        Finished runs whose partitions no longer match their commit record
        (not counted as finished; ``fomolab run`` recomputes them).
    """

    runs_expected: int
    runs_finished: int
    replicates: int
    cells: pd.DataFrame
    damaged: int = 0

    @property
    def complete(self) -> bool:
        """Whether every run of the design has finished."""
        return self.runs_finished >= self.runs_expected and not self.damaged

    @property
    def replicates_finished(self) -> tuple[int, int]:
        """Fewest and most replicates finished over the arms and points."""
        f = self.cells["finished"]
        return (int(f.min()), int(f.max())) if len(f) else (0, 0)

    def describe(self) -> str:
        """One phrase: ``"all 10 replicates finished"``, ``"5 of 10 replicates finished"``.

        >>> import pandas as pd
        >>> cells = pd.DataFrame({"point": [0, 0], "arm": ["a", "b"], "expected": [10, 10], "finished": [5, 6]})
        >>> Completeness(20, 11, 10, cells).describe()
        '5 to 6 of 10 replicates finished (per arm and point; 11 of 20 runs)'
        """
        lo, hi = self.replicates_finished
        if self.complete:
            return f"all {self.replicates} replicate{'s' * (self.replicates != 1)} finished"
        done = f"{lo}" if lo == hi else f"{lo} to {hi}"
        per = " (per arm and point" if lo != hi else " ("
        text = f"{done} of {self.replicates} replicates finished{per}{'; ' if lo != hi else ''}" \
               f"{self.runs_finished} of {self.runs_expected} runs)"
        return text + (f"; {self.damaged} damaged" if self.damaged else "")


class Results:
    """The tables of a results folder.

    Attributes
    ----------
    runs, shoppers, events, failures : pandas.DataFrame
        The tables (``docs/schema.md``); ``failures`` is empty when none failed.
    manifest : dict
        Spec, hashes, seeds, package versions, git commit, timings.

    Examples
    --------
    >>> res = Results("results/reference_flash")  # doctest: +SKIP
    >>> res.runs.groupby("arm").conversion.mean()  # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._store = Store(self.path)
        if not (self.path / "manifest.json").is_file():
            lost = " (it lost its manifest: rebuild it with `fomolab run SPEC --out DIR`, the spec that wrote it)" \
                if self._store.finished() else ""
            raise ResultsError(f"{self.path}: no manifest.json; not a fomolab results folder{lost} "
                               f"(create one with `fomolab run SPEC --out {self.path}`)")

    def __repr__(self) -> str:
        m = self.manifest
        return f"Results({str(self.path)!r}: experiment {m.get('experiment')!r}, {self.completeness.describe()})"

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """Spec, hashes, seeds, design, and the history of invocations (``invocations``)."""
        return self._store.manifest()

    @cached_property
    def state(self) -> FolderState:
        """The folder's finished and damaged runs, sizes verified (see :meth:`Store.inspect`)."""
        m = self.manifest
        if m.get("layout", 1) < LAYOUT and not self._store.finished() and (self.path / "runs").is_dir() \
                and any((self.path / "runs").glob("*.parquet")):
            raise ResultsError(
                f"{self.path}: was written by an earlier fomolab, without commit records; run "
                f"`fomolab run {m.get('source', 'SPEC')} --out {self.path}` once to record them "
                "(finished runs are kept, not recomputed)")
        return self._store.inspect(checksums=False)

    def _repair_hint(self) -> str:
        return f"`fomolab run {self.manifest.get('source', 'SPEC')} --out {self.path}`"

    @cached_property
    def completeness(self) -> Completeness:
        """How much of the design has finished (``.describe()``: "5 of 10 replicates finished")."""
        from fomolab.design import assign_points

        m = self.manifest
        reps = int(m.get("replicates", 0))
        arms = list(m.get("arms", []))
        try:
            ids, _ = assign_points(self.experiment, m.get("points"))
            points = list(dict.fromkeys(ids))
        except Exception:  # a manifest whose spec no longer parses: the registry's points
            points = [int(p["point"]) for p in m.get("points") or [{"point": 0}]]
        done: dict[tuple[int, str], int] = {}
        for rec in self.state.commits.values():
            key = (int(rec.get("point", -1)), str(rec.get("arm")))
            if int(rec.get("replicate", reps)) < reps:
                done[key] = done.get(key, 0) + 1
        cells = pd.DataFrame([{"point": p, "arm": a, "expected": reps, "finished": done.get((p, a), 0)}
                              for p in points for a in arms], columns=["point", "arm", "expected", "finished"])
        return Completeness(runs_expected=len(cells) * reps, runs_finished=int(cells["finished"].sum()),
                            replicates=reps, cells=cells, damaged=len(self.state.damaged))

    @property
    def versions(self) -> list[str]:
        """The fomolab versions that computed the finished runs (from their commit records)."""
        return sorted({str(r.get("fomolab_version")) for r in self.state.commits.values()})

    @cached_property
    def experiment(self):
        """The :class:`~fomolab.spec.Experiment` recorded in the manifest."""
        from fomolab.spec import parse_spec

        return parse_spec(self.manifest["spec"], source=str(self.path / "manifest.json"), resolve=False)

    @cached_property
    def _run_ids(self) -> list[str]:
        state = self.state
        if state.damaged:
            rid, why = next(iter(state.damaged.items()))
            raise ResultsError(
                f"{self.path}: {state.damage_summary()}, e.g. run {rid}: {why}; repair it with "
                f"{self._repair_hint()} (recomputes exactly those runs), then read it again")
        ids = set(state.commits)
        if not ids:
            return []
        runs = self._read("runs", sorted(ids))
        return list(self._order(runs).run_id)

    def _order(self, runs: pd.DataFrame) -> pd.DataFrame:
        arms = {a: k for k, a in enumerate(self.manifest.get("arms", []))}
        key = runs.arm.map(lambda a: arms.get(a, len(arms)))
        return runs.assign(_arm=key).sort_values(["point", "replicate", "_arm"], kind="stable").drop(columns="_arm")

    def _read(self, table: str, ids: list[str], columns: list[str] | None = None) -> pd.DataFrame:
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = [self.path / table / f"{i}.parquet" for i in ids]
        parts = [pq.read_table(f, columns=columns) for f in files if f.is_file()]  # marketplace tables: some runs
        if not parts:
            return pd.DataFrame()
        return pa.concat_tables(parts, promote_options="default").to_pandas()

    def table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """One table, optionally only some columns (read straight from Parquet)."""
        if name not in ("runs", "shoppers", "events", "streams", "stream_series"):
            raise ResultsError(f"{self.path}: no table {name!r}; tables are runs, shoppers, events "
                               "(and streams, stream_series for a marketplace)")
        df = self._read(name, self._run_ids, columns)
        for c in CATEGORICAL:
            if c in df.columns:
                df[c] = df[c].astype("category")
        if "shopper_id" in df.columns and name == "events":
            df["shopper_id"] = df["shopper_id"].astype("Int64")
        return df.reset_index(drop=True)

    def viewers(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The shoppers table with one row per viewer, for analyses of viewers.

        Without a marketplace it is the ``shoppers`` table (one visit per
        viewer).  In a marketplace a viewer who switches streams has several
        visits; they are combined: ``arrival_s`` the first arrival,
        ``departure_s`` the last departure, ``first_purchase_s`` the earliest
        purchase, counts and money summed, ``stream`` the first stream watched.
        """
        market = "stream" in self._columns("shoppers")
        if not market:
            return self.table("shoppers", columns)
        need = list(dict.fromkeys((columns or self._columns("shoppers")) + ["run_id", "shopper_id"]))
        sh = self.table("shoppers", need)
        rules = {"arrival_s": "min", "departure_s": "max", "first_purchase_s": "min", "purchases": "sum",
                 "spend": "sum", "surplus": "sum", "regretted": "sum", "switched_in": "sum"}
        agg = {c: rules.get(c, "first") for c in sh.columns if c not in ("run_id", "shopper_id")}
        out = sh.groupby(["run_id", "shopper_id"], sort=False, observed=True).agg(agg).reset_index()
        return out[[c for c in need if c in out.columns]] if columns else out

    def _columns(self, table: str) -> list[str]:
        import pyarrow.parquet as pq

        ids = self._run_ids
        return pq.read_schema(self.path / table / f"{ids[0]}.parquet").names if ids else []

    @cached_property
    def runs(self) -> pd.DataFrame:
        return self.table("runs")

    @cached_property
    def shoppers(self) -> pd.DataFrame:
        return self.table("shoppers")

    @cached_property
    def events(self) -> pd.DataFrame:
        return self.table("events")

    @cached_property
    def streams(self) -> pd.DataFrame:
        """Marketplace runs: one row per run and stream (empty otherwise)."""
        return self.table("streams")

    @cached_property
    def stream_series(self) -> pd.DataFrame:
        """Marketplace runs: viewers, purchases and revenue per stream and minute (empty otherwise)."""
        return self.table("stream_series")

    @cached_property
    def failures(self) -> pd.DataFrame:
        from fomolab.store import _RUN_ID

        files = sorted(p for p in (self.path / "failures").glob("*.parquet") if _RUN_ID.match(p.stem))
        if not files:
            return pd.DataFrame(columns=["run_id", "arm", "replicate", "point", "seed", "params", "error", "traceback"])
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """Per arm: runs (finished and expected), viewers and buyers per run,
        conversion, median time to purchase (pooled over buyers), units and
        revenue per run.

        ``summary().attrs["completeness"]`` says how much has finished
        (:meth:`Completeness.describe`).
        """
        runs = self.runs
        if runs.empty:
            return pd.DataFrame()
        sh = self.viewers(["arm", "arrival_s", "first_purchase_s"])
        ttp = (sh.first_purchase_s - sh.arrival_s).groupby(sh.arm, observed=True).median()
        g = runs.groupby("arm", observed=True, sort=False)
        out = pd.DataFrame({
            "runs": g.size(),
            "viewers_per_run": g.viewers.mean(),
            "buyers_per_run": g.buyers.mean(),
            "conversion": g.buyers.sum() / g.viewers.sum(),
            "median_time_to_purchase_s": ttp,
            "units_per_run": g.units_sold.mean(),
            "revenue_per_run": g.revenue.mean(),
        })
        order = [a for a in self.manifest.get("arms", []) if a in out.index]
        out = out.loc[order]
        cells = self.completeness.cells
        expected = cells.groupby("arm", sort=False)["expected"].sum()
        out.insert(1, "runs_expected", [int(expected.get(a, 0)) for a in out.index])
        out.attrs["completeness"] = self.completeness.describe()
        return out

    def _repr_html_(self) -> str:
        from html import escape

        return f"<p>{escape(repr(self))}</p>" + self.summary().to_html(float_format=lambda x: f"{x:,.4g}")
