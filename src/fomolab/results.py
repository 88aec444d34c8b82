"""Results: a results folder's tables as DataFrames.

``Results(path)`` reads lazily: each table is loaded (and cached) the first
time it is asked for, from the partitions of finished runs only, in a fixed
order (point, replicate, arm as in the spec), so the same experiment gives the
same DataFrames whatever executor wrote them.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from fomolab.errors import ResultsError
from fomolab.store import Store

__all__ = ["Results"]

#: Columns stored as strings that Results turns into categoricals.
CATEGORICAL = ("run_id", "arm", "segment", "kind", "product", "tactic", "host_kind")


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
            raise ResultsError(f"{self.path}: no manifest.json; not a fomolab results folder "
                               f"(create one with `fomolab run SPEC --out {self.path}`)")

    def __repr__(self) -> str:
        m = self.manifest
        return (f"Results({str(self.path)!r}: experiment {m.get('experiment')!r}, "
                f"{len(self._run_ids)} of {m.get('runs')} runs finished)")

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return self._store.manifest()

    @cached_property
    def experiment(self):
        """The :class:`~fomolab.spec.Experiment` recorded in the manifest."""
        from fomolab.spec import parse_spec

        return parse_spec(self.manifest["spec"], source=str(self.path / "manifest.json"), resolve=False)

    @cached_property
    def _run_ids(self) -> list[str]:
        ids = self._store.finished()
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
        files = sorted((self.path / "failures").glob("*.parquet"))
        if not files:
            return pd.DataFrame(columns=["run_id", "arm", "replicate", "point", "seed", "params", "error", "traceback"])
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """Per arm: runs, viewers and buyers per run, conversion, median time to
        purchase (pooled over buyers), units and revenue per run."""
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
        return out.loc[order]

    def _repr_html_(self) -> str:
        return f"<p>{self!r}</p>" + self.summary().to_html(float_format=lambda x: f"{x:,.4g}")
