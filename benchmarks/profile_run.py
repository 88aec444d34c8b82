"""Where the time goes: a ``fomolab run`` split into phases, in one process.

Runs a spec the way ``fomolab run --workers 1`` does (``fomolab.run``, then the
summary the command prints) with timers around each phase, and prints their
wall times and shares.  No profiler is attached, so the figures are not
inflated; ``--cprofile`` prints the top functions from cProfile instead.

Phases: importing fomolab and its stack; per run, drawing viewers and traits,
candidate purchase times (``_candidates``), deciding them (``_decide``: bulk
numpy, or setting up the SimPy walk), the SimPy walk of interacting products
(``Environment.run``), building the tables (``Recorder.tables``), writing the
Parquet partition (``Store.write_run``); then the summary (``Results.summary``).

    .venv/bin/python benchmarks/profile_run.py [SPEC] [--cprofile]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

spent: dict[str, float] = defaultdict(float)


def timer(owner, name: str, label: str) -> None:
    original = getattr(owner, name)

    def wrapped(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - start

    setattr(owner, name, wrapped)


def main() -> None:
    p = argparse.ArgumentParser(description="a fomolab run split into phases")
    p.add_argument("spec", nargs="?", default=str(ROOT / "experiments/million_viewers.toml"))
    p.add_argument("--cprofile", action="store_true", help="print cProfile's top functions instead")
    args = p.parse_args()

    t0 = time.perf_counter()
    import simpy

    import fomolab
    import fomolab.engine as engine
    import fomolab.recorder as recorder
    import fomolab.results as results
    import fomolab.store as store
    imports = time.perf_counter() - t0

    out = Path(tempfile.mkdtemp(prefix="fomolab-profile-")) / "r"
    try:
        if args.cprofile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            fomolab.run(args.spec, out, workers=1).summary()
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(20)
            return
        timer(engine, "_viewer_arrays", "viewers and traits")
        timer(engine, "draw_traits", "viewers and traits")
        timer(engine, "poisson_times", "viewers and traits")
        timer(engine, "_candidates", "candidates (thinning at the envelope)")
        timer(engine, "_decide", "decide (bulk numpy / walk set-up)")
        timer(simpy.Environment, "run", "SimPy walk of interacting products")
        timer(recorder.Recorder, "tables", "build tables (Recorder.tables)")
        timer(store.Store, "write_run", "write Parquet (Store.write_run)")
        timer(results.Results, "summary", "summary (Results.summary)")
        start = time.perf_counter()
        res = fomolab.run(args.spec, out, workers=1)
        res.summary()
        total = time.perf_counter() - start
        runs = res.runs
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)

    print(f"{Path(args.spec).name}: {len(runs)} run(s), {int(runs.viewers.sum()):,} viewer visits, "
          f"{int(runs.units_sold.sum()):,} purchases")
    print(f"  {'imports (fomolab, numpy, pandas, pyarrow, simpy, pydantic)':<60} {imports:7.2f} s")
    accounted = 0.0
    for label, s in spent.items():
        accounted += s
        print(f"  {label:<60} {s:7.2f} s  {s / total:6.1%}")
    print(f"  {'other (spec, manifest, envelope, bookkeeping)':<60} {total - accounted:7.2f} s  "
          f"{(total - accounted) / total:6.1%}")
    print(f"  {'total after imports':<60} {total:7.2f} s")


if __name__ == "__main__":
    sys.exit(main())
