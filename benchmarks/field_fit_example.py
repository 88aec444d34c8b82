"""Worked example: synthetic field data -> `fomolab fit` -> checks -> a "ban the timer" counterfactual.

1. Draw what a platform would observe of the "field" arm of experiments/field_fit.toml
   (visits and purchases, nothing latent) into a data folder.
2. `fomolab fit experiments/field_fit.toml --data DATA --arm field --param ... --out FIT`.
3. Read the predictive checks (FIT/report.md, FIT/figures/).
4. `fomolab run FIT/fitted.toml`: both arms at each of the 20 parameter draws; the effect of
   banning the timer on conversion, per draw (paired by replicate), with an interval whose width
   includes the parameter uncertainty (the spread over draws) and the simulation noise.

    PYTHONPATH=src python benchmarks/field_fit_example.py [WORKDIR]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fomolab import load_experiment
from fomolab.fit.synthetic import simulate_field_data
from fomolab.results import Results

SPEC = ROOT / "experiments" / "field_fit.toml"


def fomolab(*args: str) -> None:
    print("$ fomolab " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "fomolab.cli", *args], check=True)


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="field_fit_"))
    data = work / "field_data"
    data.mkdir(parents=True, exist_ok=True)
    visits, purchases = simulate_field_data(load_experiment(SPEC), "field", replicate=123)
    visits.to_csv(data / "visits.csv", index=False)
    purchases.to_csv(data / "purchases.csv", index=False)
    print(f"field data: {len(visits)} visits, {len(purchases)} purchases in {data}")
    fit = work / "fit"
    fomolab("fit", str(SPEC), "--data", str(data), "--arm", "field",
            "--param", "lineup.serum.base_rate_per_s", "--param", "lineup.serum.tactics.lightning_sale.gain",
            "--param", "lineup.serum.tactics.countdown_timer.gain=0:30",
            "--param", "population.segments.viewers.dwell.mean_s", "--out", str(fit))
    print((fit / "check_families.csv").read_text())
    runs = work / "counterfactual"
    fomolab("run", str(fit / "fitted.toml"), "--replicates", "4", "--out", str(runs), "--quiet")
    r = Results(runs).runs
    wide = r.pivot_table(index=["point", "replicate"], columns="arm", values="conversion", observed=True)
    diff = (wide["ban_timer"] - wide["field"]).groupby(level="point").mean()  # per parameter draw
    within = (wide["ban_timer"] - wide["field"]).groupby(level="point").var().mean() / wide.index.levshape[1]
    total_sd = np.sqrt(diff.var(ddof=1) + within)
    print(f"ban the timer: change in conversion {diff.mean():+.4f} (95 % interval {diff.mean() - 1.96 * total_sd:+.4f} "
          f"to {diff.mean() + 1.96 * total_sd:+.4f}; {len(diff)} parameter draws x {wide.index.levshape[1]} "
          f"replicates; spread over draws sd {diff.std(ddof=1):.4f}, simulation noise sd {np.sqrt(within):.4f})")


if __name__ == "__main__":
    main()
