"""Target 1: fomolab against a hand-written SimPy script, on the reference scenario.

Times, in the same session and alternating, the full ``fomolab run
experiments/reference_flash.toml`` command (process start, 2 arms x 20
replicates, all three tables written to Parquet, manifest, summary printed) and
``benchmarks/simpy_reference.py`` (the same scenario as an expert's SimPy
script: one process per viewer, thinning, shoppers table to Parquet).  Every
fomolab repetition writes to a fresh folder, so nothing is resumed.

Target: fomolab's median wall time at most 1.0 times the script's.  fomolab is
timed with its default workers (one per core) and with ``--workers 1`` (the
script is single-process); the target is checked on both.

    .venv/bin/python benchmarks/reference_vs_simpy.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import PYTHON, ROOT, fomolab_cmd, load, median, timed, verdict

SPEC = ROOT / "experiments/reference_flash.toml"
SCRIPT = ROOT / "benchmarks/simpy_reference.py"


def main() -> None:
    p = argparse.ArgumentParser(description="fomolab vs a hand-written SimPy script (target 1)")
    p.add_argument("--repeats", type=int, default=5, help="repetitions of each command (default 5)")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fomolab-bench-"))
    times: dict[str, list[float]] = {"simpy script": [], "fomolab run": [], "fomolab run --workers 1": []}
    print(f"reference scenario, {args.repeats} repetitions each, alternating; {load()}")
    try:
        for k in range(args.repeats):
            cmds = {
                "simpy script": [PYTHON, str(SCRIPT), "--out", str(tmp / f"simpy{k}.parquet")],
                "fomolab run": [*fomolab_cmd(), "run", str(SPEC), "--out", str(tmp / f"default{k}")],
                "fomolab run --workers 1": [*fomolab_cmd(), "run", str(SPEC), "--out", str(tmp / f"serial{k}"),
                                            "--workers", "1"],
            }
            order = list(cmds) if k % 2 == 0 else list(reversed(cmds))
            for name in order:
                wall, _ = timed(cmds[name])
                times[name].append(wall)
            print(f"  repetition {k + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in times), flush=True)
        _agreement(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    script = median(times["simpy script"])
    print(f"\nmedian wall time over {args.repeats} runs ({load()}):")
    for name, xs in times.items():
        print(f"  {name:<26} {median(xs):6.2f} s   (min {min(xs):.2f}, max {max(xs):.2f})")
    ok = True
    for name in ("fomolab run", "fomolab run --workers 1"):
        ratio = median(times[name]) / script
        ok &= ratio <= 1.0
        print(f"  ratio {name} / simpy script = {ratio:.2f}   target <= 1.00: {verdict(ratio <= 1.0)}")
    print(f"target 1: {verdict(ok)}")


def _agreement(tmp: Path) -> None:
    """Both simulate the same model: print their conversions side by side."""
    import pandas as pd

    sp = pd.read_parquet(tmp / "simpy0.parquet")
    fl = pd.read_parquet(tmp / "serial0" / "runs")
    a = sp.groupby("arm", observed=True).purchases.mean()
    b = fl.groupby("arm").buyers.sum() / fl.groupby("arm").viewers.sum()
    print("  conversion (same model, different random numbers): "
          + "; ".join(f"{arm}: simpy {a[arm]:.2%}, fomolab {b[arm]:.2%}" for arm in a.index))


if __name__ == "__main__":
    main()
