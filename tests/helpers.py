"""Test helpers: small specs built in code, simulated without touching disk.

Import them with ``from helpers import make_spec, run_tables``; fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from fomolab.design import expand
from fomolab.engine import simulate
from fomolab.recorder import Tables
from fomolab.spec import Experiment, parse_spec

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["ROOT", "BASE_SPEC", "make_spec", "experiment", "run_tables"]

BASE_SPEC: dict[str, Any] = {
    "experiment": {"name": "t", "seed": 1, "replicates": 2},
    "stream": {"duration_s": 1200.0, "arrivals": {"rate_per_s": 1.0}},
    "population": {"segments": {"all": {
        "share": 1.0, "impulsiveness": {"beta": [2.0, 5.0]},
        "dwell": {"mean_s": 300.0}, "price_sensitivity": 0.0,
    }}},
    "lineup": {"item": {"price": 10.0, "base_rate_per_s": 1 / 900}},
    "arms": {"control": {}},
}


def make_spec(**parts: Any) -> dict[str, Any]:
    """BASE_SPEC with top-level tables replaced or deep-merged (dicts merge)."""
    spec = copy.deepcopy(BASE_SPEC)
    for key, value in parts.items():
        spec[key] = _merge(spec.get(key), value)
    return spec


def _merge(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for k, v in new.items():
            out[k] = _merge(old.get(k), v)
        return out
    return copy.deepcopy(new)


def experiment(spec: dict[str, Any]) -> Experiment:
    return parse_spec(spec, source="<test>", base_dir=ROOT / "experiments")


def run_tables(spec: dict[str, Any], replicate: int = 0) -> dict[str, Tables]:
    """Simulate every arm of one replicate in memory: {arm: Tables}."""
    exp = experiment(spec)
    return {r.arm: simulate(r) for r in expand(exp, range(replicate, replicate + 1))}


def session(sid: int) -> dict[int, int]:
    """Live processes of session ``sid``: {pid: process group}."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, pgrp, session_id = fields[0], int(fields[2]), int(fields[3])
        if session_id == sid and state != "Z":
            out[int(entry.name)] = pgrp
    return out


def left_after(sid: int, seconds: float) -> dict[int, int]:
    deadline = time.monotonic() + seconds
    while session(sid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return session(sid)
