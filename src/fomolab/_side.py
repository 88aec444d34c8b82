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
:class:`SideProcessDied`, so that the caller can do the work itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["SideProcessDied", "SideTask", "cpus"]


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
        try:  # the parent's import path first, so that ``fn`` resolves to the same module there
            pickle.dump(list(sys.path), self._proc.stdin)
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
    sys.path[:] = pickle.load(sys.stdin.buffer)  # before the task is read: its modules are imported then
    fn, args = pickle.load(sys.stdin.buffer)
    try:
        msg: tuple[bool, Any] = (True, fn(*args))
    except BaseException as e:  # sent back whatever it is: the caller decides
        msg = (False, e)
    try:
        data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # the value or the exception does not pickle
        what = "result" if msg[0] else f"exception ({msg[1]!r})"
        data = pickle.dumps((False, RuntimeError(f"the side task's {what} could not be sent back: {e!r}")))
    out.write(data)
    out.close()
