"""Executors: who runs the runs.  Serial, a pool of local processes, or Dask.

Every executor calls the same :func:`execute` on a :class:`RunSpec`: simulate,
write the run's partition, return a small summary (never the tables, so the
parent's memory stays flat however many runs a sweep has).  Results do not
depend on the executor, the number of workers or the order of completion.

Local workers never outlive the run that started them: they stay in the
parent's process group, ignore the terminal's Ctrl-C (the parent decides), are
stopped by the parent when it is interrupted (SIGINT or SIGTERM), and kill
themselves when the parent dies (they watch it; see
:func:`fomolab._side.die_with_parent`), so
a SIGKILL of ``fomolab run`` leaves no process behind.  A run cut off in a
worker leaves only staged files, which the next attempt discards.

A Dask scheduler is probed with a short timeout (:func:`connect_scheduler`)
before the results folder is created, so a wrong address costs seconds and
writes nothing.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fomolab._side import die_with_parent
from fomolab.design import RunSpec
from fomolab.errors import SchedulerError

__all__ = ["Outcome", "execute", "run_serial", "run_processes", "run_dask", "default_workers", "auto_workers",
           "connect_scheduler", "parse_scheduler"]

#: Seconds to wait for a Dask scheduler: for the TCP connection, then twice that for its
#: handshake and its answer, so a wrong address is reported within 6 seconds.
SCHEDULER_TIMEOUT_S = 2.0
#: Seconds a worker is given to stop after SIGTERM before it is killed.
WORKER_GRACE_S = 2.0


@dataclass(frozen=True)
class Outcome:
    """What the parent learns about a finished run."""

    run_id: str
    arm: str
    replicate: int
    point: int
    ok: bool
    seconds: float
    error: str = ""


def execute(run: RunSpec, out: str | Path) -> Outcome:
    """Simulate one run and write it to the results folder ``out``."""
    from fomolab.engine import simulate
    from fomolab.store import Store

    store = Store(out)
    start = time.perf_counter()
    try:
        tables = simulate(run)
        store.write_run(run.run_id, tables)
    except Exception as exc:  # a failing run is recorded, and the sweep goes on
        tb = traceback.format_exc()
        store.write_failure(run.run_id, {
            "run_id": run.run_id, "arm": run.arm, "replicate": run.replicate, "point": run.point,
            "seed": run.seed, "params": repr(run.params), "error": f"{type(exc).__name__}: {exc}",
            "traceback": tb,
        })
        return Outcome(run.run_id, run.arm, run.replicate, run.point, False,
                       time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    return Outcome(run.run_id, run.arm, run.replicate, run.point, True, time.perf_counter() - start)


def default_workers() -> int:
    """One worker per core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


#: Expected viewer visits that make a spawned worker worth its start-up (about a
#: second of simulation against about a second to start a Python process with
#: the scientific stack).
VISITS_PER_WORKER = 250_000


