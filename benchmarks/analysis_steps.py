"""Where ``analyze`` holds its memory, step by step: the analysing process's peak resident memory during
each step it runs, split into its own memory and the pages of mapped files, and the seconds it spends there.

A thread samples ``/proc/self/status`` every 20 ms (``RssAnon``: the process's own memory, which only it
can free; ``RssFile``: resident pages of mapped files, the libraries and an analysis' spill, which the
kernel can drop and read again) and charges each sample to the step ``analyze`` is running then (the
function ``fomolab.analysis._analyze`` has called, and the line it called it from). The side process, if
any, is not included: ``benchmarks/flagship_folder.py`` measures the whole process tree.

    .venv/bin/python benchmarks/analysis_steps.py FOLDER [--one-process] [--no-spill]

Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def status() -> tuple[int, int]:
    """This process's own resident memory and its resident pages of mapped files (MB)."""
    anon = file = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1]) // 1024
            elif line.startswith("RssFile:"):
                file = int(line.split()[1]) // 1024
    return anon, file


def step(main: int) -> str:
    """The step the main thread is in: the call ``_analyze`` made (its line), or what runs outside it."""
    frame = sys._current_frames().get(main)
    if frame is None:
        return "?"
    stack = [f for f in traceback.extract_stack(frame) if "fomolab" in f.filename]
    for i, f in enumerate(stack):
        if f.name == "_analyze":
            inner = stack[i + 1].name if i + 1 < len(stack) else "(its own lines)"
            return f"line {f.lineno}: {inner}"
    return stack[-1].name if stack else "(outside fomolab)"


def main() -> None:
    p = argparse.ArgumentParser(description="analyze's memory, step by step")
    p.add_argument("folder")
    p.add_argument("--one-process", action="store_true", help="analyze(side_process=False)")
    p.add_argument("--no-spill", action="store_true", help="analyze(spill=False): the visits in memory")
    args = p.parse_args()
    from fomolab.analysis import analyze

    me = threading.get_ident()
    peaks: dict[str, tuple[int, int, int]] = {}
    seconds: dict[str, float] = {}
    done = threading.Event()

    def sample() -> None:
        last = time.perf_counter()
        while not done.wait(0.02):
            anon, file = status()
            where = step(me)
            now = time.perf_counter()
            seconds[where] = seconds.get(where, 0.0) + now - last  # (the time since the last sample)
            last = now
            a, f, both = peaks.get(where, (0, 0, 0))
            peaks[where] = (max(a, anon), max(f, file), max(both, anon + file))

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.perf_counter()
    analyze(args.folder, side_process=False if args.one_process else None, spill=False if args.no_spill else None)
    wall = time.perf_counter() - t0
    done.set()
    print(f"analyze {args.folder}: {wall:.1f} s; peaks of this process during each step (MB), in the order first seen")
    print(f"{'step':58s} {'own':>6s} {'files':>6s} {'both':>6s} {'seconds':>8s}")
    for where, (a, f, both) in peaks.items():
        print(f"{where:58s} {a:6,d} {f:6,d} {both:6,d} {seconds[where]:8.1f}")
    print(f"{'largest':58s} {max(v[0] for v in peaks.values()):6,d} {max(v[1] for v in peaks.values()):6,d} "
          f"{max(v[2] for v in peaks.values()):6,d}")


if __name__ == "__main__":
    main()
