"""Per-visit tables read compactly: the same values and dtypes as pyarrow's own conversion, text as
categoricals with one- or two-byte codes, only the rows a filter keeps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from fomolab import run
from fomolab.results import CATEGORICAL, Results

ROOT = Path(__file__).resolve().parents[1]
#: Tables read from the run partitions (the others come from the folder index).
PARTITIONED = ("shoppers", "events", "products", "tactics", "windows", "product_results", "streams", "stream_series")


@pytest.fixture(scope="module")
def flagship(tmp_path_factory):
    return run(ROOT / "experiments/lightning_sale.toml", tmp_path_factory.mktemp("c") / "r", replicates=2)


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    return run(ROOT / "experiments/virtual_host.toml", tmp_path_factory.mktemp("m") / "r", replicates=1)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    return run(ROOT / "experiments/reactive_host.toml", tmp_path_factory.mktemp("h") / "r", replicates=1)


def reference(res: Results, name: str, columns: list[str] | None = None,
              run_ids: list[str] | None = None) -> pd.DataFrame:
    """The table as pyarrow converts the concatenated partitions, text columns then made categorical."""
    ids = run_ids if run_ids is not None else [str(r) for r in res.runs.run_id]
    files = [res.path / name / f"{rid}.parquet" for rid in ids if (res.path / name / f"{rid}.parquet").is_file()]
    if not files:
        return pd.DataFrame()
    df = pa.concat_tables([pq.read_table(f, columns=columns) for f in files], promote_options="default").to_pandas()
    for c in CATEGORICAL:
        if c in df.columns:
            df[c] = df[c].astype("category")
    if name == "events" and "shopper_id" in df.columns:
        df["shopper_id"] = df["shopper_id"].astype("Int64")
    return df


@pytest.mark.parametrize("which", ["flagship", "market", "host"])
def test_tables_equal_pyarrows_own_conversion(which, request):
    res = request.getfixturevalue(which)
    ids = [str(r) for r in res.runs.run_id]
    seen = 0
    for name in PARTITIONED:
        want = reference(res, name)
        if want.empty:
            continue
        seen += 1
        pd.testing.assert_frame_equal(res.table(name), want, check_exact=True)
        cols = list(want.columns[::-2])  # some columns, in another order, of some runs
        pd.testing.assert_frame_equal(res.table(name, cols, run_ids=ids[1::2]),
                                      reference(res, name, cols, ids[1::2]), check_exact=True)
        assert res.table(name, []).shape == (len(want), 0)  # the rows, no columns
    assert seen >= 5


def test_text_columns_are_categoricals_with_small_codes(flagship):
    sh = flagship.table("shoppers")
    for c in ("run_id", "arm", "segment"):
        assert isinstance(sh[c].dtype, pd.CategoricalDtype) and sh[c].cat.codes.dtype.itemsize == 1
    assert sh["shopper_id"].dtype == "int64" and sh["replicate"].dtype == "int64"
    ev = flagship.table("events")
    assert ev.shopper_id.dtype == "Int64" and ev.shopper_id.isna().any()  # missing for non-viewer events
    assert ev.shopper_id.dropna().min() >= 0
    # no Python string per row: the whole frame is about its numbers' size
    assert sh.memory_usage(deep=True).sum() < 1.2 * sh.select_dtypes("number").memory_usage().sum()


@pytest.mark.parametrize("which", ["flagship", "host"])
def test_a_filter_reads_only_the_rows_it_keeps(which, request):
    res = request.getfixturevalue(which)
    ev = res.events
    for kind in ("purchase", "host_action", "tactic_start"):
        got = res.table("events", ["run_id", "time_s", "shopper_id", "tactic"], filter=pc.field("kind") == kind)
        want = ev.loc[ev.kind == kind, ["run_id", "time_s", "shopper_id", "tactic"]].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    late = res.viewers(["run_id", "arrival_s"], filter=pc.field("arrival_s") > 1000.0)
    sh = res.shoppers
    want = sh.loc[sh.arrival_s > 1000.0, ["run_id", "arrival_s"]].reset_index(drop=True)
    assert len(want) > 0
    pd.testing.assert_frame_equal(late, want, check_exact=True)
    none = res.table("events", ["time_s"], filter=pc.field("kind") == "no such kind")
    assert none.empty and list(none.columns) == ["time_s"]