def auto_workers(runs: list[RunSpec], cap: int | None = None) -> int:
    """Workers for ``runs``: one per core, but no more than the work pays for.

    >>> auto_workers([])
    1
    """
    cap = cap or default_workers()
    visits = 0.0
    for r in runs:
        T = r.scenario.stream.duration_s
        edges, rates = r.scenario.stream.arrivals.pieces(T)
        visits += float((rates * (edges[1:] - edges[:-1])).sum())
    return max(1, min(cap, int(visits // VISITS_PER_WORKER)))


def run_serial(runs: Iterable[RunSpec], out: Path, *, task: Callable = execute) -> Iterator[Outcome]:
    """Run one after another in this process."""
    for r in runs:
        yield task(r, out)


def _context() -> multiprocessing.context.BaseContext:
    """Fork workers from a clean server process that has the engine imported already.

    ``forkserver`` (where the platform has it) starts the server once, from a
    fresh interpreter, so workers do not inherit this process's threads or
    state, and each worker is a fork of a process with numpy, pandas, pyarrow
    and the engine loaded: no second of imports per worker.  Elsewhere, spawn.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover - not Linux/macOS
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["fomolab.executor", "fomolab.engine", "fomolab.store"])
    return ctx


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Stop a pool at once: cancel queued runs, SIGTERM the workers, SIGKILL those still there."""
    procs = list(getattr(pool, "_processes", {}).values())  # the stdlib offers no public handle before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + WORKER_GRACE_S
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)


def run_processes(runs: Iterable[RunSpec], out: Path, workers: int, *, task: Callable = execute) -> Iterator[Outcome]:
    """Run on a pool of ``workers`` local processes (forked from a clean server, see ``_context``).

    At most ``2 * workers`` runs are in flight, so a sweep of any size is
    streamed through the pool without building its task list in memory.  If
    the parent is interrupted (or the caller stops iterating), the workers are
    stopped before this returns; runs they had not finished are redone next
    time.
    """
    ctx = _context()
    runs = iter(runs)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent,
                               initargs=(os.getpid(),))
    finished = False
    try:
        pending: set[Any] = set()
        for r in runs:
            pending.add(pool.submit(task, r, out))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
                nxt = next(runs, None)
                if nxt is not None:
                    pending.add(pool.submit(task, nxt, out))
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _stop_workers(pool)


def parse_scheduler(address: str) -> tuple[str, str, int]:
    """Split a scheduler address ``tcp://HOST:PORT`` (or ``tls://``) into its parts.

    Raises
    ------
    SchedulerError
        If the address does not have that form.

    Examples
    --------
    >>> parse_scheduler("tcp://127.0.0.1:8786")
    ('tcp', '127.0.0.1', 8786)
    """
    from urllib.parse import urlsplit

    rule = "must be tcp://HOST:PORT (or tls://HOST:PORT), the address `dask scheduler` prints"
    text = str(address)
    shown = text if len(text) <= 80 else text[:77] + "..."
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise SchedulerError(f"--scheduler {shown!r}: {rule} (the port is not a number from 1 to 65535)") from None
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None or not 0 < port < 65536 \
            or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise SchedulerError(f"--scheduler {shown!r}: {rule}")
    return parts.scheme, parts.hostname, port


def connect_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT_S) -> None:
    """Check that a Dask scheduler answers at ``address``, waiting at most ``3 * timeout`` seconds.

    First a plain TCP connection (``timeout`` seconds), then Dask's handshake
    and an ``identity`` request (``2 * timeout`` seconds more, in a thread of
    its own), so neither a closed port nor a service that is not a Dask
    scheduler keeps the caller waiting long.

    Raises
    ------
    SchedulerError
        If the address is malformed or nothing (or not a scheduler) answers.
    """
    from fomolab._optional import require

    _, host, port = parse_scheduler(address)
    require("distributed", "running on a Dask cluster")
    fix = "start one (`dask scheduler`) or check the address; nothing was written"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise SchedulerError(f"--scheduler {address}: no Dask scheduler reachable ({why}); {fix}") from None
    import logging
    import threading

    answer: dict[str, Any] = {}

    def probe() -> None:  # its own thread and event loop: works under a running loop (Jupyter) too
        import asyncio

        from distributed.comm import connect

        async def identity() -> Any:
            comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
            try:
                await asyncio.wait_for(comm.write({"op": "identity"}), timeout)
                return await asyncio.wait_for(comm.read(), timeout)
            finally:
                comm.abort()

        try:
            answer["reply"] = asyncio.run(identity())
        except BaseException as exc:  # whatever Dask raises, the answer is the same
            answer["error"] = exc

    quiet = [logging.getLogger(n) for n in ("distributed", "distributed.comm", "asyncio")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    try:
        thread = threading.Thread(target=probe, name="fomolab-scheduler-probe", daemon=True)
        thread.start()
        thread.join(2 * timeout)
    finally:
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)
    reply = answer.get("reply")
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        raise SchedulerError(f"--scheduler {address}: something listens there, but no Dask scheduler answered "
                             f"within {3 * timeout:g} s; {fix}")


def run_dask(runs: Iterable[RunSpec], out: Path, address: str, *, task: Callable = execute) -> Iterator[Outcome]:
    """Run on a Dask distributed cluster (``tcp://HOST:PORT`` of its scheduler).

    Workers write partitions straight into ``out``, which must be the same
    folder for them (a shared or local file system).  At most twice as many
    runs as the cluster has worker threads are in flight.
    """
    from fomolab._optional import require

    require("distributed", "running on a Dask cluster")
    from distributed import Client, as_completed

    with Client(address, timeout="30s") as client:  # connect_scheduler found it answering already
        slots = max(1, sum(client.nthreads().values()))
        runs = iter(runs)
        submitted = [client.submit(task, r, str(out), key=f"fomolab-run-{r.run_id}", pure=False)
                     for r in itertools.islice(runs, 2 * slots)]
        queue = as_completed(submitted)
        for fut in queue:
            yield fut.result()
            nxt = next(runs, None)
            if nxt is not None:
                queue.add(client.submit(task, nxt, str(out), key=f"fomolab-run-{nxt.run_id}", pure=False))
