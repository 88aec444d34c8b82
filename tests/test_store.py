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


def test_planned_run_ids_are_the_hash_of_each_run_alone(root):
    """Planning encodes the parts runs share once; each id is still the hash of that run's whole identity."""
    from fomolab.design import expand

    seen, own_seeds = 0, 0
    for path in sorted([*(root / "experiments").glob("*.toml"), *(root / "tests/golden/specs").glob("*.toml")]):
        exp = load_experiment(path)
        for r in expand(exp, range(3)):
            assert r.run_id == r.identity(), (path.name, r.arm, r.point, r.replicate)
            seen += 1
            own_seeds += not exp.common_random_numbers
    assert seen > 100 and own_seeds > 0  # sweeps, and arms with seeds of their own


def test_a_rerun_reads_the_cached_commit_records_while_the_commit_folder_is_unchanged(tmp_path, exp):
    from fomolab.store import Store

    out = tmp_path / "r"
    res = run(exp, out)
    cache = out / "index" / "commits.json"
    assert cache.is_file()
    store = Store(out)
    cached, plain = store.inspect(), store.inspect(checksums=True)
    assert cached.records_cached and not plain.records_cached  # checksums: always the records themselves
    assert cached.commits == plain.commits and not cached.damaged
    # a commit record replaced (as a writer does: a new file) is read again, not taken from the cache:
    # here it records another size for a partition, so the run is damaged and recomputed
    rid = str(res.runs.run_id.iloc[0])
    rec = store.commit_record(rid)
    rec["partitions"]["events"]["bytes"] += 1
    (out / "commits" / f"{rid}.json").unlink()
    (out / "commits" / f"{rid}.json").write_text(__import__("json").dumps(rec))
    state = store.inspect()
    assert not state.records_cached and set(state.damaged) == {rid}
    again = run(exp, out)
    last = again.manifest["invocations"][-1]
    assert last["runs_repaired"] == 1 and last["runs_computed"] == 1
    # a removed record: that run is not finished, whatever the cache says
    victim = str(res.runs.run_id.iloc[1])
    (out / "commits" / f"{victim}.json").unlink()
    assert victim not in Store(out).inspect().commits
    assert run(exp, out).manifest["invocations"][-1]["runs_computed"] == 1
    # the cache is derived data: without it, or with a broken one, the records are read
    cache.write_text("{not json")
    assert Store(out).inspect().commits == Store(out).inspect(checksums=True).commits
    cache.unlink()
    assert not Store(out).inspect().records_cached
    assert run(exp, out).manifest["invocations"][-1]["runs_computed"] == 0 and cache.is_file()


def test_planning_and_the_store_do_not_import_pandas(root):
    """Re-running a finished folder with -q needs neither pandas, pyarrow nor the recorder (half a second)."""
    import subprocess
    import sys

    from fomolab import recorder, store

    assert store.FACT_TABLES == recorder.FACT_TABLES
    code = ("import sys, fomolab.runner, fomolab.results; "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'fomolab.recorder') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                         env={**__import__("os").environ, "PYTHONPATH": str(root / "src")})
    assert out.stdout.strip() == "[]"
