"""Helpers shared by the benchmark scripts: paths, timing a child process, medians."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def fomolab_cmd() -> list[str]:
    """The ``fomolab`` console script next to this interpreter (or ``python -m``)."""
    script = Path(PYTHON).parent / "fomolab"
    return [str(script)] if script.exists() else [PYTHON, "-m", "fomolab.cli"]


def warning_estimate(folder: Path, peak_mb: float) -> str:
    """What ``fomolab analyze`` estimates its peak memory to be before reading ``folder`` (the figure behind its
    memory warning, ``fomolab.analysis.peak_memory_estimate``), beside the peak measured."""
    from fomolab.analysis import peak_memory_estimate

    visits, need = peak_memory_estimate(str(folder))
    est = need / 2**20
    return (f"the memory warning's estimate for {visits:,} visits: {est:,.0f} MB, "
            f"{est / peak_mb - 1:+.0%} against the peak measured ({peak_mb:,.0f} MB)")


def timed(cmd: list[str], cwd: Path = ROOT) -> tuple[float, float]:
    """Run ``cmd``; return its wall time (s) and peak resident memory (MB).

    The peak is the child's own ``ru_maxrss`` from ``wait4`` (its largest
    resident set over its life, imports, run, writing and summary included).
    """
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty child cannot block on it
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            text = err.read().decode(errors="replace")
            raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{text[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def _address_cap(cap_mb: float | None) -> Callable[[], None] | None:
    """A child's start-up hook capping its address space at ``cap_mb`` MB (``RLIMIT_AS``), or None."""
    if not cap_mb:
        return None
    limit = int(cap_mb * 2**20)

    def cap() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return cap


def timed_cpu(cmd: list[str], cwd: Path = ROOT, cap_mb: float | None = None) -> tuple[float, float, float]:
    """As :func:`timed`, with the child's CPU time (user + system, s) between wall time and peak:
    on a loaded machine the CPU time is what the command would take alone on a free core.

    ``cap_mb``: the child's address space is capped there (``RLIMIT_AS``), so a command that would
    outgrow the machine fails with a memory error instead of waking the kernel's out-of-memory killer.
    """
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err,
                                preexec_fn=_address_cap(cap_mb))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed after {wall:.0f} s ({usage.ru_utime + usage.ru_stime:.0f} s "
                               f"of CPU, peak {usage.ru_maxrss / 1024:.0f} MB):\n"
                               f"{err.read().decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def timed_tree(cmd: list[str], cwd: Path = ROOT, cap_mb: float | None = None,
               every_s: float = 0.2) -> tuple[float, float, float, float]:
    """As :func:`timed_cpu`, for a command that starts processes of its own (side processes, a local Dask cluster):
    the peak is that of the resident memory of the whole process tree, summed, sampled every
    ``every_s`` seconds (``wait4``'s peak is that of the largest single process); the CPU time is
    the child's and its waited-for descendants'.  Last, the peak of the tree's own memory, summed: the
    resident memory less the pages of mapped files (libraries, an analysis' spill), which the kernel
    can drop and read again."""
    with tempfile.TemporaryFile() as err:
        cpu0, start = resource_children(), time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err,
                                preexec_fn=_address_cap(cap_mb))
        peak = own = 0.0
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            own = max(own, tree_rss_mb(proc.pid, own=True))
            time.sleep(every_s)
        wall = time.perf_counter() - start
        proc.wait()
        cpu = resource_children() - cpu0
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed after {wall:.0f} s (peak {peak:.0f} MB):\n"
                               f"{err.read().decode(errors='replace')[-2000:]}")
    return wall, cpu, peak, own


