"""Concordance on 10^6 rows: fomolab's O(n log n) count against lifelines'.

Right-censored data with ties in time (rounded to 0.1 s) and in the predictor
(eight levels, ``--levels``), as a Cox linear predictor of tactic indicators
would be; ``--levels 0`` for a continuous predictor.
Prints both times and both values; they must agree.

    PYTHONPATH=src python benchmarks/concordance.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--levels", type=int, default=8,
                    help="distinct predictor values (0: continuous, no ties)")
    args = ap.parse_args()
    from lifelines.utils import concordance_index

    from fomolab.stats import concordance

    rng = np.random.default_rng(args.seed)
    n = args.rows
    x = rng.integers(0, args.levels, n).astype(float) if args.levels else rng.uniform(0, 8, n)
    t = np.round(rng.exponential(600.0 / (1 + 0.2 * x)), 1) + 0.1
    e = (rng.random(n) < 0.3).astype(int)
    d = pd.DataFrame({"t": t, "e": e, "x": x})

    t0 = time.perf_counter()
    ours = concordance(d, "t", "e", "x").summary.iloc[0]
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = concordance_index(t, x, e)
    t_theirs = time.perf_counter() - t0
    print(f"rows: {n:,}  events: {int(e.sum()):,}")
    print(f"fomolab.stats.concordance: C = {ours['concordance']:.12f} (se {ours['se']:.2g})  "
          f"{t_ours:.2f} s")
    print(f"lifelines concordance_index: C = {theirs:.12f}  {t_theirs:.2f} s")
    print(f"|difference| = {abs(ours['concordance'] - theirs):.2e}")
    print("counts: " + ", ".join(f"{k} {int(ours[k]):,}" for k in
                                 ("concordant", "discordant", "tied_x", "tied_y", "tied_xy")))


if __name__ == "__main__":
    main()
