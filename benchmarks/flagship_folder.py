"""The flagship at 1,500 replicates (6,000 runs, about 2.9 GB of Parquet): reading a large folder.

Simulates ``experiments/lightning_sale.toml --replicates 1500`` once into a
folder (kept between invocations: about 6 minutes on 2 cores), then times, as
whole processes with their peak resident memory (``ru_maxrss`` from ``wait4``):

1. re-running the finished command (nothing to compute: the summary only),
   and the same with ``-q`` (the runner's own cost, without the summary),
   each three times (the fastest and the median are printed);
2. ``fomolab analyze`` of the folder (its side processes included: CPU time
   of every process, peak resident memory of the process tree summed);
3. ``fomolab report`` of the folder (the same);

and, with ``--viewers``, ``Results(folder).viewers(...)`` of the ten columns
``analyze`` reads (36 million visits); with ``--contrasts``, in a process
capped at 16 GB of address space, the arm contrasts (``compare_tables``) and
the headline's per-point tables (``_point_parts``, given the contrasts'
paired estimates), each with its CPU and wall time, and the inner steps
``_boot_medians``, ``replicate_effects``, ``for_whom_table`` and ``_timing_rows``
(any folder: ``--folder /tmp/s4/flag150``).

With ``--one-process``, ``analyze(folder, side_process=False)`` is timed too (everything in the analysing
process). With ``--workers N``, ``fomolab analyze --workers N`` is timed too: the consumer-impact tables and the
episode model then run on a local Dask cluster beside the analysing process, and the peak is that of the
whole process tree's resident memory, summed.

Targets: 1. under 3 s and 300 MB; 2. under 120 s and 2 GB; 3. under 180 s.

    .venv/bin/python benchmarks/flagship_folder.py [--folder /tmp/fomolab-flagship-1500] [--skip-analysis]
        [--viewers] [--contrasts] [--cap-gb 16] [--memory-limit-gb 2] [--one-process] [--workers N]

With ``--memory-limit-gb G`` (Linux, as root), ``fomolab analyze`` runs once more in a memory cgroup limited
to G GB: the kernel then charges it for every page, the page cache of the files it reads and of its spill
included, and kills it past the limit; the time it takes there is printed.

``analyze`` and ``report`` run with their address space capped (``--cap-gb``, default 16 GB): past it they fail
with a memory error, which is printed, instead of waking the kernel's out-of-memory killer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from _common import (
    PYTHON,
    ROOT,
    fomolab_cmd,
    load,
    median,
    memory_limited,
    timed,
    timed_cpu,
    timed_tree,
    verdict,
    warning_estimate,
)

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
#: compare_tables and _point_parts of a folder, timed step by step, under a 16 GB address-space cap.
CONTRASTS = """
import functools, resource, sys, time, warnings
resource.setrlimit(resource.RLIMIT_AS, (16_000_000 * 1024, 16_000_000 * 1024))
import fomolab.analysis as A
import fomolab.stats.compare as C
import fomolab.stats.replicates as R
from fomolab.stats import _folder

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def timed(mod, name):
    f = getattr(mod, name)
    @functools.wraps(f)
    def g(*a, **k):
        c, w = time.process_time(), time.perf_counter()
        out = f(*a, **k)
        print(f"   {name}: {time.perf_counter() - w:.1f} s ({time.process_time() - c:.1f} s of CPU), "
              f"peak so far {peak():.0f} MB", flush=True)
        return out
    setattr(mod, name, g)

for mod, name in ((C, "_boot_medians"), (R, "replicate_effects"), (A, "for_whom_table"), (A, "_timing_rows")):
    timed(mod, name)
warnings.simplefilter("ignore")
res = _folder.as_results(sys.argv[1])
runs = _folder.nonempty_runs(res)
sh = res.viewers(["run_id", "arm", "replicate", "point", "shopper_id", "segment", "impulsiveness", "arrival_s",
                  "departure_s", "first_purchase_s"])
r = runs.assign(arm=runs.arm.astype(str))
end_s = A._stream_end(res, r)
sh = A._visit_frame(sh, end_s)
control = res.manifest.get("control", "control")
order = [a for a in _folder.arm_order(res.manifest, r.arm, control_first=False) if a in set(res.manifest["arms"])]
print(f"   {len(sh):,} visits read, peak so far {peak():.0f} MB", flush=True)
paired = {}
c, w = time.process_time(), time.perf_counter()
C.compare_tables(res, runs, sh, control, paired=paired)
print(f"compare_tables: {time.perf_counter() - w:.1f} s ({time.process_time() - c:.1f} s of CPU)", flush=True)
c, w = time.process_time(), time.perf_counter()
A._point_parts(res, A._part_frame(sh), r, end_s, order, control, A.default_horizon(sh, control), 0.95,
               paired=paired)
print(f"_point_parts: {time.perf_counter() - w:.1f} s ({time.process_time() - c:.1f} s of CPU), "
      f"peak {peak():.0f} MB", flush=True)