def tree_rss_mb(pid: int, own: bool = False) -> float:
    """The resident memory of process ``pid`` and its descendants, summed (MB; 0 once it has ended); ``own``:
    less their resident pages of mapped files (``shared``: libraries, files mapped into memory)."""
    import psutil

    try:
        top = psutil.Process(pid)
        tree = [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    rss = 0
    for q in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            m = q.memory_info()
            rss += m.rss - (m.shared if own else 0)
    return rss / 2**20


def memory_limited(cmd: list[str], limit_mb: float, cwd: Path = ROOT) -> tuple[float, str]:
    """Run ``cmd`` in a memory cgroup of its own limited to ``limit_mb`` MB (Linux, as root: cgroup v2 or
    v1's memory controller): every page it is charged for counts, the page cache of the files it reads and
    writes included, which the kernel drops (writing it back first) to stay under the limit; past the
    limit a process is killed.  Returns the wall time and ``""``, or ``(nan, why)`` where no such cgroup can
    be made; a command that fails (killed at the limit) raises RuntimeError."""
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    if v2.is_file() and "memory" in v2.read_text().split():
        group, limits = Path(f"/sys/fs/cgroup/fomolab-bench-{os.getpid()}"), {"memory.max": int(limit_mb * 2**20),
                                                                               "memory.swap.max": 0}
    elif Path("/sys/fs/cgroup/memory").is_dir():
        group = Path(f"/sys/fs/cgroup/memory/fomolab-bench-{os.getpid()}")
        limits = {"memory.limit_in_bytes": int(limit_mb * 2**20), "memory.swappiness": 0}
    else:
        return float("nan"), "no memory cgroup on this system"
    try:
        group.mkdir()
    except OSError as e:
        return float("nan"), f"cannot make a memory cgroup ({e.strerror}: it needs root)"
    try:
        for name, value in limits.items():
            with contextlib.suppress(OSError):
                (group / name).write_text(str(value))
        name, value = next(iter(limits.items()))
        try:  # the limit itself must hold (a v2 cgroup whose parent has not enabled the memory controller has none)
            held = int((group / name).read_text().split()[0])
        except (OSError, ValueError):
            held = -1
        if held != value:
            return float("nan"), f"the memory limit cannot be set in {group}"
        procs = str(group / "cgroup.procs")

        def enter() -> None:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        with tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=enter)
            proc.wait()
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                err.seek(0)
                raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode} after {wall:.0f} s under a "
                                   f"{limit_mb:,.0f} MB memory limit (-9: killed at the limit):\n"
                                   f"{err.read().decode(errors='replace')[-1000:]}")
        return wall, ""
    finally:
        for _ in range(50):  # (the cgroup goes once its last process has)
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def resource_children() -> float:
    """CPU seconds (user + system) of every waited-for child process so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def load() -> str:
    """The machine's load averages, to print next to timings."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:  # pragma: no cover
        return "load unknown"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def time_runs(spec: Path, repeats: int, title: str, wall_s: float, peak_mb: float, describe, target: str,
              folder: Path, args: tuple[str, ...] = (), keep_first_only: bool = False) -> tuple[float, float]:
    """Time ``fomolab run SPEC [ARGS]`` ``repeats`` times into ``folder``, describe the first run, print the targets.

    ``describe(run_folder)`` prints what the run produced (outside the timing) and returns its viewer
    visits, or None; with visits a throughput line is printed.  ``target`` names the verdict line.
    With ``keep_first_only`` every run folder but the first (``r0``) is deleted once timed.  Returns
    the median wall time and the median peak (MB).
    """
    walls, cpus, peaks = [], [], []
    print(f"{title}, {repeats} repetitions; {load()}")
    for k in range(repeats):
        out = folder / f"r{k}"
        wall, cpu, peak = timed_cpu([*fomolab_cmd(), "run", str(spec), "--out", str(out), *args])
        walls.append(wall)
        cpus.append(cpu)
        peaks.append(peak)
        print(f"  repetition {k + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS {peak:,.0f} MB", flush=True)
        if k and keep_first_only:
            shutil.rmtree(out, ignore_errors=True)
    visits = describe(folder / "r0")
    w, m = median(walls), median(peaks)
    print(f"\nmedian over {repeats} runs ({load()}):")
    print(f"  wall time        {w:7.2f} s    (min {min(walls):.2f}, max {max(walls):.2f}; CPU {median(cpus):.2f} s)"
          f"   target < {wall_s:.0f} s: {verdict(w < wall_s)}")
    print(f"  peak RSS         {m:7,.0f} MB   (max {max(peaks):,.0f})   "
          f"target < {peak_mb:,.0f} MB: {verdict(max(peaks) < peak_mb)}")
    if visits:
        print(f"  throughput       {visits / w:,.0f} viewer visits per second of wall time (whole command)")
    print(f"{target}: {verdict(w < wall_s and max(peaks) < peak_mb)}", flush=True)
    return w, m
