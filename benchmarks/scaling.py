"""Target 3: throughput, and how the cost per viewer grows from 10^3 to 10^6 viewers.

Takes ``experiments/million_viewers.toml`` (one hour, 20 products, all five
tactics, social proof included) and varies its arrival rate so that the hour
has 10^3, 10^4, 10^5 and 10^6 viewers.  For each size it times, in this
process, ``simulate(run)`` (sampling, the SimPy walk of interacting products
and building the three tables) and writing the run's Parquet partition, and
prints viewer visits per second and microseconds per viewer (medians).

Two variants:

- ``rate only``: only the arrival rate changes; stocks stay as in the spec, so
  at 10^6 viewers most products sell out and at 10^3 none does;
- ``stock scaled``: stocks, quotas, cue thresholds and ticker saturations
  scale with the audience too, so every size plays the same scenario (the same
  share of products sells out at the same moments).

Target: cost per viewer flat, here the simulate cost per viewer at 10^6 within
1.5 times that at 10^4 in both variants (no quadratic term from social proof
or scarcity).  10^3 is printed too; it is dominated by the fixed cost of a run.

    .venv/bin/python benchmarks/scaling.py [--sizes 1e3 1e4 1e5 1e6]
"""

from __future__ import annotations

import argparse
import copy
import shutil
import tempfile
import time
import tomllib
from pathlib import Path

from _common import ROOT, load, median, verdict

SPEC = ROOT / "experiments/million_viewers.toml"
FLAT = 1.5


def scaled_spec(raw: dict, viewers: float, scale_stock: bool) -> dict:
    spec = copy.deepcopy(raw)
    spec["stream"]["arrivals"]["rate_per_s"] = viewers / spec["stream"]["duration_s"]
    if scale_stock:
        f = viewers / 1e6
        for prod in spec["lineup"].values():
            prod["stock"] = max(1, round(prod["stock"] * f))
            tac = prod["tactics"]
            tac["lightning_sale"]["quota"] = max(1, round(tac["lightning_sale"]["quota"] * f))
            tac["scarcity_cue"]["threshold"] = max(1, round(tac["scarcity_cue"]["threshold"] * f))
            tac["social_proof"]["saturation"] = max(1, round(tac["social_proof"]["saturation"] * f))
    return spec


def repeats_for(viewers: float) -> int:
    return 9 if viewers <= 1e4 else 5 if viewers <= 1e5 else 3


def main() -> None:
    p = argparse.ArgumentParser(description="cost per viewer from 10^3 to 10^6 viewers (target 3)")
    p.add_argument("--sizes", type=float, nargs="+", default=[1e3, 1e4, 1e5, 1e6], help="viewers per hour")
    args = p.parse_args()

    from fomolab.design import expand
    from fomolab.engine import simulate
    from fomolab.spec import parse_spec
    from fomolab.store import Store

    raw = tomllib.loads(SPEC.read_text())
    tmp = Path(tempfile.mkdtemp(prefix="fomolab-bench-"))
    print(f"{SPEC.relative_to(ROOT)} with the arrival rate varied; medians; {load()}")
    verdicts = []
    try:
        for scale_stock in (False, True):
            label = "stock scaled" if scale_stock else "rate only"
            print(f"\n[{label}]")
            print(f"  {'viewers':>9} {'reps':>4} {'buyers':>8} {'simulate s':>10} {'visits/s':>10} "
                  f"{'us/viewer':>9} {'+ write s':>9} {'us/viewer':>9}")
            per_viewer = {}
            for size in args.sizes:
                exp = parse_spec(scaled_spec(raw, size, scale_stock), source=str(SPEC), base_dir=SPEC.parent)
                run = expand(exp)[0]
                simulate(run)  # warm caches and lazy imports
                sims, writes = [], []
                for k in range(repeats_for(size)):
                    t0 = time.perf_counter()
                    tables = simulate(run)
                    t1 = time.perf_counter()
                    store = Store(tmp / f"{label[:4]}{size:.0f}-{k}")
                    for name in ("shoppers", "events", "runs", ".staging"):
                        (store.path / name).mkdir(parents=True, exist_ok=True)
                    store.write_run(run.run_id, tables)
                    t2 = time.perf_counter()
                    sims.append(t1 - t0)
                    writes.append(t2 - t1)
                    shutil.rmtree(store.path, ignore_errors=True)
                n = len(tables.shoppers)
                buyers = int(tables.runs.buyers.iloc[0])
                s, w = median(sims), median(writes)
                per_viewer[size] = s / n
                del tables
                print(f"  {n:>9,} {len(sims):>4} {buyers:>8,} {s:>10.3f} {n / s:>10,.0f} {1e6 * s / n:>9.2f} "
                      f"{s + w:>9.3f} {1e6 * (s + w) / n:>9.2f}", flush=True)
            if 1e5 in per_viewer and 1e6 in per_viewer:  # past the fixed cost of a run
                print(f"  cost per viewer at 10^6 / at 10^5 = {per_viewer[1e6] / per_viewer[1e5]:.2f}")
            if 1e4 in per_viewer and 1e6 in per_viewer:
                ratio = per_viewer[1e6] / per_viewer[1e4]
                verdicts.append(ratio <= FLAT)
                print(f"  cost per viewer at 10^6 / at 10^4 = {ratio:.2f}   target <= {FLAT}: {verdict(ratio <= FLAT)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if verdicts:
        print(f"\ntarget 3: {verdict(all(verdicts))}   ({load()})")


if __name__ == "__main__":
    main()
