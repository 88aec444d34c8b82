"""Target 2: one hour, one million viewers, 20 products, all five tactics.

Times the whole ``fomolab run experiments/million_viewers.toml`` process
(start, simulation, Parquet writing, manifest, the summary table it prints)
and reads its peak resident memory from ``wait4`` (``ru_maxrss`` of the
process).  Every repetition writes to a fresh folder.

Targets: wall time under 60 s and peak resident memory under 1.5 GB.

    .venv/bin/python benchmarks/million_viewers.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import ROOT, fomolab_cmd, load, median, timed, verdict

SPEC = ROOT / "experiments/million_viewers.toml"
WALL_S, PEAK_MB = 60.0, 1536.0


def main() -> None:
    p = argparse.ArgumentParser(description="one million viewers in one run (target 2)")
    p.add_argument("--repeats", type=int, default=3, help="repetitions (default 3)")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fomolab-bench-"))
    walls, peaks = [], []
    print(f"fomolab run {SPEC.relative_to(ROOT)}, {args.repeats} repetitions; {load()}")
    try:
        for k in range(args.repeats):
            wall, peak = timed([*fomolab_cmd(), "run", str(SPEC), "--out", str(tmp / f"r{k}")])
            walls.append(wall)
            peaks.append(peak)
            print(f"  repetition {k + 1}: {wall:.2f} s, peak RSS {peak:,.0f} MB", flush=True)
        visits = _describe(tmp / "r0")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    w, m = median(walls), median(peaks)
    print(f"\nmedian over {args.repeats} runs ({load()}):")
    print(f"  wall time        {w:6.2f} s    (min {min(walls):.2f}, max {max(walls):.2f})   "
          f"target < {WALL_S:.0f} s: {verdict(w < WALL_S)}")
    print(f"  peak RSS         {m:6,.0f} MB   (max {max(peaks):,.0f})   "
          f"target < {PEAK_MB:,.0f} MB: {verdict(max(peaks) < PEAK_MB)}")
    print(f"  throughput       {visits / w:,.0f} viewer visits per second of wall time (whole command)")
    print(f"target 2: {verdict(w < WALL_S and max(peaks) < PEAK_MB)}")


def _describe(folder: Path) -> int:
    """Print what the run produced (outside the timing); return its viewer visits."""
    import pandas as pd

    runs = pd.read_parquet(folder / "runs")
    events = pd.read_parquet(folder / "events", columns=["kind"])
    visits = int(runs.viewers.sum())
    sizes = {t: sum(f.stat().st_size for f in (folder / t).glob("*.parquet")) / 2**20
             for t in ("shoppers", "events", "runs")}
    print(f"  run: {visits:,} viewer visits, {int(runs.buyers.sum()):,} buyers, {int(runs.units_sold.sum()):,} units, "
          f"{len(events):,} events ({(events.kind == 'stock_out').sum()} stock-outs); "
          f"Parquet: " + ", ".join(f"{t} {mb:.0f} MB" for t, mb in sizes.items()))
    return visits


if __name__ == "__main__":
    main()
