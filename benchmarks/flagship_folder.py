"""The flagship at 1,500 replicates (6,000 runs, about 2.9 GB of Parquet): reading a large folder.

Simulates ``experiments/lightning_sale.toml --replicates 1500`` once into a
folder (kept between invocations: about 6 minutes on 2 cores), then times, as
whole processes with their peak resident memory (``ru_maxrss`` from ``wait4``):

1. re-running the finished command (nothing to compute: the summary only),
   and the same with ``-q`` (the runner's own cost, without the summary),
   each three times (the fastest and the median are printed);
2. ``fomolab analyze`` of the folder;
3. ``fomolab report`` of the folder;

and, with ``--viewers``, ``Results(folder).viewers(...)`` of the ten columns
``analyze`` reads (36 million visits).

Targets: 1. under 3 s and 300 MB; 2. under 120 s and 2 GB; 3. under 180 s.

    .venv/bin/python benchmarks/flagship_folder.py [--folder /tmp/fomolab-flagship-1500] [--skip-analysis]
        [--viewers]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import PYTHON, ROOT, fomolab_cmd, load, median, timed, timed_cpu, verdict

SPEC = ROOT / "experiments/lightning_sale.toml"
REPLICATES = 1500
REPEATS = 3
#: The per-visit columns analyze reads, read in a process of their own.
VIEWERS = """
import sys
from fomolab.results import Results
cols = ["run_id", "arm", "replicate", "point", "shopper_id", "segment", "impulsiveness", "arrival_s",
        "departure_s", "first_purchase_s"]
df = Results(sys.argv[1]).viewers(cols)
print(f"{len(df)} rows, {df.memory_usage(deep=True).sum() / 2**20:.0f} MB")
"""


def main() -> None:
    p = argparse.ArgumentParser(description="the flagship at 1,500 replicates: summary, analyze, report")
    p.add_argument("--folder", default="/tmp/fomolab-flagship-1500", help="results folder (simulated if missing)")
    p.add_argument("--skip-analysis", action="store_true", help="time the summary only")
    p.add_argument("--viewers", action="store_true", help="also time reading the ten per-visit columns of analyze")
    args = p.parse_args()
    folder = Path(args.folder)
    cmd = [*fomolab_cmd(), "run", str(SPEC), "--replicates", str(REPLICATES), "--out", str(folder)]
    if not (folder / "commits").is_dir() or len(list((folder / "commits").glob("*.json"))) < 4 * REPLICATES:
        wall, peak = timed([*cmd, "-q"])
        print(f"simulate 6,000 runs: {wall:.1f} s, peak {peak:.0f} MB")
    print(load())
    times = [timed_cpu(cmd) for _ in range(REPEATS)]
    wall, cpu, peak = min(times)
    print(f"1. re-run, summary: {wall:.2f} s ({cpu:.2f} s of CPU), peak {peak:.0f} MB, fastest of {REPEATS}; "
          f"median {median([t[0] for t in times]):.2f} s  (target < 3 s, < 300 MB: "
          f"{verdict(wall < 3 and peak < 300)}; on CPU time: {verdict(cpu < 3 and peak < 300)})")
    times = [timed_cpu([*cmd, "-q"]) for _ in range(REPEATS)]
    wall, cpu, peak = min(times)
    print(f"   re-run with -q (no summary): {wall:.2f} s ({cpu:.2f} s of CPU), peak {peak:.0f} MB, fastest of "
          f"{REPEATS}; median {median([t[0] for t in times]):.2f} s")
    if args.viewers:
        wall, peak = timed([PYTHON, "-c", VIEWERS, str(folder)])
        print(f"   Results.viewers(10 columns): {wall:.1f} s, peak {peak:.0f} MB")
    if args.skip_analysis:
        return
    wall, peak = timed([*fomolab_cmd(), "analyze", str(folder), "-q"])
    print(f"2. analyze: {wall:.1f} s, peak {peak:.0f} MB  (target < 120 s, < 2 GB: "
          f"{verdict(wall < 120 and peak < 2048)})")
    report = folder.parent / (folder.name + "-report")
    wall, peak = timed([*fomolab_cmd(), "report", str(folder), "-q", "--out", str(report)])
    print(f"3. report: {wall:.1f} s, peak {peak:.0f} MB  (target < 180 s: {verdict(wall < 180)})")


if __name__ == "__main__":
    main()