"""


def main() -> None:
    p = argparse.ArgumentParser(description="the flagship at 1,500 replicates: summary, analyze, report")
    p.add_argument("--folder", default="/tmp/fomolab-flagship-1500", help="results folder (simulated if missing)")
    p.add_argument("--skip-analysis", action="store_true", help="time the summary only")
    p.add_argument("--viewers", action="store_true", help="also time reading the ten per-visit columns of analyze")
    p.add_argument("--contrasts", action="store_true",
                   help="only time compare_tables and _point_parts of the folder (in a process capped at 16 GB)")
    p.add_argument("--cap-gb", type=float, default=16.0,
                   help="address-space cap of the analyze and report processes, GB (default 16)")
    p.add_argument("--memory-limit-gb", type=float, default=None,
                   help="also run analyze in a memory cgroup limited to this many GB (Linux, as root; the page "
                        "cache counts), and say whether it finishes")
    p.add_argument("--one-process", action="store_true",
                   help="also time analyze without side processes (analyze(side_process=False))")
    p.add_argument("--workers", type=int, default=None,
                   help="also time `fomolab analyze --workers N` (a local Dask cluster beside the analysing process;"
                        " peak: the whole process tree's)")
    args = p.parse_args()
    folder = Path(args.folder)
    if args.contrasts:
        print(load())
        subprocess.run([PYTHON, "-c", CONTRASTS, str(folder)], cwd=ROOT, check=True)
        return
    # a folder of another size is timed as it is: re-running with 1,500 replicates would add runs to it
    manifest = folder / "manifest.json"
    replicates = REPLICATES
    if manifest.is_file():
        written = json.loads(manifest.read_text())
        if written.get("experiment") != "lightning_sale":
            raise SystemExit(f"{folder}: a folder of {written.get('experiment')!r}, not of {SPEC.name}")
        replicates = written["replicates"]
    cmd = [*fomolab_cmd(), "run", str(SPEC), "--replicates", str(replicates), "--out", str(folder)]
    runs = len(list((folder / "commits").glob("*.json"))) if (folder / "commits").is_dir() else 0
    if runs < 4 * replicates:  # missing, or an interrupted simulation: resumed
        wall, peak = timed([*cmd, "-q"])
        print(f"simulate {4 * replicates:,} runs: {wall:.1f} s, peak {peak:.0f} MB")
    elif replicates != REPLICATES:
        print(f"{folder}: {4 * replicates:,} runs ({replicates} replicates), timed as they are")
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
    cap = args.cap_gb * 1024
    try:
        wall, cpu, peak, own = timed_tree([*fomolab_cmd(), "analyze", str(folder), "-q"], cap_mb=cap)
        print(f"2. analyze: {wall:.1f} s ({cpu:.1f} s of CPU, side processes included), peak {peak:.0f} MB summed "
              f"over its processes ({own:.0f} MB less the pages of mapped files)  (target < 120 s, < 2 GB: "
              f"{verdict(wall < 120 and peak < 2048)})")
        print(f"   {warning_estimate(folder, peak)}")
    except RuntimeError as exc:
        print(f"2. analyze under a {args.cap_gb:g} GB address-space cap: {exc}")
    if args.memory_limit_gb:
        limit = args.memory_limit_gb * 1024
        try:
            wall, why = memory_limited([*fomolab_cmd(), "analyze", str(folder), "-q"], limit)
            print(f"2. analyze under a {args.memory_limit_gb:g} GB memory limit (a cgroup; page cache included): "
                  + (f"not measured: {why}" if why else f"finished in {wall:.1f} s"))
        except RuntimeError as exc:
            print(f"2. analyze under a {args.memory_limit_gb:g} GB memory limit: {exc}")
    if args.one_process:
        one = ("import sys, tempfile; from fomolab.analysis import analyze\n"
               "with tempfile.TemporaryDirectory() as out: analyze(sys.argv[1], side_process=False).write(out)")
        try:
            wall, cpu, peak, _ = timed_tree([PYTHON, "-c", one, str(folder)], cap_mb=cap)
            print(f"2. analyze in one process: {wall:.1f} s ({cpu:.1f} s of CPU), peak {peak:.0f} MB")
        except RuntimeError as exc:
            print(f"2. analyze in one process: {exc}")
    if args.workers:
        try:
            wall, cpu, peak, _ = timed_tree([*fomolab_cmd(), "analyze", str(folder), "-q", "--workers",
                                          str(args.workers)], cap_mb=cap)
            print(f"2. analyze --workers {args.workers}: {wall:.1f} s ({cpu:.1f} s of CPU, all processes), peak "
                  f"{peak:.0f} MB summed over its processes  (target < 120 s, < 2 GB: "
                  f"{verdict(wall < 120 and peak < 2048)})")
        except RuntimeError as exc:
            print(f"2. analyze --workers {args.workers}: {exc}")
    report = folder.parent / (folder.name + "-report")
    try:
        wall, cpu, peak, _ = timed_tree([*fomolab_cmd(), "report", str(folder), "-q", "--out", str(report)],
                                        cap_mb=cap)
        print(f"3. report: {wall:.1f} s ({cpu:.1f} s of CPU), peak {peak:.0f} MB summed  (target < 180 s: "
              f"{verdict(wall < 180)})")
    except RuntimeError as exc:
        print(f"3. report under a {args.cap_gb:g} GB address-space cap: {exc}")


if __name__ == "__main__":
    main()
