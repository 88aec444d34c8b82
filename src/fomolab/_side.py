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
task prints goes to standard error.  A task's exception is raised again by
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

__all__ = ["SideProcessDied", "SideTask", "cpus", "die_with_parent"]

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
    """``fn(*args)`` running in a side process (``fn`` and ``args`` must pickle); :meth:`result` waits."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        import pickle
        import subprocess
        import sys

        self._proc = subprocess.Popen([sys.executable, "-c", "from fomolab._side import _child; _child()"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._proc.stdin is not None
        try:  # this process's id and import path first (``fn`` then resolves to the same module there)
            pickle.dump((os.getpid(), list(sys.path)), self._proc.stdin)
            pickle.dump((fn, args), self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._proc.stdin.close()
        except BrokenPipeError:  # it died at once: result() says so
            pass
        self._done = False

    def result(self) -> Any:
        """The task's return value (its exception raised here), once."""
        import pickle

        if self._done:
            raise RuntimeError("the side task's result was taken already")
        self._done = True
        assert self._proc.stdout is not None
        try:
            ok, value = pickle.load(self._proc.stdout)
        except (EOFError, pickle.UnpicklingError):
            code = self._proc.wait()
            raise SideProcessDied(f"the side process ended with exit code {code} before sending its result"
                                  ) from None
        finally:
            self._proc.stdout.close()
        self._proc.wait()
        if not ok:
            raise value
        return value

    def cancel(self) -> None:
        """Stop the process if it still runs (its result is not wanted)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def _child() -> None:
    """The side process: read the task, run it, write ``(True, value)`` or ``(False, exception)``."""
    import pickle
    import sys

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what the task prints goes to standard error, not into the result
    parent, path = pickle.load(sys.stdin.buffer)
    die_with_parent(parent)  # a parent killed outright leaves no side process computing for nothing
    sys.path[:] = path  # before the task is read: its modules are imported then
    fn, args = pickle.load(sys.stdin.buffer)
    try:
        msg: tuple[bool, Any] = (True, fn(*args))
    except BaseException as e:  # sent back whatever it is: the caller decides
        import traceback

        e.add_note("raised in a side process:\n" + "".join(traceback.format_tb(e.__traceback__)).rstrip())
        msg = (False, e)
    try:
        data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # the value or the exception does not pickle
        what = "result" if msg[0] else f"exception ({msg[1]!r})"
        data = pickle.dumps((False, RuntimeError(f"the side task's {what} could not be sent back: {e!r}")))
    out.write(data)
    out.close()


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
