"""Results folders are safe: one writer at a time, damage found and repaired,
atomic creation, full disks, lost manifests, provenance per invocation."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from fomolab import Results, load_experiment, run
from fomolab.cli import main
from fomolab.errors import ResultsError
from fomolab.results import check
from fomolab.runner import RunFailures, plan
from fomolab.store import Store

SWEEP = ROOT / "experiments/discount_timer_sweep.toml"

TINY = """
[experiment]
name = "{name}"
seed = 5
replicates = {replicates}

[stream]
duration_s = 600.0
[stream.arrivals]
rate_per_s = 0.5

[population.segments.all]
share = 1.0
impulsiveness = {{ beta = [2.0, 5.0] }}
dwell = {{ mean_s = 200.0 }}

[lineup.item]
price = {price}
base_rate_per_s = 2.0e-3

[lineup.item.tactics.lightning_sale]
start_s = 100.0
end_s = 300.0
discount = 0.3
gain = 2.0

[arms.control]
[arms.sale]
tactics = ["item.lightning_sale"]
"""


def tiny(tmp_path: Path, name: str = "tiny", price: float = 10.0, replicates: int = 3) -> Path:
    p = tmp_path / f"{name}_{price:g}_{replicates}.toml"
    p.write_text(TINY.format(name=name, price=price, replicates=replicates))
    return p


def frames(res: Results) -> dict[str, pd.DataFrame]:
    return {n: getattr(res, n) for n in ("runs", "shoppers", "events")}


def assert_same(a: Results, b: Results) -> None:
    for name, df in frames(a).items():
        pd.testing.assert_frame_equal(df, getattr(b, name), check_exact=True)


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), e.get("PYTHONPATH", "")])
    return e


#: Races pairs of ``fomolab run`` processes: a parent with everything imported forks
#: two children per race, which block on a pipe until both exist, then run the
#: command at the same instant.  Prints one JSON line per race: exit codes, stderr.
RACER = textwrap.dedent("""
    import json, os, sys
    import fomolab.runner, fomolab.results, fomolab.engine, pandas, pyarrow.parquet
    from fomolab.cli import main
    jobs = json.loads(sys.argv[1])
    for k, commands in enumerate(jobs):
        r, w = os.pipe()
        kids = []
        for j, argv in enumerate(commands):
            pid = os.fork()
            if pid == 0:
                os.close(w)
                err = os.open(f"{argv[3]}.err{j}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(err, 2)
                os.read(r, 1)  # released together
                try:
                    code = main(argv)
                except BaseException:
                    import traceback
                    traceback.print_exc()
                    code = 99
                sys.stdout.flush(); sys.stderr.flush()
                os._exit(code)
            kids.append(pid)
        os.close(r)
        os.write(w, b"go")
        os.close(w)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in kids]
        errs = [open(f"{argv[3]}.err{j}").read() for j, argv in enumerate(commands)]
        print(json.dumps({"codes": codes, "stderr": errs}), flush=True)
