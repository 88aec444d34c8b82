"""Peak memory of the parent process over a 1,000-run sweep (a target in docs/performance.md, "Sweeps").

The parent expands the sweep, hands runs to 2 local worker processes and
records their outcomes; it never holds a run's tables.  This script runs
sweeps of 250, 500 and 1,000 small runs in-process (so the parent is this
process) and prints the parent's peak resident memory for each, sampled
after every run, and the growth from 250 to 1,000 runs.

    .venv/bin/python benchmarks/sweep_memory.py

Target: under 300 MB at 1,000 runs, and flat in the number of runs (growth
from 250 to 1,000 runs under 10 % of the 1,000-run peak).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sweeps import write_sweep


def peak_for(folder: Path, points: int) -> float:
    import fomolab

    spec = write_sweep(folder, name=f"memory{points}", points=points, replicates=5, duration=600.0, rate=0.5,
                       stock=50)
    me = psutil.Process()
    peak = me.memory_info().rss

    def progress(outcome, done, total):
        nonlocal peak
        peak = max(peak, me.memory_info().rss)

    res = fomolab.run(spec, out=folder / f"out{points}", workers=2, progress=progress)
    assert len(res.manifest["seeds"]) == points * 5
    return peak / 2**20


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        peaks = {}
        for points in (25, 50, 100):  # x 2 arms x 5 replicates = 250, 500, 1000 runs
            peaks[points * 10] = peak_for(Path(tmp), points)
            print(f"{points * 10:5d} runs: parent peak RSS {peaks[points * 10]:.1f} MB", flush=True)
    growth = peaks[1000] - peaks[250]
    ok = peaks[1000] < 300 and growth < 0.1 * peaks[1000]
    print(f"peak at 1,000 runs {peaks[1000]:.1f} MB (target < 300 MB); growth 250 -> 1,000 runs "
          f"{growth:+.1f} MB (target < 10 % of peak): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
