"""Results folders: resume, extend by replicates, survive a torn write."""

from __future__ import annotations

import pandas as pd
import pytest

from fomolab import Results, load_experiment, run
from fomolab.errors import ResultsError


@pytest.fixture(scope="module")
def exp(root):
    return load_experiment(root / "experiments/exclusive_code.toml").with_overrides(replicates=2)


def frames(res: Results) -> dict[str, pd.DataFrame]:
    return {n: getattr(res, n) for n in ("runs", "shoppers", "events")}


def assert_frames_equal(a, b):
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)


def test_rerun_computes_nothing(tmp_path, exp):
    first = frames(run(exp, tmp_path / "r"))
    again = run(exp, tmp_path / "r")
    assert again.manifest["invocations"][-1]["runs_computed"] == 0
    assert again.manifest["invocations"][-1]["runs_skipped"] == 4
    assert_frames_equal(first, frames(again))


def test_more_replicates_extend_the_folder(tmp_path, exp):
    small = run(exp, tmp_path / "r")
    ids_before = set(small.runs.run_id)
    big = run(exp, tmp_path / "r", replicates=3)
    assert big.manifest["invocations"][-1]["runs_computed"] == 2
    assert ids_before < set(big.runs.run_id) and len(big.runs) == 6
    direct = run(exp, tmp_path / "direct", replicates=3)
    assert_frames_equal(frames(direct), frames(Results(tmp_path / "r")))


def test_torn_run_is_redone(tmp_path, exp):
    res = run(exp, tmp_path / "r")
    whole = frames(res)
    victim = res.runs.run_id.iloc[1]
    # a crash after the partitions moved in, before the commit record was written
    (tmp_path / "r" / "commits" / f"{victim}.json").unlink()
    (tmp_path / "r" / ".staging" / f"{victim}.dead").mkdir()
    partial = Results(tmp_path / "r")
    assert victim not in set(partial.runs.run_id)
    assert victim not in set(partial.shoppers.run_id), "orphan partitions are not read"
    redone = run(exp, tmp_path / "r")
    assert redone.manifest["invocations"][-1]["runs_computed"] == 1
    assert not any((tmp_path / "r" / ".staging").iterdir())
    assert_frames_equal(whole, frames(Results(tmp_path / "r")))


def test_results_of_nothing(tmp_path):
    with pytest.raises(ResultsError, match=r"no manifest\.json"):
        Results(tmp_path)


def test_manifest_has_provenance(tmp_path, exp):
    m = run(exp, tmp_path / "r").manifest
    assert m["spec_hash"] == exp.spec_hash and m["master_seed"] == exp.seed
    assert m["spec"]["population"]["segments"]["impulsive"]["share"] == 0.2  # profile inlined
    assert len(m["seeds"]) == 2 and {"point", "replicate", "seed"} <= set(m["seeds"][0])
    inv = m["invocations"][-1]
    assert {"numpy", "pandas", "simpy", "pyarrow"} <= set(inv["packages"]) and inv["python"]
    assert inv["fomolab_version"] == m["fomolab_version"] and "revision" in inv and inv["wall_s"] > 0
