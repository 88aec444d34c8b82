#!/usr/bin/env python3
"""Set up fomolab in a local virtualenv and run it: needs only Python 3.11+.

    python3 tasks.py demo            # set up, run the flagship experiment, print its summary
    python3 tasks.py test [ARGS...]  # set up with test extras, run the whole test suite
                                     # (ARGS go to pytest, e.g. -m "not slow")

The virtualenv is `.venv/` beside this file; it is (re)installed when
pyproject.toml changes.  CI runs `.ci/run`, which runs `python3 tasks.py test`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
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


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    if argv[0] == "demo":
        setup("")
        return sh(BIN / "fomolab", "run", FLAGSHIP, *argv[1:])
    setup("test")
    code = sh(PY, "-m", "pytest", *argv[1:])
    if code == 5:
        print("tasks.py: pytest collected no tests: that is a failure, not a pass", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
