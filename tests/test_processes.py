"""Processes: workers never outlive ``fomolab run``; SIGTERM stops it as Ctrl-C does;
a wrong ``--scheduler`` fails at once with one message and writes nothing.

Real subprocesses and real signals: ``fomolab run`` is started in a session of
its own, so every process it starts (fork server, resource tracker, workers)
can be found by its session id in ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from _toml import dumps
from fomolab.cli import main
from fomolab.errors import SchedulerError
from fomolab.executor import connect_scheduler, parse_scheduler

from helpers import left_after, make_spec, session

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

#: About a quarter of a second per run (simulation and Parquet), 40 runs.
LONG = make_spec(experiment={"name": "long", "replicates": 40},
                 stream={"duration_s": 3600.0, "arrivals": {"rate_per_s": 30.0}})


@pytest.fixture
def start(tmp_path):
    """Start ``fomolab run`` with 2 workers in a session of its own; kill what is left at the end."""
    started = []

    def go(out: Path) -> subprocess.Popen:
        spec = tmp_path / "long.toml"
        spec.write_text(dumps(LONG))
        with open(tmp_path / "stderr.txt", "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "fomolab.cli", "run", str(spec), "--out", str(out),
                                     "--workers", "2", "--quiet"], stdout=subprocess.DEVNULL, stderr=err,
                                    start_new_session=True)
        started.append(proc)
        return proc

    yield go
    for proc in started:
        for pid in session(proc.pid):
            os.kill(pid, signal.SIGKILL)


def wait_for_workers(proc: subprocess.Popen, out: Path) -> dict[int, int]:
    """Wait until two runs are finished and the workers are up; return the session's processes."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = len(list((out / "commits").glob("*.json"))) if (out / "commits").is_dir() else 0
        procs = session(proc.pid)
        if done >= 2 and len(procs) >= 4:  # the command, the fork server and two workers (at least)
            return procs
        assert proc.poll() is None, "the run ended before the workers were seen"
        time.sleep(0.02)
    pytest.fail("the workers did not start")


def test_sigterm_with_two_workers_stops_everything_and_resumes(tmp_path, start):
    out = tmp_path / "r"
    proc = start(out)
    procs = wait_for_workers(proc, out)
    assert set(procs.values()) == {proc.pid}, "the workers left the command's process group"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 143, err
    assert "terminated; finished runs are kept, run the same command to resume" in err
    assert "Traceback" not in err, err
    assert not left_after(proc.pid, 5.0), "processes left behind after SIGTERM"
    # finished: committed (a run killed between its partitions and its commit record is recomputed)
    finished = {f"{c.stem}.parquet": (out / "runs" / f"{c.stem}.parquet").stat().st_mtime_ns
                for c in (out / "commits").glob("*.json")}
    assert 2 <= len(finished) < 40
    again = subprocess.run([sys.executable, "-m", "fomolab.cli", "run", str(tmp_path / "long.toml"), "--out",
                            str(out), "--workers", "2", "--quiet"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert len(list((out / "runs").glob("*.parquet"))) == 40
    for name, mtime in finished.items():
        assert (out / "runs" / name).stat().st_mtime_ns == mtime, "a finished run was recomputed"


def test_sigkill_of_the_command_kills_its_workers(tmp_path, start):
    out = tmp_path / "r"
    proc = start(out)
    procs = wait_for_workers(proc, out)
    proc.kill()
    proc.wait(timeout=60)
    left = left_after(proc.pid, 5.0)
    assert not left, f"{len(left)} of {len(procs) - 1} processes outlived a SIGKILL of their parent"


# -- the scheduler -----------------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_listener():
    """A TCP port that accepts connections and never says a word (not a Dask scheduler)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    conns = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):  # the accept timed out: look at the stop flag
                conns.append(server.accept()[0])

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    t.join()
    for c in conns:
        c.close()
    server.close()


@pytest.mark.parametrize("address", ["CLOSED", "SILENT", "localhost:8786", "tcp://127.0.0.1", "tcp://:8786",
                                     "tcp://127.0.0.1:99999", "tcp://127.0.0.1:port", "http://127.0.0.1:8786",
                                     "tcp://127.0.0.1:8786/x", "x" * 500])
def test_wrong_scheduler_gives_one_message_and_writes_nothing(address, tmp_path, capsys, request):
    if address == "CLOSED":
        address = f"tcp://127.0.0.1:{closed_port()}"
    elif address == "SILENT":
        address = request.getfixturevalue("silent_listener")
    spec = tmp_path / "s.toml"
    spec.write_text(dumps(make_spec()))
    out = tmp_path / "r"
    assert main(["run", str(spec), "--out", str(out), "--scheduler", address, "-q"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fomolab: error: --scheduler "), err
    assert len(lines[0]) < 400, "the address is shortened"
    assert not out.exists(), "a folder was created"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_scheduler_probe_waits_at_most_its_timeout(silent_listener):
    with pytest.raises(SchedulerError, match=r"no Dask scheduler answered within 1\.5 s"):
        connect_scheduler(silent_listener, timeout=0.5)


def test_scheduler_address_parts():
    assert parse_scheduler("tls://sched.example.org:8786") == ("tls", "sched.example.org", 8786)
    with pytest.raises(SchedulerError, match="tcp://HOST:PORT"):
        parse_scheduler("sched:8786")


def test_a_real_scheduler_is_accepted():
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        connect_scheduler(cluster.scheduler_address)
