"""A sweep's analysis on a Dask cluster: one task per point, the same tables as serial, byte for byte."""

from __future__ import annotations

import socket

import pandas as pd
import pytest

from fomolab import run
from fomolab.analysis import analyze
from fomolab.cli import main

from helpers import ROOT

SWEEP = ROOT / "experiments/discount_timer_sweep.toml"
pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return run(SWEEP, tmp_path_factory.mktemp("sweep") / "r", replicates=2, workers=1)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as c:
        yield c


def test_dask_analysis_has_the_serial_tables(sweep, cluster):
    serial = analyze(sweep, n_boot=20)
    on_dask = analyze(sweep.path, n_boot=20, scheduler=cluster.scheduler_address)
    # one task per sweep point ran on the cluster's workers, and one each for the tables that read the folder
    prefixes = cluster.scheduler.task_prefixes
    prefix = prefixes.get("fomolab-analyze-point")
    assert prefix is not None and sum(prefix.state_counts.values()) >= sweep.runs.point.nunique()
    for side in ("fomolab-analyze-impact", "fomolab-analyze-episode-model"):
        assert side in prefixes and prefixes[side].state_counts.get("memory", 0) + \
            prefixes[side].state_counts.get("released", 0) + prefixes[side].state_counts.get("forgotten", 0) >= 1
    assert serial.impact is not None and len(serial.impact) and serial.episode_model is not None
    assert sorted(serial.tables()) == sorted(on_dask.tables())
    assert serial.headline.point.nunique() == 6 and len(serial.for_whom)
    for name, df in serial.tables().items():
        pd.testing.assert_frame_equal(df, on_dask.tables()[name], check_exact=True, obj=name)


def test_a_task_s_warnings_are_raised_again_in_the_client(cluster):
    import warnings

    from distributed import Client

    from fomolab.analysis import _task_result, _warned

    with Client(cluster) as client:
        future = client.submit(_warned, warnings.warn, "from a worker", RuntimeWarning, pure=False)
        with pytest.warns(RuntimeWarning, match="from a worker"):
            assert _task_result(future) is None


@pytest.mark.parametrize("where", ["scheduler", "workers"])
def test_cli_dask_writes_the_same_files(sweep, cluster, tmp_path, where):
    serial, dask = tmp_path / "serial", tmp_path / "dask"
    assert main(["analyze", str(sweep.path), "--boot", "20", "-q", "--out", str(serial)]) == 0
    option = ["--scheduler", cluster.scheduler_address] if where == "scheduler" else ["--workers", "2"]
    assert main(["analyze", str(sweep.path), "--boot", "20", "-q", "--out", str(dask), *option]) == 0
    names = sorted(p.name for p in serial.iterdir() if p.suffix in (".csv", ".md"))  # not the marker's timestamp
    assert names == sorted(p.name for p in dask.iterdir() if p.suffix in (".csv", ".md"))
    assert {"headline.csv", "for_whom.csv", "pooled.csv"} <= set(names)
    for name in names:
        assert (serial / name).read_bytes() == (dask / name).read_bytes(), name


def test_unreachable_scheduler_exits_2_and_writes_nothing(sweep, tmp_path, capsys):
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "analysis"
    assert main(["analyze", str(sweep.path), "-q", "--out", str(out), "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert f"--scheduler tcp://127.0.0.1:{port}: no Dask scheduler reachable" in err and "nothing was written" in err
    assert not out.exists() and not (sweep.path / "analysis").exists()
    assert main(["analyze", str(sweep.path), "-q", "--out", str(out), "--scheduler", "localhost:8786"]) == 2
    assert "must be tcp://HOST:PORT" in capsys.readouterr().err and not out.exists()
