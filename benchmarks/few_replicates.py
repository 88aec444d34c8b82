"""Which intervals keep their coverage with 2, 3, 5 and 10 replicates under common random numbers.

The simulation behind the choice of :func:`fomolab.stats.replicate_effects`
(``docs/STATISTICS.md``, *Few replicates*).  It simulates the planted-effect
experiment of the self-check's item 11 (a lightning sale that multiplies
every viewer's purchase hazard by exactly 1.5; arms share viewers by common
random numbers; about 600 viewers per arm and replicate), groups the
replicates into experiments of G replicates, and for each experiment forms
the 95 % interval of the hazard ratio in five ways:

- ``sandwich by replicate, normal``: Cox on the pooled rows with robust
  errors clustered by replicate and a normal reference;
- ``sandwich by replicate, t(G-1)``: the same variance with a t reference;
- ``sandwich by viewer, normal``: robust errors clustered by viewer (the
  pairing unit under common random numbers) -- valid only where viewers do
  not interact (no stock, quota or social proof), as here;
- ``paired t across replicates``: the log hazard ratio estimated within each
  replicate, a t interval with G - 1 degrees of freedom on the G estimates
  (the method chosen);
- ``sign-flip test``: the exact randomisation test of the same G estimates
  (flip their signs): its p value cannot fall below 2 / 2**G, so it has no
  95 % interval below 6 replicates.

It prints coverage, the Monte Carlo SE and the median interval width (of the
log hazard ratio) for each method and G, and the A/A rejection rates of the
paired t on the self-check's no-effect arm.  A second pool repeats the
study with a stock of 140 units, which the sale arm sells out in most
replicates: viewers then interact (what one buys, another cannot), the
replicate is the unit of independence, and only the analyses across
replicates keep their coverage.  Its truth is the design's estimand, the
expected within-replicate log hazard ratio, estimated by the mean over the
whole pool; the pooled Cox fits there are stratified by replicate (a
baseline hazard per replicate, which the sell-out moves).

    .venv/bin/python benchmarks/few_replicates.py [--replicates 2000]
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
import warnings

import numpy as np
import pandas as pd
from _common import ROOT, load
from scipy import stats

sys.path.insert(0, str(ROOT / "src"))

from fomolab.stats import cox
from fomolab.stats.replicates import log_hazard_ratio, t_across
from fomolab.validation import replicates as item
from fomolab.validation._sim import experiment, tables


def rows(shoppers: pd.DataFrame, arm: str, rep: int) -> pd.DataFrame:
    t, e, _ = item._arrays(shoppers, item.DURATION)
    return pd.DataFrame({"t": t, "e": e, "treated": float(arm != "control"), "replicate": rep,
                         "viewer": rep * 10**7 + shoppers.shopper_id.to_numpy()})


def sign_flip_p(x: np.ndarray) -> float:
    """Two-sided exact sign-flip p value of the mean of ``x`` against 0."""
    G = len(x)
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=G)))
    means = np.abs(signs @ x) / G
    return float(np.mean(means >= abs(x.mean()) - 1e-12))


def stock_scenario() -> dict:
    """The same experiment with a stock of 140 units: viewers interact (the sale arm sells out)."""
    sp = item.scenario()
    sp["lineup"]["item"]["stock"] = 140
    sp["arms"] = {"control": {}, "sale": {"tactics": ["item.lightning_sale"]}}
    return sp


def study(title: str, spec: dict, P: int, truth: float | None, strata: str | None = None) -> None:
    """Coverage of each method at G = 2, 3, 5, 10 on a pool of ``P`` replicates of ``spec``.

    ``strata``: passed to the pooled Cox fits (``"replicate"``: a baseline per replicate).
    """
    start = time.perf_counter()
    sims = tables(experiment(spec), range(P))
    arms = [a for a in ("control", "sale", "no_effect") if a in sims]
    frames = {arm: [rows(t.shoppers, arm, r) for r, t in enumerate(sims[arm])] for arm in arms}
    per = {arm: np.array([log_hazard_ratio(*(pd.concat([c, a]).pipe(lambda d: (d.t, d.e, d.treated))))
                          for c, a in zip(frames["control"], frames[arm], strict=True)])
           for arm in arms[1:]}
    if truth is None:  # the design's own estimand: the expected within-replicate log hazard ratio
        truth = float(per["sale"].mean())
        how = f"mean of the {P} per-replicate estimates, SE {per['sale'].std(ddof=1) / math.sqrt(P):.4f}"
    else:
        how = "planted"
    print(f"== {title}: {P} replicates simulated in {time.perf_counter() - start:.0f} s; "
          f"true log hazard ratio {truth:.4f} ({how})")
    z = stats.norm.ppf(0.975)
    print(f"{'G':>3} {'experiments':>11}  {'method':<32} {'coverage':>9} {'MC SE':>6} {'median width':>13}")
    for G in (2, 3, 5, 10):
        n = P // G
        out: dict[str, list[tuple[bool, float]]] = {k: [] for k in (
            "sandwich by replicate, normal", "sandwich by replicate, t(G-1)", "sandwich by viewer, normal",
            "paired t across replicates", "sign-flip test")}
        q = stats.t.ppf(0.975, G - 1)
        floor = 2 / 2**G
        for k in range(n):
            idx = range(k * G, (k + 1) * G)
            df = pd.concat([frames[a][r] for r in idx for a in ("control", "sale")], ignore_index=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_r = cox(df, "t", "e", ["treated"], cluster="replicate", strata=strata).summary.loc["treated"]
                fit_v = cox(df, "t", "e", ["treated"], cluster="viewer", strata=strata).summary.loc["treated"]
            for name, b, se, crit in (("sandwich by replicate, normal", fit_r.coef, fit_r.se, z),
                                      ("sandwich by replicate, t(G-1)", fit_r.coef, fit_r.se, q),
                                      ("sandwich by viewer, normal", fit_v.coef, fit_v.se, z)):
                out[name].append((abs(b - truth) <= crit * se, 2 * crit * se))
            x = per["sale"][list(idx)]
            r = t_across(x)
            out["paired t across replicates"].append((bool(r["ci_lower"] <= truth <= r["ci_upper"]),
                                                      float(r["ci_upper"] - r["ci_lower"])))
            # the sign-flip test's 95 % set: the values it does not reject at 0.05 (all of them below 6 replicates)
            out["sign-flip test"].append((floor > 0.05 or sign_flip_p(x - truth) > 0.05,
                                          math.inf if floor > 0.05 else float("nan")))
        for name, res in out.items():
            cov = np.mean([c for c, _ in res])
            w = np.median([w for _, w in res])
            se = math.sqrt(cov * (1 - cov) / n)
            extra = f"   (p >= {floor:.3g}: no 95% interval)" if name == "sign-flip test" and floor > 0.05 else ""
            print(f"{G:>3} {n:>11}  {name:<32} {cov:>9.1%} {se:>6.1%} {w:>13.3f}{extra}")
        if "no_effect" in per:
            aa = per["no_effect"][: n * G].reshape(n, G)
            rej = float((t_across(aa, axis=1)["p"] < 0.05).mean())
            print(f"{G:>3} {n:>11}  {'A/A paired t: rejects at 0.05':<32} {rej:>9.1%} "
                  f"{math.sqrt(0.05 * 0.95 / n):>6.1%}")
        print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=2000, help="simulated replicates in each pool")
    args = ap.parse_args()
    print(f"few replicates ({load()})")
    start = time.perf_counter()
    study("planted hazard ratio 1.5, viewers independent", item.scenario(), args.replicates,
          math.log(item.truth()["hazard_ratio"]))
    study("stock of 140 units: viewers interact (pooled Cox fits stratified by replicate)", stock_scenario(),
          args.replicates, None, strata="replicate")
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
