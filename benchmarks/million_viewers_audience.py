"""One hour, one million viewers, 20 products, every tactic, with bursts and retention on.

``experiments/million_viewers.toml`` with Hawkes arrivals (branching ratio
0.5, decay 60 s; the immigrant rate halved so that about 10^6 viewers still
come) and retention (deals hold viewers at 0.6, countdowns at 0.8, draws at
0.5).  Times the whole ``fomolab run`` process and reads its peak resident
memory from ``wait4``, as ``million_viewers.py`` does.

Targets: wall time under 20 s and peak resident memory under 1.5 GB.

    .venv/bin/python benchmarks/million_viewers_audience.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import ROOT, fomolab_cmd, load, median, timed, verdict

SPEC = ROOT / "experiments/million_viewers.toml"
WALL_S, PEAK_MB = 20.0, 1536.0
BRANCHING = 0.5


def audience_spec(folder: Path) -> Path:
    """The million-viewer spec with bursts and retention, written to ``folder``."""
    text = SPEC.read_text(encoding="utf-8")
    rate = "rate_per_s = 277.7777777777778"
    assert rate in text and "duration_s = 3600.0\n" in text
    text = text.replace(rate, f"rate_per_s = {277.7777777777778 * (1 - BRANCHING)!r}\n"
                              f"hawkes = {{ branching = {BRANCHING}, decay_s = 60.0 }}", 1)
    text = text.replace("duration_s = 3600.0\n",
                        "duration_s = 3600.0\nretention = { deal = 0.6, countdown = 0.8, draw = 0.5 }\n", 1)
    text = text.replace('name = "million_viewers"', 'name = "million_viewers_audience"', 1)
    out = folder / "million_viewers_audience.toml"
    out.write_text(text, encoding="utf-8")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description="one million viewers with bursts and retention")
    p.add_argument("--repeats", type=int, default=3, help="repetitions (default 3)")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fomolab-bench-"))
    walls, peaks = [], []
    spec = audience_spec(tmp)
    print(f"fomolab run {SPEC.relative_to(ROOT)} + bursts + retention, {args.repeats} repetitions; {load()}")
    try:
        for k in range(args.repeats):
            wall, peak = timed([*fomolab_cmd(), "run", str(spec), "--out", str(tmp / f"r{k}")])
            walls.append(wall)
            peaks.append(peak)
            print(f"  repetition {k + 1}: {wall:.2f} s, peak RSS {peak:,.0f} MB", flush=True)
        visits = _describe(tmp / "r0")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    w, m = median(walls), median(peaks)
    print(f"\nmedian over {args.repeats} runs ({load()}):")
    print(f"  wall time        {w:6.2f} s    (min {min(walls):.2f}, max {max(walls):.2f})   "
          f"target < {WALL_S:.0f} s: {verdict(w < WALL_S)}")
    print(f"  peak RSS         {m:6,.0f} MB   (max {max(peaks):,.0f})   "
          f"target < {PEAK_MB:,.0f} MB: {verdict(max(peaks) < PEAK_MB)}")
    print(f"  throughput       {visits / w:,.0f} viewer visits per second of wall time (whole command)")
    print(f"bursts and retention at 10^6 viewers: {verdict(w < WALL_S and max(peaks) < PEAK_MB)}")


def _describe(folder: Path) -> int:
    """Print what the run produced (outside the timing); return its viewer visits."""
    import pandas as pd

    runs = pd.read_parquet(folder / "runs")
    shoppers = pd.read_parquet(folder / "shoppers", columns=["held_by_deal_s", "held_by_countdown_s",
                                                             "held_by_draw_s"])
    visits = int(runs.viewers.sum())
    held = {c.removeprefix("held_by_").removesuffix("_s"): int((shoppers[c] > 0).sum()) for c in shoppers}
    print(f"  run: {visits:,} viewer visits, {int(runs.buyers.sum()):,} buyers, {int(runs.units_sold.sum()):,} units; "
          "viewers held by " + ", ".join(f"{k} {v:,}" for k, v in held.items()))
    return visits


if __name__ == "__main__":
    main()
