#!/usr/bin/env python3
"""Set up fomolab in a local virtualenv and run it: needs only Python 3.11+.

    python3 tasks.py demo            # set up with every extra (fomolab[all]), run the flagship experiment
    python3 tasks.py test [ARGS...]  # set up with the test extras (fomolab[test]), run the whole test suite
                                     # (ARGS go to pytest, e.g. -m "not slow"); installs
                                     # Debian's chromium (apt-get) for the report's browser test
    python3 tasks.py docs [serve]    # set up with the docs extra (fomolab[docs]), build the documentation
                                     # site into site/ with warnings as errors (`mkdocs build --strict`),
                                     # or serve it with live reload
    python3 tasks.py wheelcheck      # `pip install .` (not editable) into a fresh virtualenv, then
                                     # from an empty folder outside the checkout: a spec naming
                                     # profile = "mixed" validates, runs and is analyzed, and
                                     # `fomolab selfcheck --quick --items 1 --write -` passes

The virtualenv is `.venv/` beside this file; it is (re)installed when
pyproject.toml changes.  CI runs `.ci/run`, which runs `python3 tasks.py test`, `python3 tasks.py docs`
and `python3 tasks.py wheelcheck`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
FLAGSHIP = "experiments/lightning_sale.toml"


def sh(*cmd: str | Path) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT)


def setup(extras: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"fomolab needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    stamp = VENV / f".installed-{extras or 'base'}"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == want and PY.exists():
        return
    if not PY.exists():
        print(f"+ creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    target = f".[{extras}]" if extras else "."
    if sh(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip") != 0:
        sys.exit("could not upgrade pip in .venv")
    if sh(PY, "-m", "pip", "install", "--quiet", "-e", target) != 0:
        sys.exit(f"could not install fomolab{target[1:]} into .venv")
    stamp.write_text(want)


def ensure_chromium() -> None:
    """Install Debian's chromium for the report's browser test when it is missing.

    Needs apt-get and root (as on CI machines); otherwise it says so and the
    browser test skips itself.  Never downloads a browser any other way.
    """
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        return
    apt = shutil.which("apt-get")
    if apt is None:
        print("tasks.py: chromium not found and no apt-get: the report's browser test will be skipped", flush=True)
        return
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        print("tasks.py: chromium not found; install it (sudo apt-get install chromium) to run the report's "
              "browser test", flush=True)
        return
    print("tasks.py: installing Debian's chromium for the report's browser test (apt-get)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in ([apt, "update", "-q"], [apt, "install", "-y", "-q", "--no-install-recommends", "chromium"]):
        print("+", " ".join(cmd), flush=True)
        if subprocess.call(cmd, env=env) != 0:
            print("tasks.py: could not install chromium; the report's browser test will be skipped", flush=True)
            return


#: The spec the installed package must run from an empty folder: a profile by name, no files beside it.
WHEEL_SPEC = """\
[experiment]
name = "installed"
seed = 1
replicates = 2

[stream]
duration_s = 900.0

[stream.arrivals]
rate_per_s = 0.5

[population]
profile = "mixed"

[lineup.lipstick]
price = 25.0
base_rate_per_s = 4.0e-4

[lineup.lipstick.tactics.lightning_sale]
start_s = 300.0
end_s = 600.0
discount = 0.3
gain = 3.0

[arms.control]

[arms.sale]
tactics = ["lipstick.lightning_sale"]
"""


#: The install has the core dependencies only (no extra came in), and fomolab.stats works on a folder.
CORE_CHECK = """\
import importlib.util
import fomolab, fomolab.stats as stats
extras = [m for m in ("matplotlib", "jinja2", "dask", "distributed", "SALib") if importlib.util.find_spec(m)]
assert not extras, f"the core install pulled in extras: {extras}"
sh = fomolab.Results("res").shoppers
km = stats.kaplan_meier(sh.assign(t=sh.departure_s - sh.arrival_s, e=sh.purchases.gt(0).astype(int)), "t", "e")
print(f"core install OK: fomolab {fomolab.__version__}, {len(sh)} visits, {type(km).__name__}")
"""


def wheelcheck() -> int:
    """Install fomolab as a user would (not editable) and use it far from the checkout."""
    with tempfile.TemporaryDirectory(prefix="fomolab-wheelcheck-") as tmp:
        base = Path(tmp)
        env_dir, empty = base / "venv", base / "empty"
        print(f"+ creating {env_dir}", flush=True)
        venv.EnvBuilder(with_pip=True).create(env_dir)
        py = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
        fomolab = py.parent / "fomolab"
        if sh(py, "-m", "pip", "install", "--quiet", str(ROOT)) != 0:
            print("tasks.py: pip install . failed", file=sys.stderr)
            return 1
        empty.mkdir()
        (empty / "spec.toml").write_text(WHEEL_SPEC)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        pathlib_check = (
            "import fomolab, pathlib, sys; p = pathlib.Path(fomolab.__file__).resolve(); "
            f"sys.exit(f'fomolab imported from {{p}}, not the fresh install') "
            f"if not p.is_relative_to(pathlib.Path(r'{env_dir}').resolve()) else None")
        chains = [  # each chain stops at its first failure; every chain runs
            [[py, "-c", pathlib_check]],
            [[fomolab, "validate", "spec.toml"], [fomolab, "run", "spec.toml", "--out", "res", "--quiet"],
             [fomolab, "analyze", "res", "--boot", "20", "--quiet"], [py, "-c", CORE_CHECK]],
            [[fomolab, "selfcheck", "--quick", "--items", "1", "--write", "-"]],
        ]
        failed = []
        for chain in chains:
            for cmd in chain:
                shown = " ".join(str(c) for c in cmd)
                print("+ (in an empty folder)", shown, flush=True)
                code = subprocess.call([str(c) for c in cmd], cwd=empty, env=env)
                if code != 0:
                    failed.append(f"exit {code}: {shown}")
                    break
        if failed:
            print("tasks.py: wheelcheck failed:\n  " + "\n  ".join(failed), file=sys.stderr)
            return 1
        left = sorted(p.name for p in empty.iterdir())
        if left != ["res", "spec.toml"]:  # the self-check wrote nothing
            print(f"tasks.py: wheelcheck: unexpected files in the working folder: {left}", file=sys.stderr)
            return 1
    print("tasks.py: wheelcheck passed", flush=True)
    return 0


def docs(argv: list[str]) -> int:
    """Build the documentation site (``mkdocs build --strict``), or run ``mkdocs ARGS`` (``serve``)."""
    setup("docs")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # a notice about MkDocs' future, not about these docs
    cmd = [str(BIN / "mkdocs"), *(argv or ["build", "--strict"])]
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "wheelcheck":
        return wheelcheck()
    if argv and argv[0] == "docs":
        return docs(argv[1:])
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    if argv[0] == "demo":
        setup("all")
        return sh(BIN / "fomolab", "run", FLAGSHIP, *argv[1:])
    setup("test")
    ensure_chromium()
    code = sh(PY, "-m", "pytest", *argv[1:])
    if code == 5:
        print("tasks.py: pytest collected no tests: that is a failure, not a pass", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
