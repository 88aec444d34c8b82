"""Executors: who runs the runs.  Serial, or a pool of local processes.

Every executor calls the same :func:`execute` on a :class:`RunSpec`: simulate,
write the run's partition, return a small summary (never the tables, so the
parent's memory stays flat however many runs a sweep has).  Results do not
depend on the executor, the number of workers or the order of completion.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fomolab.design import RunSpec

__all__ = ["Outcome", "execute", "run_serial", "run_processes", "run_dask", "default_workers", "auto_workers"]


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


def run_processes(runs: Iterable[RunSpec], out: Path, workers: int, *, task: Callable = execute) -> Iterator[Outcome]:
    """Run on a pool of ``workers`` local processes (forked from a clean server, see ``_context``).

    At most ``2 * workers`` runs are in flight, so a sweep of any size is
    streamed through the pool without building its task list in memory.
    """
    ctx = _context()
    runs = iter(runs)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
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


def run_dask(runs: Iterable[RunSpec], out: Path, address: str, *, task: Callable = execute) -> Iterator[Outcome]:
    """Run on a Dask distributed cluster (``tcp://HOST:PORT`` of its scheduler).

    Workers write partitions straight into ``out``, which must be the same
    folder for them (a shared or local file system).  At most twice as many
    runs as the cluster has worker threads are in flight.
    """
    from fomolab._optional import require

    require("distributed", "running on a Dask cluster")
    from distributed import Client, as_completed

    with Client(address, timeout="30s") as client:
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
