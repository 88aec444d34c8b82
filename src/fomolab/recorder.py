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
    _single: list[tuple[int, int, float, float, float]] = field(default_factory=list)

    def purchases(self, viewer: np.ndarray, product: int, time_s: np.ndarray, price: np.ndarray,
                  surplus: np.ndarray) -> None:
        """Record purchases (arrays of equal length) of product number ``product``:
        who, when, the price paid and its surplus (valuation minus price)."""
        if len(viewer):
            self._purchases.append((np.asarray(viewer, dtype=np.int64), np.full(len(viewer), product, dtype=np.int16),
                                    np.asarray(time_s, dtype=float), np.asarray(price, dtype=float),
                                    np.asarray(surplus, dtype=float)))

    def purchase(self, viewer: int, product: int, time_s: float, price: float, surplus: float) -> None:
        """Record one purchase (decided in event order)."""
        self._single.append((viewer, product, time_s, price, surplus))

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
            v, p, t, price, surplus = zip(*self._single)
            chunks.append((np.array(v, dtype=np.int64), np.array(p, dtype=np.int16), np.array(t), np.array(price),
                           np.array(surplus)))
        if chunks:
            pv, pp, pt, pprice, psurplus = (np.concatenate(c) for c in zip(*chunks))
        else:
            pv, pp, pt, pprice, psurplus = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int16), np.empty(0),
                                            np.empty(0), np.empty(0))
        first = np.full(n, np.inf)
        np.minimum.at(first, pv, pt)
        count = np.bincount(pv, minlength=n)
        spend = np.bincount(pv, weights=pprice, minlength=n)
        surplus = np.bincount(pv, weights=psurplus, minlength=n)
        regretted = np.bincount(pv, weights=(psurplus < 0).astype(float), minlength=n).astype(np.int64)
        first[np.isinf(first)] = np.nan
        # copy=False: the columns are these arrays, not copies stacked into blocks (a
        # million-viewer run saves a copy of every column and ~0.2 s).
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
            "surplus": surplus, "regretted": regretted,
        }, copy=False)
        events = self._event_table(viewers, pv, pp, pt, pprice, products)
        buyers = int((count > 0).sum())
        ttp = (first - viewers.arrival_s)[count > 0]
        runs = pd.DataFrame([{
            "run_id": self.run_id, "arm": self.arm, "replicate": self.replicate, "point": self.point,
            "seed": self.seed, **self.params,
            "viewers": n, "boosted_viewers": int(viewers.boosted.sum()), "buyers": buyers,
            "conversion": buyers / n if n else float("nan"),
            "units_sold": int(count.sum()), "revenue": float(pprice.sum()),
            "consumer_surplus": float(psurplus.sum()), "regretted_purchases": int(regretted.sum()),
            "median_time_to_purchase_s": float(np.median(ttp)) if len(ttp) else float("nan"),
        }])
        return Tables(shoppers=shoppers, events=events, runs=runs)

    @staticmethod
    def _constant(value: str, n: int) -> pd.Categorical:
        return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[value])

    def _event_table(self, v: "ViewerArrays", pv, pp, pt, pprice, products: list[str]) -> pd.DataFrame:
        """Events ordered by time, ties by kind (``EVENT_KINDS`` order), then shopper.

        Rows are laid out kind by kind, within a kind by shopper (stream events,
        which have none, in the order they were recorded), and then sorted by
        time with one stable sort: the same order as sorting on (time, kind,
        shopper), at the cost of one sort instead of three.
        """
        n = len(v.arrival_s)
        ids = v.shopper_id
        ev = np.array(self._events, dtype=float).reshape(-1, 5)
        ev = ev[np.argsort(ev[:, 1], kind="stable")]
        bounds = np.searchsorted(ev[:, 1], np.arange(len(EVENT_KINDS) + 1), side="left")
        by_shopper = np.argsort(ids[pv], kind="stable")
        blocks = []  # (time, kind, shopper, product, tactic, value)
        for code, kind in enumerate(EVENT_KINDS):
            e = ev[bounds[code]:bounds[code + 1]]
            if len(e):
                blocks.append((e[:, 0], np.full(len(e), code, np.int8), np.full(len(e), -1, np.int64),
                               e[:, 2].astype(np.int16), e[:, 3].astype(np.int8), e[:, 4]))
            if kind in ("arrive", "leave"):
                blocks.append((v.arrival_s if kind == "arrive" else v.departure_s, np.full(n, code, np.int8), ids,
                               np.full(n, -1, np.int16), np.full(n, -1, np.int8), np.full(n, np.nan)))
            elif kind == "purchase":
                blocks.append((pt[by_shopper], np.full(len(pt), code, np.int8), ids[pv][by_shopper],
                               pp[by_shopper], np.full(len(pt), -1, np.int8), pprice[by_shopper]))
        time = np.concatenate([b[0] for b in blocks])
        order = np.argsort(time, kind="stable")
        time = time[order]
        kind, shopper, product, tactic, value = (np.concatenate([b[k] for b in blocks])[order] for k in range(1, 6))
        del blocks, order
        return pd.DataFrame({
            "run_id": self._constant(self.run_id, len(time)), "time_s": time,
            "kind": pd.Categorical.from_codes(kind, categories=list(EVENT_KINDS)),
            "shopper_id": pd.arrays.IntegerArray(shopper, shopper < 0),
            "product": pd.Categorical.from_codes(product, categories=products),
            "tactic": pd.Categorical.from_codes(tactic, categories=list(TACTIC_KINDS)),
            "value": value,
        }, copy=False)


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
