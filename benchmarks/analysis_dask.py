"""A sweep's analysis serially and on a local Dask cluster (docs/performance.md, "A sweep's analysis on Dask").

Runs ``experiments/discount_timer_sweep.toml`` (6 points x 2 arms) with
``--replicates`` replicates into a temporary folder (or takes ``--folder``),
then times :func:`fomolab.analysis.analyze` serially and with
``scheduler=`` a loopback ``LocalCluster`` of ``--workers`` processes (the
cluster's start is timed on its own and not counted; the first analysis on
it is cold, its workers importing fomolab, the second warm), checks that
every table is the same, and prints the wall times.  No target: how much Dask saves
depends on the share of the per-point work and on the cores free.

    .venv/bin/python benchmarks/analysis_dask.py [--replicates 5] [--workers 2] [--folder RESULTS]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from fomolab import run
from fomolab.analysis import analyze

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicates", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--folder", help="an existing sweep folder (default: run the example sweep)")
    args = ap.parse_args()
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        if args.folder:
            folder = Path(args.folder)
        else:
            folder = Path(tmp) / "sweep"
            run(ROOT / "experiments/discount_timer_sweep.toml", folder, replicates=args.replicates,
                workers=args.workers)
        t = time.perf_counter()
        serial = analyze(folder, n_boot=args.boot)
        t_serial = time.perf_counter() - t
        t = time.perf_counter()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster:
            t_start = time.perf_counter() - t
            t = time.perf_counter()
            on_dask = analyze(folder, n_boot=args.boot, scheduler=cluster.scheduler_address)
            t_cold = time.perf_counter() - t
            t = time.perf_counter()
            analyze(folder, n_boot=args.boot, scheduler=cluster.scheduler_address)
            t_dask = time.perf_counter() - t
        for name, df in serial.tables().items():
            pd.testing.assert_frame_equal(df, on_dask.tables()[name], check_exact=True, obj=name)
        runs = serial.headline.runs.sum()
        print(f"sweep: {serial.headline.point.nunique()} points, {runs} runs, "
              f"{serial.headline.viewers.sum():,} viewers")
        print(f"serial analysis:                {t_serial:7.1f} s")
        print(f"Dask analysis, {args.workers} workers, cold: {t_cold:7.1f} s  (first tasks import fomolab; "
              f"cluster start {t_start:.1f} s, not counted)")
        print(f"Dask analysis, {args.workers} workers, warm: {t_dask:7.1f} s")
        print(f"ratio serial / warm Dask:       {t_serial / t_dask:7.2f}")
        print("tables: identical")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
