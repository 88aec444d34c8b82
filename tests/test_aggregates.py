"""Stored per-run aggregates and the folder index: what they hold, and when they are used."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from fomolab import run
from fomolab.aggregates import INDEX, aggregate, index_current, read_index
from fomolab.cli import main
from fomolab.results import Results, check

from helpers import ROOT


@pytest.fixture(scope="module")
def flagship(tmp_path_factory):
    return run(ROOT / "experiments/lightning_sale.toml", tmp_path_factory.mktemp("a") / "r", replicates=2)


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    return run(ROOT / "experiments/virtual_host.toml", tmp_path_factory.mktemp("m") / "r", replicates=1)


@pytest.mark.parametrize("which", ["flagship", "market"])
def test_aggregates_add_up_to_the_run_tables(which, request):
    res = request.getfixturevalue(which)
    sh, runs = res.shoppers, res.runs.set_index(res.runs.run_id.astype(str))
    ex, sa, pt = (res.table(t) for t in ("exposure", "sales", "purchase_times"))
    buys = res.events[res.events.kind == "purchase"]
    for rid, g in sh.groupby(sh.run_id.astype(str), observed=True):
        e, s, p = (d[d.run_id.astype(str) == rid] for d in (ex, sa, pt))
        a, d, f = g.arrival_s.to_numpy(), g.departure_s.to_numpy(), g.first_purchase_s.to_numpy()
        stop = np.where(np.isnan(f), d, np.minimum(f, d))
        assert e.arrivals.sum() == len(g)
        assert e.first_purchases.sum() == int((~np.isnan(f)).sum())
        assert e.left_without_buying.sum() == int(np.isnan(f).sum())
        assert e.watch_s.sum() == pytest.approx((d - a).sum(), rel=1e-9)
        assert e.at_risk_s.sum() == pytest.approx((stop - a).sum(), rel=1e-9)
        # every bin lists every segment, bins tile the stream
        assert len(e) == e.segment.nunique() * e.bin_start_s.nunique()
        b = buys[buys.run_id.astype(str) == rid]
        assert s.purchases.sum() == len(b) == runs.loc[rid, "units_sold"]
        assert s.spend.sum() == pytest.approx(runs.loc[rid, "revenue"], rel=1e-12)
        per_product = b.groupby(b["product"].astype(str), observed=True).size()
        got = s.groupby(s["product"].astype(str), observed=True).purchases.sum()
        pd.testing.assert_series_equal(got.sort_index(), per_product.sort_index(), check_names=False)
        assert len(p) == runs.loc[rid, "buyers"]
        assert np.all(np.diff(p.time_to_purchase_s.to_numpy()) >= 0)
        assert p.time_to_purchase_s.median() == pytest.approx(runs.loc[rid, "median_time_to_purchase_s"],
                                                              rel=1e-12)
    # watch time per bin: a visit that spans a bin edge is split at it
    e = ex[ex.run_id == ex.run_id.iloc[0]]
    assert (e.watch_s <= (e.bin_end_s - e.bin_start_s) * len(sh) + 1e-6).all()


def test_aggregate_of_tables_read_back_equals_the_stored_one(flagship):
    from fomolab.recorder import Tables

    rid = str(flagship.runs.run_id.iloc[1])
    t = Tables(shoppers=flagship.table("shoppers", run_ids=[rid]), events=flagship.table("events", run_ids=[rid]),
               runs=flagship.table("runs", run_ids=[rid]))
    for name, df in aggregate(t).items():
        stored = flagship.table(name, run_ids=[rid])
        pd.testing.assert_frame_equal(df.astype(dict.fromkeys(("run_id", "arm"), "category")).reset_index(drop=True),
                                      stored, check_categorical=False, check_exact=True)


def _drop_index(res: Results) -> Results:
    shutil.rmtree(res.path / INDEX)
    return Results(res.path)


@pytest.mark.parametrize("which", ["flagship", "market"])
def test_summary_and_runs_from_the_index_equal_those_from_the_partitions(which, request, tmp_path):
    src = request.getfixturevalue(which)
    shutil.copytree(src.path, tmp_path / "f")
    res = Results(tmp_path / "f")
    assert index_current(res.path, res.state.commits) is not None
    summary, runs = res.summary(), Results(res.path).runs
    plain = _drop_index(res)
    assert read_index(plain.path, plain.state.commits, "runs") is None
    pd.testing.assert_frame_equal(summary, plain.summary(), check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(runs, plain.runs, check_exact=True)


def test_a_stale_index_is_not_used_and_the_writer_brings_it_up_to_date(tmp_path):
    spec = ROOT / "experiments/lightning_sale.toml"
    out = tmp_path / "r"
    res = run(spec, out, replicates=1)
    want = res.summary()
    info = json.loads((out / INDEX / "index.json").read_text())
    # an index that names another version of a run is not used ...
    rid = next(iter(info["runs"]))
    info["runs"][rid] = "0" * 32
    (out / INDEX / "index.json").write_text(json.dumps(info))
    runs_file = out / INDEX / info["files"]["runs"]
    pd.read_parquet(runs_file).assign(viewers=0).to_parquet(runs_file)  # wrong numbers, if it were read
    fresh = Results(out)
    assert read_index(out, fresh.state.commits, "runs") is None
    pd.testing.assert_frame_equal(fresh.summary(), want, check_exact=False, rtol=1e-12)
    # ... and the next invocation rewrites it, adding the new runs, removing the old files
    res = run(spec, out, replicates=2)
    assert index_current(out, res.state.commits) is not None
    assert len(json.loads((out / INDEX / "index.json").read_text())["runs"]) == 8
    assert len(list((out / INDEX).glob("runs.*.parquet"))) == 1
    pd.testing.assert_frame_equal(Results(out).runs, _drop_index(Results(out)).runs, check_exact=True)


def test_the_results_a_run_returns_read_the_index_it_has_just_brought_up_to_date(tmp_path):
    spec = ROOT / "experiments/lightning_sale.toml"
    out = tmp_path / "r"
    run(spec, out, replicates=1)
    res = run(spec, out, replicates=2)  # extended: the index is rewritten with the new runs
    assert res._written_index == index_current(out, res.state.commits)
    summary = res.summary()
    assert summary.runs.tolist() == [2] * 4
    pd.testing.assert_frame_equal(summary, _drop_index(Results(out)).summary(), check_exact=False, rtol=1e-12)
    # asked for fewer replicates than the folder holds: the index (of all its runs) is not theirs
    first = run(spec, out, replicates=1)
    assert first._written_index is not None and first.summary().runs.tolist() == [1] * 4
    pd.testing.assert_frame_equal(first.summary(), Results(out, replicates=1).summary(), check_exact=True)


def test_the_results_a_rerun_returns_do_not_check_the_index_again(tmp_path, monkeypatch):
    import fomolab.results

    spec = ROOT / "experiments/lightning_sale.toml"
    out = tmp_path / "r"
    want = run(spec, out, replicates=1).summary()
    res = run(spec, out, replicates=1)  # nothing to compute: the writer checks the index once

    def checked_again(*args):
        raise AssertionError("the index was checked again")

    monkeypatch.setattr(fomolab.results, "index_current", checked_again)
    pd.testing.assert_frame_equal(res.summary(), want, check_exact=True)


def test_a_finished_folder_is_resumed_on_sizes_and_checked_on_checksums(tmp_path, capsys):
    spec = ROOT / "experiments/lightning_sale.toml"
    out = tmp_path / "r"
    res = run(spec, out, replicates=1)
    rid = str(res.runs.run_id.iloc[0])
    rp = out / "events" / f"{rid}.parquet"
    rp.write_bytes(bytes(len(rp.read_bytes())))  # garbage of the same size
    # nothing to compute: sizes only (the damage is not looked for) ...
    assert main(["run", str(spec), "--replicates", "1", "--out", str(out), "-q"]) == 0
    assert Results(out).manifest["invocations"][-1]["runs_repaired"] == 0
    # ... `fomolab check` reads the checksums ...
    assert set(check(out).state.damaged) == {rid}
    # ... and a run with work to do verifies them too, recomputing the damaged run
    assert main(["run", str(spec), "--replicates", "2", "--out", str(out), "-q"]) == 0
    last = Results(out).manifest["invocations"][-1]
    assert last["runs_repaired"] == 1 and last["runs_computed"] == 5
    assert check(out).exit_code == 0
    capsys.readouterr()


def test_the_first_replicates_are_summarised_from_their_own_runs(flagship):
    some = Results(flagship.path, replicates=1)
    assert some._index is None  # the index holds both replicates
    s = some.summary()
    assert (s.runs == 1).all()
    runs = flagship.runs[flagship.runs.replicate == 0]
    want = runs.groupby(runs.arm.astype(str)).viewers.mean()
    assert s.viewers_per_run.to_dict() == pytest.approx(want.to_dict(), rel=1e-12)
