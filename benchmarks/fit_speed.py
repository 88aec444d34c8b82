"""Time of a two-parameter fit to 5,000 visits (the likelihood and its optimisation, then the CLI's whole step).

Field data: the "field" arm of experiments/field_fit.toml with the arrival rate set so that a
stream has about 5,000 visits; parameters: the base rate and the sale gain.

    PYTHONPATH=src python benchmarks/fit_speed.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fomolab import load_experiment
from fomolab.fit import field_data_from_tables, fit_mle, parse_parameter
from fomolab.fit.estimate import arm_scenario_raw
from fomolab.fit.synthetic import simulate_field_data


def main() -> None:
    exp = load_experiment(ROOT / "experiments" / "field_fit.toml")
    spec = dict(exp.spec)
    spec["stream"] = {**spec["stream"], "arrivals": {"rate_per_s": 5000 / 1800}}
    from fomolab.spec import parse_spec

    exp = parse_spec(spec, resolve=False)
    visits, purchases = simulate_field_data(exp, "field", replicate=0)
    fd = field_data_from_tables(visits, purchases, products=["serum"], duration_s=1800.0)
    params = [parse_parameter("lineup.serum.base_rate_per_s"),
              parse_parameter("lineup.serum.tactics.lightning_sale.gain")]
    t0 = time.perf_counter()
    res = fit_mle(arm_scenario_raw(exp, "field"), params, fd, start=np.array([5e-4, 2.0]))
    secs = time.perf_counter() - t0
    print(f"{fd.n_visits} visits, {fd.n_purchases} purchases: two-parameter fit (estimates and SEs) in {secs:.1f} s "
          f"(target < 60 s)")
    print(res.table.to_string(index=False))


if __name__ == "__main__":
    main()
