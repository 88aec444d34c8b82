"""Hazard ratios while each tactic runs: counting-process Cox against the aggregated
piecewise-exponential (PWE) model, on a synthetic (start, stop] data set.

An hour of stream time, two arms, ``--viewers`` viewers arriving uniformly and
staying an exponential time (mean 600 s), cut every ``--cut-every`` seconds.  The treatment arm runs three
tactics — a sale on (900, 1200] s, a timer on (1800, 2100] s, a scarcity badge
on (2400, 3000] s — and 30 % of viewers are impulsive.  The purchase hazard is
proportional: a baseline that drifts with stream time (a 20-minute sine,
+-``--wobble``) times 1.8 (sale), 1.3 (timer), 1.5 (scarcity), 1.4
(impulsive).  Each viewer is cut at the tactic boundaries into episodes.

Printed, with wall time and peak traced memory of each step:

* the Cox fit (Efron) on the episodes of a ``--subsample``-viewer subsample;
* PWE fits on the same subsample — pieces = tactic epochs, = 60 s bins, =
  the distinct event times (the last is Breslow's partial likelihood exactly);
* PWE fits on all the viewers, aggregated in ``--parts`` parts (as a folder
  would be, run by run) and summed;
* the hazard ratios side by side.

    PYTHONPATH=src python benchmarks/episode_model.py [--viewers 1000000] [--subsample 100000]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

HOUR = 3600.0
EPOCHS = {"sale": (900.0, 1200.0), "timer": (1800.0, 2100.0), "scarcity": (2400.0, 3000.0)}
HR = {"sale": 1.8, "timer": 1.3, "scarcity": 1.5, "impulsive": 1.4}
COVS = ["sale", "timer", "scarcity", "impulsive"]
RATE0 = 1 / 2500.0  # baseline purchases per viewer-second
PERIOD = 1200.0


def _cum_baseline(t: np.ndarray, wobble: float) -> np.ndarray:
    """Integral of RATE0 * (1 + wobble * sin(2 pi t / PERIOD)) from 0 to t."""
    w = 2 * np.pi / PERIOD
    return np.asarray(RATE0 * (t + wobble * (1 - np.cos(w * t)) / w))


def episodes(n: int, seed: int, wobble: float, cut_every: float) -> pd.DataFrame:
    """The synthetic viewers as (start, stop] episodes cut at the tactic boundaries
    (and every ``cut_every`` seconds, as product slots and timer pieces cut them)."""
    rng = np.random.default_rng(seed)
    arrive = rng.uniform(0, HOUR, n)
    leave = np.minimum(arrive + rng.exponential(600.0, n), HOUR)
    arm = rng.integers(0, 2, n)
    impulsive = (rng.random(n) < 0.3).astype(np.int8)
    grid = np.arange(cut_every, HOUR, cut_every) if cut_every > 0 else []
    cuts = np.unique(np.concatenate([grid, *[list(v) for v in EPOCHS.values()]]))
    lo = np.searchsorted(cuts, arrive, side="right")
    hi = np.searchsorted(cuts, leave, side="left")
    count = hi - lo + 1
    vid = np.repeat(np.arange(n), count)
    j = np.arange(len(vid)) - np.repeat(np.cumsum(count) - count, count)
    first, last = j == 0, j == count[vid] - 1
    start = np.where(first, arrive[vid], cuts[np.minimum(lo[vid] + j - 1, len(cuts) - 1)])
    stop = np.where(last, leave[vid], cuts[np.minimum(lo[vid] + j, len(cuts) - 1)])
    mid = (start + stop) / 2
    ep = pd.DataFrame({"viewer": vid, "start": start, "stop": stop,
                       "arm": arm[vid].astype(np.int8), "impulsive": impulsive[vid]})
    lin = np.log(HR["impulsive"]) * ep["impulsive"].to_numpy()
    for name, (a, b) in EPOCHS.items():
        on = ((mid > a) & (mid <= b) & (ep["arm"].to_numpy() == 1)).astype(np.int8)
        ep[name] = on
        lin = lin + np.log(HR[name]) * on
    # one unit-exponential threshold per viewer, spent along its episodes
    threshold = rng.exponential(1.0, n)[vid]
    b0 = _cum_baseline(start, wobble)
    h = np.exp(lin) * (_cum_baseline(stop, wobble) - b0)
    spent_before = pd.Series(h).groupby(vid).cumsum().to_numpy() - h
    remaining = threshold - spent_before
    event = (remaining > 0) & (remaining <= h)
    keep = remaining > 0  # rows after the purchase are dropped
    # the purchase time inside its episode: invert the cumulative baseline by bisection
    target = b0[event] + remaining[event] / np.exp(lin[event])
    a_, b_ = start[event].copy(), stop[event].copy()
    for _ in range(60):
        m = (a_ + b_) / 2
        below = _cum_baseline(m, wobble) < target
        a_, b_ = np.where(below, m, a_), np.where(below, b_, m)
    stop = stop.copy()
    stop[event] = b_
    ep["stop"] = stop
    ep["event"] = event.astype(np.int8)
    return ep[keep].reset_index(drop=True)


def measured(label: str, fn: Callable[[], Any], log: list[str]) -> Any:
    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    log.append(f"{label:<58} {wall:7.2f} s {peak:8.0f} MB")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--viewers", type=int, default=1_000_000)
    ap.add_argument("--subsample", type=int, default=100_000)
    ap.add_argument("--parts", type=int, default=10)
    ap.add_argument("--wobble", type=float, default=0.5)
    ap.add_argument("--cut-every", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    from fomolab.stats import cox, person_time, piecewise_exponential

    log: list[str] = []
    ep = measured(f"build {args.viewers:,} viewers' episodes",
                  lambda: episodes(args.viewers, args.seed, args.wobble, args.cut_every), log)
    sub = ep[ep["viewer"] < args.subsample]
    print(f"{args.viewers:,} viewers, {len(ep):,} episodes, {int(ep['event'].sum()):,} purchases; "
          f"subsample {args.subsample:,} viewers, {len(sub):,} episodes")

    epochs = sorted({t for v in EPOCHS.values() for t in v})
    bins = np.arange(60.0, HOUR, 60.0)
    fits: dict[str, pd.Series] = {}
    c = measured(f"Cox (Efron), {len(sub):,} episodes of the subsample",
                 lambda: cox(sub, "stop", "event", COVS, start="start"), log)
    fits["Cox, subsample"] = c.summary["hazard_ratio"]
    cb = measured("Cox (Breslow), same subsample",
                  lambda: cox(sub, "stop", "event", COVS, start="start", ties="breslow"), log)
    fits["Cox Breslow, subsample"] = cb.summary["hazard_ratio"]

    def pwe(data: pd.DataFrame, **kw: Any) -> pd.Series:
        cells = person_time(data, "stop", "event", COVS, start="start", **kw)
        return piecewise_exponential(cells, covariates=COVS).summary["hazard_ratio"]

    for name, kw in (("epochs", dict(breaks=epochs)), ("60 s bins", dict(breaks=bins)),
                     ("event times", dict(breaks="event_times"))):
        fits[f"PWE {name}, subsample"] = measured(
            f"PWE, pieces = {name}, subsample", lambda kw=kw: pwe(sub, **kw), log)

    def full(**kw: Any) -> pd.Series:
        keys = ["piece", "piece_start", "piece_stop", *COVS]
        cells = None  # the running sum of the parts' tables, as a folder is read run by run
        for _, g in ep.groupby(ep["viewer"] % args.parts):
            part = person_time(g, "stop", "event", COVS, start="start", **kw)
            both = part if cells is None else pd.concat([cells, part])
            cells = both.groupby(keys, as_index=False, sort=False).sum()
        assert cells is not None
        return piecewise_exponential(cells, covariates=COVS).summary["hazard_ratio"]

    tau = np.unique(ep.loc[ep["event"] == 1, "stop"])
    for name, kw in (("epochs", dict(breaks=epochs)), ("60 s bins", dict(breaks=bins)),
                     ("event times", dict(breaks="event_times", event_times=tau))):
        fits[f"PWE {name}, all viewers"] = measured(
            f"PWE, pieces = {name}, all viewers in {args.parts} parts",
            lambda kw=kw: full(**kw), log)

    print("\n".join(log))
    print()
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        print(pd.DataFrame(fits).T)
        print("true:", ", ".join(f"{k} {v}" for k, v in HR.items()))
        ref = fits["Cox, subsample"]
        for name in ("PWE epochs, subsample", "PWE 60 s bins, subsample",
                     "PWE event times, subsample"):
            rel = (fits[name] / ref - 1).abs().max()
            print(f"max |HR / Cox HR - 1|, {name}: {rel:.2e}")


if __name__ == "__main__":
    main()
