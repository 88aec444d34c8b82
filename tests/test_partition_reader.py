"""The partition reader gives, for any set of Parquet partitions, the frame of pyarrow's own dataset
conversion: values, dtypes, categories and their order, index; whichever way it decodes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from fomolab import results
from fomolab._spill import Spill
from fomolab.results import CATEGORICAL, _compact_frame


def reference(files: list[str], columns: list[str] | None = None, filter: pc.Expression | None = None) -> pd.DataFrame:
    """``dataset(...).to_table().to_pandas()``, the text columns of :data:`CATEGORICAL` then categoricals."""
    df = ds.dataset(files, format="parquet").to_table(columns=columns, filter=filter).to_pandas()
    for c in CATEGORICAL:
        if c in df.columns and not isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype("category")
    return df


def same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.index.equals(want.index) and list(got.dtypes) == list(want.dtypes)
    for c in got.columns:
        if isinstance(want[c].dtype, pd.CategoricalDtype):  # the order of the categories too
            assert list(got[c].cat.categories) == list(want[c].cat.categories), c
            assert got[c].cat.ordered == want[c].cat.ordered


def partition(k: int, n: int, rng: np.random.Generator) -> pa.Table:
    """One run's partition: stored dictionaries (their categories differing between runs, some unused),
    plain text, integers with nulls in some runs, a masked integer, floats with nulls, booleans."""
    kinds = ["arrive", "leave", "purchase", "tactic_start"]
    cats = kinds[k % 4:] + kinds[:k % 4] + ["unused"]  # each run's own order, one category never used
    seg = pd.Categorical(rng.choice(["a", "b", "c"], n), categories=["c", "b", "a", f"only{k % 3}"])
    shopper = pd.array(rng.integers(0, 50, n), dtype="int64")
    df = pd.DataFrame({
        "run_id": pd.Categorical([f"r{k:03d}"] * n),
        "kind": pd.Categorical(rng.choice(kinds, n), categories=cats),
        "arm": rng.choice(["sale", "control"], n).astype(object),  # plain text, made categorical
        "config": [f"{{'k': {i % 3}}}" for i in range(n)],  # plain text kept as text
        "segment": seg,
        "shopper_id": shopper,
        "units": pd.array(rng.integers(0, 3, n), dtype="Int64"),
        "value": rng.random(n),
        "boosted": rng.random(n) < 0.5,
    })
    df.loc[df.index[:: 7], "value"] = np.nan
    df.loc[df.index[1:: 5], "units"] = pd.NA
    df["segment"] = df["segment"].where(np.arange(n) % 11 != 3)  # nulls in a dictionary column
    tab = pa.Table.from_pandas(df, preserve_index=False)
    if k % 3 == 1:  # nulls in an integer column of some runs only: float64 with NaN, as pyarrow gives it
        ids = tab.column("shopper_id").to_numpy()
        tab = tab.set_column(tab.schema.get_field_index("shopper_id"), "shopper_id",
                             pa.array(ids, mask=np.arange(n) % 4 == 0, type=pa.int64()))
    return tab


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> list[str]:
    """Forty partitions (more than the reader decodes ahead), two of them empty, one in several row groups."""
    d = tmp_path_factory.mktemp("parts")
    rng = np.random.default_rng(7)
    files = []
    for k in range(40):
        n = 900 if k == 20 else int(rng.integers(1, 60))
        tab = partition(k, n, rng)
        path = d / f"{k:03d}.parquet"
        pq.write_table(tab.slice(0, 0) if k in (3, 17) else tab, path, row_group_size=250)
        files.append(str(path))
    return files


@pytest.fixture(params=["whole", "batches"])
def mode(request, monkeypatch):
    """Row groups decoded whole by the threads, or (row groups above a few rows) batch by batch."""
    if request.param == "batches":
        monkeypatch.setattr(results, "_SMALL", 40)
    return request.param


@pytest.fixture(params=["memory", "spill"])
def spill(request, tmp_path):
    """Columns allocated in memory, or in a spill's files mapped into memory (its pages unmapped as often
    as the thread can, while the reader fills them)."""
    if request.param == "memory":
        yield None
        return
    with Spill(tmp_path, every_s=0.002) as s:
        yield s


def spilled(df: pd.DataFrame, spill: Spill | None) -> None:
    """With a spill, the frame's number columns and categoricals' codes are arrays over its mappings."""
    if spill is None:
        return
    import mmap

    for c in df.columns:
        col = df[c]
        categorical = isinstance(col.dtype, pd.CategoricalDtype)
        if not len(col) or col.dtype == object or (isinstance(col.dtype, pd.api.extensions.ExtensionDtype)
                                                     and not categorical):
            continue  # (text kept as text; a masked array's mask is in memory)
        values = col.cat.codes.to_numpy() if categorical else col.to_numpy()
        if True:
            base = values
            while getattr(base, "base", None) is not None and not isinstance(base, memoryview):
                base = base.base
            assert isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap), c


COLUMNS = [None, ["shopper_id", "kind", "value"], ["arm", "config", "units"], ["segment"], []]
FILTERS = [None, pc.field("kind") == "purchase", ~pc.field("kind").isin(pa.array(["arrive", "leave"])),
           pc.field("value") > 2.0]


@pytest.mark.parametrize("columns", COLUMNS, ids=lambda c: "all" if c is None else ",".join(c) or "none")
@pytest.mark.parametrize("filter", FILTERS, ids=["no-filter", "one-kind", "not-two-kinds", "nothing"])
def test_reader_gives_pyarrows_conversion(folder, mode, columns, filter, spill):
    got = _compact_frame(folder, columns, filter, spill=spill)
    if columns == []:  # rows, no columns
        assert got.shape == (len(reference(folder, ["value"], filter)), 0)
        return
    same(got, reference(folder, columns, filter))
    spilled(got, spill)


DROPS = [("kind", ["arrive", "leave"]), ("segment", ["a"]), ("arm", ["sale"]), ("config", ["{'k': 1}"]),
         ("kind", [])]


@pytest.mark.parametrize("columns", COLUMNS, ids=lambda c: "all" if c is None else ",".join(c) or "none")
@pytest.mark.parametrize("drop", DROPS, ids=["kinds", "segment-nulls", "plain-text", "not-categorical", "none"])
@pytest.mark.parametrize("filter", [None, pc.field("value") > 0.5], ids=["alone", "and-filter"])
def test_dropped_values_give_the_filter_that_leaves_them_out(folder, mode, columns, drop, filter, spill):
    """Rows left out by their values' entries in each dictionary: the frame of the filter ``~isin`` (a null
    kept), whether or not the column is among those read, also with another filter."""
    keep = ~pc.field(drop[0]).isin(pa.array(drop[1], pa.string()))
    keep = keep if filter is None else keep & filter
    got = _compact_frame(folder, columns, filter, drop=drop, spill=spill)
    want = reference(folder, columns if columns != [] else ["value"], keep)
    if columns == []:  # rows, no columns
        assert got.shape == (len(want), 0)
        return
    same(got, want)
    spilled(got, spill)
    if drop[1] and columns is not None and drop[0] in columns:
        assert len(want) < len(reference(folder, ["value"], filter)) and not want[drop[0]].isin(drop[1]).any()
    if drop[0] == "segment" and columns is None:
        assert want.segment.isna().any()  # nulls kept


def test_reader_cases_are_reached(folder):
    df = _compact_frame(folder, None)
    assert df.shopper_id.dtype == np.float64 and df.shopper_id.isna().any()  # nulls in an integer column
    assert df.units.dtype == "Int64" and df.units.isna().any()
    assert "unused" in df.kind.cat.categories and df.segment.isna().any()
    assert list(df.arm.cat.categories) == ["control", "sale"] and df.config.dtype == object
    assert max(pq.read_metadata(f).num_row_groups for f in folder) > 1
    assert min(pq.read_metadata(f).num_rows for f in folder) == 0


def test_footer_row_counts_are_kept_for_the_next_read(folder):
    rows: dict[str, tuple[int, ...]] = {}
    first = _compact_frame(folder[:9], ["value"], rows=rows)
    assert rows == {f: tuple(pq.read_metadata(f).row_group(i).num_rows
                             for i in range(pq.read_metadata(f).num_row_groups)) for f in folder[:9]}
    same(_compact_frame(folder[:9], ["value"], rows=rows), first)


def test_empty_partitions_only(folder):
    empty = [folder[3], folder[17]]
    same(_compact_frame(empty, ["kind", "value"]), reference(empty, ["kind", "value"]))


def test_partitions_that_differ_are_refused_for_the_caller_to_promote(folder, tmp_path):
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"kind": pa.array(["a"]), "value": pa.array([1], pa.int32())}), other)
    with pytest.raises(ValueError, match="differ"):
        _compact_frame([*folder[:2], str(other)], ["kind", "value"])
    fewer = tmp_path / "fewer.parquet"
    pq.write_table(pa.table({"kind": pa.array(["a"])}), fewer)
    with pytest.raises(ValueError, match="differ"):
        _compact_frame([*folder[:2], str(fewer)], ["kind", "value"])


def test_results_folder_reads_equal_pyarrows_conversion(tmp_path):
    """Through :meth:`Results.table`: a finished folder's shoppers and filtered events."""
    from fomolab import run

    res = run(Path(__file__).resolve().parents[1] / "experiments/lightning_sale.toml", tmp_path / "r", replicates=3)
    files = [str(res.path / "events" / f"{r}.parquet") for r in res.runs.run_id.astype(str)]
    keep = ~pc.field("kind").isin(pa.array(["arrive", "leave"]))
    want = reference(files, ["run_id", "time_s", "kind", "product"], keep)
    same(res.events_except(["arrive", "leave"], ["run_id", "time_s", "kind", "product"]), want)


