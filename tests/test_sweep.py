"""Sweeps: designs, identical tables in every executor, resume after SIGKILL,
extension, refusal of changed specs, and failures that are recorded and retried."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from fomolab import Results, load_experiment, run
from fomolab.cli import main
from fomolab.errors import ResultsError, SpecError
from fomolab.runner import RunFailures
from fomolab.spec import parse_spec
from fomolab.sweep import column_name

from helpers import ROOT, make_spec

SWEEP = ROOT / "experiments/discount_timer_sweep.toml"
DISCOUNT = "lineup.lipstick.tactics.lightning_sale.discount"
GAIN = "lineup.lipstick.tactics.countdown_timer.gain"


def frames(res: Results) -> dict[str, pd.DataFrame]:
    return {n: getattr(res, n) for n in ("runs", "shoppers", "events")}


def assert_same(a: Results, b: Results) -> None:
    for name, df in frames(a).items():
        pd.testing.assert_frame_equal(df, getattr(b, name), check_exact=True)


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    return run(SWEEP, tmp_path_factory.mktemp("serial") / "r", workers=1)


def test_sweep_example_design(serial):
    exp = load_experiment(SWEEP)
    assert exp.n_runs == 36 and len(exp.points) == 6 and len(exp.swept) == 2
    runs = serial.runs
    assert len(runs) == 36
    for path in (DISCOUNT, GAIN):
        assert column_name(path) in runs.columns
    assert sorted(runs[column_name(DISCOUNT)].unique()) == [0.1, 0.3, 0.5]
    assert sorted(runs.point.unique()) == list(range(6))
    # arms of a replicate at a point share the seed; points and replicates do not
    assert runs.groupby(["point", "replicate"]).seed.nunique().eq(1).all()
    assert runs.drop_duplicates(["point", "replicate"]).seed.is_unique
    # the swept value reached the engine: a deeper discount sells more
    conv = runs.groupby(column_name(DISCOUNT)).conversion.mean()
    assert conv.is_monotonic_increasing


def test_processes_and_dask_match_serial(serial, tmp_path):
    from distributed import LocalCluster

    pool = run(SWEEP, tmp_path / "pool", workers=2)
    assert_same(serial, pool)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        dask = run(SWEEP, tmp_path / "dask", scheduler=cluster.scheduler_address)
        assert dask.manifest["invocations"][-1]["scheduler"] == cluster.scheduler_address
    assert_same(serial, dask)


def test_sigkill_then_resume(serial, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "fomolab.cli", "run", str(SWEEP), "--out", str(out),
                             "--workers", "1", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = list((out / "commits").glob("*.json")) if (out / "commits").is_dir() else []
        if len(done) >= 8 or proc.poll() is not None:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # finished: a commit record (a run killed between its partitions and its record is redone)
    finished = {f"{p.stem}.parquet": (out / "runs" / f"{p.stem}.parquet").stat().st_mtime_ns
                for p in (out / "commits").glob("*.json")}
    assert 8 <= len(finished) < 36, f"kill came at {len(finished)} runs"
    res = run(SWEEP, out, workers=1)
    assert res.manifest["invocations"][-1]["runs_computed"] == 36 - len(finished)
    for name, mtime in finished.items():
        assert (out / "runs" / name).stat().st_mtime_ns == mtime, "a finished run was recomputed"
    assert_same(serial, Results(out))


def test_extending_points_and_replicates(tmp_path):
    text = SWEEP.read_text()
    small = tmp_path / "small.toml"
    small.write_text(text.replace("= [0.1, 0.3, 0.5]", "= [0.1, 0.5]").replace("replicates = 3", "replicates = 1"))
    (tmp_path / "agents").symlink_to(ROOT / "agents")
    out = tmp_path / "r"
    first = run(small, out)
    assert len(first.runs) == 8
    plain = {"run_id": str, "arm": str}
    before = first.runs.astype(plain).set_index("run_id")
    grown = run(SWEEP, out, replicates=2)  # adds the 0.3 points and a replicate
    assert grown.manifest["invocations"][-1]["runs_computed"] == 24 - 8
    after = grown.runs.astype(plain).set_index("run_id")
    pd.testing.assert_frame_equal(before, after.loc[before.index])
    # the new points got new numbers; the old kept theirs
    assert sorted(after.point.unique()) == list(range(6))
    direct = run(SWEEP, tmp_path / "direct", replicates=2).runs.astype(plain).set_index("run_id")
    cols = [c for c in direct.columns if c != "point"]
    pd.testing.assert_frame_equal(direct.sort_index()[cols], after.sort_index()[cols])


def test_changed_spec_is_refused(serial, tmp_path):
    out = tmp_path / "r"
    run(SWEEP, out, replicates=1)
    changed = tmp_path / "changed.toml"
    changed.write_text(SWEEP.read_text().replace("price = 25.0", "price = 30.0"))
    (tmp_path / "agents").symlink_to(ROOT / "agents")
    with pytest.raises(ResultsError, match=r"lineup\.lipstick\.price: 25\.0 -> 30\.0"):
        run(changed, out)
    other_param = tmp_path / "other.toml"
    other_param.write_text(SWEEP.read_text().replace('"lineup.lipstick.tactics.countdown_timer.gain"',
                                                     '"lineup.lipstick.tactics.lightning_sale.gain"'))
    with pytest.raises(ResultsError, match="different experiment"):
        run(other_param, out)


def test_failed_run_is_recorded_and_retried(tmp_path, monkeypatch):
    import fomolab.engine as engine

    real = engine.simulate

    def flaky_engine(spec):
        if spec.point == 2 and spec.replicate == 1 and spec.arm == "timer":
            raise FloatingPointError("injected failure")
        return real(spec)

    monkeypatch.setattr(engine, "simulate", flaky_engine)
    out = tmp_path / "r"
    with pytest.raises(RunFailures, match=r"1 run\(s\) failed.*injected failure"):
        run(SWEEP, out, workers=1)
    res = Results(out)
    assert len(res.runs) == 35
    f = res.failures
    assert len(f) == 1 and f.arm.iloc[0] == "timer" and f.point.iloc[0] == 2
    assert "FloatingPointError" in f.traceback.iloc[0]
    assert "lineup_lipstick_tactics_lightning_sale_discount" in f.params.iloc[0]
    monkeypatch.setattr(engine, "simulate", real)
    again = run(SWEEP, out, workers=1)
    assert again.manifest["invocations"][-1]["runs_computed"] == 1
    assert len(again.runs) == 36 and Results(out).failures.empty


def test_cli_exit_code_on_failure(tmp_path, monkeypatch, capsys):
    import fomolab.engine as engine

    def broken(spec):
        raise RuntimeError("boom")

    monkeypatch.setattr(engine, "simulate", broken)
    code = main(["run", str(SWEEP), "--out", str(tmp_path / "r"), "--workers", "1", "--quiet", "--replicates", "1"])
    assert code == 1
    assert "12 run(s) failed" in capsys.readouterr().err


@pytest.mark.parametrize(("design", "extra", "n"), [
    ("lhs", {"samples": 5}, 5), ("sobol", {"samples": 8}, 8), ("saltelli", {"samples": 4}, 4 * (2 + 2)),
])
def test_sampled_designs(design, extra, n):
    spec = make_spec(
        lineup={"item": {"stock": 50, "tactics": {"lightning_sale": {"start_s": 100.0, "end_s": 400.0}}}},
        sweep={"design": design, **extra, "parameters": {
            "lineup.item.tactics.lightning_sale.discount": {"low": 0.0, "high": 0.5},
            "lineup.item.stock": {"low": 10, "high": 100}}},
    )
    exp = parse_spec(spec, source="<test>")
    assert len(exp.points) == n
    discounts = np.array([p.values["lineup.item.tactics.lightning_sale.discount"] for p in exp.points])
    stocks = [p.values["lineup.item.stock"] for p in exp.points]
    assert ((discounts >= 0) & (discounts <= 0.5)).all()
    assert all(isinstance(s, int) and 10 <= s <= 100 for s in stocks), "integer parameters are rounded"
    assert exp.points[0].arms["control"].scenario.lineup["item"].stock == stocks[0]
    if design == "lhs":  # one point per stratum in each dimension
        assert sorted(np.floor(discounts / 0.1).astype(int)) == list(range(5))


def test_share_sweep_rescales_other_segments():
    spec = make_spec(
        population={"segments": {"all": {"share": 0.6}, "keen": {
            "share": 0.4, "impulsiveness": {"fixed": 0.9}, "dwell": {"mean_s": 100.0}}}},
        sweep={"design": "grid", "parameters": {"population.segments.keen.share": [0.1, 0.5]}},
    )
    exp = parse_spec(spec, source="<test>")
    shares = [{k: s.share for k, s in p.arms["control"].scenario.population.segments.items()} for p in exp.points]
    assert shares == [{"all": pytest.approx(0.9), "keen": 0.1}, {"all": pytest.approx(0.5), "keen": 0.5}]


@pytest.mark.parametrize(("sweep", "fragments"), [
    ({"parameters": {"lineup.item.tactics.lightning_sale.discont": [0.1]}},
     ["sweep.parameters.lineup.item.tactics.lightning_sale.discont", "did you mean 'lineup.item.tactics.lightning_sale.discount'"]),
    ({"parameters": {"lineup.itme.price": [1.0]}}, ["lineup.itme.price", "did you mean 'lineup.item.price'"]),
    ({"parameters": {"lineup.item.tactics.lightning_sale.discount": [0.1, "deep"]}},
     ["sweep point 1", "lineup.item.tactics.lightning_sale.discount", "'deep'", "must be a number"]),
    ({"parameters": {"lineup.item.tactics.lightning_sale.discount": [0.1, 1.5]}},
     ["sweep point 1", "less than 1", "1.5"]),
    ({"design": "sobol", "samples": 6, "parameters": {"lineup.item.price": {"low": 1, "high": 2}}},
     ["sweep", "power of 2", "6"]),
    ({"design": "lhs", "parameters": {"lineup.item.price": [1.0, 2.0]}}, ["sweep", "range"]),
])
def test_bad_sweeps(sweep, fragments):
    spec = make_spec(lineup={"item": {"tactics": {"lightning_sale": {"start_s": 100.0, "end_s": 400.0}}}},
                     sweep=sweep)
    with pytest.raises(SpecError) as exc:
        parse_spec(spec, source="spec.toml")
    msg = str(exc.value)
    assert msg.startswith("spec.toml: ")
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"


def test_validate_shows_the_design(capsys):
    assert main(["validate", str(SWEEP)]) == 0
    out = capsys.readouterr().out
    assert "grid design, 6 points" in out and "36 runs" in out and DISCOUNT in out
