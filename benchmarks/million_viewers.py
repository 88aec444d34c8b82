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

from _common import ROOT, time_runs

SPEC = ROOT / "experiments/million_viewers.toml"
WALL_S, PEAK_MB = 60.0, 1536.0


def main() -> None:
    p = argparse.ArgumentParser(description="one million viewers in one run (target 2)")
    p.add_argument("--repeats", type=int, default=3, help="repetitions (default 3)")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fomolab-bench-"))
    try:
        time_runs(SPEC, args.repeats, f"fomolab run {SPEC.relative_to(ROOT)}", WALL_S, PEAK_MB, _describe,
                  "target 2", tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

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
