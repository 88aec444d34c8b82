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

import collections
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fomolab.aggregates import FACT_TABLES, INDEX, INDEXED_TABLES, index_current, index_facts, read_index
from fomolab.errors import ResultsError
from fomolab.store import LAYOUT, FolderState, Store

if TYPE_CHECKING:  # imported where used: re-running a finished folder with -q needs neither
    import numpy as np
    import pandas as pd

    from fomolab._spill import Spill

__all__ = ["Results", "Completeness", "FolderCheck", "check"]

#: Where a column read is allocated: ``alloc(n, dtype)`` gives an array of ``n`` values (``numpy.empty``'s
#: signature; :meth:`fomolab._spill.Spill.empty` gives one in a file mapped into memory).
Alloc = Callable[[int, Any], "np.ndarray"]

#: Columns stored as strings that Results turns into categoricals.
CATEGORICAL = ("run_id", "arm", "segment", "kind", "product", "tactic", "host_kind")
#: Tables a results folder may hold (one Parquet partition per finished run).
TABLE_NAMES = ("runs", "shoppers", "events", "products", "tactics", "windows", "product_results", "streams",
               "stream_series", "exposure", "sales", "purchase_times")


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

    Parameters
    ----------
    path : path
        The results folder.
    replicates : int, optional
        Read only the first ``replicates`` replicates of every arm and point
        (those a spec with that many replicates asks for); default all the
        folder holds.  :func:`fomolab.run` returns the replicates it was asked for.

    Attributes
    ----------
    runs, shoppers, events, failures : pandas.DataFrame
        The tables (``docs/schema.md``); ``failures`` is empty when none failed.
    manifest : dict
        Spec, hashes, seeds, design, and the history of invocations (versions, packages, timings).
    completeness : Completeness
        How much of the design has finished (``completeness.describe()``).
    versions : list of str
        The fomolab versions that computed the finished runs.

    Raises
    ------
    ResultsError
        On the first table read, if a finished run's partitions no longer match
        its commit record (the message gives the command that repairs it).

    Examples
    --------
    >>> res = Results("results/reference_flash")  # doctest: +SKIP
    >>> res.runs.groupby("arm").conversion.mean()  # doctest: +SKIP
    >>> res.completeness.describe()  # doctest: +SKIP
    'all 20 replicates finished'
    """

    def __init__(self, path: str | Path, replicates: int | None = None) -> None:
        self.path = Path(path)
        if replicates is not None and (isinstance(replicates, bool) or not isinstance(replicates, int)
                                       or replicates < 1):
            raise ValueError(f"replicates must be a whole number >= 1 (or None for all): {replicates!r}")
        self.replicates = replicates
        self._store = Store(self.path)
        #: Rows per row group of each partition read so far, from its footer (the partitions of finished runs
        #: do not change while they are read: their sizes are checked against the commit records first).
        self._rows: dict[str, tuple[int, ...]] = {}
        #: Whole fact tables read so far (``aggregates.FACT_TABLES``, a few rows per run): an analysis reads
        #: them several times, and opening a small partition costs more than copying its rows.
        self._facts: dict[str, pd.DataFrame] = {}
        #: The index's description as the writer that inspected this folder just left it (``_inspected``).
        self._written_index: dict[str, Any] | None = None
        if not (self.path / "manifest.json").is_file():
            lost = " (it lost its manifest: rebuild it with `fomolab run SPEC --out DIR`, the spec that wrote it)" \
                if self._store.finished() else ""
            raise ResultsError(f"{self.path}: no manifest.json; not a fomolab results folder{lost} "
                               f"(create one with `fomolab run SPEC --out {self.path}`)")

    @classmethod
    def _inspected(cls, path: str | Path, state: FolderState | None, replicates: int | None = None,
                   index: dict[str, Any] | None = None) -> Results:
        """Results of a folder its writer has just inspected (its state is not inspected again), and
        whose index of ``state``'s runs it has just brought up to date (``index``: its description)."""
        res = cls(path, replicates=replicates)
        if state is not None:
            res.__dict__["state"] = state
            res._written_index = index
        return res

    def __repr__(self) -> str:
        m = self.manifest
        try:
            done = self.completeness.describe()
        except ResultsError:
            done = "not readable as it is (see `fomolab check`)"
        held = int(m.get("replicates", 0))
        first = f", the first {self.replicates} of the folder's {held} replicates" \
            if self.replicates is not None and self.replicates < held else ""
        return f"Results({str(self.path)!r}: experiment {m.get('experiment')!r}{first}, {done})"

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
        import pandas as pd

        from fomolab.design import assign_points

        m = self.manifest
        reps = int(m.get("replicates", 0)) if self.replicates is None else self.replicates
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
    def common_random_numbers(self) -> bool:
        """Whether the arms of a replicate saw the same viewers (as the recorded spec says)."""
        return bool(self.manifest.get("spec", {}).get("experiment", {}).get("common_random_numbers", True))

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
        import pandas as pd

        state = self.state
        if state.damaged:
            rid, why = next(iter(state.damaged.items()))
            raise ResultsError(
                f"{self.path}: {state.damage_summary()}, e.g. run {rid}: {why}; repair it with "
                f"{self._repair_hint()} (recomputes exactly those runs), then read it again")
        ids = set(state.commits)
        if self.replicates is not None:  # the first replicates only
            ids = {i for i in ids if int(state.commits[i].get("replicate", 0)) < self.replicates}
        if not ids:
            return []
        recs = [state.commits[i] for i in sorted(ids)]
        if all(all(k in r for k in ("point", "replicate", "arm")) for r in recs):  # the order from the records
            runs = pd.DataFrame({"run_id": [r["run_id"] for r in recs], "point": [int(r["point"]) for r in recs],
                                 "replicate": [int(r["replicate"]) for r in recs],
                                 "arm": [str(r["arm"]) for r in recs]})
        else:
            runs = self._read("runs", sorted(ids), ["run_id", "point", "replicate", "arm"])
        return list(self._order(runs).run_id)

    def _order(self, runs: pd.DataFrame) -> pd.DataFrame:
        arms = {a: k for k, a in enumerate(self.manifest.get("arms", []))}
        key = runs.arm.map(lambda a: arms.get(a, len(arms)))
        return runs.assign(_arm=key).sort_values(["point", "replicate", "_arm"], kind="stable").drop(columns="_arm")

    def _files(self, table: str, ids: list[str] | None = None) -> list[Path]:
        """The partitions of ``table`` of the finished runs ``ids`` (default all), in the folder's order."""
        ids = self._run_ids if ids is None else ids
        return [f for f in (self.path / table / f"{i}.parquet" for i in ids) if f.is_file()]

    def _read(self, table: str, ids: list[str], columns: list[str] | None = None,
              filter: Any = None, drop: tuple[str, list[str]] | None = None,
              narrow: tuple[str, ...] = (), spill: Spill | None = None) -> pd.DataFrame:
        """``table`` of the runs ``ids``: ``columns``, the rows ``filter`` keeps, less those whose ``drop[0]``
        is one of ``drop[1]`` (a text column; cheaper than the same ``filter``, see :func:`_compact_frame`);
        the integer columns ``narrow`` in the smallest type that holds them where the partitions are read;
        ``spill`` keeps the columns read from Parquet (:func:`_compact_frame`)."""
        import numpy as np
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        if drop is not None and (table in INDEXED_TABLES or table in FACT_TABLES):  # a few rows a run: a filter
            filter, drop = _drop_filter(drop, filter), None
        if table in INDEXED_TABLES and len(ids) == len(self.state.commits) and self._index is not None \
                and set(ids) == set(self.state.commits):
            whole = read_index(self.path, self.state.commits, table, columns, filter=filter)  # one file
            if whole is not None:
                at = {rid: k for k, rid in enumerate(ids)}
                key = whole["run_id"].astype(str).map(at).to_numpy()
                return whole.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
        facts = self._fact_index
        if table in facts.get("files", {}) and set(ids) == set(self.state.commits):  # one file, a row group a run
            at = {rid: k for k, rid in enumerate(facts["runs"])}
            path = str(self.path / INDEX / facts["files"][table])
            try:  # the dtypes from the first partition's pandas metadata, as when the partitions are read
                return _compact_frame([path], columns, filter, rows=self._rows, row_groups={path: [at[i] for i in ids]},
                                      schema=pq.read_schema(self.path / table / f"{ids[0]}.parquet"), spill=spill)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError, ValueError):
                pass  # read from the partitions
        files = self._files(table, ids)  # marketplace tables: some runs
        if not files:
            return pd.DataFrame()
        try:  # only the columns (and rows) asked for, decoded by threads into columns allocated once
            return _compact_frame([str(f) for f in files], columns, filter, rows=self._rows, drop=drop,
                                  narrow=narrow, spill=spill)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError):  # differing schemas
            import pyarrow.dataset as ds  # here only: with its file systems, 20 MB that a side process need not hold

            read = columns if drop is None or columns is None or drop[0] in columns else [*columns, drop[0]]
            tab = pa.concat_tables([pq.read_table(f, columns=read) for f in files], promote_options="default")
            if drop is not None:
                filter = _drop_filter(drop, filter)
            if filter is not None:
                tab = ds.dataset(tab).to_table(filter=filter)
            if read is not columns:
                tab = tab.select(columns)
        return tab.to_pandas()

    def table(self, name: str, columns: list[str] | None = None, run_ids: list[str] | None = None, *,
              filter: Any = None, narrow: Sequence[str] = (), spill: Spill | None = None) -> pd.DataFrame:
        """One table, optionally only some columns, runs and rows (read straight from Parquet).

        The partitions are decoded by a few threads, a run's row groups at a
        time, into columns allocated once: text columns (``run_id``, ``arm``,
        ``segment``, ``kind``, ``product``, ``tactic``) as categoricals
        (codes of 1 or 2 bytes, never a Python string per row), numbers in
        their stored types (``docs/schema.md``), so that peak memory is
        about that of the frame returned.  The frame is the one pyarrow's
        dataset conversion gives (values, dtypes, categories in the order
        pyarrow unifies dictionaries).  The fact tables (``products``,
        ``tactics``, ``windows``, ``product_results``) come from the folder
        index when it holds them, and once read whole are kept: later reads
        of their columns are copies.

        Parameters
        ----------
        name : str
            ``runs``, ``shoppers``, ``events``, ``products``, ``tactics``, ``windows``
            (``streams``, ``stream_series`` for a marketplace).
        columns : list of str, optional
            Only these columns are read (default all).
        run_ids : list of str, optional
            Only these finished runs are read, in the folder's order (default all);
            ids of runs that have not finished are refused.
        filter : pyarrow.compute.Expression, optional
            Only the rows for which it is true, e.g. ``pc.field("kind") == "purchase"``
            (``import pyarrow.compute as pc``); its columns need not be among ``columns``.
        narrow : list of str, optional
            Integer columns (``replicate``, ``point``, ``shopper_id``...) to give in
            the smallest signed integer type that holds their values (``int8``
            up to ``int32``, else their stored type): the same values in fewer
            bytes, never held wider while they are read.  A column with nulls,
            or one read from the folder index, keeps the stored type.
        spill : fomolab._spill.Spill, optional
            Where the number and text columns read from Parquet are kept: in
            files on disk mapped into memory (default: in memory); inside
            ``with spill:`` their pages are unmapped from this process as the
            reading goes.
        """

        if name not in TABLE_NAMES:
            raise ResultsError(f"{self.path}: no table {name!r}; tables are runs, shoppers, events, products, "
                               "tactics, windows (and streams, stream_series for a marketplace)")
        ids = self._run_ids
        if run_ids is not None:
            wanted = set(run_ids)
            missing = sorted(wanted - set(ids))
            if missing:
                raise ResultsError(f"{self.path}: run_ids {missing[:3]}{' ...' if len(missing) > 3 else ''} are "
                                   "not finished runs of this folder (see res.runs.run_id)")
            ids = [i for i in ids if i in wanted]
        if name in FACT_TABLES and run_ids is None and filter is None:  # columns of the whole table, read once
            whole = self._facts.get(name)
            if whole is None and columns is None:
                whole = self._facts[name] = self._table(name, ids, None, None)
            if whole is not None and (columns is None or set(columns) <= set(whole.columns)):
                return (whole if columns is None else whole[list(columns)]).copy()
        return self._table(name, ids, columns, filter, narrow=tuple(narrow), spill=spill)

    def _table(self, name: str, ids: list[str], columns: list[str] | None, filter: Any,
               drop: tuple[str, list[str]] | None = None, narrow: tuple[str, ...] = (),
               spill: Spill | None = None) -> pd.DataFrame:
        import pandas as pd

        # (the options passed only when given: a subclass may read with the plain signature)
        opts: dict[str, Any] = {k: v for k, v in (("drop", drop), ("narrow", narrow), ("spill", spill)) if v}
        df = self._read(name, ids, columns, filter, **opts)
        for c in CATEGORICAL:
            if c in df.columns and not isinstance(df[c].dtype, pd.CategoricalDtype):
                df[c] = df[c].astype("category")
        if "shopper_id" in df.columns and name == "events" and df["shopper_id"].dtype != "Int64":
            df["shopper_id"] = df["shopper_id"].astype("Int64")
        if not df.index.equals(pd.RangeIndex(len(df))):
            df = df.reset_index(drop=True)
        else:  # the same index, without copying every column
            df.index = pd.RangeIndex(len(df))
        return df

    def events_except(self, kinds: list[str], columns: list[str] | None = None) -> pd.DataFrame:
        """The ``events`` table without the rows of ``kinds``, left out while reading.

        As :meth:`table` (``"events"``, ``columns``), but the rows whose
        ``kind`` is one of ``kinds`` are dropped by the Parquet reader, so
        they never reach memory: ``events_except(["arrive", "leave"])`` reads
        a stream's purchases and tactic events without its two rows per visit.
        The frame is that of ``table("events", columns, filter=~pc.field("kind").isin(kinds))``.
        """
        # the kinds are looked up in each row group's dictionary of kinds, not compared row by row (which
        # costs more than decoding the row group)
        return self._table("events", self._run_ids, columns, None, drop=("kind", [str(k) for k in kinds]))

    def query(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """SQL over the folder's tables, read out of core by DuckDB.

        Each table (``runs``, ``shoppers``, ``events``, and ``streams``,
        ``stream_series`` for a marketplace) is a view over the Parquet
        partitions of the finished runs only; DuckDB reads only the columns
        and row groups the query needs, in parallel, spilling to disk when an
        aggregate outgrows memory, so a folder larger than memory can be
        queried.  Rows come in no fixed order unless the query orders them.

        Parameters
        ----------
        sql : str
            A DuckDB query (``docs/schema.md`` lists the tables and columns).
        params : list or dict, optional
            Values for the query's ``?`` or ``$name`` placeholders.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ResultsError
            If the query is not valid SQL for these tables (the message is DuckDB's).

        Examples
        --------
        >>> res.query("select arm, avg(conversion) as conversion from runs group by arm")  # doctest: +SKIP
        >>> res.query("select median(first_purchase_s - arrival_s) from shoppers where arm = ?",
        ...           ["sale"])  # doctest: +SKIP
        """
        return self._query(sql, params, fast=False)

    def _query(self, sql: str, params: list[Any] | dict[str, Any] | None = None, fast: bool = True) -> pd.DataFrame:
        """:meth:`query`; ``fast`` first takes the first partition's schema for all (for columns whose type
        never varies between runs), then matches columns by name if that fails."""
        import duckdb

        for union in ((False, True) if fast else (True,)):
            con = self._duckdb(union_by_name=union)
            try:
                return con.execute(sql, params).df() if params is not None else con.execute(sql).df()
            except duckdb.Error as exc:
                if union:
                    raise ResultsError(f"{self.path}: query failed: {exc}") from None
            finally:
                con.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def _duckdb(self, union_by_name: bool = False):
        """A DuckDB connection with one view per table over the finished runs' partitions."""
        import duckdb

        con = duckdb.connect()
        con.execute("set enable_progress_bar = false")  # a library prints nothing
        for name in TABLE_NAMES:
            files = self._files(name)
            if not files:
                continue
            listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            con.execute(f"create view {name} as select * from read_parquet([{listed}]"
                        f"{', union_by_name = true' if union_by_name else ''})")
        return con

    def viewers(self, columns: list[str] | None = None, run_ids: list[str] | None = None, *,
                filter: Any = None, narrow: Sequence[str] = (), spill: Spill | None = None) -> pd.DataFrame:
        """The shoppers table with one row per viewer, for analyses of viewers.

        Without a marketplace it is the ``shoppers`` table (one visit per
        viewer).  In a marketplace a viewer who switches streams has several
        visits; they are combined: ``arrival_s`` the first arrival,
        ``departure_s`` the last departure, ``first_purchase_s`` the earliest
        purchase, counts and money summed, ``stream`` the first stream watched.
        ``columns``, ``run_ids``, ``filter``, ``narrow`` and ``spill`` are as in
        :meth:`table` (a marketplace's ``filter`` selects visits, before they are
        combined; its combined viewers are in memory).
        """
        market = "stream" in self._columns("shoppers")
        if not market:
            return self.table("shoppers", columns, run_ids, filter=filter, narrow=narrow, spill=spill)
        need = list(dict.fromkeys((columns or self._columns("shoppers")) + ["run_id", "shopper_id"]))
        sh = self.table("shoppers", need, run_ids, filter=filter, narrow=narrow)
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
        import pandas as pd

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
        import pandas as pd

        if not self._run_ids:
            return pd.DataFrame()
        index = self._index
        median = None
        if index is not None and "arms" in index:  # the folder index's sums and pooled medians
            a = pd.DataFrame(index["arms"]).T
            n = a.runs.astype(float)
            out = pd.DataFrame({"runs": a.runs.astype(int), "viewers_per_run": a.viewers / n,
                                "buyers_per_run": a.buyers / n, "conversion": a.buyers / a.viewers,
                                "units_per_run": a.units_sold / n, "revenue_per_run": a.revenue / n}).astype(
                {"viewers_per_run": float, "buyers_per_run": float, "conversion": float, "units_per_run": float,
                 "revenue_per_run": float})
            out.index = pd.Index(out.index.astype(str), name="arm")
            median = a.median_time_to_purchase_s.astype(float)
        elif "runs" in self.__dict__:  # already in memory
            g = self.runs.groupby("arm", observed=True, sort=False)
            out = pd.DataFrame({"runs": g.size(), "viewers_per_run": g.viewers.mean(),
                                "buyers_per_run": g.buyers.mean(), "conversion": g.buyers.sum() / g.viewers.sum(),
                                "units_per_run": g.units_sold.mean(), "revenue_per_run": g.revenue.mean()})
            out.index = out.index.astype(str)
        else:  # aggregated out of core: five columns of the runs table
            out = self._query(
                "select arm, count(*) as runs, avg(viewers) as viewers_per_run, avg(buyers) as buyers_per_run, "
                "sum(buyers) / sum(viewers) as conversion, avg(units_sold) as units_per_run, "
                "avg(revenue) as revenue_per_run from runs group by arm").set_index("arm")
        out.insert(4, "median_time_to_purchase_s",
                   (median if median is not None else self._median_time_to_purchase()).reindex(out.index))
        order = [a for a in self.manifest.get("arms", []) if a in out.index]
        out = out.loc[order]
        cells = self.completeness.cells
        expected = cells.groupby("arm", sort=False)["expected"].sum()
        out.insert(1, "runs_expected", [int(expected.get(a, 0)) for a in out.index])
        out.attrs["completeness"] = self.completeness.describe()
        return out

    @cached_property
    def _index(self) -> dict[str, Any] | None:
        """The folder index's description if it holds exactly the finished runs (and all are read), else None."""
        if len(self._run_ids) != len(self.state.commits):  # the first replicates only: not the index's runs
            return None
        if self._written_index is not None:  # its writer has just checked it against these very runs
            return self._written_index
        return index_current(self.path, self.state.commits)

    @cached_property
    def _fact_index(self) -> dict[str, Any]:
        """The folder index's fact files if they hold exactly the finished runs' facts, else ``{}``."""
        info = self._index
        return (index_facts(self.path, info, self.state.commits) or {}) if info is not None else {}

    def _median_time_to_purchase(self) -> pd.Series:
        """Per arm, the median time from arrival to first purchase over the arm's buyers (exact, pooled).

        Read out of core by DuckDB (two columns of the shoppers table, never
        the whole table); a marketplace's viewers are first combined over
        their visits (:meth:`viewers`).
        """
        import pandas as pd

        if "stream" in self._columns("shoppers"):
            sh = self.viewers(["arm", "arrival_s", "first_purchase_s"])
            return (sh.first_purchase_s - sh.arrival_s).groupby(sh.arm, observed=True).median()
        if not self._files("shoppers"):
            return pd.Series(dtype=float)
        df = self._query("select arm, median(first_purchase_s - arrival_s) as m from shoppers "
                        "where first_purchase_s is not null and not isnan(first_purchase_s) group by arm")
        return pd.Series(df["m"].to_numpy(dtype=float), index=df["arm"].astype(str).to_numpy())

    def _repr_html_(self) -> str:
        """The description and the per-arm summary, for Jupyter."""
        from fomolab._terminal import html_view

        return html_view(repr(self), [("per arm: means per run; conversion pooled", self.summary())])


def _compact_frame(files: list[str], columns: list[str] | None, filter: Any = None,
                   rows: dict[str, tuple[int, ...]] | None = None,
                   row_groups: dict[str, list[int]] | None = None, schema: Any = None,
                   drop: tuple[str, list[str]] | None = None, narrow: Sequence[str] = (),
                   spill: Spill | None = None) -> pd.DataFrame:
    """Partitions read into a DataFrame, each column allocated once and filled in file order.

    The values and dtypes are those of ``dataset.to_table().to_pandas()``
    followed by :data:`CATEGORICAL` columns as categoricals: a column stored
    as a dictionary keeps its dictionaries' values in the order pyarrow
    unifies them (first seen first); one stored as plain text gets its
    observed values sorted (as ``astype("category")`` does).  Nulls in an
    integer column make it float64 (NaN), as in pyarrow's conversion.

    The rows of each row group are counted from the Parquet footers first
    (``rows`` caches them, path -> rows per row group, for later reads of the
    same files), so that every column is filled in place at offsets known in
    advance; ``row_groups`` reads only some row groups of a file (path ->
    their ids, in the order wanted); ``schema`` is the one whose pandas
    metadata gives the dtypes (default the first file's).  ``drop``
    (``(column, values)``, a text column, not necessarily among ``columns``)
    leaves out the rows whose ``column`` is one of ``values``, as the
    filter ``~pc.field(column).isin(values)`` would (a null is kept), but
    by looking the values up in each row group's dictionary rather than
    comparing every row; the footers' statistics never rule a row group out
    for such a filter, so none are consulted.  Small row groups
    (a run's partition of a large folder) are decoded by a few threads at
    once, each a whole row group without
    pyarrow's own threads: pyarrow releases the GIL while it decodes, and
    opening a file costs more than decoding it.  Large row groups are read
    batch by batch, pyarrow's threads decoding the columns, so Arrow holds
    about one batch at a time.  With a filter or ``drop``, the rows kept are
    copied as they come, into columns grown as needed (from a sixteenth of
    the rows of the row groups read) and cut to those rows at the end.
    The integer columns ``narrow`` (without nulls) are filled in the
    smallest signed type that holds the values seen so far, widened (the
    rows filled copied once) when a row group's values do not fit.
    ``spill`` keeps the number and text columns in files mapped into memory
    (:class:`fomolab._spill.Spill`).

    Raises
    ------
    ValueError
        If the partitions' columns or types differ (the caller then reads them
        one by one and promotes their types).
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(files[0]) if schema is None else schema
    names = list(columns) if columns is not None else list(schema.names)
    if not set(names) <= set(schema.names):
        raise ValueError("columns differ between partitions")
    if drop is not None and drop[0] not in schema.names:
        raise ValueError("columns differ between partitions")
    text = [c for c in dict.fromkeys([*names, *([drop[0]] if drop is not None else [])]) if c in CATEGORICAL
            and (pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type))]
    rows = {} if rows is None else rows
    with ThreadPoolExecutor(_THREADS) as pool:
        if filter is None:
            todo = [f for f in files if f not in rows]
            rows.update(zip(todo, pool.map(_row_groups, todo), strict=True))
            groups = [tuple(enumerate(rows[f])) for f in files]
        else:  # the row groups a pyarrow dataset scans: those their footer's statistics do not rule out
            groups = list(pool.map(lambda f: _kept_groups(f, filter, schema), files))
        if row_groups is not None:  # only these row groups, in this order
            groups = [_select(gs, row_groups[f]) if f in row_groups else gs
                      for f, gs in zip(files, groups, strict=True)]
        pieces = _pieces(files, groups, names, text, filter, schema, pool, drop)
        # with a filter, the rows kept are copied as they come (not held, as Arrow's many small buffers, until
        # they are counted) into columns allocated for a sixteenth of the row groups' rows, grown as needed
        # and cut to the rows kept at the end
        bound = sum(k for gs in groups for _, k in gs)
        n = bound if filter is None and drop is None else None
        room = bound if n is not None else min(bound, max(bound // 16, _SMALL))
        projected = pa.schema([schema.field(c) for c in names], metadata=schema.metadata)
        target = _dtypes(projected)
        sinks: list[Any] = []
        types: list[Any] = []
        at = 0
        alloc = spill.empty if spill is not None else None
        for piece in pieces:
            if not sinks:
                types = piece.schema.types
                sinks = [_sink(typ, target[c], room, c in text, c in narrow, alloc)
                         for c, typ in zip(names, types, strict=True)]
            elif piece.schema.types != types:
                raise ValueError("column types differ between partitions")
            k = piece.num_rows
            if at + k > room:  # (a filter's rows only)
                room = min(bound, max(2 * room, at + k))
                for sink in sinks:
                    sink.grow(room, at)
            for sink, col in zip(sinks, piece.columns, strict=True):
                start = at
                for chunk in col.chunks:  # one per row group
                    sink.put(chunk, start, len(chunk))
                    start += len(chunk)
            at += k
    if n is None:  # the rows the filter kept
        n = at
        for sink in sinks:
            sink.cut(n)
    if at != n:
        raise ValueError("the partitions changed while they were read")
    if not names:  # rows without columns, as pyarrow gives them
        return pd.DataFrame(index=pd.RangeIndex(n), columns=pd.Index([], dtype=object))
    if not sinks:
        return projected.empty_table().to_pandas()
    out = pd.DataFrame({c: sink.done() for c, sink in zip(names, sinks, strict=True)}, copy=False)
    del sinks, pieces
    # Arrow's allocator keeps the freed pieces' memory for reuse: give it back to the system, or it stays in
    # the process's resident set (and peak) while pandas and numpy allocate the analysis beside it
    pa.default_memory_pool().release_unused()
    return out


#: Threads that decode row groups at once (pyarrow releases the GIL while it decodes); more than two cost
#: more CPU than they save wall time, for the copying into the columns is done by one thread.
_THREADS = min(2, os.cpu_count() or 1)
#: Row groups of at most this many rows are decoded whole, by the threads; larger ones batch by batch.
_SMALL = 1 << 16
#: Small row groups decoded ahead of the one being copied (bounds what Arrow holds at a time).
_AHEAD = 2 * _THREADS


def _dtypes(schema: Any) -> pd.Series:
    """The dtypes pyarrow's conversion gives each column of ``schema`` (its pandas metadata included).

    Converting an empty table takes milliseconds (the pandas metadata is
    parsed each time), and a folder's tables have a few schemas read many
    times: kept per schema, metadata included.
    """
    key = schema.serialize().to_pybytes()
    if key not in _DTYPES:
        _DTYPES[key] = schema.empty_table().to_pandas().dtypes
    return _DTYPES[key]


_DTYPES: dict[bytes, pd.Series] = {}


def _row_groups(path: str) -> tuple[int, ...]:
    """The rows of each row group of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    return tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups))


