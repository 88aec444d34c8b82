"""Parameter recovery (simulation-based calibration) of `fomolab fit`'s maximum likelihood.

Draws N synthetic datasets (default 200) from the "field" arm of a spec with fomolab's engine
(replicates FIRST .. FIRST + N - 1; ``--first``, default 0), fits the parameters to each
starting from other values (0.6 times the truth), and prints per parameter the coverage of
the 95 % intervals and the bias in standard errors of the maximum-likelihood estimate and of
its Cox-Snell bias-corrected version (what `fomolab fit` reports).

Designs (``--design``):

``field``   experiments/field_fit.toml, one product: base rate, sale gain, timer gain, dwell mean
            (the Beta law of impulsiveness held at its value).
``beta``    experiments/fit_recovery.toml, four products whose sales most viewers see two or
            three of: the base rate (one, shared) and both Beta parameters of impulsiveness (the
            gains and the dwell mean held at their values; see docs/VALIDATION.md for why gains and the Beta law
            are not identified together).

The datasets' results can be appended to a file as they finish (``--progress``), and a run can be
split over processes (``--first``).  Bias is ``mean(estimate - truth)`` over the datasets in
units of the estimates' standard deviation over the datasets (the empirical SE; Morris, White
& Crowther 2019), with its Monte Carlo error ``1 / sqrt(N)``.

    PYTHONPATH=src python benchmarks/fit_recovery.py [N] [WORKERS] [--design field|beta] [--csv PATH]
        [--progress PATH] [--first FIRST]   (each dataset's result appended to PATH as it finishes)
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

DESIGNS = {
    "field": (ROOT / "experiments" / "field_fit.toml",
              ["lineup.serum.base_rate_per_s", "lineup.serum.tactics.lightning_sale.gain",
               "lineup.serum.tactics.countdown_timer.gain", "population.segments.viewers.dwell.mean_s"]),
    "beta": (ROOT / "experiments" / "fit_recovery.toml",
             ["lineup.*.base_rate_per_s", "population.segments.viewers.impulsiveness.beta[0]",
              "population.segments.viewers.impulsiveness.beta[1]"]),
}


def _option(name: str, default: str) -> str:
    if name in sys.argv:
        i = sys.argv.index(name)
        value = sys.argv[i + 1]
        del sys.argv[i:i + 2]
        return value
    return default


DESIGN = _option("--design", "field")
CSV = _option("--csv", "")
PROGRESS = _option("--progress", "")
FIRST = int(_option("--first", "0"))
SPEC, PATHS = DESIGNS[DESIGN]


def one(rep: int):
    exp = load_experiment(SPEC)
    raw = arm_scenario_raw(exp, "field")
    sc = exp.arms["field"].scenario
    truth = np.array([get_path(raw, p) for p in PATHS], float)
    visits, purchases = simulate_field_data(exp, "field", replicate=rep)
    fd = field_data_from_tables(visits, purchases, products=list(sc.lineup), duration_s=sc.stream.duration_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_mle(raw, [parse_parameter(p) for p in PATHS], fd, start=0.6 * truth, bias_correction=True)
    lo, hi = res.intervals()
    return truth, res.estimate, res.mle, res.se, lo, hi, res.converged, res.seconds, fd.n_visits, fd.n_purchases


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    t0 = time.perf_counter()
    out = []
    with Pool(workers) as pool:
        # in order, so that a partial run holds replicates FIRST .. k
        for k, o in enumerate(pool.imap(one, range(FIRST, FIRST + n)), FIRST):
            out.append(o)
            if PROGRESS:
                with open(PROGRESS, "a") as fh:
                    fh.write(" ".join(f"{x:.6g}" for x in (k, *o[1], *o[2], *o[3], *o[4], *o[5], o[6])) + "\n")
    truth = out[0][0]
    est, mle, se, lo, hi = (np.array([o[k] for o in out]) for k in range(1, 6))
    conv = np.array([o[6] for o in out])
    print(f"design {DESIGN} ({SPEC.relative_to(ROOT)}): {n} datasets of about {np.mean([o[8] for o in out]):.0f} "
          f"visits and {np.mean([o[9] for o in out]):.0f} purchases each; {conv.sum()} converged; median fit "
          f"{np.median([o[7] for o in out]):.1f} s; total {time.perf_counter() - t0:.0f} s on {workers} workers")
    ok = conv & np.all(np.isfinite(se), axis=1)
    m = int(ok.sum())
    print(f"{'parameter':52s} {'truth':>9s} {'mean MLE':>9s} {'coverage':>8s} {'bias/SE':>8s} {'(corr.)':>7s} "
          f"{'SE ratio':>8s}")
    for k, p in enumerate(PATHS):
        cover = np.mean((lo[ok, k] <= truth[k]) & (truth[k] <= hi[ok, k]))
        emp = mle[ok, k].std(ddof=1)
        bias = (mle[ok, k].mean() - truth[k]) / emp
        bias_corr = (est[ok, k].mean() - truth[k]) / est[ok, k].std(ddof=1)
        print(f"{p:52s} {truth[k]:9.4g} {mle[ok, k].mean():9.4g} {cover:8.1%} {bias:+8.3f} {bias_corr:+7.3f} "
              f"{se[ok, k].mean() / emp:8.3f}")
    print(f"coverage target 92-98 % (MC se {np.sqrt(0.95 * 0.05 / m):.1%}); bias target |mean(estimate - truth)| "
          f"< 0.1 SE (MC se {1 / np.sqrt(m):.3f}): first of the maximum-likelihood estimate, then (corr.) of "
          "its Cox-Snell bias-corrected version, which fomolab fit reports; SE ratio: mean "
          "reported SE / empirical SE")
    if CSV:
        import pandas as pd

        rows = [dict(replicate=FIRST + r, parameter=p, truth=truth[k], estimate=est[r, k], mle=mle[r, k], se=se[r, k],
                     ci_lower=lo[r, k], ci_upper=hi[r, k], converged=bool(conv[r]))
                for r in range(len(out)) for k, p in enumerate(PATHS)]
        pd.DataFrame(rows).to_csv(CSV, index=False)


if __name__ == "__main__":
    main()
