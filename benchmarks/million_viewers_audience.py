"""One hour, one million viewers, 20 products, every tactic, with bursts and retention on.

``experiments/million_viewers.toml`` with Hawkes arrivals (branching ratio
0.5, decay 60 s; the immigrant rate halved so that about 10^6 viewers still
come) and retention (deals hold viewers at 0.6, countdowns at 0.8, draws at
0.5).  Times the whole ``fomolab run`` process and reads its peak resident
memory from ``wait4``, as ``million_viewers.py`` does.

Targets: wall time under 20 s and peak resident memory under 1.5 GB.
``--purchase R`` adds retention from a viewer's own purchase (``purchase =
R``), which decides every product in one time order on the SimPy clock.

    .venv/bin/python benchmarks/million_viewers_audience.py [--repeats 3] [--purchase 0.7]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import ROOT, time_runs

SPEC = ROOT / "experiments/million_viewers.toml"
WALL_S, PEAK_MB = 20.0, 1536.0
BRANCHING = 0.5


def audience_spec(folder: Path, purchase: float = 1.0) -> Path:
    """The million-viewer spec with bursts and retention (``purchase``: the own-purchase multiplier,
    1 = off), written to ``folder``."""
    text = SPEC.read_text(encoding="utf-8")
    rate = "rate_per_s = 277.7777777777778"
    assert rate in text and "duration_s = 3600.0\n" in text
    text = text.replace(rate, f"rate_per_s = {277.7777777777778 * (1 - BRANCHING)!r}\n"
                              f"hawkes = {{ branching = {BRANCHING}, decay_s = 60.0 }}", 1)
    text = text.replace("duration_s = 3600.0\n",
                        "duration_s = 3600.0\nretention = { deal = 0.6, countdown = 0.8, draw = 0.5"
                        + (f", purchase = {purchase!r}" if purchase != 1.0 else "") + " }\n", 1)
    text = text.replace('name = "million_viewers"', 'name = "million_viewers_audience"', 1)
    out = folder / "million_viewers_audience.toml"
    out.write_text(text, encoding="utf-8")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description="one million viewers with bursts and retention")
    p.add_argument("--repeats", type=int, default=3, help="repetitions (default 3)")
    p.add_argument("--purchase", type=float, default=1.0,
                   help="leaving-hazard multiplier after a viewer's own purchase (default 1: off)")
    args = p.parse_args()
    what = " + own-purchase retention" if args.purchase != 1.0 else ""

    tmp = Path(tempfile.mkdtemp(prefix="fomolab-bench-"))
    try:
        time_runs(audience_spec(tmp, args.purchase), args.repeats,
                  f"fomolab run {SPEC.relative_to(ROOT)} + bursts + retention{what}",
                  WALL_S, PEAK_MB, _describe, f"bursts and retention{what} at 10^6 viewers", tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

def _describe(folder: Path) -> int:
    """Print what the run produced (outside the timing); return its viewer visits."""
    import pandas as pd

    runs = pd.read_parquet(folder / "runs")
    import pyarrow.parquet as pq

    names = pq.read_schema(next((folder / "shoppers").rglob("*.parquet"))).names
    shoppers = pd.read_parquet(folder / "shoppers", columns=[c for c in names if c.startswith("held_by_")])
    visits = int(runs.viewers.sum())
    held = {c.removeprefix("held_by_").removesuffix("_s"): int((shoppers[c] > 0).sum()) for c in shoppers}
    print(f"  run: {visits:,} viewer visits, {int(runs.buyers.sum()):,} buyers, {int(runs.units_sold.sum()):,} units; "
          "viewers held by " + ", ".join(f"{k} {v:,}" for k, v in held.items()))
    return visits


if __name__ == "__main__":
    main()
