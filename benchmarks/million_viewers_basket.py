"""The million-viewer hour with the grounded shopper on: budgets and multi-unit demand.

``experiments/million_viewers.toml`` (one hour, one million viewers, 20 products
in 3-minute slots, every tactic on) with a ``[shopper]`` table added: the
valuation gate, budgets shared across the 20 products (mean 60, cv 0.8) and
up to 3 units of each product per viewer.  Every product is then decided in
its SimPy walk, and the walks meet on one clock through the viewers' budgets.
Times the whole ``fomolab run`` process (start, simulation, Parquet writing,
manifest, summary) and reads its peak resident memory from ``wait4``.

Targets: wall time under 20 s and peak resident memory under 1.5 GB.

    .venv/bin/python benchmarks/million_viewers_basket.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import ROOT, time_runs

SPEC = ROOT / "experiments/million_viewers.toml"
SHOPPER = """
[shopper]
budget = { mean = 60.0, cv = 0.8 }
max_units = 3
"""
WALL_S, PEAK_MB = 20.0, 1536.0


def main() -> None:
    p = argparse.ArgumentParser(description="one million viewers with budgets and multi-unit demand")
    p.add_argument("--repeats", type=int, default=3, help="repetitions (default 3)")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fomolab-bench-"))
    spec = tmp / "million_viewers_basket.toml"
    text = SPEC.read_text(encoding="utf-8")
    head, arms = text.split("[arms.all_tactics]", 1)
    spec.write_text(head.replace('name = "million_viewers"', 'name = "million_viewers_basket"') + SHOPPER
                    + "\n[arms.all_tactics]" + arms, encoding="utf-8")
    try:
        time_runs(spec, args.repeats,
                  f"fomolab run {SPEC.relative_to(ROOT)} + [shopper] budgets and up to 3 units", WALL_S, PEAK_MB,
                  _describe, "budgets and multi-unit demand at a million viewers", tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

def _describe(folder: Path) -> None:
    """Print what the run produced (outside the timing)."""
    import pandas as pd

    runs = pd.read_parquet(folder / "runs")
    sh = pd.read_parquet(folder / "shoppers", columns=["purchases", "spend", "budget"])
    r = runs.iloc[0]
    print(f"  viewers {int(r.viewers):,}, units sold {int(r.units_sold):,}, refused by budgets "
          f"{int(r.budget_refusals):,}; viewers who spent over half their budget "
          f"{(sh.spend > sh.budget / 2).mean():.1%}; most units per visit {int(sh.purchases.max())}")


if __name__ == "__main__":
    main()
