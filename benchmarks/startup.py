"""Target 4: ``fomolab --help`` and ``fomolab validate`` start fast.

Times the whole process (interpreter start included) of ``fomolab --help``
and of ``fomolab validate`` on the reference and the million-viewer specs, and
lists the imports that ``validate`` pays for (``python -X importtime``).

Target: each under 0.5 s (median).

    .venv/bin/python benchmarks/startup.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import subprocess

from _common import PYTHON, ROOT, fomolab_cmd, load, median, timed, verdict

LIMIT_S = 0.5


def main() -> None:
    p = argparse.ArgumentParser(description="start-up time of the fomolab command (target 4)")
    p.add_argument("--repeats", type=int, default=9, help="repetitions of each command (default 9)")
    args = p.parse_args()

    cmds = {
        "fomolab --help": [*fomolab_cmd(), "--help"],
        **{f"fomolab validate {name}": [*fomolab_cmd(), "validate", str(ROOT / f"experiments/{name}.toml")]
           for name in ("reference_flash", "million_viewers")},
    }
    print(f"start-up, {args.repeats} repetitions each; {load()}")
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(args.repeats):
        for name, cmd in cmds.items():
            times[name].append(timed(cmd)[0])
    ok = True
    for name, xs in times.items():
        m = median(xs)
        ok &= m < LIMIT_S
        print(f"  {name:<34} median {m:5.3f} s  (min {min(xs):.3f}, max {max(xs):.3f})   "
              f"target < {LIMIT_S} s: {verdict(m < LIMIT_S)}")
    _heaviest_imports()
    print(f"target 4: {verdict(ok)}   ({load()})")


#: Modules worth naming in validate's import bill; the heavy ones should not be there at all.
WATCH = ("numpy", "pydantic", "rich.console", "rich.table", "fomolab.spec", "fomolab.tactics", "fomolab.sweep")
HEAVY = ("pandas", "pyarrow", "scipy", "simpy", "statsmodels", "dask")


def _heaviest_imports() -> None:
    """What ``fomolab validate`` imports: the expensive modules, and no heavy ones."""
    code = ("import sys; from fomolab.cli import main; "
            f"sys.argv = ['fomolab', 'validate', {str(ROOT / 'experiments/reference_flash.toml')!r}]; main()")
    res = subprocess.run([PYTHON, "-X", "importtime", "-c", code], capture_output=True, text=True, cwd=ROOT)
    cumulative = {}
    for line in res.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            cumulative[parts[2].strip()] = int(parts[1]) / 1e3
    shown = ", ".join(f"{m} {cumulative[m]:.0f} ms" for m in WATCH if m in cumulative)
    heavy = [m for m in HEAVY if m in cumulative]
    print(f"  validate imports (cumulative ms under -X importtime, which inflates them): {shown}")
    print(f"  heavy modules imported by validate: {', '.join(heavy) if heavy else 'none'}")


if __name__ == "__main__":
    main()
