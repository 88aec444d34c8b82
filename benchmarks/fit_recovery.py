"""Parameter recovery (simulation-based calibration) of `fomolab fit`'s maximum likelihood.

Draws N synthetic datasets (default 200) from the "field" arm of
experiments/field_fit.toml with fomolab's engine (replicates 0 .. N-1),
fits the base rate, sale gain, timer gain and the dwell mean (``--beta``:
also both Beta parameters of impulsiveness) to each, starting from other values (0.6
times the truth), and prints per parameter the coverage of the 95 % intervals
and the bias in standard errors.

    PYTHONPATH=src python benchmarks/fit_recovery.py [N] [WORKERS] [--beta]
"""

from __future__ import annotations

import sys
import time
import warnings
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fomolab import load_experiment
from fomolab.fit import field_data_from_tables, fit_mle, parse_parameter
from fomolab.fit.estimate import arm_scenario_raw, get_path
from fomolab.fit.synthetic import simulate_field_data

SPEC = ROOT / "experiments" / "field_fit.toml"
PATHS = ["lineup.serum.base_rate_per_s", "lineup.serum.tactics.lightning_sale.gain",
         "lineup.serum.tactics.countdown_timer.gain", "population.segments.viewers.dwell.mean_s"]
# With one product bought at most once per visit, the data identify the Beta law of impulsiveness
# only through the gains' average effect: both Beta parameters drift to the edge of the space
# (observed information singular).  `--beta` adds them to show it.
if "--beta" in sys.argv:
    sys.argv.remove("--beta")
    PATHS += ["population.segments.viewers.impulsiveness.beta[0]", "population.segments.viewers.impulsiveness.beta[1]"]


def one(rep: int):
    exp = load_experiment(SPEC)
    raw = arm_scenario_raw(exp, "field")
    truth = np.array([get_path(raw, p) for p in PATHS], float)
    visits, purchases = simulate_field_data(exp, "field", replicate=rep)
    fd = field_data_from_tables(visits, purchases, products=["serum"], duration_s=1800.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_mle(raw, [parse_parameter(p) for p in PATHS], fd, start=0.6 * truth)
    lo, hi = res.intervals()
    return truth, res.estimate, res.se, lo, hi, res.converged, res.seconds, fd.n_visits


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    t0 = time.perf_counter()
    with Pool(workers) as pool:
        out = pool.map(one, range(n))
    truth = out[0][0]
    est = np.array([o[1] for o in out])
    se = np.array([o[2] for o in out])
    lo = np.array([o[3] for o in out])
    hi = np.array([o[4] for o in out])
    conv = np.array([o[5] for o in out])
    print(f"{n} datasets of about {np.mean([o[7] for o in out]):.0f} visits each; {conv.sum()} converged; "
          f"median fit {np.median([o[6] for o in out]):.1f} s; total {time.perf_counter() - t0:.0f} s "
          f"on {workers} workers")
    ok = conv & np.all(np.isfinite(se), axis=1)
    print(f"{'parameter':52s} {'truth':>10s} {'mean est':>10s} {'coverage':>9s} {'bias/SE':>8s} {'MC se':>6s}")
    for k, p in enumerate(PATHS):
        cover = np.mean((lo[ok, k] <= truth[k]) & (truth[k] <= hi[ok, k]))
        z = (est[ok, k] - truth[k]) / se[ok, k]
        print(f"{p:52s} {truth[k]:10.4g} {est[ok, k].mean():10.4g} {cover:9.1%} {np.mean(z):8.3f} "
              f"{np.std(z) / np.sqrt(ok.sum()):6.3f}")
    print("coverage target 92-98 %; bias target |mean (estimate - truth) / SE| < 0.1 "
          "(MC se: its Monte Carlo standard error)")


if __name__ == "__main__":
    main()