def test_fact_tables_read_whole_once_then_copied(tmp_path, monkeypatch):
    """Columns of a fact table read whole before are those a read of the columns gives, and a copy."""
    from fomolab import run
    from fomolab.results import Results

    res = run(Path(__file__).resolve().parents[1] / "experiments/lightning_sale.toml", tmp_path / "r", replicates=2)
    fresh = Results(res.path)
    cols = ["run_id", "stream", "product", "slot_start_s", "slot_end_s"]
    want = Results(res.path).table("products", cols[:3])
    untouched = Results(res.path).table("products")
    whole = fresh.table("products")
    reads = []
    monkeypatch.setattr(Results, "_read", lambda self, *a, **k: reads.append(a) or pd.DataFrame())
    same(fresh.table("products", cols[:3]), want)
    assert reads == []  # served from the whole table, not read again
    got = fresh.table("products")
    got.loc[0, "slot_start_s"] = -1.0  # a caller's change stays in its copy
    same(fresh.table("products"), whole)
    same(whole, untouched)
    assert fresh.table("products", ["no_such_column"]).empty and len(reads) == 1  # not served: read as asked


def test_fact_tables_from_the_folder_index_equal_the_partitions(tmp_path):
    """The index's fact files (a row group per run) read in the folder's order give the partitions' frames."""
    import copy
    import json

    from fomolab import run
    from fomolab.aggregates import FACT_TABLES, INDEX, index_current, index_facts
    from fomolab.results import Results

    res = run(Path(__file__).resolve().parents[1] / "experiments/lightning_sale.toml", tmp_path / "r", replicates=3)
    info = json.loads((res.path / INDEX / "index.json").read_text())
    assert sorted(info["facts"]["files"]) == sorted(FACT_TABLES)
    assert info["facts"]["runs"] == sorted(res.state.commits) != Results(res.path)._run_ids  # another order
    tactics = Results(res.path).table("tactics")
    assert tactics.run_id.nunique() < len(res.runs)  # the control runs have no tactics (their text columns: nulls)
    keep = pc.field("tactic") == "lightning_sale"
    for name in FACT_TABLES:
        indexed, plain = Results(res.path), Results(res.path)
        plain.__dict__["_fact_index"] = {}  # the partitions
        assert indexed._fact_index and name in indexed._fact_index["files"]
        same(indexed.table(name), plain.table(name))
        cols = list(plain.table(name).columns[::-2])
        same(Results(res.path).table(name, cols), Results(res.path, replicates=3).table(name, cols))
        if name in ("tactics", "windows"):
            same(indexed.table(name, filter=keep), plain.table(name, filter=keep))
    some = Results(res.path, replicates=2)  # not all the folder's runs: the partitions
    assert some._fact_index == {}
    commits = copy.deepcopy(res.state.commits)
    current = index_current(res.path, commits)
    assert current is not None and index_facts(res.path, current, commits) is not None
    next(iter(commits.values()))["partitions"]["windows"]["sha256"] = "0" * 64  # a run's facts changed
    assert index_facts(res.path, current, commits) is None