""")


def race(jobs: list[list[list[str]]]) -> list[dict]:
    """Run each job's commands as separate processes released at the same instant."""
    p = subprocess.run([sys.executable, "-c", RACER, json.dumps(jobs)], env=env(), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


# ---------------------------------------------------------------- one writer at a time

def test_two_experiments_racing_into_one_new_folder_never_mix(tmp_path):
    a, b = tiny(tmp_path, price=10.0), tiny(tmp_path, price=12.0)
    ids = {str(s): {r.run_id for r in plan(load_experiment(s).with_overrides(replicates=8))} for s in (a, b)}
    jobs, order = [], []
    for k in range(20):
        specs = [a, b] if k % 2 == 0 else [b, a]
        order.append(specs)
        jobs.append([["run", str(s), "--out", str(tmp_path / f"r{k}"), "--workers", "1", "-q", "--replicates", "8"]
                     for s in specs])
    held = 0
    for k, (res, specs) in enumerate(zip(race(jobs), order, strict=True)):
        out = tmp_path / f"r{k}"
        codes = res["codes"]
        assert sorted(codes) == [0, 2], res
        loser = res["stderr"][codes.index(2)]
        assert "Traceback" not in "".join(res["stderr"])
        assert loser.startswith(f"fomolab: error: {out}: ") and loser.count("\n") == 1, loser
        # refused by the lock (the folder being created or written), or, if the winner had
        # already finished, as another experiment's folder: never both accepted
        by_lock = "another fomolab process (pid " in loser and "one writer at a time" in loser
        assert by_lock or "holds results of a different experiment" in loser, loser
        held += by_lock
        spec = specs[codes.index(0)]
        m = json.loads((out / "manifest.json").read_text())
        assert m["spec_hash"] == load_experiment(spec).with_overrides(replicates=8).spec_hash
        committed = {p.stem for p in (out / "commits").glob("*.json")}
        assert committed == ids[str(spec)], "the folder holds exactly the winner's runs"
        assert set(pd.read_parquet(out / "runs").run_id) == ids[str(spec)], "no partition of the loser"
        assert Results(out).completeness.complete
        assert not list(tmp_path.glob(f".r{k}.creating-*"))
    assert held >= 5, "the processes overlapped: most losers met the winner's lock"


def test_identical_runs_racing_refuse_cleanly(tmp_path):
    spec = tiny(tmp_path)
    ref = run(spec, tmp_path / "ref")
    jobs = [[["run", str(spec), "--out", str(tmp_path / f"r{k}"), "--workers", "1", "-q"]] * 2 for k in range(6)]
    for k, res in enumerate(race(jobs)):
        codes = sorted(res["codes"])
        assert codes in ([0, 0], [0, 2]), res
        for code, err in zip(res["codes"], res["stderr"], strict=True):
            assert "Traceback" not in err and "failed" not in err
            if code == 2:
                assert "one writer at a time" in err
        assert_same(ref, Results(tmp_path / f"r{k}"))


def test_second_writer_is_refused_with_the_holders_pid(tmp_path, capsys):
    spec = tiny(tmp_path)
    out = tmp_path / "r"
    run(spec, out)
    with Store(out).lock():
        code = main(["run", str(spec), "--out", str(out), "-q", "--replicates", "4"])
        err = capsys.readouterr().err
        with pytest.raises(ResultsError, match=f"pid {os.getpid()}"):
            run(spec, out)
        assert f"pid {os.getpid()}" in check(out).writer, "check sees the running writer"
    assert code == 2
    assert f"{out}: is being written by another fomolab process (pid {os.getpid()}" in err
    assert err.count("\n") == 1, "one message"
    assert len(Results(out).runs) == 6, "the refused writer wrote nothing"
    run(spec, out, replicates=4)  # the lock went with the holder


def test_a_readers_probe_does_not_refuse_a_writer(tmp_path):
    """`fomolab check` asks whether a writer runs with a shared lock held for an instant."""
    import fcntl
    import threading

    spec = tiny(tmp_path)
    out = tmp_path / "r"
    run(spec, out, replicates=1)
    fd = os.open(out / ".lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    threading.Timer(0.05, os.close, [fd]).start()
    assert run(spec, out, replicates=2).completeness.complete


def test_lock_covers_a_folder_being_created(tmp_path):
    spec = tiny(tmp_path)
    exp = load_experiment(spec)
    out = tmp_path / "new"
    holder = Store(out)
    with holder.lock():  # taken in the hidden sibling that becomes the folder, and moves with it
        assert not out.exists()
        holder.create({"experiment": exp.name, "fingerprint": exp.fingerprint})
        with pytest.raises(ResultsError, match=f"one writer at a time.*|pid {os.getpid()}"):
            run(spec, out)
    assert not (out / "commits").exists() or not any((out / "commits").iterdir())
    # two creators of one new folder: the second to rename is refused, and leaves nothing behind
    other = tmp_path / "other"
    late = Store(other)
    with late.lock():
        run(spec, other)
        with pytest.raises(ResultsError, match=r"created by another fomolab process \(pid \d+.*\) at the same time"):
            late.create({"experiment": "late"})
    assert Results(other).completeness.complete and Results(other).manifest["experiment"] == exp.name
    assert not list(tmp_path.glob(".other.creating-*"))


# ---------------------------------------------------------------- damage

def test_deleted_truncated_and_replaced_partitions_are_found_and_recomputed(tmp_path, capsys):
    spec = tiny(tmp_path)
    out = tmp_path / "r"
    ref = run(spec, tmp_path / "ref")
    res = run(spec, out)
    a, b, c = list(res.runs.run_id.astype(str))[:3]
    (out / "shoppers" / f"{a}.parquet").unlink()  # deleted
    ev = out / "events" / f"{b}.parquet"
    ev.write_bytes(ev.read_bytes()[:100])  # truncated
    rp = out / "runs" / f"{c}.parquet"
    rp.write_bytes(bytes(len(rp.read_bytes())))  # garbage of the same size: only the checksum sees it
    capsys.readouterr()
    # readers refuse, saying how to repair
    for command in (["analyze", str(out), "-q"], ["report", str(out), "--out", str(tmp_path / "rep")]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "2 finished runs damaged" in err and f"fomolab run {spec} --out {out}" in err
        assert "Traceback" not in err and not (tmp_path / "rep").exists()
    with pytest.raises(ResultsError, match="damaged"):
        _ = Results(out).runs
    # check verifies checksums: all three
    found = check(out)
    assert set(found.state.damaged) == {a, b, c} and found.exit_code == 2
    # run recomputes exactly those, says so in one line, and the tables are as before
    assert main(["run", str(spec), "--out", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "3 finished runs damaged" in err and "recomputing them" in err
    m = Results(out).manifest["invocations"][-1]
    assert m["runs_computed"] == 3 and m["runs_repaired"] == 3
    assert_same(ref, Results(out))
    assert check(out).exit_code == 0


def test_foreign_files_are_reported_and_ignored(tmp_path, capsys):
    spec = tiny(tmp_path)
    out = tmp_path / "r"
    ref = run(spec, out)
    before = frames(ref)
    shutil.copy(out / "runs" / f"{ref.runs.run_id.iloc[0]}.parquet", out / "runs" / "copy of a run.parquet")
    shutil.copy(out / "shoppers" / f"{ref.runs.run_id.iloc[0]}.parquet", out / "shoppers" / ("f" * 20 + ".parquet"))
    (out / "events" / "notes.txt").write_text("mine")
    after = Results(out)
    for name, df in before.items():
        pd.testing.assert_frame_equal(df, getattr(after, name), check_exact=True)
    assert main(["check", str(out)]) == 2
    text = capsys.readouterr().out
    assert "foreign: 2 files" in text and "runs/copy of a run.parquet" in text and "events/notes.txt" in text
    assert "uncommitted: 1 partition" in text


def test_crash_between_renames_is_not_a_finished_run(tmp_path, monkeypatch):
    """A crash after the first partition moved into place: the run is not finished, and is redone."""
    import fomolab.store as store

    spec = tiny(tmp_path)
    ref = run(spec, tmp_path / "ref")
    victim = str(ref.runs.run_id.iloc[2])
    real = os.replace
    moved = []

    def crashing_replace(src, dst):
        real(src, dst)
        if Path(dst).stem == victim and Path(dst).parent.name != "failures":
            moved.append(dst)
            raise OSError("injected crash after the first rename")

    monkeypatch.setattr(store.os, "replace", crashing_replace)
    out = tmp_path / "r"
    with pytest.raises(RunFailures, match="injected crash"):
        run(spec, out, workers=1)
    monkeypatch.setattr(store.os, "replace", real)
    assert len(moved) == 1
    partial = Results(out)  # not taken as damaged: it never finished
    assert victim not in set(partial.runs.run_id.astype(str)) and len(partial.runs) == 5
    assert victim not in set(partial.shoppers.run_id.astype(str))
    assert not partial.completeness.complete and partial.completeness.runs_finished == 5
    found = check(out)
    assert victim not in found.state.damaged and found.exit_code == 1
    again = run(spec, out)
    assert again.manifest["invocations"][-1]["runs_computed"] == 1
    assert_same(ref, Results(out))


# ---------------------------------------------------------------- creation, kills, full disks

KILLER = textwrap.dedent("""
    import os, signal, sys
    import fomolab.store as st
    where = sys.argv[1]
    real_rename, real_write = os.rename, st._write_json

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def write(path, obj, indent=2):
        if where == "before-manifest" and ".creating-" in str(path):
            die()
        real_write(path, obj, indent)

    def rename(src, dst):
        if where == "before-rename" and ".creating-" in str(src):
            die()
        real_rename(src, dst)
        if where == "after-rename" and ".creating-" in str(src):
            die()

    st._write_json = write
    st.os.rename = rename
    from fomolab.cli import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("where", ["before-manifest", "before-rename", "after-rename"])
def test_kill_during_folder_creation(tmp_path, where):
    spec = tiny(tmp_path)
    out = tmp_path / "r"
    p = subprocess.run([sys.executable, "-c", KILLER, where, "run", str(spec), "--out", str(out), "-q"],
                       env=env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL
    if where == "after-rename":
        assert (out / "manifest.json").is_file() and check(out).exit_code == 1  # sound, nothing finished yet
    else:
        assert not out.exists(), "no half-made folder under the name"
        assert len(list(tmp_path.glob(".r.creating-*"))) == 1
    res = run(spec, out)  # resumes, or creates afresh
    assert res.completeness.complete and len(res.runs) == 6
    assert not list(tmp_path.glob(".r.creating-*")), "the stranded sibling was removed"


#: SIGKILLs a forked ``fomolab run`` after each delay (seconds), each into its own new folder.
KILL_AT = textwrap.dedent("""
    import json, os, signal, sys, time
    import fomolab.runner, fomolab.results, fomolab.engine, pandas, pyarrow.parquet
    from fomolab.cli import main
    spec, base, delays = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    for k, delay in enumerate(delays):
        pid = os.fork()
        if pid == 0:
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
            os._exit(main(["run", spec, "--out", f"{base}{k}", "--workers", "1", "-q"]))
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        print(json.dumps(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])), flush=True)
""")


def test_a_kill_at_any_moment_leaves_no_folder_or_one_that_resumes(tmp_path):
    spec = tiny(tmp_path)
    ref = run(spec, tmp_path / "ref")
    delays = [0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.12, 0.16, 0.24, 0.32, 0.5]
    p = subprocess.run([sys.executable, "-c", KILL_AT, str(spec), str(tmp_path / "k"), json.dumps(delays)],
                       env=env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    states = []
    for k in range(len(delays)):
        out = tmp_path / f"k{k}"
        if not out.exists():
            states.append("none")
        else:
            found = check(out)
            assert found.exit_code in (0, 1), found.lines()  # sound: finished, or resumable
            states.append(found.completeness.runs_finished)
        assert_same(ref, run(spec, out))
        assert not list(tmp_path.glob(f".k{k}.*")), "no stranded sibling after the next run"
    assert "none" in states and any(s != "none" for s in states), states


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs, room for a tiny spec's runs (needs root: mounting is what makes the disk really full)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to fill a disk needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(folder: Path, leave: int) -> Path:
    """Fill the file system of ``folder`` but for about ``leave`` bytes."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    filler = folder / "filler"
    filler.write_bytes(b"x" * max(0, free - leave))
    return filler


def test_full_disk_while_creating_the_folder(small_disk, tmp_path, capsys):
    spec = tiny(tmp_path)
    fill(small_disk, 0)
    out = small_disk / "r"
    assert main(["run", str(spec), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "free some space" in err and "Traceback" not in err
    assert not out.exists() and not list(small_disk.glob(".r.creating-*"))
    (small_disk / "filler").unlink()
    assert main(["run", str(spec), "--out", str(out), "-q"]) == 0
    assert Results(out).completeness.complete


def test_full_disk_while_writing_runs(small_disk, tmp_path, capsys):
    spec = tiny(tmp_path, replicates=8)
    ref = run(spec, tmp_path / "ref")
    sizes = sum(f.stat().st_size for t in ("runs", "shoppers", "events") for f in (tmp_path / "ref" / t).iterdir())
    out = small_disk / "r"
    filler = fill(small_disk, sizes // 3)  # room for the folder and some runs, not all
    code = main(["run", str(spec), "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code in (1, 2), err
    assert "No space left on device" in err and "free some space" in err and "Traceback" not in err
    found = check(out)
    assert found.exit_code == 1, found.lines()  # sound: nothing half-written is taken as finished
    finished = found.completeness.runs_finished
    assert 0 < finished < 16
    assert not any((out / ".staging").iterdir()) if (out / ".staging").is_dir() else True
    filler.unlink()
    assert main(["run", str(spec), "--out", str(out), "-q"]) == 0
    assert Results(out).manifest["invocations"][-1]["runs_computed"] == 16 - finished
    assert_same(ref, Results(out))


# ---------------------------------------------------------------- manifest

def test_manifest_replicates_is_the_max_of_old_and_new(tmp_path):
    spec = tiny(tmp_path)
    out = tmp_path / "r"
    run(spec, out, replicates=3)
    fewer = run(spec, out, replicates=2)
    assert fewer.manifest["replicates"] == 3
    assert fewer.completeness.complete and fewer.completeness.runs_expected == 4  # the replicates asked for
    assert len(fewer.runs) == 4 and set(fewer.runs.replicate) == {0, 1}
    assert Results(out).completeness.runs_expected == 6 and len(Results(out).runs) == 6
    assert len(fewer.manifest["seeds"]) == 3
    assert run(spec, out, replicates=4).manifest["replicates"] == 4


def test_history_of_invocations_is_kept(tmp_path):
    spec = tiny(tmp_path)
    out = tmp_path / "r"
    first = run(spec, out, replicates=2).manifest
    second = run(spec, out, replicates=3).manifest
    assert second["created"] == first["created"]
    inv = second["invocations"]
    assert len(inv) == 2 and inv[0] == first["invocations"][0], "the first invocation is not rewritten"
    assert [i["runs_computed"] for i in inv] == [4, 2] and inv[1]["runs_skipped"] == 4
    for i in inv:
        assert {"started", "finished", "fomolab_version", "revision", "python", "platform", "packages",
                "runs_failed", "workers", "wall_s"} <= set(i)
    rec = json.loads(next((out / "commits").glob("*.json")).read_text())
    assert rec["fomolab_version"] == inv[0]["fomolab_version"] and "revision" in rec


def test_revision_comes_from_the_installation_not_the_surrounding_repository(tmp_path, monkeypatch):
    from importlib import metadata

    import fomolab.store as store

    class Dist:
        def __init__(self, text):
            self.text = text

        def read_text(self, name):
            return self.text if name == "direct_url.json" else None

    store.provenance.cache_clear()
    try:
        monkeypatch.setattr(metadata, "distribution", lambda name: Dist(json.dumps(
            {"url": "https://example.org/fomolab.git", "vcs_info": {"vcs": "git", "commit_id": "abc123"}})))
        assert store.provenance()["revision"] == "abc123"
        store.provenance.cache_clear()
        monkeypatch.setattr(metadata, "distribution", lambda name: Dist(json.dumps(
            {"url": "file:///work/main", "dir_info": {"editable": True}})))
        assert store.provenance()["revision"] is None  # an editable checkout: not recorded, never guessed
    finally:
        store.provenance.cache_clear()


def test_revision_is_not_read_from_a_repository_the_code_sits_in(tmp_path):
    """fomolab's files inside some other git repository: that repository's commit is not fomolab's."""
    repo = tmp_path / "unrelated"
    shutil.copytree(ROOT / "src" / "fomolab", repo / "fomolab", ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(repo), "-c", "user.name=x", "-c", "user.email=x@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "unrelated"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    out = tmp_path / "r"
    e = dict(os.environ, PYTHONPATH=str(repo))
    p = subprocess.run([sys.executable, "-m", "fomolab.cli", "run", str(tiny(tmp_path, replicates=1)), "--out",
                        str(out), "-q"], env=e, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    inv = json.loads((out / "manifest.json").read_text())["invocations"][-1]
    rec = json.loads(next((out / "commits").glob("*.json")).read_text())
    assert head not in json.dumps(inv) and head not in json.dumps(rec)
    assert inv["revision"] == rec["revision"]


def test_another_fomolab_version_is_refused_unless_allowed(tmp_path, capsys):
    spec = tiny(tmp_path)
    out = tmp_path / "r"
    run(spec, out, replicates=2)
    m = json.loads((out / "manifest.json").read_text())
    m["fomolab_version"] = "0.0.9"
    for i in m["invocations"]:
        i["fomolab_version"] = "0.0.9"
    (out / "manifest.json").write_text(json.dumps(m))
    before = snapshot(out)
    assert main(["run", str(spec), "--out", str(out), "-q"]) == 2
    assert snapshot(out) == before, "nothing written, not even the lock file"
    err = capsys.readouterr().err
    from fomolab import __version__

    assert "fomolab 0.0.9" in err and f"this is fomolab {__version__}" in err and "--allow-other-version" in err
    assert len(Results(out).runs) == 4, "nothing written"
    assert main(["run", str(spec), "--out", str(out), "-q", "--allow-other-version"]) == 0
    inv = Results(out).manifest["invocations"]
    assert [i["fomolab_version"] for i in inv] == ["0.0.9", __version__]
    assert inv[-1]["allow_other_version"] is True
    assert Results(out).manifest["fomolab_version"] == "0.0.9", "who created the folder is kept"


def test_lost_manifest_is_rebuilt_from_the_spec(tmp_path, capsys):
    text = SWEEP.read_text()
    small = tmp_path / "small.toml"
    small.write_text(text.replace("= [0.1, 0.3, 0.5]", "= [0.1, 0.5]").replace("replicates = 3", "replicates = 1"))
    (tmp_path / "agents").symlink_to(ROOT / "agents")
    out = tmp_path / "r"
    run(small, out)
    grown = run(SWEEP, out, replicates=2)  # the new points get numbers 4 and 5
    before = frames(grown)
    registry = grown.manifest["points"]
    (out / "manifest.json").unlink()
    with pytest.raises(ResultsError, match="lost its manifest"):
        Results(out)
    assert main(["check", str(out)]) == 2
    assert "manifest: missing" in capsys.readouterr().out
    untouched = snapshot(out)
    with pytest.raises(ResultsError, match="are not runs of"):  # another spec is not adopted
        run(tiny(tmp_path), out)
    assert snapshot(out) == untouched
    rebuilt = run(SWEEP, out)  # the spec asks for 3 replicates: the third is computed
    assert "rebuilt it from" in capsys.readouterr().err
    m = rebuilt.manifest
    assert m["points"] == registry
    assert m["invocations"][-1]["manifest_rebuilt"] and m["invocations"][-1]["runs_adopted"] == 24
    assert m["invocations"][-1]["runs_computed"] == 12  # the third replicate the spec asks for
    again = Results(out)
    ids = set(before["runs"].run_id.astype(str))
    kept = again.runs[again.runs.run_id.astype(str).isin(ids)].reset_index(drop=True)
    pd.testing.assert_frame_equal(before["runs"].astype({"run_id": str, "arm": str}),
                                  kept.astype({"run_id": str, "arm": str}), check_exact=True)


def test_folder_of_an_earlier_layout_is_adopted(tmp_path):
    spec = tiny(tmp_path)
    out = tmp_path / "r"
    ref = run(spec, out)
    before = frames(ref)
    m = json.loads((out / "manifest.json").read_text())
    legacy = {k: v for k, v in m.items() if k not in ("layout", "invocations")}
    legacy.update(timings=[{"finished": "2026-01-01T00:00:00+00:00", "runs_computed": 6}], git_commit="abc",
                  packages={"python": "3.11.7"}, platform="Linux")
    (out / "manifest.json").write_text(json.dumps(legacy))
    shutil.rmtree(out / "commits")
    with pytest.raises(ResultsError, match="earlier fomolab"):
        _ = Results(out).runs
    again = run(spec, out)
    inv = again.manifest["invocations"]
    assert inv[0]["revision"] == "abc" and inv[0]["runs_computed"] == 6
    assert inv[-1]["runs_adopted"] == 6 and inv[-1]["runs_computed"] == 0
    for name, df in before.items():
        pd.testing.assert_frame_equal(df, getattr(again, name), check_exact=True)


# ---------------------------------------------------------------- completeness, readers

def test_half_finished_folder_says_so(tmp_path, monkeypatch, capsys):
    import fomolab.engine as engine

    spec = tiny(tmp_path, replicates=4)
    out = tmp_path / "r"
    real = engine.simulate

    def failing(r):
        if r.replicate >= 2 and not (r.replicate == 2 and r.arm == "control"):
            raise RuntimeError("not today")
        return real(r)

    monkeypatch.setattr(engine, "simulate", failing)
    with pytest.raises(RunFailures):
        run(spec, out, workers=1)
    monkeypatch.setattr(engine, "simulate", real)
    res = Results(out)
    c = res.completeness
    assert (c.runs_expected, c.runs_finished, c.replicates) == (8, 5, 4) and not c.complete
    assert c.replicates_finished == (2, 3)
    assert c.describe() == "2 to 3 of 4 replicates finished (per arm and point; 5 of 8 runs)"
    assert c.cells.set_index("arm").finished.to_dict() == {"control": 3, "sale": 2}
    assert "2 to 3 of 4 replicates finished" in repr(res)
    s = res.summary()
    assert s.runs.tolist() == [3, 2] and s.runs_expected.tolist() == [4, 4]
    assert s.attrs["completeness"] == c.describe()
    capsys.readouterr()
    assert main(["run", str(spec), "--out", str(out), "--replicates", "2"]) == 0  # the 2 asked for have finished
    printed = " ".join(capsys.readouterr().out.split())
    assert "shown: the first 2 replicates, as asked; the folder holds more: 2 to 3 of 4 replicates finished" in printed
    from fomolab.report import methods

    assert "only 2 to 3 of 4 replicates finished" in methods(res.manifest, res.completeness)
    assert "Each arm ran" not in methods(res.manifest, res.completeness)
    whole = run(spec, out)
    assert whole.completeness.describe() == "all 4 replicates finished" and "all 4 replicates" in repr(whole)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).parts[0] not in ("analysis", "report")}


def test_readers_never_write_into_the_runs(tmp_path, capsys):
    spec = tiny(tmp_path)
    out = tmp_path / "r"
    run(spec, out)
    before = snapshot(out)
    res = Results(out)
    _ = res.runs, res.shoppers, res.events, res.summary(), res.completeness, repr(res)
    assert main(["check", str(out)]) == 0
    assert main(["analyze", str(out), "-q", "--boot", "0"]) == 0
    assert snapshot(out) == before
