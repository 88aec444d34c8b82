"""Folder queries: SQL over the finished runs with DuckDB, column and run selection, the summary
out of core, and the progress lines of `fomolab run` without a terminal."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fomolab import run
from fomolab.errors import ResultsError
from fomolab.results import Results
from fomolab.spec import load_experiment

SPEC = """
[experiment]
name = "q"
seed = 11
replicates = 3
control = "control"
[stream]
duration_s = 600.0
[stream.arrivals]
rate_per_s = 1.0
[population]
profile = "mixed"
[lineup.item]
price = 10.0
base_rate_per_s = 2e-3
[lineup.item.tactics.lightning_sale]
start_s = 100.0
end_s = 200.0
discount = 0.2
gain = 2.0
[arms.control]
[arms.sale]
tactics = ["item.lightning_sale"]
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("q")
    (base / "q.toml").write_text(SPEC)
    out = base / "q"
    run(load_experiment(base / "q.toml"), out=out, workers=1)
    return out


def test_query_reads_finished_runs_only(folder: Path, tmp_path: Path) -> None:
    copy = tmp_path / "q"
    shutil.copytree(folder, copy)
    res = Results(copy)
    rid = res.runs.run_id.astype(str).iloc[0]
    # an interrupted write: partitions under a run id with no commit record
    for t in ("runs", "shoppers"):
        shutil.copy(copy / t / f"{rid}.parquet", copy / t / f"{'f' * 20}.parquet")
    got = Results(copy).query("select count(*) as n, count(distinct run_id) as r from shoppers")
    assert int(got.n[0]) == len(res.shoppers) and int(got.r[0]) == 6
    by_arm = Results(copy).query("select arm, avg(conversion) as c from runs group by arm order by arm")
    want = res.runs.groupby("arm", observed=True).conversion.mean().sort_index()
    assert list(by_arm.arm) == [str(a) for a in want.index]
    np.testing.assert_allclose(by_arm.c, want.to_numpy(), rtol=1e-12)


def test_query_parameters_and_errors(folder: Path) -> None:
    res = Results(folder)
    n = res.query("select count(*) as n from shoppers where arm = ?", ["sale"]).n[0]
    assert n == (res.shoppers.arm == "sale").sum()
    with pytest.raises(ResultsError, match="query failed"):
        res.query("select nope from shoppers")


def test_table_reads_only_the_columns_and_runs_asked_for(folder: Path) -> None:
    res = Results(folder)
    ids = list(res.runs.run_id.astype(str))
    some = res.table("shoppers", ["run_id", "arrival_s"], run_ids=ids[1:3])
    assert list(some.columns) == ["run_id", "arrival_s"]
    assert list(dict.fromkeys(some.run_id.astype(str))) == ids[1:3]
    full = res.shoppers[res.shoppers.run_id.isin(ids[1:3])]
    np.testing.assert_array_equal(some.arrival_s.to_numpy(), full.arrival_s.to_numpy())
    with pytest.raises(ResultsError, match="not finished runs"):
        res.table("runs", run_ids=["0" * 20])


def test_run_order_from_commit_records_matches_the_runs_table(folder: Path) -> None:
    res = Results(folder)
    runs = pd.concat([pq.read_table(f).to_pandas() for f in sorted((folder / "runs").glob("*.parquet"))])
    arms = {"control": 0, "sale": 1}
    want = runs.assign(k=runs.arm.map(arms)).sort_values(["point", "replicate", "k"]).run_id.tolist()
    assert res._run_ids == want
    assert res.runs.run_id.astype(str).tolist() == want


def test_summary_median_is_the_pooled_median_over_buyers(folder: Path) -> None:
    class Reads(Results):  # records which tables are loaded into pandas
        loaded: ClassVar[list[str]] = []

        def _read(self, table, ids, columns=None, filter=None):
            self.loaded.append(table)
            return super()._read(table, ids, columns, filter)

    res = Reads(folder)
    s = res.summary()
    assert res.loaded == []  # the summary loads no table into memory: DuckDB aggregates the partitions
    sh = res.shoppers
    want = (sh.first_purchase_s - sh.arrival_s).groupby(sh.arm, observed=True).median()
    for arm in ("control", "sale"):
        assert s.loc[arm, "median_time_to_purchase_s"] == pytest.approx(want[arm], rel=1e-12)
    assert s.loc["sale", "conversion"] == pytest.approx(
        res.runs[res.runs.arm == "sale"].buyers.sum() / res.runs[res.runs.arm == "sale"].viewers.sum())


def test_run_without_a_terminal_logs_progress_lines(folder: Path, tmp_path: Path, root: Path) -> None:
    spec = tmp_path / "q.toml"
    spec.write_text(SPEC)
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "FOMOLAB_LOG_EVERY_S": "0"}
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "fomolab.cli", "run", str(spec), "--out", str(out),
                        "--workers", "1", "--replicates", "2"], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("fomolab: q: ")]
    assert lines[0] == "fomolab: q: 0/4 runs, 0s elapsed, 4 to compute"
    assert any(ln.startswith("fomolab: q: 2/4 runs, ") and "runs/s" in ln and "ETA" in ln for ln in lines)
    assert lines[-1].startswith("fomolab: q: 4/4 runs, ") and lines[-1].endswith("finished")
    q = subprocess.run([sys.executable, "-m", "fomolab.cli", "run", str(spec), "--out", str(out), "-q",
                        "--replicates", "2"], capture_output=True, text=True, env=env, timeout=300)
    assert q.returncode == 0 and q.stderr == "" and q.stdout == ""


def test_analyze_is_quiet_without_a_terminal_and_with_q(folder: Path, tmp_path: Path, root: Path) -> None:
    copy = tmp_path / "q"
    shutil.copytree(folder, copy)
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    cmd = [sys.executable, "-m", "fomolab.cli", "analyze", str(copy), "--boot", "0"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stderr == "" and "hazard ratio" in p.stdout  # no terminal: no progress display
    q = subprocess.run([*cmd, "-q"], capture_output=True, text=True, env=env, timeout=300)
    assert q.returncode == 0 and q.stdout == "" and q.stderr == ""


def test_query_joins_the_tables_of_the_finished_runs(folder: Path) -> None:
    res = Results(folder)
    got = res.query("select r.arm, count(e.tactic) as n from events e join runs r using (run_id) group by r.arm")
    ev = res.events.merge(res.runs[["run_id", "arm"]], on="run_id")
    want = ev.groupby("arm", observed=True).tactic.count()
    assert got.set_index("arm").n.to_dict() == {str(k): int(v) for k, v in want.items()}
    assert int(want["sale"]) > 0
