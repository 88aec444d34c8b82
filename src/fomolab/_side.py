"""A second process for work that reads the results folder itself while this process computes the rest.

``fomolab analyze`` runs on one core but for pyarrow's decoding; the tables
that read the folder on their own (the consumer-impact tables read the
viewers a batch of replicates at a time) need nothing this process holds, so
on a machine with a second core they run there.

The side process is a fresh interpreter (``python -c``), given the task
pickled on its standard input: nothing of this process's memory or threads
is shared, and, unlike :mod:`multiprocessing`'s ``spawn``, the caller's
``__main__`` is not imported again there (a script without an
``if __name__ == "__main__"`` guard would run a second time).  The result
comes back pickled on the process's original standard output; anything the
task prints goes to standard error.  :func:`side_tasks` runs several tasks
one after another in one such process (one interpreter's memory, not one
per task), each result sent back as soon as its task is done.  A task's exception is raised again by
:meth:`SideTask.result`; a process that dies (killed for memory, say) gives
:class:`SideProcessDied`, so that the caller can do the work itself.  The
side process ignores Ctrl-C (its caller stops it: :meth:`SideTask.cancel`)
and dies with its caller (:func:`die_with_parent`, shared with the
executor's workers), so a caller killed outright leaves nothing computing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["SideProcessDied", "SideTask", "cpus", "die_with_parent", "side_tasks"]

_PR_SET_PDEATHSIG = 1


class SideProcessDied(RuntimeError):
    """The side process ended without sending its result."""


def cpus() -> int:
    """The CPUs this process may run on (its affinity where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class SideTask:
    """``fn(*args)`` running in a side process (``fn`` and ``args`` must pickle); :meth:`result` waits.

    :func:`side_tasks` runs several tasks one after another in one process;
    each is then a :class:`SideTask` of that process.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, _process: _Process | None = None, _at: int = 0) -> None:
        self._process = _Process([(fn, args)]) if _process is None else _process
        self._at = _at
        self._done = False

    @property
    def _proc(self) -> Any:
        """The side process (a :class:`subprocess.Popen`)."""
        return self._process.proc

    def result(self) -> Any:
        """The task's return value (its exception raised here), once."""
        if self._done:
            raise RuntimeError("the side task's result was taken already")
        self._done = True
        ok, value = self._process.take(self._at)
        if not ok:
            raise value
        return value

    def cancel(self) -> None:
        """Say that the task's result is not wanted: the process is stopped if it still runs and no other task
        of it is wanted."""
        self._done = True
        self._process.unwanted(self._at)


def side_tasks(jobs: dict[str, tuple[Any, ...]]) -> dict[str, SideTask]:
    """The tasks ``jobs`` (name: ``(fn, *args)``) run one after another, in their order, in one side process.

    One process rather than one per task: a fresh interpreter with pandas,
    pyarrow and scipy imported holds some 170 MB before it reads anything, and
    tasks that each read the folder a part at a time hold little more, so a
    second process would about double what they add to the caller's memory;
    on two cores the tasks would share the second one anyway.  Each result is
    sent back as soon as its task is done (the next one runs meanwhile), so
    that the caller may take them in any order; the process ends after the
    last (or when :meth:`SideTask.cancel` is called on every task not yet taken).
    """
    if not jobs:
        return {}
    process = _Process([(job[0], job[1:]) for job in jobs.values()])
    return {name: SideTask(*job, _process=process, _at=k) for k, (name, job) in enumerate(jobs.items())}


class _Process:
    """A side process running ``jobs`` (``(fn, args)`` each) in turn; :meth:`take` reads the results in order."""

    def __init__(self, jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> None:
        import pickle
        import subprocess
        import sys

        self.proc = subprocess.Popen([sys.executable, "-c", "from fomolab._side import _child; _child()"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdin is not None
        try:  # this process's id and import path first (the tasks' functions then resolve to the same modules)
            pickle.dump((os.getpid(), list(sys.path)), self.proc.stdin)
            pickle.dump(jobs, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.close()
        except BrokenPipeError:  # it died at once: take() says so
            pass
        self.results: dict[int, tuple[bool, Any]] = {}
        self.read = 0  # results read so far
        self.jobs = len(jobs)
        self.wanted = set(range(len(jobs)))
        self.died: str | None = None

    def take(self, k: int) -> tuple[bool, Any]:
        """The ``k``-th task's ``(ok, value)``, reading (and keeping) the results before it."""
        import pickle

        self.wanted.discard(k)
        stdout = self.proc.stdout
        assert stdout is not None
        while k not in self.results and self.died is None:
            try:
                self.results[self.read] = pickle.load(stdout)
                self.read += 1
            except (EOFError, pickle.UnpicklingError):
                code = self.proc.wait()
                self.died = f"the side process ended with exit code {code} before sending its result"
        got = self.results.pop(k, None)
        if not self.wanted:
            self._close()
        if got is None:
            raise SideProcessDied(self.died)
        return got

    def unwanted(self, k: int) -> None:
        """The ``k``-th task's result is not wanted; once no result is, the process is stopped."""
        self.wanted.discard(k)
        self.results.pop(k, None)
        if not self.wanted:
            self._close()

    def _close(self) -> None:
        """Stop the process if it still runs tasks (every result it sends is taken or not wanted)."""
        if self.read < self.jobs and self.proc.poll() is None:  # after its last result it ends by itself
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _child() -> None:
    """The side process: read the tasks, run each, write its ``(True, value)`` or ``(False, exception)``."""
    import pickle
    import queue
    import sys
    import threading

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what the tasks print goes to standard error, not into the results
    parent, path = pickle.load(sys.stdin.buffer)
    die_with_parent(parent)  # a parent killed outright leaves no side process computing for nothing
    sys.path[:] = path  # before the tasks are read: their modules are imported then
    jobs = pickle.load(sys.stdin.buffer)
    # a result waits in the pipe until the caller takes it: written by a thread, so that the next task runs
    sent: queue.Queue[bytes | None] = queue.Queue()

    def send() -> None:
        while (data := sent.get()) is not None:
            out.write(data)
            out.flush()

    writer = threading.Thread(target=send, name="fomolab-side-results")
    writer.start()
    for fn, args in jobs:
        sent.put(_message(fn, args))
    sent.put(None)
    writer.join()
    out.close()


def _message(fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    """``fn(*args)``'s ``(True, value)`` or ``(False, exception)``, pickled (nothing else of it is kept)."""
    import pickle

    try:
        msg: tuple[bool, Any] = (True, fn(*args))
    except BaseException as e:  # sent back whatever it is: the caller decides
        import traceback

        e.add_note("raised in a side process:\n" + "".join(traceback.format_tb(e.__traceback__)).rstrip())
        msg = (False, e)
    try:
        return pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # the value or the exception does not pickle
        what = "result" if msg[0] else f"exception ({msg[1]!r})"
        return pickle.dumps((False, RuntimeError(f"the side task's {what} could not be sent back: {e!r}")))


def die_with_parent(parent: int) -> None:
    """Make this process die when ``parent`` dies, and leave Ctrl-C to the parent.

    For the executor's pool workers (their initializer) and the side
    processes.  A pool worker's own parent is the fork server, which lives as
    long as any worker does, so the process watches ``parent`` (the process
    that made the pool, or started the side task) itself: a daemon thread
    waits on a pidfd of it (Linux) or polls it (elsewhere) and kills this
    process the moment it is gone.  On Linux the kernel also kills it if its
    own parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``).  If ``parent`` is
    already gone, the process exits at once.
    """
    import contextlib
    import signal
    import sys
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):  # pragma: no cover - no prctl in this libc
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # pragma: no cover - not Linux 5.3+
        fd = None
    if fd is None and not _alive(parent):  # pragma: no cover
        os._exit(1)
    threading.Thread(target=_watch, args=(parent, fd), name="fomolab-parent-watch", daemon=True).start()


def _watch(parent: int, fd: int | None) -> None:
    """Kill this process when ``parent`` exits (``fd``: a pidfd of it, or None to poll)."""
    import select
    import signal
    import time

    if fd is not None:
        select.select([fd], [], [])
    else:  # pragma: no cover - not Linux 5.3+
        while _alive(parent):
            time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's pid: it exists
        return True
    return True
