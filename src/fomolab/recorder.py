"""The recorder: what happened in a run, turned into tidy tables.

The engine hands it arrays (viewers, purchases decided in bulk) and single
events (decided one at a time in event order); it builds the three tables of
``docs/schema.md``: ``shoppers`` (one row per viewer visit), ``events`` (one row
per event) and ``runs`` (one row per run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fomolab.tactics import KINDS

__all__ = ["Tables", "Recorder", "EVENT_KINDS", "TACTIC_KINDS", "BOOSTED_ID_OFFSET"]

#: Event kinds, in the order used to break ties at equal times.
EVENT_KINDS = ("slot_start", "tactic_start", "arrive", "purchase", "stock_out", "tactic_end", "leave", "slot_end")
#: Tactic kinds, as the events table names them.
TACTIC_KINDS = tuple(KINDS)
#: Shopper ids of viewers brought by an arm's arrival boost start here.
BOOSTED_ID_OFFSET = 1_000_000_000


@dataclass
class Tables:
    """The tables of one run (pandas DataFrames)."""

    shoppers: pd.DataFrame
    events: pd.DataFrame
    runs: pd.DataFrame

    def __iter__(self):
        yield from (("shoppers", self.shoppers), ("events", self.events), ("runs", self.runs))


@dataclass
class Recorder:
    """Collects a run's viewers, purchases and stream events."""

    run_id: str
    arm: str
    replicate: int
    point: int
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    _purchases: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    _events: list[tuple[float, int, int, int, float]] = field(default_factory=list)
    _single: list[tuple[int, int, float, float]] = field(default_factory=list)

    def purchases(self, viewer: np.ndarray, product: int, time_s: np.ndarray, price: np.ndarray) -> None:
        """Record purchases (arrays of equal length) of product number ``product``."""
        if len(viewer):
            self._purchases.append((np.asarray(viewer, dtype=np.int64), np.full(len(viewer), product, dtype=np.int16),
                                    np.asarray(time_s, dtype=float), np.asarray(price, dtype=float)))

    def purchase(self, viewer: int, product: int, time_s: float, price: float) -> None:
        """Record one purchase (decided in event order)."""
        self._single.append((viewer, product, time_s, price))

    def event(self, time_s: float, kind: str, product: int = -1, tactic: str | None = None,
              value: float = float("nan")) -> None:
        """Record a stream event (no shopper): slot, tactic or stock events."""
        self._events.append((float(time_s), EVENT_KINDS.index(kind), product,
                             -1 if tactic is None else TACTIC_KINDS.index(tactic), float(value)))

    def tables(self, viewers: "ViewerArrays", segments: list[str], products: list[str]) -> Tables:
        """Build the run's tables."""
        n = len(viewers.arrival_s)
        chunks = list(self._purchases)
        if self._single:
            v, p, t, price = zip(*self._single)
            chunks.append((np.array(v, dtype=np.int64), np.array(p, dtype=np.int16), np.array(t), np.array(price)))
        if chunks:
            pv, pp, pt, pprice = (np.concatenate(c) for c in zip(*chunks))
        else:
            pv, pp, pt, pprice = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int16), np.empty(0), np.empty(0))
        first = np.full(n, np.inf)
        np.minimum.at(first, pv, pt)
        count = np.bincount(pv, minlength=n)
        spend = np.bincount(pv, weights=pprice, minlength=n)
        first[np.isinf(first)] = np.nan
        shoppers = pd.DataFrame({
            "run_id": self._constant(self.run_id, n), "arm": self._constant(self.arm, n),
            "replicate": np.full(n, self.replicate, dtype=np.int64), "point": np.full(n, self.point, dtype=np.int64),
            "shopper_id": viewers.shopper_id,
            "segment": pd.Categorical.from_codes(viewers.segment, categories=segments),
            "boosted": viewers.boosted,
            "impulsiveness": viewers.impulsiveness, "interest": viewers.interest,
            "price_sensitivity": viewers.price_sensitivity,
            "arrival_s": viewers.arrival_s, "departure_s": viewers.departure_s,
            "first_purchase_s": first, "purchases": count.astype(np.int64), "spend": spend,
        })
        events = self._event_table(viewers, pv, pp, pt, pprice, products)
        buyers = int((count > 0).sum())
        ttp = (first - viewers.arrival_s)[count > 0]
        runs = pd.DataFrame([{
            "run_id": self.run_id, "arm": self.arm, "replicate": self.replicate, "point": self.point,
            "seed": self.seed, **self.params,
            "viewers": n, "boosted_viewers": int(viewers.boosted.sum()), "buyers": buyers,
            "conversion": buyers / n if n else float("nan"),
            "units_sold": int(count.sum()), "revenue": float(pprice.sum()),
            "median_time_to_purchase_s": float(np.median(ttp)) if len(ttp) else float("nan"),
        }])
        return Tables(shoppers=shoppers, events=events, runs=runs)

    @staticmethod
    def _constant(value: str, n: int) -> pd.Categorical:
        return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[value])

    def _event_table(self, v: "ViewerArrays", pv, pp, pt, pprice, products: list[str]) -> pd.DataFrame:
        n = len(v.arrival_s)
        ids = v.shopper_id
        ev = np.array(self._events, dtype=float).reshape(-1, 5)
        m = len(ev)
        arrive, leave, purchase = (EVENT_KINDS.index(k) for k in ("arrive", "leave", "purchase"))
        time = np.concatenate([v.arrival_s, v.departure_s, pt, ev[:, 0]])
        kind = np.concatenate([np.full(n, arrive, np.int8), np.full(n, leave, np.int8),
                               np.full(len(pt), purchase, np.int8), ev[:, 1].astype(np.int8)])
        shopper = np.concatenate([ids, ids, ids[pv], np.full(m, -1, dtype=np.int64)])
        product = np.concatenate([np.full(2 * n, -1, np.int16), pp, ev[:, 2].astype(np.int16)])
        tactic = np.concatenate([np.full(2 * n + len(pt), -1, np.int8), ev[:, 3].astype(np.int8)])
        value = np.concatenate([np.full(2 * n, np.nan), pprice, ev[:, 4]])
        order = np.lexsort((shopper, kind, time))
        shopper = shopper[order]
        return pd.DataFrame({
            "run_id": self._constant(self.run_id, len(time)), "time_s": time[order],
            "kind": pd.Categorical.from_codes(kind[order], categories=list(EVENT_KINDS)),
            "shopper_id": pd.arrays.IntegerArray(shopper, shopper < 0),
            "product": pd.Categorical.from_codes(product[order], categories=products),
            "tactic": pd.Categorical.from_codes(tactic[order], categories=list(TACTIC_KINDS)),
            "value": value[order],
        })


@dataclass(frozen=True)
class ViewerArrays:
    """All viewers of a run, baseline first, then those an arrival boost brought."""

    shopper_id: np.ndarray
    boosted: np.ndarray
    segment: np.ndarray
    impulsiveness: np.ndarray
    interest: np.ndarray
    price_sensitivity: np.ndarray
    arrival_s: np.ndarray
    departure_s: np.ndarray
