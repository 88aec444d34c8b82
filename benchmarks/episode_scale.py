"""The analysis at a million viewers per arm: ``fomolab analyze``, the episode model, and its cost per viewer.

``experiments/million_viewers.toml`` with a no-tactic control arm added (2 x 10^6
visits), and the same spec with the arrival rate scaled to 10^4 and 10^5 viewers
per arm.  Each folder is simulated once (kept between invocations).  Printed:

1. ``fomolab analyze`` of the 10^6 folder (a whole process: wall time, CPU time,
   peak resident memory), and the episode model alone
   (``fomolab.episode_model.episode_model``, in its own process);
2. the episode model's hazard ratios against the full counting-process Cox fit
   (``stats.cox`` on the episodes cut at every tactic window edge, Breslow ties)
   on a 10^5-viewer subsample, side by side, with whether they agree to 3
   significant digits;
3. the cost per viewer of ``analyze`` and of the episode model at 10^4, 10^5
   and 10^6 viewers per arm, and the 10^6 / 10^4 ratio.

Targets: 1. analyze under 60 s and 1.5 GB; 2. agreement to 3 significant digits;
3. the ratio under 1.5.  The machine is shared: CPU times are printed next to
wall times.

    PYTHONPATH=src python benchmarks/episode_scale.py [--folder /tmp/fomolab-million-control] [--sizes 1e4 1e5 1e6]
        [--compare-only]
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, fomolab_cmd, load, timed_cpu, verdict, warning_estimate

SPEC = ROOT / "experiments/million_viewers.toml"
RATE = 1_000_000 / 3600.0


def spec_text(viewers: float) -> str:
    """The million-viewer spec with a control arm, at ``viewers`` expected viewers per arm."""
    text = SPEC.read_text().replace('control = "all_tactics"', 'control = "control"')
    text = re.sub(r"rate_per_s = [0-9.e+-]+", f"rate_per_s = {RATE * viewers / 1e6!r}", text, count=1)
    return text + '\n[arms.control]\ndescription = "No tactic."\ntactics = []\n'


def folder_for(base: Path, viewers: float) -> Path:
    out = base.parent / f"{base.name}-{int(viewers)}"
    if not (out / "commits").is_dir() or len(list((out / "commits").glob("*.json"))) < 2:
        spec = base.parent / f"{base.name}-{int(viewers)}.toml"
        spec.write_text(spec_text(viewers))
        wall, cpu, peak = timed_cpu([*fomolab_cmd(), "run", str(spec), "--out", str(out), "-q"])
        print(f"simulate {int(viewers):,} viewers per arm: {wall:.1f} s ({cpu:.1f} s CPU), peak {peak:.0f} MB")
    return out


def sig3(x: float) -> str:
    return f"{x:.3g}"


def main() -> None:
    p = argparse.ArgumentParser(description="analyze and the episode model at 10^4 to 10^6 viewers per arm")
    p.add_argument("--folder", default="/tmp/fomolab-million-control", help="base name of the folders")
    p.add_argument("--sizes", type=float, nargs="+", default=[1e4, 1e5, 1e6], help="viewers per arm")
    p.add_argument("--subsample", type=float, default=1e5, help="viewers for the Cox comparison")
    p.add_argument("--compare-only", action="store_true", help="only the comparison with Cox, on the largest size")
    args = p.parse_args()
    base = Path(args.folder)
    print(load())
    cost: dict[float, tuple[float, float, int]] = {}
    if args.compare_only:
        out = folder_for(base, max(args.sizes))
        from fomolab import Results

        compare(out, int(Results(out).runs.viewers.sum()), args.subsample)
        return
    for n in sorted(args.sizes):
        out = folder_for(base, n)
        with tempfile.TemporaryDirectory() as tmp:
            wall, cpu, peak = timed_cpu([*fomolab_cmd(), "analyze", str(out), "-q", "--out", str(Path(tmp) / "a")])
        ew, ec, ep = timed_cpu([sys.executable, "-c", "import sys; from fomolab.episode_model import episode_model;"
                                f" episode_model({str(out)!r})"])
        from fomolab import Results

        visits = int(Results(out).runs.viewers.sum())
        cost[n] = (cpu, ec, visits)
        print(f"{int(n):>9,} viewers per arm ({visits:,} visits): analyze {wall:.1f} s ({cpu:.1f} s CPU), "
              f"peak {peak:.0f} MB; episode model {ew:.1f} s ({ec:.1f} s CPU), peak {ep:.0f} MB")
        print(f"   {warning_estimate(out, peak)}")
        if n == max(args.sizes):
            print(f"1. analyze at {int(n):,} per arm: target < 60 s, < 1.5 GB: "
                  f"{verdict(wall < 60 and peak < 1536)} (on CPU time: {verdict(cpu < 60 and peak < 1536)})")
            compare(out, visits, args.subsample)
    lo, hi = min(cost), max(cost)
    if lo != hi:
        per = {n: (c[0] / c[2] * 1e6, c[1] / c[2] * 1e6) for n, c in cost.items()}
        for n, (a, e) in sorted(per.items()):
            print(f"   cost per 10^6 visits at {int(n):>9,} per arm: analyze {a:.1f} s, episode model {e:.1f} s")
        ratio_a, ratio_e = per[hi][0] / per[lo][0], per[hi][1] / per[lo][1]
        print(f"3. cost per viewer {int(hi):,} / {int(lo):,}: analyze {ratio_a:.2f}, episode model {ratio_e:.2f} "
              f"(target < 1.5: analyze {verdict(ratio_a < 1.5)}, episode model {verdict(ratio_e < 1.5)})")


def compare(out: Path, visits: int, subsample: float) -> None:
    """The episode model against the counting-process Cox fit on a subsample of the visits."""
    from fomolab.episode_model import episode_model, tactic_episodes
    from fomolab.stats import cox

    frac = min(1.0, subsample / visits)
    t0 = time.perf_counter()
    table = episode_model(out, sample=frac, seed=1)
    t_pwe = time.perf_counter() - t0
    t0 = time.perf_counter()
    ep = tactic_episodes(out, sample=frac, seed=1)
    covs = table.attrs["covariates"]
    fit = cox(ep, "stop_s", "event", covs, start="start_s", ties="breslow").summary
    t_cox = time.perf_counter() - t0
    print(f"2. a {frac:.1%} subsample ({int(table.visits.iloc[0]):,} visits, {len(ep):,} episodes): "
          f"episode model {t_pwe:.1f} s, Cox on the episodes {t_cox:.1f} s")
    agree = True
    for _, row in table.iterrows():
        if row.covariate not in fit.index:
            print(f"   {row.tactic:<40} episode model {row.hazard_ratio!s:>8}  ({row.note})")
            continue
        c = fit.loc[row.covariate, "hazard_ratio"]
        same = sig3(row.hazard_ratio) == sig3(c) and math.isclose(row.hazard_ratio, c, rel_tol=5e-4)
        agree &= same
        print(f"   {row.tactic:<40} episode model {row.hazard_ratio:.6f}  Cox {c:.6f}  "
              f"rel. difference {abs(row.hazard_ratio / c - 1):.1e}")
    print(f"   agree to 3 significant digits: {verdict(agree)}")


if __name__ == "__main__":
    main()