@pytest.mark.parametrize("small", [False, True])  # row groups decoded whole by threads, or batch by batch
def test_narrow_integers_are_the_values_in_the_smallest_type_that_holds_them(tmp_path, monkeypatch, small, spill):
    if not small:
        monkeypatch.setattr(results, "_SMALL", 4)
    files = []
    # the first runs' values fit a byte; a later run's need two, then four bytes; one run has a null
    for k, (lo, hi) in enumerate([(0, 100), (-5, 120), (0, 40_000), (0, 90), (-3, 3_000_000_000 // 2)]):
        df = pd.DataFrame({"replicate": np.linspace(lo, hi, 50).astype(np.int64),
                           "point": np.full(50, k, np.int64), "shopper_id": np.arange(50, dtype=np.int64)})
        path = tmp_path / f"r{k}.parquet"
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=20)
        files.append(str(path))
    want = reference(files)
    got = _compact_frame(files, None, narrow=("replicate", "point"), spill=spill)
    assert (got.replicate.dtype, got.point.dtype, got.shopper_id.dtype) == (np.int32, np.int8, np.int64)
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_dtype=False)
    spilled(got, spill)  # (the widened columns too)
    got = _compact_frame(files[:2], None, narrow=("replicate", "point", "shopper_id"), spill=spill)
    assert list(got.dtypes) == [np.int8] * 3
    pd.testing.assert_frame_equal(got, reference(files[:2]), check_exact=True, check_dtype=False)
    # a null makes the column what pyarrow gives it (float64, NaN), the values before it kept
    df = pd.DataFrame({"replicate": pd.array([1, None, 3], dtype="Int64"), "point": [0, 0, 0],
                       "shopper_id": [7, 8, 9]})
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False).cast(
        pa.schema([("replicate", pa.int64()), ("point", pa.int64()), ("shopper_id", pa.int64())])),
        tmp_path / "nulls.parquet")
    with_null = [files[0], str(tmp_path / "nulls.parquet")]
    same(_compact_frame(with_null, None, narrow=("replicate",), spill=spill), reference(with_null))


def test_results_read_narrow_integers_as_the_values_stored(tmp_path):
    from fomolab.stats._example import example_results

    res = example_results()
    cols = ["run_id", "replicate", "point", "shopper_id", "arrival_s"]
    wide = res.viewers(cols)
    narrow = res.viewers(cols, narrow=("replicate", "point", "shopper_id"))
    assert narrow.replicate.dtype.itemsize == 1 and narrow.shopper_id.dtype.itemsize < 8
    pd.testing.assert_frame_equal(narrow, wide, check_exact=True, check_dtype=False)
    assert res.table("shoppers", cols, narrow=["point"]).point.dtype == np.int8
