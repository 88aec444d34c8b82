"""Small helpers: simulate specs given as dicts, in this process."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from fomolab.design import expand
from fomolab.engine import simulate
from fomolab.recorder import Tables
from fomolab.spec import Experiment, parse_spec


def experiment(spec: dict[str, Any]) -> Experiment:
    return parse_spec(copy.deepcopy(spec), source="<selfcheck>")


def tables(exp: Experiment, replicates: range) -> dict[str, list[Tables]]:
    """Simulate every arm for the replicates: {arm: [Tables, ...]} in replicate order."""
    out: dict[str, list[Tables]] = {}
    for run in expand(exp, replicates):
        out.setdefault(run.arm, []).append(simulate(run))
    return out


def population(**segments: dict[str, Any]) -> dict[str, Any]:
    return {"segments": segments}


def segment(share: float = 1.0, *, z: Any = (2.0, 5.0), dwell: float = 300.0, interest_cv: float = 0.0,
            beta: float = 0.0, dwell_law: str = "exponential", dwell_cv: float = 1.0) -> dict[str, Any]:
    imp = {"fixed": z} if isinstance(z, float) else {"beta": list(z)}
    return {"share": share, "impulsiveness": imp, "interest": {"mean": 1.0, "cv": interest_cv},
            "dwell": {"mean_s": dwell, "distribution": dwell_law, "cv": dwell_cv}, "price_sensitivity": beta}


def spec(name: str, seed: int, *, duration: float, rate: Any, population: dict[str, Any],
         lineup: dict[str, Any], arms: dict[str, Any], crn: bool = True, control: str | None = None) -> dict[str, Any]:
    arrivals = {"rate_per_s": rate} if not isinstance(rate, list) else {
        "schedule": [{"start_s": a, "rate_per_s": r} for a, r in rate]}
    return {
        "experiment": {"name": name, "seed": seed, "replicates": 1, "control": control or next(iter(arms)),
                       "common_random_numbers": crn},
        "stream": {"duration_s": duration, "arrivals": arrivals},
        "population": population, "lineup": lineup, "arms": arms,
    }


def fmt_ci(est: float, lo: float, hi: float, digits: int = 3) -> str:
    return f"{est:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def time_to_purchase(shoppers) -> tuple[np.ndarray, np.ndarray]:
    """Duration from arrival (to first purchase or departure) and the event flag."""
    bought = shoppers.first_purchase_s.notna().to_numpy()
    stop = np.where(bought, shoppers.first_purchase_s, shoppers.departure_s)
    return stop - shoppers.arrival_s.to_numpy(), bought.astype(int)
