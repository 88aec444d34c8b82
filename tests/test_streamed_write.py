"""A run's big tables are written a row group at a time from its arrays, never built whole.

The engine hands ``shoppers`` and ``events`` to the store as
:class:`fomolab.recorder.Columns`; the store converts and writes them one
Parquet row group at a time.  The files must be those a single
``pyarrow.parquet.write_table`` of the whole DataFrames writes, byte for byte,
and the stored aggregates those computed from the DataFrames.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fomolab.aggregates import aggregate
from fomolab.design import expand
from fomolab.engine import simulate
from fomolab.recorder import Columns, Tables
from fomolab.spec import load_experiment
from fomolab.store import Store, write_parquet

#: One stream with a sell-out and tactic events; a marketplace (visits are not viewers); host actions and retention.
SPECS = ("scarcity", "marketplace", "retention")


def _run(root, name: str) -> Tables:
    run = next(iter(expand(load_experiment(root / "tests/golden/specs" / f"{name}.toml"))))
    return simulate(run)


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("table", ["shoppers", "events"])
def test_slices_written_as_row_groups_are_the_file_of_the_whole_table(root, tmp_path, name, table):
    tables = _run(root, name)
    src = tables.source(table)
    assert isinstance(src, Columns)
    rows = max(1, len(src) // 7)  # several row groups, the last one short
    write_parquet(src, tmp_path / "sliced.parquet", rows=rows)
    whole = getattr(tables, table)  # built now, as before
    pq.write_table(pa.Table.from_pandas(whole, preserve_index=False), tmp_path / "whole.parquet",
                   row_group_size=rows)
    assert pq.ParquetFile(tmp_path / "sliced.parquet").metadata.num_row_groups >= 7
    assert (tmp_path / "sliced.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "sliced.parquet"), whole, check_exact=True)


@pytest.mark.parametrize("name", SPECS)
def test_a_slice_of_the_columns_is_the_slice_of_the_table(root, name):
    tables = _run(root, name)
    src = {t: tables.source(t) for t in ("shoppers", "events")}
    parts = {t: pd.concat(list(s.frames(max(1, len(s) // 5))), ignore_index=True) for t, s in src.items()}
    for t, df in parts.items():
        pd.testing.assert_frame_equal(df, getattr(tables, t), check_exact=True)


@pytest.mark.parametrize("name", SPECS)
def test_aggregates_from_the_arrays_equal_those_from_the_tables(root, name):
    lazy = _run(root, name)
    got = aggregate(lazy)
    assert lazy.source("shoppers") is not None and lazy.source("events") is not None  # not built for it
    built = Tables(shoppers=lazy.shoppers, events=lazy.events, runs=lazy.runs)
    for k, df in aggregate(built).items():
        pd.testing.assert_frame_equal(got[k], df, check_exact=True)


def test_the_store_writes_a_run_without_building_its_big_tables(root, tmp_path):
    tables = _run(root, "scarcity")
    store = Store(tmp_path / "r")
    with store.lock():
        store.create({"experiment": "test"})
        store.write_run("0" * 20, tables)
    assert tables.source("shoppers") is not None and tables.source("events") is not None
    for t in ("shoppers", "events"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "r" / t / f"{'0' * 20}.parquet"),
                                      getattr(tables, t), check_exact=True)


def test_reading_one_big_table_builds_both(root):
    """They share the run's arrays: a change made through one must not show in the other, built later."""
    tables = _run(root, "scarcity")
    shoppers = tables.shoppers
    assert tables.source("events") is None
    ids = tables.events.shopper_id.copy()
    shoppers["shopper_id"] += 10**6
    pd.testing.assert_series_equal(tables.events.shopper_id, ids)


@pytest.mark.parametrize("name", ["scarcity", "marketplace"])  # two segments each
def test_sales_count_each_purchase_under_its_buyers_segment(root, name):
    tables = _run(root, name)
    sales = aggregate(tables)["sales"]
    sh, ev = tables.shoppers, tables.events
    buys = ev[ev.kind == "purchase"].merge(sh[["shopper_id", "segment"]].drop_duplicates("shopper_id"),
                                           on="shopper_id", how="left", validate="many_to_one")
    want = buys.groupby(["segment", "product"], observed=True).agg(purchases=("time_s", "size"),
                                                                     spend=("value", "sum"))
    got = sales.groupby(["segment", "product"], observed=True).agg(purchases=("purchases", "sum"),
                                                                    spend=("spend", "sum"))
    assert len(want) > 1 and want.purchases.sum() == len(buys) > 0
    pd.testing.assert_series_equal(got.purchases, want.purchases, check_dtype=False)
    pd.testing.assert_series_equal(got.spend, want.spend, rtol=1e-12)


def test_tables_pickle_with_their_big_tables_built(root):
    import pickle

    tables = _run(root, "scarcity")
    back = pickle.loads(pickle.dumps(tables))
    assert back.source("shoppers") is None and back.source("events") is None
    for t in ("shoppers", "events", "runs"):
        pd.testing.assert_frame_equal(getattr(back, t), getattr(tables, t), check_exact=True)


def test_a_built_table_is_also_written_a_row_group_at_a_time(root, tmp_path):
    """A spec whose tables are built before the write (``[shopper]`` adds columns) gets the same files."""
    tables = _run(root, "shopper")
    assert tables.source("shoppers") is None  # the shopper's outcomes built the tables
    for t in ("shoppers", "events"):
        df = getattr(tables, t)
        rows = max(1, len(df) // 5)
        write_parquet(df, tmp_path / f"{t}.sliced.parquet", rows=rows)
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / f"{t}.whole.parquet",
                       row_group_size=rows)
        assert pq.ParquetFile(tmp_path / f"{t}.sliced.parquet").metadata.num_row_groups >= 5
        assert (tmp_path / f"{t}.sliced.parquet").read_bytes() == (tmp_path / f"{t}.whole.parquet").read_bytes()
