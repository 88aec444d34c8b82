"""The side process: results, exceptions and deaths come back; the caller's script does not run twice; the
consumer-impact tables and the episode model computed there are the serial ones."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from fomolab import analysis
from fomolab._side import SideProcessDied, SideTask, side_tasks
from fomolab.analysis import analyze
from fomolab.stats._example import example_results

from helpers import left_after, session


def test_the_value_comes_back_and_prints_go_to_stderr(capfd):
    assert SideTask(divmod, 17, 5).result() == (3, 2)
    assert SideTask(print, "said in the side process").result() is None  # printed, not mixed into the result
    out, err = capfd.readouterr()
    assert "said in the side process" in err and "said in the side process" not in out


def test_an_exception_is_raised_again_here_with_where_it_was_raised():
    with pytest.raises(ZeroDivisionError) as info:
        SideTask(divmod, 1, 0).result()
    assert any(note.startswith("raised in a side process:") for note in info.value.__notes__)


def test_a_process_that_dies_is_reported():
    with pytest.raises(SideProcessDied, match="exit code 3"):
        SideTask(os._exit, 3).result()


def test_cancel_stops_a_running_task():
    task = SideTask(time.sleep, 60)
    t = time.perf_counter()
    task.cancel()
    assert time.perf_counter() - t < 30
    assert task._proc.returncode is not None and task._proc.returncode != 0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_killed_caller_leaves_no_side_process(tmp_path):
    # the caller in a session of its own, so that its side process can be found by the session id
    script = tmp_path / "caller.py"
    script.write_text("import time\nfrom fomolab._side import SideTask\n"
                      "task = SideTask(time.sleep, 300)\nprint(task._proc.pid, flush=True)\ntime.sleep(300)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        child = int(proc.stdout.readline())
        deadline = time.monotonic() + 60
        while child not in session(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child in session(proc.pid), "the side process did not start"
        time.sleep(1.0)  # past the side process's start-up, where it begins to watch its parent
        proc.kill()
        proc.wait(timeout=60)
        assert not left_after(proc.pid, 10.0), "the side process outlived a SIGKILL of its caller"
    finally:
        for pid in session(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_the_callers_script_is_not_run_again(tmp_path):
    # a script without an ``if __name__ == "__main__"`` guard: multiprocessing's spawn would run it again
    marks = tmp_path / "marks"
    script = tmp_path / "script.py"
    script.write_text("from pathlib import Path\n"
                      f"with open({str(marks)!r}, 'a') as f:\n    f.write('ran\\n')\n"
                      "from fomolab._side import SideTask\n"
                      "assert SideTask(divmod, 7, 2).result() == (3, 1)\n")
    subprocess.run([sys.executable, str(script)], check=True, timeout=120)
    assert marks.read_text() == "ran\n"


def test_several_tasks_run_in_turn_in_one_process_and_are_taken_in_any_order():
    tasks = side_tasks({"a": (divmod, 17, 5), "b": (divmod, 1, 0), "c": (pow, 2, 10)})
    assert len({t._proc.pid for t in tasks.values()}) == 1
    assert tasks["c"].result() == 1024  # the results before it are read and kept
    with pytest.raises(ZeroDivisionError):  # a task's exception is its own: the next ones ran
        tasks["b"].result()
    assert tasks["a"].result() == (3, 2)
    assert tasks["a"]._proc.wait(timeout=60) == 0  # ended by itself after its last result


def test_a_result_not_yet_taken_does_not_hold_up_the_next_task(tmp_path):
    mark = tmp_path / "second"
    # a result larger than a pipe holds: written while the next task runs
    tasks = side_tasks({"big": (os.urandom, 4_000_000), "next": (mark.write_text, "ran")})
    deadline = time.monotonic() + 60
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mark.exists(), "the second task waited for the first one's result to be taken"
    assert len(tasks["big"].result()) == 4_000_000 and tasks["next"].result() == 3


def test_every_task_of_a_process_that_dies_is_reported():
    # (the sleep: time for the first result to be written; a process killed outright loses what it held)
    tasks = side_tasks({"a": (divmod, 7, 2), "wait": (time.sleep, 1.0), "b": (os._exit, 3), "c": (divmod, 9, 2)})
    assert tasks["a"].result() == (3, 1)
    for name in ("c", "b"):
        with pytest.raises(SideProcessDied, match="exit code 3"):
            tasks[name].result()


def test_the_process_is_stopped_once_no_task_of_it_is_wanted():
    tasks = side_tasks({"a": (time.sleep, 60), "b": (divmod, 7, 2)})
    tasks["b"].cancel()
    assert tasks["a"]._proc.poll() is None  # the first is still wanted
    tasks["a"].cancel()
    assert tasks["a"]._proc.returncode is not None and tasks["a"]._proc.returncode != 0
    kept = side_tasks({"a": (time.sleep, 0), "b": (divmod, 7, 2)})
    kept["a"].cancel()
    assert kept["b"].result() == (3, 1)


def test_the_side_tasks_read_the_folder_without_pyarrows_dataset_modules(folder):
    """The folder's tables read whole or by runs (no filter) leave out pyarrow.dataset and its file systems
    (some 20 MB of a side process)."""
    code = ("import sys\nfrom fomolab.results import Results\nfrom fomolab import analysis\n"
            f"res = Results({str(folder.path)!r})\n"
            "assert res._index is not None and len(res.runs)\n"  # the runs from the folder index
            "ids = list(res.runs.run_id.astype(str))[:2]\n"
            "assert len(res.viewers(['arrival_s'], run_ids=ids)) and len(res.table('windows'))\n"
            "print('pyarrow.dataset' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "False"


def test_a_dead_side_process_leaves_the_work_here_with_a_warning():
    with pytest.warns(RuntimeWarning, match="computed in this process instead"):
        assert analysis._side_result({"impact": SideTask(os._exit, 9)}, "impact") == (False, None)


@pytest.fixture(scope="module")
def folder():
    return example_results()


def test_side_processes_give_the_serial_tables(folder):
    serial = analyze(folder, n_boot=20, side_process=False)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    side = analyze(folder, n_boot=20, side_process=True)
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime > before  # a child process did the work
    assert serial.impact is not None and len(serial.impact) and serial.episode_model is not None
    assert sorted(serial.tables()) == sorted(side.tables())
    for name, df in serial.tables().items():
        pd.testing.assert_frame_equal(df, side.tables()[name], check_exact=True, obj=name)


def test_an_episode_model_whose_side_process_dies_is_computed_here_from_the_folder(folder, monkeypatch):
    # with a side task for it, the visit frame drops the first purchases: the model here reads each run again
    serial = analyze(folder, n_boot=20, side_process=False)
    jobs = analysis._side_jobs
    monkeypatch.setattr(analysis, "_side_jobs", lambda *a: {**jobs(*a), "episode_model": (os._exit, 9)})
    with pytest.warns(RuntimeWarning, match="episode_model tables are computed in this process instead"):
        side = analyze(folder, n_boot=20, side_process=True)
    assert serial.episode_model is not None
    pd.testing.assert_frame_equal(side.episode_model, serial.episode_model, check_exact=True)


def test_the_side_process_is_the_default_for_large_folders_only(folder, monkeypatch):
    from fomolab import _side
    from fomolab.stats import _folder

    res = _folder.as_results(folder)
    runs = _folder.nonempty_runs(res)
    assert analysis._local_side_tasks(res, runs, "control", 0.95, None) == {}  # a few thousand visits
    assert analysis._local_side_tasks(res, runs, "control", 0.95, False) == {}
    monkeypatch.setattr(analysis, "SIDE_PROCESS_VISITS", int(runs.viewers.sum()))
    tasks = analysis._local_side_tasks(res, runs, "control", 0.95, None)
    assert sorted(tasks) == (["episode_model", "impact"] if _side.cpus() > 1 else [])
    if tasks:  # one process for both, the impact tables (taken first) computed first
        assert list(tasks) == ["impact", "episode_model"] and len({t._proc.pid for t in tasks.values()}) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = {name: analysis._task_result(task) for name, task in tasks.items()}
    if results:
        assert set(results["impact"]) == {"quintile", "segment", "all"}
        assert list(results["episode_model"].tactic) == ["countdown_timer + lightning_sale"]


def test_the_tables_are_the_same_on_one_core_and_on_two(folder, monkeypatch):
    """With a second CPU the sort by arm and time and the point tables use two threads: the same tables."""
    from fomolab import _side

    threads = []
    by_time = analysis._by_time
    monkeypatch.setattr(analysis, "_by_time", lambda g, drop=False, **k: (
        threads.append(k.get("threads", 1)), by_time(g, drop, **k))[1])
    monkeypatch.setattr(_side, "cpus", lambda: 2)
    two = analyze(folder, n_boot=20, side_process=False)
    assert 2 in threads  # the threaded sort was reached
    threads.clear()
    monkeypatch.setattr(_side, "cpus", lambda: 1)
    one = analyze(folder, n_boot=20, side_process=False)
    assert 2 not in threads
    assert sorted(one.tables()) == sorted(two.tables())
    for name, df in one.tables().items():
        pd.testing.assert_frame_equal(df, two.tables()[name], check_exact=True, obj=name)