def _select(groups: tuple[tuple[int, int], ...], ids: list[int]) -> tuple[tuple[int, int], ...]:
    """The row groups ``ids`` among ``groups`` (id, rows), in the order of ``ids``."""
    rows = dict(groups)
    return tuple((g, rows[g]) for g in ids if g in rows)


def _kept_groups(path: str, filter: Any, schema: Any) -> tuple[tuple[int, int], ...]:
    """The row groups of a Parquet file (id, rows) that ``filter`` may keep rows of, by its footer's statistics."""
    import pyarrow.dataset as ds
    import pyarrow.fs

    fragment = ds.ParquetFileFormat().make_fragment(path, filesystem=pyarrow.fs.LocalFileSystem())
    return tuple((g.id, g.num_rows) for g in fragment.subset(filter, schema=schema).row_groups)


def _pieces(files: list[str], groups: list[tuple[tuple[int, int], ...]], names: list[str], text: list[str],
            filter: Any, schema: Any, pool: ThreadPoolExecutor, drop: tuple[str, list[str]] | None = None
            ) -> Iterator[Any]:
    """The files' rows as Arrow tables of the columns ``names``, in file and row-group order (``groups``: each
    file's row groups to read, id and rows): small row groups decoded whole by ``pool`` (at most
    :data:`_AHEAD` ahead), large ones batch by batch; ``filter`` and ``drop`` (see :func:`_compact_frame`)
    applied to each (the columns they name are read too, and left out after them; ``schema``: the files'
    columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    read = names
    if filter is not None:
        try:  # whether the filter names only columns among ``names``
            pa.schema([schema.field(c) for c in names]).empty_table().filter(filter)
        except (pa.ArrowInvalid, KeyError):
            read = list(schema.names)
    if drop is not None and drop[0] not in read:
        read = [*read, drop[0]]
    values = None if drop is None else pa.array(drop[1], pa.string())

    def kept(tab: Any) -> Any:
        if tab.column_names != read:  # pyarrow leaves out a column a file lacks
            raise ValueError("columns differ between partitions")
        if drop is not None:
            tab = tab.filter(_kept_rows(tab.column(drop[0]), values))
        if filter is not None:
            tab = tab.filter(filter)
        return tab if read is names else tab.select(names)

    def small(path: str, ids: list[int]) -> Any:
        # without pre-buffering: a small local file's column chunks read as they are decoded cost less CPU
        # than their reads coalesced and handed to Arrow's I/O threads
        f = pq.ParquetFile(path, read_dictionary=text, pre_buffer=False)
        return kept(f.read_row_groups(ids, columns=read, use_threads=False))

    ahead: collections.deque[Any] = collections.deque()
    for path, mine in zip(files, groups, strict=True):
        ids = [g for g, _ in mine]
        if not ids:
            continue
        if all(k <= _SMALL for _, k in mine):
            if len(ahead) >= _AHEAD:
                yield ahead.popleft().result()
            ahead.append(pool.submit(small, path, ids))
            continue
        while ahead:
            yield ahead.popleft().result()
        f = pq.ParquetFile(path, read_dictionary=text, pre_buffer=False)
        for batch in f.iter_batches(batch_size=_SMALL, row_groups=ids, columns=read, use_threads=True):
            yield kept(pa.Table.from_batches([batch]))
    while ahead:
        yield ahead.popleft().result()


def _kept_rows(col: Any, values: Any) -> Any:
    """Whether each row of the text column ``col`` (a chunked array) is not one of ``values`` (a null is
    kept), a boolean array: the values are looked up in each chunk's dictionary, and each row's index into
    it picks its answer."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    out = []
    for chunk in col.chunks:
        if not pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary_encode()
        keep = ~pc.is_in(chunk.dictionary, value_set=values.cast(chunk.dictionary.type)).to_numpy(
            zero_copy_only=False)
        idx = chunk.indices
        if chunk.null_count:
            rows = keep[idx.fill_null(0).to_numpy(zero_copy_only=False)] if len(keep) else \
                np.zeros(len(chunk), bool)
            rows[chunk.is_null().to_numpy(zero_copy_only=False)] = True
        else:
            rows = keep[idx.to_numpy(zero_copy_only=False)]
        out.append(rows)
    return pa.array(np.concatenate(out) if out else np.zeros(0, bool))


