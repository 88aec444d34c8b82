"""Sweep throughput with 1 and 2 local workers (a target in docs/performance.md, "Sweeps").

A 40-run sweep (2 arms x 4 points x 5 replicates, about 430,000 viewers and a second of simulation each) is run
with `fomolab run --workers 1` and `--workers 2`, each as a whole command in a
fresh process (start-up, process pool and Parquet writing included), several
times.  Prints the median runs per second of each and their ratio.

    .venv/bin/python benchmarks/sweep_throughput.py [--repeats 3]

Target: 2 workers give at least 1.7 times the runs per second of 1.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sweeps import write_sweep

FOMOLAB = Path(sys.executable).parent / "fomolab"


def once(spec: Path, out: Path, workers: int) -> float:
    start = time.perf_counter()
    subprocess.run([str(FOMOLAB), "run", str(spec), "--out", str(out), "--workers", str(workers), "--quiet"],
                   check=True)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = write_sweep(tmp, name="throughput", points=4, replicates=5, duration=3600.0, rate=120.0, stock=1000000)
        runs = 40
        times: dict[int, list[float]] = {1: [], 2: []}
        for k in range(args.repeats):
            for workers in (1, 2):
                times[workers].append(once(spec, tmp / f"out-{workers}-{k}", workers))
        rate = {w: runs / statistics.median(t) for w, t in times.items()}
        for w in (1, 2):
            print(f"workers={w}: median {statistics.median(times[w]):.2f} s over {args.repeats} repeats "
                  f"({', '.join(f'{t:.2f}' for t in times[w])}) -> {rate[w]:.2f} runs/s")
        ratio = rate[2] / rate[1]
        print(f"speed-up 2 workers / 1 worker: {ratio:.2f} (target >= 1.7): {'PASS' if ratio >= 1.7 else 'FAIL'}")
        return 0 if ratio >= 1.7 else 1


if __name__ == "__main__":
    sys.exit(main())
