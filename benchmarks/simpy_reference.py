"""The competitor: a hand-written SimPy script of the reference scenario.

This is what a researcher who knows SimPy would write instead of using fomolab,
for ``experiments/reference_flash.toml``: a one-hour stream, viewers arriving at
2 per second, one product with base hazard 1/1800 per second, and two arms
(``control``: no tactic; ``flash``: a 300 s lightning sale with gain 4 and a
linear countdown timer with gain 2 to its end), 20 replicates each.

Written as an expert would, for speed, without cutting corners on the model:

- one SimPy process per viewer, spawned by an arrival process;
- exact purchase times by thinning (Lewis & Shedler) against a constant
  per-viewer bound, ``r (1 + 4 z) (1 + 2 z)`` in the flash arm, ``r`` in the
  control; the candidate process runs only until the viewer leaves;
- scalar random numbers from the standard library's ``random`` (faster than
  numpy for one draw at a time), one generator per run;
- a list of row tuples, turned into one pandas table of shoppers at the end and
  written to Parquet.

Run it on its own::

    .venv/bin/python benchmarks/simpy_reference.py --out /tmp/simpy_shoppers.parquet

``benchmarks/reference_vs_simpy.py`` times it against ``fomolab run``.
"""

from __future__ import annotations

import argparse
import math
import random
import time

import pandas as pd
import simpy

T = 3600.0  # stream length, s
ARRIVAL_RATE = 2.0  # viewers per s
BASE_RATE = 1.0 / 1800.0  # purchase hazard per s
PRICE = 20.0
DWELL_MEAN = 300.0  # exponential dwell, s
Z_BETA = (2.0, 5.0)  # impulsiveness ~ Beta(2, 5)
SALE = (1200.0, 1500.0)  # lightning sale window (the timer counts it down)
SALE_GAIN, TIMER_GAIN = 4.0, 2.0
REPLICATES = 20
ARMS = ("control", "flash")
SEED = 20261126


def hazard(t: float, z: float, flash: bool) -> float:
    """The purchase hazard at time t of a viewer with impulsiveness z."""
    if not flash or not (SALE[0] <= t < SALE[1]):
        return BASE_RATE
    progress = (t - SALE[0]) / (SALE[1] - SALE[0])
    return BASE_RATE * (1.0 + SALE_GAIN * z) * (1.0 + TIMER_GAIN * z * progress)


def viewer(env, rng, rows, arm, rep, sid, z, departure, flash):
    """One viewer: watch until departure, buy at the first accepted candidate."""
    arrival = env.now
    bound = BASE_RATE * (1.0 + SALE_GAIN * z) * (1.0 + TIMER_GAIN * z) if flash else BASE_RATE
    t = arrival
    first = math.nan
    while True:
        t += rng.expovariate(bound)
        if t >= departure:
            break
        yield env.timeout(t - env.now)
        if rng.random() * bound < hazard(t, z, flash):
            first = t
            break
    bought = first == first
    rows.append((arm, rep, sid, z, arrival, departure, first, int(bought), PRICE if bought else 0.0))


def arrivals(env, rng, rows, arm, rep, flash):
    """Viewers arrive as a Poisson process; each gets a process of their own."""
    sid = 0
    while True:
        yield env.timeout(rng.expovariate(ARRIVAL_RATE))
        if env.now >= T:
            return
        z = rng.betavariate(*Z_BETA)
        departure = min(env.now + rng.expovariate(1.0 / DWELL_MEAN), T)
        env.process(viewer(env, rng, rows, arm, rep, sid, z, departure, flash))
        sid += 1


def simulate_all() -> pd.DataFrame:
    rows: list[tuple] = []
    for rep in range(REPLICATES):
        for arm in ARMS:
            rng = random.Random(SEED * 1000 + rep)  # same viewers' seed in both arms
            env = simpy.Environment()
            env.process(arrivals(env, rng, rows, arm, rep, arm == "flash"))
            env.run(until=T)
    return pd.DataFrame(rows, columns=["arm", "replicate", "shopper_id", "impulsiveness", "arrival_s",
                                       "departure_s", "first_purchase_s", "purchases", "spend"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="simpy_shoppers.parquet", help="Parquet file of shoppers")
    args = p.parse_args()
    start = time.perf_counter()
    shoppers = simulate_all()
    shoppers["arm"] = shoppers["arm"].astype("category")
    shoppers.to_parquet(args.out, index=False)
    conv = shoppers.groupby("arm", observed=True).purchases.mean()
    print(f"simpy script: {len(shoppers):,} viewer visits in {time.perf_counter() - start:.2f} s; "
          + ", ".join(f"{a} conversion {c:.2%}" for a, c in conv.items()))


if __name__ == "__main__":
    main()