def _drop_filter(drop: tuple[str, list[str]], filter: Any = None) -> Any:
    """``drop`` (see :func:`_compact_frame`) as a pyarrow filter, and ``filter`` with it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = ~pc.field(drop[0]).isin(pa.array(drop[1], pa.string()))
    return out if filter is None else out & filter


def cast_into(values: np.ndarray, alloc: Alloc, dtype: Any = None) -> np.ndarray:
    """``values.astype(dtype)`` (default its own: a copy) in an array ``alloc`` gives (the columns read, and
    the analysis' columns built from them, in a :class:`fomolab._spill.Spill`)."""
    out = alloc(len(values), values.dtype if dtype is None else dtype)
    out[:] = values
    return out


class _Chunks:
    """A column converted by pyarrow at the end (types without a faster sink)."""

    def __init__(self, typ: Any) -> None:
        self.typ, self.chunks = typ, list[Any]()

    def put(self, col: Any, at: int, k: int) -> None:
        self.chunks.append(col)

    def grow(self, n: int, filled: int) -> None:
        """Room for ``n`` rows (a list of chunks has room for any)."""

    def cut(self, n: int) -> None:
        """Keep the first ``n`` rows (all it was given)."""

    def done(self) -> Any:
        import pyarrow as pa

        return pa.chunked_array(self.chunks, type=self.typ).to_pandas()


class _Numbers:
    """An integer, float or boolean column filled in place; nulls as pyarrow's conversion gives them
    (NaN in a float64 column, None in an object one), or a pandas masked array (``Int64``...) where
    the files' pandas metadata asks for one."""

    def __init__(self, typ: Any, n: int, masked: bool, narrow: bool = False, alloc: Alloc | None = None) -> None:
        import numpy as np

        #: the stored type; ``narrow``: the values held in the smallest signed type that holds those seen
        self.wide = np.dtype(typ.to_pandas_dtype())
        self.narrow = narrow
        #: where the values are allocated (``numpy.empty``, or a :class:`fomolab._spill.Spill`'s ``empty``)
        self.alloc: Alloc = alloc if alloc is not None else np.empty
        self.values = self.alloc(n, np.int8 if narrow else self.wide)
        self.mask: np.ndarray | None = np.zeros(n, dtype=bool) if masked else None
        self.masked = masked
        #: a null of a plain float column is NaN, which pyarrow's ``to_numpy`` writes itself
        self.nan = not masked and self.values.dtype.kind == "f"

    def _widen(self, col: Any) -> None:
        """A narrow column's type made to hold ``col``'s values too (the stored type for nulls)."""
        import numpy as np
        import pyarrow.compute as pc

        if col.null_count:
            want = self.wide
            self.narrow = False
        else:
            span = pc.min_max(col)
            lo, hi = span["min"].as_py(), span["max"].as_py()
            if lo is None:  # (no rows)
                return
            have = np.iinfo(self.values.dtype)
            if have.min <= lo and hi <= have.max:
                return
            lo, hi = min(lo, have.min), max(hi, have.max)
            want = next((np.dtype(t) for t in (np.int8, np.int16, np.int32)
                         if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max), self.wide)
            self.narrow = want != self.wide
        if want != self.values.dtype:
            self.values = cast_into(self.values, self.alloc, want)

    def put(self, col: Any, at: int, k: int) -> None:
        import numpy as np

        if self.narrow:
            self._widen(col)
        if col.null_count and not self.nan:
            if self.mask is None:
                self.mask = np.zeros(len(self.values), dtype=bool)
            self.mask[at:at + k] = col.is_null().to_numpy(zero_copy_only=False)
            col = col.fill_null(False if self.values.dtype == bool else 0)
        self.values[at:at + k] = col.to_numpy(zero_copy_only=False)

    def grow(self, n: int, filled: int) -> None:
        """Room for ``n`` rows, the first ``filled`` kept."""
        import numpy as np

        values = self.alloc(n, self.values.dtype)
        values[:filled] = self.values[:filled]
        self.values = values
        if self.mask is not None:
            mask = np.zeros(n, dtype=bool)
            mask[:filled] = self.mask[:filled]
            self.mask = mask

    def cut(self, n: int) -> None:
        """Keep the first ``n`` rows (a copy: the rest of the allocation is given back)."""
        if n < len(self.values):
            self.values = cast_into(self.values[:n], self.alloc)
        if self.mask is not None and n < len(self.mask):
            self.mask = self.mask[:n].copy()

    def done(self) -> Any:
        import numpy as np
        import pandas as pd

        v, mask = self.values, self.mask
        # the sink lets go of its arrays: a column converted below is not held twice until every column is done
        self.values, self.mask = np.empty(0, v.dtype), None
        if self.masked:
            assert mask is not None
            return (pd.arrays.BooleanArray(v, mask) if v.dtype == bool else
                    pd.arrays.FloatingArray(v, mask) if v.dtype.kind == "f" else pd.arrays.IntegerArray(v, mask))
        if mask is None:
            return v
        if v.dtype == bool:
            out = v.astype(object)
            out[mask] = None
            return out
        out = cast_into(v, self.alloc, np.float64) if v.dtype.kind in "iu" else v
        out[mask] = np.nan
        return out


class _Codes:
    """A text column as a categorical: each batch's dictionary mapped onto one list of categories.

    ``stored``: the column is a dictionary in the files (categories in the
    order pyarrow unifies dictionaries, unused ones kept); else plain text
    read as dictionaries (categories: the values present, sorted).
    """

    def __init__(self, typ: Any, n: int, stored: bool, alloc: Alloc | None = None) -> None:
        import numpy as np

        #: where the codes are allocated (as :class:`_Numbers`' values)
        self.alloc: Alloc = alloc if alloc is not None else np.empty
        self.codes = self.alloc(n, np.int16)
        self.categories: dict[str, int] = {}
        self.stored, self.ordered = stored, bool(getattr(typ, "ordered", False))
        # the last dictionary and its categories' codes: partitions of one folder mostly share a dictionary
        self.last: Any = None
        self.lookup = np.zeros(1, np.int64)
        #: whether the last dictionary's codes are its indices (its values the first categories, in its order)
        self.same = False

    def put(self, col: Any, at: int, k: int) -> None:
        import numpy as np
        import pyarrow as pa

        if not pa.types.is_dictionary(col.type):
            col = col.dictionary_encode()
        if self.last is None or not col.dictionary.equals(self.last):
            cats = self.categories
            self.lookup = np.array([cats.setdefault(v, len(cats)) for v in col.dictionary.to_pylist()] or [0],
                                   np.int64)
            self.last = col.dictionary
            self.same = bool((self.lookup == np.arange(len(self.lookup))).all())
            if len(cats) > np.iinfo(self.codes.dtype).max:
                self.codes = cast_into(self.codes, self.alloc, np.int32)
        lookup = self.lookup
        idx = col.indices
        if col.null_count:
            nulls = col.is_null().to_numpy(zero_copy_only=False)
            codes = lookup[idx.fill_null(0).to_numpy(zero_copy_only=False)]
            codes[nulls] = -1
            self.codes[at:at + k] = codes
        elif len(lookup) == 1:  # one value (a run's id): no look-up per row
            self.codes[at:at + k] = lookup[0]
        elif self.same:  # the indices are the codes
            self.codes[at:at + k] = idx.to_numpy(zero_copy_only=False)
        else:
            self.codes[at:at + k] = lookup[idx.to_numpy(zero_copy_only=False)]

    def grow(self, n: int, filled: int) -> None:
        """Room for ``n`` rows, the first ``filled`` kept."""
        codes = self.alloc(n, self.codes.dtype)
        codes[:filled] = self.codes[:filled]
        self.codes = codes

    def cut(self, n: int) -> None:
        """Keep the first ``n`` rows (a copy: the rest of the allocation is given back)."""
        if n < len(self.codes):
            self.codes = cast_into(self.codes[:n], self.alloc)

    def done(self) -> Any:
        import numpy as np
        import pandas as pd

        values = list(self.categories)
        codes = self.codes
        # the sink lets go of its codes (they are copied into the type pandas keeps a categorical's codes in,
        # the smallest its categories allow, as ``from_codes`` would copy them: not held twice until every
        # column is done)
        self.codes = np.empty(0, codes.dtype)
        if not self.stored:  # the observed values, sorted
            # (look-ups indexed by the codes themselves, a null's -1 the last entry: no array of 8-byte
            # positions per row)
            seen = np.zeros(len(values) + 1, dtype=bool)
            seen[codes] = True
            keep = sorted((v for v, u in zip(values, seen[:-1], strict=True) if u))
            kind = _code_type(len(keep))
            new = np.full(len(values) + 1, -1, dtype=kind)  # the last entry: a null stays -1
            new[[self.categories[v] for v in keep]] = np.arange(len(keep))
            # (mode="wrap": a null's -1 is the last entry; a take into ``out`` in the default mode is buffered)
            codes, values = np.take(new, codes, out=self.alloc(len(codes), kind), mode="wrap"), keep
        elif codes.dtype != _code_type(len(values)):
            codes = cast_into(codes, self.alloc, _code_type(len(values)))
        return pd.Categorical.from_codes(codes, categories=pd.Index(values, dtype=object), ordered=self.ordered,
                                         validate=False)


def _code_type(levels: int) -> Any:
    """The type of a pandas categorical's codes with ``levels`` categories (pandas' own choice: the smallest
    signed type that holds them)."""
    import numpy as np
    import pandas as pd

    return pd.Categorical.from_codes(np.empty(0, np.int8), categories=pd.RangeIndex(levels), validate=False
                                     ).codes.dtype


def _sink(typ: Any, dtype: Any, n: int, text: bool, narrow: bool = False, alloc: Alloc | None = None) -> Any:
    """Where a column's batches go: ``typ`` its Arrow type, ``dtype`` the one pyarrow's conversion gives it;
    ``narrow``: an integer column in the smallest type that holds its values (:class:`_Numbers`); ``alloc``:
    where a number or text column's values are allocated (:data:`Alloc`, default ``numpy.empty``)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if text and dtype == np.dtype(object):
        return _Codes(typ, n, stored=False, alloc=alloc)
    if pa.types.is_dictionary(typ) and pa.types.is_string(typ.value_type) and isinstance(dtype, pd.CategoricalDtype):
        return _Codes(typ, n, stored=True, alloc=alloc)
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ):
        plain = np.dtype(typ.to_pandas_dtype())
        if dtype == plain:
            return _Numbers(typ, n, masked=False, narrow=narrow and pa.types.is_integer(typ), alloc=alloc)
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and getattr(dtype, "numpy_dtype", None) == plain:
            return _Numbers(typ, n, masked=True, alloc=alloc)  # Int64, Float64, boolean
    return _Chunks(typ)


@dataclass(frozen=True)
class FolderCheck:
    """What ``fomolab check`` found in a results folder (see :func:`check`).

    Attributes
    ----------
    path : Path
        The folder.
    manifest : dict or None
        Its manifest (None if it has none).
    state : FolderState
        Finished (checksums verified), damaged, uncommitted, foreign and stranded files.
    completeness : Completeness or None
        How much of the design has finished (None without a manifest).
    failures : int
        Runs recorded as failed and not since finished.
    writer : str or None
        The running writer's pid and host, if one holds the lock now.
    """

    path: Path
    manifest: dict[str, Any] | None
    state: FolderState
    completeness: Completeness | None
    failures: int
    writer: str | None

    @property
    def sound(self) -> bool:
        """A manifest, no damaged run and no foreign file in the table folders."""
        return self.manifest is not None and not self.state.damaged and not self.state.foreign

    @property
    def exit_code(self) -> int:
        """0 sound and complete; 1 sound but unfinished runs; 2 damaged, foreign files or no manifest."""
        if not self.sound:
            return 2
        return 0 if self.completeness is not None and self.completeness.complete else 1

    def lines(self) -> list[str]:
        """The report, one finding per line."""
        m, st = self.manifest, self.state
        spec = (m or {}).get("source", "SPEC")
        fix = f"fomolab run {spec} --out {self.path}"
        out = []
        if m is None:
            out.append(f"manifest: missing; {len(st.commits)} finished runs have commit records: rebuild it with "
                       f"`fomolab run SPEC --out {self.path}` (the spec that wrote the folder, with its --seed)")
        else:
            versions = ", ".join(sorted({str(r.get("fomolab_version")) for r in st.commits.values()}))
            out.append(f"experiment: {m.get('experiment')} (spec {spec}; fomolab "
                       f"{versions or m.get('fomolab_version')})")
            c = self.completeness
            assert c is not None  # with a manifest
            out.append(f"finished: {c.describe()}" + (f" ({c.runs_expected} runs)" if c.complete else ""))
            missing = c.runs_expected - c.runs_finished
            if missing > 0:
                out.append(f"missing: {_n(missing, 'run')} not finished; `{fix}` computes them")
        if m is not None and m.get("layout", 1) < LAYOUT:
            out.append(f"layout: written by an earlier fomolab, without commit records; `{fix}` records them "
                       "(finished runs are kept)")
        if self.failures:
            out.append(f"failed: {_n(self.failures, 'run')} raised (see {self.path / 'failures'}); "
                       f"`{fix}` retries them")
        if st.damaged:
            shown = "; ".join(f"{rid}: {why}" for rid, why in list(st.damaged.items())[:5])
            more = f"; and {len(st.damaged) - 5} more" if len(st.damaged) > 5 else ""
            out.append(f"damaged: {st.damage_summary()}: {shown}{more}; `{fix}` recomputes them")
        if st.foreign:
            shown = ", ".join(str(p.relative_to(self.path)) for p in st.foreign[:5])
            more = f", and {len(st.foreign) - 5} more" if len(st.foreign) > 5 else ""
            out.append(f"foreign: {_n(len(st.foreign), 'file')} fomolab did not write in the table folders "
                       f"({shown}{more}); readers ignore them; move them out of the folder")
        if st.uncommitted:
            out.append(f"uncommitted: {_n(len(st.uncommitted), 'partition')} of interrupted writes "
                       "(ignored by readers, overwritten when their runs are computed)")
        if st.stranded:
            out.append(f"stranded: {', '.join(p.name for p in st.stranded)} (left by a writer killed while creating "
                       "the folder; removed by the next run)")
        if self.writer:
            out.append(f"writer: running now ({self.writer}); the folder is changing")
        verdict = {0: "sound and complete", 1: "sound, not finished", 2: "NOT sound"}[self.exit_code]
        out.append(f"state: {verdict}")
        return out


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'s' * (k != 1)}"


def check(path: str | Path) -> FolderCheck:
    """Check a results folder: finished, missing, damaged and foreign files (writes nothing).

    Every partition's checksum is verified against its run's commit record.

    Raises
    ------
    ResultsError
        If ``path`` is not a folder, or not a fomolab results folder.
    """
    from fomolab.store import writer_active

    store = Store(path)
    p = store.path
    if not p.is_dir():
        raise ResultsError(f"{p}: no such folder (give a results folder written by `fomolab run`)")
    has = store.has_manifest()
    if not has and not store.finished():
        raise ResultsError(f"{p}: has no manifest.json and no commit records: not a fomolab results folder")
    state = store.inspect(checksums=True)
    manifest = completeness = None
    if has:
        res = Results(p)
        manifest = res.manifest
        res.__dict__["state"] = state  # the verified state, not a second size-only pass
        completeness = res.completeness
    fails = [f for f in (p / "failures").glob("*.parquet") if f.stem not in state.commits] \
        if (p / "failures").is_dir() else []
    return FolderCheck(path=p, manifest=manifest, state=state, completeness=completeness,
                       failures=sum(1 for f in fails if f not in state.foreign), writer=writer_active(p))
