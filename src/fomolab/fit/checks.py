"""Parametric-bootstrap predictive checks of a fitted model.

Datasets are simulated from the fitted model with fomolab's own engine
(:func:`fomolab.engine.simulate` on the runs of :func:`fomolab.design.expand`,
in memory) and three families of statistics of the observed data are set
against their simulated envelopes:

``purchase timing``     quantiles (10 to 90 %) of purchase time since arrival
``conversion``          purchases per viewer-hour present in each tactic window,
                        in each half of it, and outside them, and the share of
                        visits that buy
``concurrent viewers``  mean viewers present in twelve equal parts of the stream

Within a family the discrepancy is the largest standardised deviation from
the simulated means, ``D = max_j |x_j - mean_j| / sd_j``; its p value is the
share of simulated datasets at least as discrepant (``(1 + #) / (B + 1)``).
Per-minute (aggregate) data are checked by :func:`aggregate_checks`, with the
families ``sales per minute`` and ``viewers per minute``.
A family fails when ``p < 0.05 / F`` (Bonferroni over the ``F`` families): the
fitted model then misses a feature of the data, and a
:class:`~fomolab.errors.StatisticalWarning` says which.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from fomolab.errors import StatisticalWarning
from fomolab.spec import Scenario

__all__ = ["CheckResult", "statistics", "predictive_checks", "aggregate_checks", "assess", "FAMILIES",
           "AGGREGATE_FAMILIES"]

FAMILIES = ("purchase timing", "conversion", "concurrent viewers")
AGGREGATE_FAMILIES = ("sales per minute", "viewers per minute")
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
VIEWER_BINS = 12
ALPHA = 0.05


def _windows(sc: Scenario) -> list[tuple[str, float, float]]:
    out = []
    for pname, prod in sc.lineup.items():
        for kind, tac in prod.tactics.items():
            w = tac.window()
            if w is not None:
                out.append((f"{pname}.{kind}", float(w[0]), float(min(w[1], sc.stream.duration_s))))
    return out


def _exposure(a: np.ndarray, d: np.ndarray, lo: float, hi: float) -> float:
    return float(np.sum(np.clip(np.minimum(d, hi) - np.maximum(a, lo), 0.0, None)))


def statistics(visits: Any, purchases: Any, sc: Scenario) -> dict[str, dict[str, float]]:
    """The checked statistics of one dataset, by family and name."""
    T = sc.stream.duration_s
    a = visits["arrival_s"].to_numpy(float)
    d = visits["departure_s"].to_numpy(float)
    index = {v: i for i, v in enumerate(visits["visit_id"].astype(str))}
    row = np.array([index[v] for v in purchases["visit_id"].astype(str)], dtype=np.int64)
    t = purchases["time_s"].to_numpy(float)
    since = t - a[row] if len(row) else np.empty(0)
    timing = {f"q{int(q * 100)} time since arrival (s)": float(np.quantile(since, q)) if len(since) else np.nan
              for q in QUANTILES}
    conv: dict[str, float] = {"share of visits that buy": len(np.unique(row)) / max(len(a), 1)}
    inside = np.zeros(len(t), bool)
    covered = []
    for name, lo, hi in _windows(sc):
        m = (t >= lo) & (t < hi)
        inside |= m
        covered.append((lo, hi))
        rate = 3600 * m.sum() / max(_exposure(a, d, lo, hi), 1e-9)
        conv[f"purchases per viewer-hour in {name} [{lo:g}, {hi:g})"] = rate
        mid = (lo + hi) / 2  # a countdown's urgency, or a wearing-off, shows as a change within the window
        for part, (x, y) in (("first", (lo, mid)), ("second", (mid, hi))):
            k = (t >= x) & (t < y)
            conv[f"purchases per viewer-hour in the {part} half of {name}"] = (
                3600 * k.sum() / max(_exposure(a, d, x, y), 1e-9))
    if covered:
        exp_in = 0.0
        cuts = sorted({0.0, T, *[x for w in covered for x in w]})
        for lo, hi in pairwise(cuts):
            mid = (lo + hi) / 2
            if any(w0 <= mid < w1 for w0, w1 in covered):
                exp_in += _exposure(a, d, lo, hi)
        rest = _exposure(a, d, 0.0, T) - exp_in
        conv["purchases per viewer-hour outside the windows"] = 3600 * (~inside).sum() / max(rest, 1e-9)
    edges = np.linspace(0.0, T, VIEWER_BINS + 1)
    viewers = {f"viewers present, {lo:g} to {hi:g} s": _exposure(a, d, lo, hi) / (hi - lo)
               for lo, hi in pairwise(edges)}
    return {"purchase timing": timing, "conversion": conv, "concurrent viewers": viewers}


@dataclass
class CheckResult:
    """Observed statistics against their simulated envelopes.

    Attributes
    ----------
    table : DataFrame
        One row per statistic: ``family, statistic, observed, simulated_mean,
        simulated_lower, simulated_upper`` (2.5 and 97.5 % of the simulations), ``outside``.
    families : DataFrame
        One row per family: ``family, discrepancy, p_value, passed``.
    """

    table: Any
    families: Any
    simulations: int
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.families["passed"].all())

    def __repr__(self) -> str:
        fam = ", ".join(f"{r.family}: p={r.p_value:.3f}" for r in self.families.itertuples())
        return f"CheckResult({self.simulations} simulations; {fam})"


def predictive_checks(visits: Any, purchases: Any, fitted_experiment: Any, arm: str, *, simulations: int = 99,
                      figures: Any = None) -> CheckResult:
    """Parametric-bootstrap checks of field data against a fitted experiment's arm.

    Parameters
    ----------
    visits, purchases : DataFrame
        The observed tables.
    fitted_experiment : Experiment
        The spec at the estimates (its replicates are ignored).
    arm : str
        The arm that was on in the field.
    simulations : int
        Simulated datasets (replicates ``0 .. simulations - 1`` of the fitted spec's seed).
    figures : Path, optional
        Folder for one PNG per family.

    Warns
    -----
    StatisticalWarning
        For each family of statistics the fitted model fails.
    """
    from fomolab.fit.synthetic import observed_tables, simulate_tables

    sc = fitted_experiment.arms[arm].scenario
    obs = statistics(visits, purchases, sc)
    sims = [statistics(*observed_tables(tb), sc) for tb in simulate_tables(fitted_experiment, arm, range(simulations))]
    return assess(obs, sims, FAMILIES, figures=figures)


def aggregate_statistics(viewers: np.ndarray, sales: np.ndarray) -> dict[str, dict[str, float]]:
    """The checked statistics of per-minute data: sales and mean viewers present in each minute."""
    return {"sales per minute": {f"sales in minute {i}": float(x) for i, x in enumerate(sales)},
            "viewers per minute": {f"viewers in minute {i}": float(x) for i, x in enumerate(viewers)}}


def aggregate_checks(data: Any, fitted_experiment: Any, arm: str, *, simulations: int = 99,
                     figures: Any = None) -> CheckResult:
    """Parametric-bootstrap checks of per-minute data (:class:`~fomolab.fit.smm.AggregateData`).

    Families ``sales per minute`` and ``viewers per minute``, each judged as
    in :func:`predictive_checks`.
    """
    from fomolab.fit.smm import minute_moments
    from fomolab.fit.synthetic import simulate_tables

    T = fitted_experiment.arms[arm].scenario.stream.duration_s
    obs = aggregate_statistics(data.viewers, data.sales)
    sims = []
    for tb in simulate_tables(fitted_experiment, arm, range(simulations)):
        ev = tb.events
        v, s = minute_moments(tb.shoppers["arrival_s"].to_numpy(float), tb.shoppers["departure_s"].to_numpy(float),
                              ev[ev["kind"] == "purchase"]["time_s"].to_numpy(float), T)
        sims.append(aggregate_statistics(v, s))
    return assess(obs, sims, AGGREGATE_FAMILIES, figures=figures)


def assess(obs: dict[str, dict[str, float]], sims: list[dict[str, dict[str, float]]], families: tuple[str, ...], *,
           figures: Any = None) -> CheckResult:
    """Observed statistics against simulated ones, family by family (see the module's docstring).

    Warns
    -----
    StatisticalWarning
        For each family the fitted model fails.
    """
    import pandas as pd

    rows, fams, notes = [], [], []
    for fam in families:
        names = list(obs[fam])
        x0 = np.array([obs[fam][k] for k in names])
        X = np.array([[s[fam].get(k, np.nan) for k in names] for s in sims])
        mu = np.nanmean(X, axis=0)
        sd = np.nanstd(X, axis=0, ddof=1)
        use = (sd > 0) & np.isfinite(x0) & np.isfinite(mu)
        lo, hi = np.nanquantile(X, 0.025, axis=0), np.nanquantile(X, 0.975, axis=0)
        for k, name in enumerate(names):
            rows.append(dict(family=fam, statistic=name, observed=x0[k], simulated_mean=mu[k], simulated_lower=lo[k],
                             simulated_upper=hi[k], outside=bool(x0[k] < lo[k] or x0[k] > hi[k])))
        if use.any():
            d0 = float(_discrepancy(x0, mu, sd, use))
            db = _discrepancy(X, mu, sd, use)
            p = float((1 + np.sum(db >= d0)) / (len(db) + 1))
        else:
            d0, p = np.nan, 1.0
        ok = p >= ALPHA / len(families)
        fams.append(dict(family=fam, discrepancy=d0, p_value=p, passed=ok))
        if not ok:
            worst = names[int(np.nanargmax(np.where(use, np.abs(x0 - mu) / np.where(sd > 0, sd, 1), -np.inf)))]
            notes.append(f"the fitted model fails the {fam} check (p = {p:.3f}; furthest: {worst}): the data have a "
                         "feature the model lacks; consider another arm, more parameters, or the arrivals' schedule")
            warnings.warn(notes[-1], StatisticalWarning, stacklevel=3)
    result = CheckResult(pd.DataFrame(rows), pd.DataFrame(fams), len(sims), notes)
    if figures is not None:
        _figures(result, figures)
    return result


def _discrepancy(x: np.ndarray, mu: np.ndarray, sd: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Largest standardised deviation from the simulated means (last axis)."""
    return np.nanmax(np.abs(x[..., use] - mu[use]) / sd[use], axis=-1)


def _figures(result: CheckResult, folder: Any) -> list[Any]:
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for fam in result.families.family:
        tb = result.table[result.table.family == fam]
        fig, ax = plt.subplots(figsize=(7, min(0.45 * len(tb), 24) + 1.6))
        y = np.arange(len(tb))
        ax.hlines(y, tb.simulated_lower, tb.simulated_upper, color="0.6", lw=6, label="simulated 95 % envelope")
        ax.plot(tb.simulated_mean, y, "|", color="0.2", ms=12, label="simulated mean")
        ax.plot(tb.observed, y, "o", color="C3", label="observed")
        ax.set_yticks(y, tb.statistic, fontsize=8)
        ax.invert_yaxis()
        p = float(result.families.set_index("family").loc[fam, "p_value"])
        ax.set_title(f"{fam}: p = {p:.3f} ({result.simulations} simulated datasets)", fontsize=10)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path = folder / f"check_{fam.replace(' ', '_')}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
    return out
