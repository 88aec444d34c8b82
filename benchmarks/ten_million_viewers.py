"""One stream of ten million viewers: the million-viewer hour with the arrival rate x10.

Writes ``experiments/million_viewers.toml`` with ``rate_per_s`` multiplied by
ten (nothing else changed) to a temporary folder, times the whole
``fomolab run SPEC --out DIR -q`` process and its peak resident memory
(``ru_maxrss`` from ``wait4``), then ``fomolab analyze DIR -q`` of the result.
Every repetition of the run writes to a fresh folder.  To show how the peak
grows with the audience, the same spec is also run once at 10^6 and
3 x 10^6 viewers (``--sizes``), and the peak per extra million viewers printed.

Targets: the run under 90 s and 3 GB; its analysis under 5 minutes and 3 GB.

    .venv/bin/python benchmarks/ten_million_viewers.py [--repeats 3] [--analyze-repeats 1] [--sizes 1 3]
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path

from _common import ROOT, fomolab_cmd, load, median, time_runs, timed_cpu, tree_rss_mb, verdict, warning_estimate

SPEC = ROOT / "experiments/million_viewers.toml"
RUN_S, RUN_MB = 90.0, 3072.0
ANALYZE_S, ANALYZE_MB = 300.0, 3072.0


def spec_at(millions: float, folder: Path) -> Path:
    """The million-viewer spec with the arrival rate times ``millions`` (only that line changed)."""
    text = SPEC.read_text()
    line = re.compile(r"^rate_per_s = ([0-9.eE+-]+)$", re.MULTILINE)
    (rate,) = line.findall(text)  # one arrival rate: the stream's
    path = folder / f"viewers_{millions:g}e6.toml"
    # 16 digits: x10 is 2777.777777777778, the rate of 10^7 viewers an hour (not the product's last-bit error)
    path.write_text(line.sub(f"rate_per_s = {float(rate) * millions:.16g}", text))
    return path


def main() -> None:
    p = argparse.ArgumentParser(description="one stream of ten million viewers in bounded memory")
    p.add_argument("--repeats", type=int, default=3, help="repetitions of the 10^7-viewer run (default 3)")
    p.add_argument("--analyze-repeats", type=int, default=1, help="repetitions of its analysis (default 1; 0 skips)")
    p.add_argument("--analyze-limit", type=float, default=2 * ANALYZE_S,
                   help="stop an analysis after this many seconds (default 600), or past 3 x its memory target")
    p.add_argument("--sizes", type=float, nargs="*", default=[1.0, 3.0],
                   help="smaller audiences, in millions, run once each for the growth of the peak (default 1 3)")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fomolab-bench-"))
    try:
        spec = spec_at(10.0, tmp)
        print(f"{SPEC.relative_to(ROOT)} with rate_per_s x10 (10^7 viewers); {load()}")
        peaks_by_size: dict[float, float] = {}
        for m in args.sizes:
            wall, cpu, peak = timed_cpu([*fomolab_cmd(), "run", str(spec_at(m, tmp)), "--out", str(tmp / f"s{m:g}"),
                                         "-q"])
            peaks_by_size[m] = peak
            print(f"  {m:g} x 10^6 viewers: {wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS {peak:,.0f} MB", flush=True)
            shutil.rmtree(tmp / f"s{m:g}", ignore_errors=True)
        _, peaks_by_size[10.0] = time_runs(spec, args.repeats, "10 x 10^6 viewers", RUN_S, RUN_MB, _describe, "run",
                                           tmp, ("-q",), keep_first_only=True)  # the first is analysed
        if len(peaks_by_size) > 1:
            sizes = sorted(peaks_by_size)
            print("  peak RSS by audience: " + ", ".join(f"{s:g}e6 {peaks_by_size[s]:,.0f} MB" for s in sizes))
            lo, hi = sizes[0], sizes[-1]
            print(f"  growth           {(peaks_by_size[hi] - peaks_by_size[lo]) / (hi - lo):,.0f} MB per extra "
                  f"million viewers ({lo:g}e6 to {hi:g}e6)")
        if args.analyze_repeats:
            _analyze(tmp, args.analyze_repeats, args.analyze_limit)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _analyze(tmp: Path, repeats: int, limit_s: float) -> None:
    """Time ``fomolab analyze`` of the first 10^7-viewer run; one past its limits is stopped and fails."""
    walls, cpus, peaks = [], [], []
    for k in range(repeats):
        wall, cpu, peak, stopped = _limited([*fomolab_cmd(), "analyze", str(tmp / "r0"), "-q",
                                             "--out", str(tmp / f"analysis{k}")], limit_s, 3 * ANALYZE_MB)
        walls.append(wall)
        cpus.append(cpu)
        peaks.append(peak)
        print(f"  fomolab analyze, repetition {k + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS {peak:,.0f} MB"
              + (f" ({stopped}: did not finish)" if stopped else ""), flush=True)
        if stopped:
            print(f"analysis: FAIL (stopped {stopped})")
            return
    aw, am = median(walls), median(peaks)
    print(f"\nfomolab analyze of the 10^7-viewer run, median over {len(walls)} ({load()}):")
    print(f"  wall time        {aw:7.2f} s    (CPU {median(cpus):.2f} s)   "
          f"target < {ANALYZE_S:.0f} s: {verdict(aw < ANALYZE_S)}")
    print(f"  peak RSS         {am:7,.0f} MB   (max {max(peaks):,.0f})   "
          f"target < {ANALYZE_MB:,.0f} MB: {verdict(max(peaks) < ANALYZE_MB)}")
    print(f"  {warning_estimate(tmp / 'r0', max(peaks))}")
    print(f"analysis: {verdict(aw < ANALYZE_S and max(peaks) < ANALYZE_MB)}")


def _limited(cmd: list[str], limit_s: float, limit_mb: float) -> tuple[float, float, float, str]:
    """As ``_common.timed_cpu``, but the child is killed past ``limit_s`` seconds or ``limit_mb`` resident
    (checked every second): wall, CPU, peak RSS, and why it was stopped ('' if it finished).

    The resident memory is the child's and its own children's (the analysis's side processes) summed; the
    peak is the larger of the sampled sums and the child's own peak."""
    import os
    import subprocess
    import time

    stopped, tree_peak = "", 0.0
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            elapsed = time.perf_counter() - start
            rss = tree_rss_mb(proc.pid)
            tree_peak = max(tree_peak, rss)
            if not stopped and (elapsed > limit_s or rss > limit_mb):
                stopped = f"past {limit_s:.0f} s" if elapsed > limit_s else f"past {limit_mb:,.0f} MB"
                proc.kill()
            time.sleep(1.0)
        wall = time.perf_counter() - start
        if not stopped and os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.read().decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, max(usage.ru_maxrss / 1024, tree_peak), stopped


def _describe(folder: Path) -> int:
    """Print what the run produced (outside the timing); return its viewer visits."""
    import pyarrow.parquet as pq

    runs = pq.read_table(folder / "runs").to_pandas()
    visits = int(runs.viewers.sum())
    rows = {t: sum(pq.ParquetFile(f).metadata.num_rows for f in (folder / t).glob("*.parquet"))
            for t in ("shoppers", "events")}
    sizes = {t: sum(f.stat().st_size for f in (folder / t).glob("*.parquet")) / 2**20
             for t in ("shoppers", "events", "runs")}
    print(f"  run: {visits:,} viewer visits, {int(runs.buyers.sum()):,} buyers, {int(runs.units_sold.sum()):,} units, "
          f"{rows['events']:,} events; Parquet: " + ", ".join(f"{t} {mb:.0f} MB" for t, mb in sizes.items()))
    return visits


if __name__ == "__main__":
    main()
