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

__all__ = ["Tables", "Recorder", "EVENT_KINDS", "BOOSTED_ID_OFFSET"]

#: Event kinds, in the order used to break ties at equal times.
EVENT_KINDS = ("slot_start", "tactic_start", "arrive", "purchase", "stock_out", "tactic_end", "leave", "slot_end")
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
    _events: list[tuple[float, str, str | None, str | None, float]] = field(default_factory=list)

    def purchases(self, viewer: np.ndarray, product: str, time_s: np.ndarray, price: np.ndarray) -> None:
        """Record purchases (arrays of equal length) of one product."""
        if len(viewer):
            self._purchases.append((np.asarray(viewer, dtype=np.int64), np.full(len(viewer), product, dtype=object),
                                    np.asarray(time_s, dtype=float), np.asarray(price, dtype=float)))

    def event(self, time_s: float, kind: str, product: str | None = None, tactic: str | None = None,
              value: float = float("nan")) -> None:
        """Record a stream event (no shopper): slot, tactic or stock events."""
        self._events.append((float(time_s), kind, product, tactic, float(value)))

    def tables(self, viewers: "ViewerArrays", segments: list[str]) -> Tables:
        """Build the run's tables."""
        n = len(viewers.arrival_s)
        if self._purchases:
            pv, pp, pt, pprice = (np.concatenate(c) for c in zip(*self._purchases))
        else:
            pv, pp, pt, pprice = (np.empty(0, dtype=np.int64), np.empty(0, dtype=object),
                                  np.empty(0), np.empty(0))
        first = np.full(n, np.inf)
        np.minimum.at(first, pv, pt)
        count = np.bincount(pv, minlength=n)
        spend = np.bincount(pv, weights=pprice, minlength=n)
        first[np.isinf(first)] = np.nan
        shoppers = pd.DataFrame({
            "run_id": self.run_id, "arm": self.arm, "replicate": self.replicate, "point": self.point,
            "shopper_id": viewers.shopper_id,
            "segment": np.asarray(segments, dtype=object)[viewers.segment],
            "boosted": viewers.boosted,
            "impulsiveness": viewers.impulsiveness, "interest": viewers.interest,
            "price_sensitivity": viewers.price_sensitivity,
            "arrival_s": viewers.arrival_s, "departure_s": viewers.departure_s,
            "first_purchase_s": first, "purchases": count.astype(np.int64), "spend": spend,
        })
        events = self._event_table(viewers, pv, pp, pt, pprice)
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

    def _event_table(self, v: "ViewerArrays", pv, pp, pt, pprice) -> pd.DataFrame:
        n = len(v.arrival_s)
        ids = v.shopper_id
        ev = self._events
        time = np.concatenate([v.arrival_s, v.departure_s, pt, np.array([e[0] for e in ev], dtype=float)])
        kind = np.concatenate([np.full(n, "arrive", dtype=object), np.full(n, "leave", dtype=object),
                               np.full(len(pt), "purchase", dtype=object), np.array([e[1] for e in ev], dtype=object)])
        shopper = np.concatenate([ids, ids, ids[pv], np.full(len(ev), -1, dtype=np.int64)])
        product = np.concatenate([np.full(2 * n, None, dtype=object), pp, np.array([e[2] for e in ev], dtype=object)])
        tactic = np.concatenate([np.full(2 * n + len(pt), None, dtype=object), np.array([e[3] for e in ev], dtype=object)])
        value = np.concatenate([np.full(2 * n, np.nan), pprice, np.array([e[4] for e in ev], dtype=float)])
        rank = pd.Categorical(kind, categories=EVENT_KINDS).codes
        order = np.lexsort((shopper, rank, time))
        shopper_col = pd.array(shopper[order], dtype="Int64")
        shopper_col[shopper[order] < 0] = pd.NA
        return pd.DataFrame({
            "run_id": self.run_id, "time_s": time[order], "kind": kind[order], "shopper_id": shopper_col,
            "product": product[order], "tactic": tactic[order], "value": value[order],
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
