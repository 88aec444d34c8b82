"""The recorder: what happened in a run, turned into tidy tables.

The engine hands it arrays (viewers, purchases decided in bulk) and single
events (decided one at a time in event order); it builds the tables of
``docs/schema.md``: ``shoppers`` (one row per viewer visit), ``events`` (one row
per event) and ``runs`` (one row per run), and the run's stored facts, which
the analysis reads instead of re-parsing the spec: ``products`` (one row per
product), ``tactics`` (one row per tactic switched on, its resolved fields) and
``windows`` (one row per tactic window as it ran).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fomolab.tactics import KINDS

if TYPE_CHECKING:
    from fomolab.design import HazardTraits

__all__ = ["Tables", "Columns", "Recorder", "EVENT_KINDS", "TACTIC_KINDS", "FACT_TABLES", "BOOSTED_ID_OFFSET"]

#: Event kinds, in the order used to break ties at equal times; the tactics' own kinds
#: (``Tactic.event_kinds``) follow in registry order.
EVENT_KINDS = ("slot_start", "tactic_start", "arrive", "purchase", "stock_out", "tactic_end", "leave", "slot_end",
               *(k for cls in KINDS.values() for k in cls.event_kinds), "host_action")
#: Tactic kinds, as the events table names them.
TACTIC_KINDS = tuple(KINDS)
_SLOT_START, _TACTIC_START, _TACTIC_END = (EVENT_KINDS.index(k) for k in ("slot_start", "tactic_start", "tactic_end"))
_BASE_EVENT_KINDS = EVENT_KINDS[:8]
_HOST_ACTION = EVENT_KINDS.index("host_action")


def categories(lineups: list[dict[str, Any]] | None) -> tuple[list[str], list[str]]:
    """The ``tactic`` and ``kind`` categories of a run's tables.

    Tactic kinds: those every run lists (``Tactic.always_listed``) and those the
    run's lineups use, in registry order; event kinds: the stream's, then the
    listed tactics' own.  A tactic a run does not use leaves its tables as
    they were before it was registered.
    """
    if lineups is None:
        return list(TACTIC_KINDS), list(EVENT_KINDS)
    used = {k for lineup in lineups for p in lineup.values() for k, _ in p.tactics.items()}
    tactics = [k for k in TACTIC_KINDS if KINDS[k].always_listed or k in used]
    return tactics, [*_BASE_EVENT_KINDS, *(e for k in tactics for e in KINDS[k].event_kinds)]


def _categorical(codes: np.ndarray, full: tuple[str, ...], cats: list[str]) -> pd.Categorical:
    """Codes into ``full``, as a categorical with the categories ``cats`` (a subset, in order)."""
    out = pd.Categorical.from_codes(codes, categories=list(full))
    return out if len(cats) == len(full) else out.set_categories(cats)
#: The run's stored facts, tables every run writes besides shoppers, events and runs
#: (``product_results``: what each product did in the run).
FACT_TABLES = ("products", "tactics", "windows", "product_results")
#: Shopper ids of viewers brought by an arm's arrival boost start here.
BOOSTED_ID_OFFSET = 1_000_000_000


class Columns:
    """A big table held as its columns' arrays, turned into DataFrames a slice of rows at a time.

    The picture: the table's recipe rather than the table.  ``build(start,
    stop, names)`` returns the named columns (all if ``names`` is None) for rows
    ``start:stop``; slices of the run's own arrays cost no copy, so a writer
    can stream the table to Parquet a row group at a time
    (:meth:`frames`) without ever holding it whole, in pandas or in Arrow.
    """

    def __init__(self, n_rows: int, build: Callable[[int, int, list[str] | None], dict[str, Any]]) -> None:
        self.n_rows = int(n_rows)
        self._build = build

    def __len__(self) -> int:
        return self.n_rows

    def frame(self, start: int = 0, stop: int | None = None, columns: list[str] | None = None) -> pd.DataFrame:
        """Rows ``start:stop`` (all by default) as a DataFrame, with the ``columns`` asked for (all by default)."""
        stop = self.n_rows if stop is None else min(stop, self.n_rows)
        return pd.DataFrame(self._build(start, max(start, stop), columns), copy=False)

    def frames(self, rows: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The table in slices of ``rows`` rows (one empty slice for an empty table, for its schema)."""
        for start in range(0, max(self.n_rows, 1), rows):
            yield self.frame(start, start + rows, columns)


#: Tables a run may hold as :class:`Columns` until someone reads them.
_LAZY = ("shoppers", "events")


class Tables:
    """The tables of one run (pandas DataFrames); a marketplace run has two more.

    ``shoppers`` and ``events`` may be given as :class:`Columns`: they become
    DataFrames the first time either is read (both at once: they share the
    run's arrays), while a writer streams them with :meth:`source` and
    :meth:`parts` without building them.
    """

    #: Table names in the order they are written (``runs`` last).
    NAMES = ("shoppers", "events", "streams", "stream_series", "products", "tactics", "windows", "product_results",
             "runs")

    def __init__(self, shoppers: pd.DataFrame | Columns, events: pd.DataFrame | Columns, runs: pd.DataFrame,
                 streams: pd.DataFrame | None = None, stream_series: pd.DataFrame | None = None,
                 products: pd.DataFrame | None = None, tactics: pd.DataFrame | None = None,
                 windows: pd.DataFrame | None = None, product_results: pd.DataFrame | None = None) -> None:
        self._lazy: dict[str, Columns] = {}
        self._frames: dict[str, pd.DataFrame] = {}
        self.shoppers, self.events = shoppers, events
        self.runs = runs
        self.streams, self.stream_series = streams, stream_series
        self.products, self.tactics, self.windows, self.product_results = products, tactics, windows, product_results

    def _get(self, name: str) -> pd.DataFrame:
        if self._lazy:  # both at once: a change to one must not reach the other through a shared array
            for k in ("events", "shoppers"):
                if k in self._lazy:
                    self._frames[k] = self._lazy.pop(k).frame()
        return self._frames[name]

    def _set(self, name: str, value: pd.DataFrame | Columns) -> None:
        self._lazy.pop(name, None)
        self._frames.pop(name, None)
        if isinstance(value, Columns):
            self._lazy[name] = value
        else:
            self._frames[name] = value

    @property
    def shoppers(self) -> pd.DataFrame:
        """One row per viewer visit."""
        return self._get("shoppers")

    @shoppers.setter
    def shoppers(self, value: pd.DataFrame | Columns) -> None:
        self._set("shoppers", value)

    @property
    def events(self) -> pd.DataFrame:
        """One row per event."""
        return self._get("events")

    @events.setter
    def events(self, value: pd.DataFrame | Columns) -> None:
        self._set("events", value)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with both big tables built (a :class:`Columns` holds functions of the run's arrays)."""
        if self._lazy:
            self._get("shoppers")
        return self.__dict__

    def source(self, name: str) -> Columns | None:
        """The :class:`Columns` of table ``name`` if it has not been built as a DataFrame, else None."""
        return self._lazy.get(name)

    def parts(self) -> Iterator[tuple[str, pd.DataFrame | Columns]]:
        """``(name, table)`` pairs as :meth:`__iter__`, the big tables as :class:`Columns` where not yet built."""
        for name in self.NAMES:
            df = self._lazy.get(name) if name in _LAZY else None
            if df is None:
                df = getattr(self, name)
            if df is not None:
                yield name, df

    def __iter__(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """``(name, table)`` pairs, ``runs`` last (a run is finished when its ``runs`` file exists)."""
        for name in self.NAMES:
            df = getattr(self, name)
            if df is not None:
                yield name, df


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
    _shopper_events: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    _cats: tuple[list[str], list[str]] = field(default_factory=lambda: categories(None))
    #: Extra ``shoppers`` columns, one value per viewer (a mechanism's, e.g. retention's holds).
    shopper_columns: dict[str, np.ndarray] = field(default_factory=dict)

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

    def shopper_events(self, time_s: float, kind: str, visits: np.ndarray, product: int, tactic: str,
                       value: float = float("nan")) -> None:
        """Record one event per visit in ``visits`` (e.g. a prize won), all at ``time_s``."""
        visits = np.asarray(visits, dtype=np.int64)
        n = len(visits)
        if n:
            self._shopper_events.append((np.full(n, float(time_s)), np.full(n, EVENT_KINDS.index(kind), np.int8),
                                         visits, np.full(n, product, np.int16),
                                         np.full(n, TACTIC_KINDS.index(tactic), np.int8), np.full(n, float(value))))

    def purchase_arrays(self) -> tuple[np.ndarray, ...]:
        """Every purchase recorded so far: visit, product number, time, price paid, surplus (arrays)."""
        chunks = list(self._purchases)
        if self._single:
            sv, sp, st, sprice, ssurplus = zip(*self._single, strict=True)
            chunks.append((np.array(sv, dtype=np.int64), np.array(sp, dtype=np.int16), np.array(st),
                           np.array(sprice), np.array(ssurplus)))
        if not chunks:
            return (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int16), np.empty(0), np.empty(0), np.empty(0))
        return tuple(np.concatenate(c) for c in zip(*chunks, strict=True))

    def tables(self, viewers: ViewerArrays, vis: Any, segments: list[str], products: list[str],
               streams: list[Any] | None = None, duration_s: float = 0.0, lineups: list[dict[str, Any]] | None = None
               ) -> Tables:
        """Build the run's tables: one ``shoppers`` row per visit (``vis``), purchases recorded by visit.

        With ``streams`` (a marketplace), shoppers and events get a ``stream``
        column and the run gets ``streams`` and ``stream_series`` tables and
        the marketplace measures; products are numbered stream by stream.
        """
        n_viewers = len(viewers.arrival_s)
        n = len(vis.viewer)
        chunks = list(self._purchases)
        if self._single:
            sv, sp, st, sprice, ssurplus = zip(*self._single, strict=True)
            chunks.append((np.array(sv, dtype=np.int64), np.array(sp, dtype=np.int16), np.array(st),
                           np.array(sprice), np.array(ssurplus)))
        if chunks:
            pv, pp, pt, pprice, psurplus = (np.concatenate(c) for c in zip(*chunks, strict=True))
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
        w = vis.viewer
        # the table is built a slice at a time (Columns): a viewer's own arrays are sliced,
        # not copied, when visit k is viewer k (one stream)
        own = None if _is_identity(w, n_viewers) else w
        cols: dict[str, Callable[[int, int], Any]] = {
            "run_id": lambda a, b: self._constant(self.run_id, b - a),
            "arm": lambda a, b: self._constant(self.arm, b - a),
            "replicate": lambda a, b: np.full(b - a, self.replicate, dtype=np.int64),
            "point": lambda a, b: np.full(b - a, self.point, dtype=np.int64),
            "shopper_id": _gather(viewers.shopper_id, own),
            "segment": _coded(_gather(viewers.segment, own), segments),
            "boosted": _gather(viewers.boosted, own),
            "impulsiveness": _gather(viewers.impulsiveness, own), "interest": _gather(viewers.interest, own),
            "price_sensitivity": _gather(viewers.price_sensitivity, own),
            "arrival_s": _gather(vis.start_s), "departure_s": _gather(vis.end_s),
            "first_purchase_s": _gather(first), "purchases": _gather(count.astype(np.int64)),
            "spend": _gather(spend), "surplus": _gather(surplus), "regretted": _gather(regretted),
        }
        cols.update({k: _gather(v, own) for k, v in self.shopper_columns.items()})
        P = len(products)
        if streams is not None:
            cols["stream"] = _gather(vis.stream.astype(np.int64))
            cols["switched_in"] = _gather(vis.switched_in)
            # stream 0's products keep their names; the same product in stream k is "name@k"
            products = [p if k == 0 else f"{p}@{k}" for k in range(len(streams)) for p in products]
        shoppers = Columns(n, lambda a, b, names: {k: cols[k](a, b) for k in (cols if names is None else names)})
        self._cats = categories(lineups)
        if any(e[1] == _HOST_ACTION for e in self._events):  # a reactive host acted (fomolab.host)
            self._cats = (self._cats[0], [*self._cats[1], "host_action"])
        events = self._event_table(viewers, vis, pv, pp, pt, pprice, products, P if streams is not None else None)
        # viewer-level outcomes: a viewer may have several visits in a marketplace
        v_first = np.full(n_viewers, np.inf)
        np.minimum.at(v_first, w[pv], pt)
        v_buys = np.isfinite(v_first)
        buyers = int(v_buys.sum())
        ttp = v_first[v_buys] - viewers.arrival_s[v_buys]
        runs = {
            "run_id": self.run_id, "arm": self.arm, "replicate": self.replicate, "point": self.point,
            "seed": self.seed, **self.params, "duration_s": float(duration_s),
            "viewers": n_viewers, "boosted_viewers": int(viewers.boosted.sum()), "buyers": buyers,
            "conversion": buyers / n_viewers if n_viewers else float("nan"),
            "units_sold": int(count.sum()), "revenue": float(pprice.sum()),
            "consumer_surplus": float(psurplus.sum()), "regretted_purchases": int(regretted.sum()),
            "median_time_to_purchase_s": float(np.median(ttp)) if len(ttp) else float("nan"),
        }
        facts = self._facts(lineups, products, duration_s) if lineups is not None else {}
        if facts:
            facts["product_results"] = self._product_results(facts, vis, pv, pp, pprice)
        if streams is None:
            return Tables(shoppers=shoppers, events=events, runs=pd.DataFrame([runs]), **facts)
        per_stream, series, measures = self._market(vis, pv, pp, pt, pprice, streams, P, duration_s)
        runs.update(measures)
        return Tables(shoppers=shoppers, events=events, runs=pd.DataFrame([runs]), streams=per_stream,
                      stream_series=series, **facts)

    def _facts(self, lineups: list[dict[str, Any]], names: list[str], T: float) -> dict[str, pd.DataFrame]:
        """The run's stored facts: ``products``, ``tactics`` and ``windows`` (``docs/schema.md``).

        ``lineups`` holds each stream's products (schedules shifted); ``names``
        the products' names in the tables, stream by stream.
        """
        prods = [(k, prod) for k, lineup in enumerate(lineups) for prod in lineup.values()]
        n = len(prods)
        slots = [prod.slot(T) for _, prod in prods]
        products = pd.DataFrame({
            "run_id": self._constant(self.run_id, n), "stream": np.array([k for k, _ in prods], dtype=np.int64),
            "product": pd.Categorical(names, categories=names),
            "price": np.array([p.price for _, p in prods], dtype=float),
            "base_rate_per_s": np.array([p.base_rate_per_s for _, p in prods], dtype=float),
            "stock": pd.array([p.stock for _, p in prods], dtype="Int64"),
            "slot_start_s": np.array([s[0] for s in slots], dtype=float),
            "slot_end_s": np.array([s[1] for s in slots], dtype=float),
        })
        rows = [(j, kind, json.dumps(tac.model_dump(mode="json"), sort_keys=True))
                for j, (_, prod) in enumerate(prods) for kind, tac in prod.tactics.items()]
        tactics = pd.DataFrame({
            "run_id": self._constant(self.run_id, len(rows)),
            "product": pd.Categorical.from_codes(np.array([r[0] for r in rows], dtype=np.int16), categories=names),
            "tactic": pd.Categorical([r[1] for r in rows], categories=self._cats[0]),
            "config": pd.array([r[2] for r in rows], dtype=object),
        })
        # windows as they ran: the k-th start of a product's tactic paired with its k-th end
        ev = sorted(((e[2], e[3], e[0], e[1]) for e in self._events if e[1] in (_TACTIC_START, _TACTIC_END)),
                    key=lambda e: (names[e[0]], TACTIC_KINDS[e[1]], e[2]))
        starts: dict[tuple[int, int], list[float]] = {}
        ends: dict[tuple[int, int], list[float]] = {}
        for p, tac, t, code in ev:
            (starts if code == _TACTIC_START else ends).setdefault((p, tac), []).append(t)
        win = [(p, tac, a, b) for (p, tac), ss in starts.items()
               for a, b in zip(ss, ends.get((p, tac), []), strict=False)  # a start without an end: no window
               if b > a]
        windows = pd.DataFrame({
            "run_id": self._constant(self.run_id, len(win)),
            "product": pd.Categorical.from_codes(np.array([w[0] for w in win], dtype=np.int16), categories=names),
            "tactic": _categorical(np.array([w[1] for w in win], dtype=np.int8), TACTIC_KINDS, self._cats[0]),
            "start_s": np.array([w[2] for w in win], dtype=float),
            "end_s": np.array([w[3] for w in win], dtype=float),
        })
        return {"products": products, "tactics": tactics, "windows": windows}

    def _product_results(self, facts: dict[str, pd.DataFrame], vis: Any, pv: np.ndarray, pp: np.ndarray,
                         pprice: np.ndarray) -> pd.DataFrame:
        """One row per product: what it did in the run (``docs/schema.md``, ``product_results``).

        Views and watch time come from sorted visit starts and ends of the
        product's stream (no pass over the visits per product): the visits
        overlapping ``[a, b)`` are those starting before ``b`` less those
        ending by ``a``.
        """
        prods = facts["products"]
        n = len(prods)
        stream = prods["stream"].to_numpy()
        a, b = prods["slot_start_s"].to_numpy(), prods["slot_end_s"].to_numpy()
        views, seconds = np.zeros(n, np.int64), np.zeros(n)
        for k in np.unique(stream):
            mine = vis.stream == k
            st, en = vis.start_s[mine], vis.end_s[mine]  # copies, sorted in place
            st.sort()
            en.sort()
            rows = np.flatnonzero(stream == k)
            views[rows] = (np.searchsorted(st, b[rows], side="left") - np.searchsorted(en, a[rows], side="right"))
            watched = _watch_time(st, en, np.concatenate([a[rows], b[rows]]), presorted=True)
            del st, en
            seconds[rows] = watched[len(rows):] - watched[:len(rows)]
        pcode = pp.astype(np.int64)
        units = np.bincount(pcode, minlength=n)[:n]
        revenue = np.bincount(pcode, weights=pprice, minlength=n)[:n].astype(float)  # int64 when empty
        pairs = np.unique(np.stack([pcode, vis.viewer[pv].astype(np.int64)]), axis=1) if len(pv) \
            else np.empty((2, 0), np.int64)
        buyers = np.bincount(pairs[0], minlength=n)[:n]
        sell_out = np.full(n, np.nan)
        code = EVENT_KINDS.index("stock_out")
        for t, kind, prod, _, _ in self._events:
            if kind == code and not t >= sell_out[prod]:  # the first stock-out (nan: none yet)
                sell_out[prod] = t
        win = facts["windows"]
        codes = win["product"].cat.codes.to_numpy().astype(np.int64)
        n_win = np.bincount(codes, minlength=n)[:n]
        win_s = np.bincount(codes, weights=(win["end_s"] - win["start_s"]).to_numpy(), minlength=n)[:n].astype(float)
        return pd.DataFrame({
            "run_id": self._constant(self.run_id, n), "arm": self._constant(self.arm, n),
            "replicate": np.full(n, self.replicate, np.int64), "point": np.full(n, self.point, np.int64),
            "stream": stream.astype(np.int64), "product": prods["product"].array.copy(),
            "views": views.astype(np.int64), "viewer_seconds": seconds, "buyers": buyers.astype(np.int64),
            "units_sold": units.astype(np.int64), "revenue": revenue, "sell_out_s": sell_out,
            "windows": n_win.astype(np.int64), "window_s": win_s,
        })

    def _market(self, vis: Any, pv, pp, pt, pprice, streams: list[Any], P: int, T: float):
        """Per-stream totals, per-minute series and the marketplace's concentration measures."""
        k = len(streams)
        seconds = np.bincount(vis.stream, weights=vis.end_s - vis.start_s, minlength=k)
        visits = np.bincount(vis.stream, minlength=k)
        pairs = np.unique(np.stack([vis.stream, vis.viewer]), axis=1)
        viewers = np.bincount(pairs[0], minlength=k)
        p_stream = pp.astype(np.int64) // P
        units = np.bincount(p_stream, minlength=k)
        revenue = np.bincount(p_stream, weights=pprice, minlength=k)
        bpairs = np.unique(np.stack([p_stream, vis.viewer[pv]]), axis=1) if len(pv) else np.empty((2, 0), int)
        buyers = np.bincount(bpairs[0], minlength=k)
        sw_in = np.bincount(vis.stream[vis.switched_in], minlength=k)
        # a switched-in visit ended the viewer's previous visit: count it against that stream
        prev = self._previous_streams(vis)
        sw_out = np.bincount(prev[prev >= 0], minlength=k)
        share_v = seconds / seconds.sum() if seconds.sum() else np.zeros(k)
        share_s = units / units.sum() if units.sum() else np.zeros(k)
        hours = T / 3600.0
        cost = np.array([s.host.cost_per_hour for s in streams]) * hours
        with np.errstate(invalid="ignore", divide="ignore"):
            cps = np.where(units > 0, cost / np.maximum(units, 1), np.nan)
        rid = self._constant(self.run_id, k)
        per_stream = pd.DataFrame({
            "run_id": rid, "arm": self._constant(self.arm, k), "replicate": np.full(k, self.replicate, np.int64),
            "point": np.full(k, self.point, np.int64), "stream": np.arange(k, dtype=np.int64),
            "host_kind": pd.Categorical([s.host.kind for s in streams], categories=["human", "virtual"]),
            "host_appeal": [s.host.appeal for s in streams], "host_trust": [s.host.trust for s in streams],
            "cost_per_hour": [s.host.cost_per_hour for s in streams],
            "viewers": viewers.astype(np.int64), "visits": visits.astype(np.int64), "viewer_seconds": seconds,
            "share_viewers": share_v, "buyers": buyers.astype(np.int64), "units_sold": units.astype(np.int64),
            "revenue": revenue, "share_sales": share_s, "switches_in": sw_in.astype(np.int64),
            "switches_out": sw_out.astype(np.int64), "cost": cost, "cost_per_sale": cps,
        })
        # per minute: mean viewers present (viewer-seconds in the minute / 60), purchases, revenue
        bins = np.append(np.arange(0.0, T, 60.0), T)  # minutes; the last cut at the stream's end
        nb = len(bins) - 1
        present = np.zeros((k, nb))
        for s in range(k):
            mine = vis.stream == s
            present[s] = np.diff(_watch_time(vis.start_s[mine], vis.end_s[mine], bins)) / np.diff(bins)
        buys = np.zeros((k, nb))
        money = np.zeros((k, nb))
        if len(pt):
            b_idx = np.clip(np.searchsorted(bins, pt, side="right") - 1, 0, nb - 1)
            np.add.at(buys, (p_stream, b_idx), 1)
            np.add.at(money, (p_stream, b_idx), pprice)
        series = pd.DataFrame({
            "run_id": self._constant(self.run_id, k * nb), "stream": np.repeat(np.arange(k, dtype=np.int64), nb),
            "time_s": np.tile(bins[:-1], k), "viewers": present.ravel(),
            "purchases": buys.ravel().astype(np.int64), "revenue": money.ravel(),
        })
        measures = {
            "streams": k, "viewers_per_stream": float(viewers.mean()),
            "hhi_viewers": float((share_v ** 2).sum()), "hhi_sales": float((share_s ** 2).sum()),
            "gini_viewers": _gini(share_v), "gini_sales": _gini(share_s),
            "top1_share_viewers": float(share_v.max()), "top1_share_sales": float(share_s.max()),
            "switches": int(vis.switched_in.sum()),
        }
        return per_stream, series, measures

    @staticmethod
    def _previous_streams(vis: Any) -> np.ndarray:
        """For each visit that began with a switch, the stream the viewer left (else -1)."""
        order = np.lexsort((vis.start_s, vis.viewer))
        v, st = vis.viewer[order], vis.stream[order]
        prev = np.full(len(v), -1)
        same = np.r_[False, v[1:] == v[:-1]]
        prev[same] = st[np.flatnonzero(same) - 1]
        out = np.full(len(v), -1)
        out[order] = np.where(vis.switched_in[order], prev, -1)
        return out

    @staticmethod
    def _constant(value: str, n: int) -> pd.Categorical:
        return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[value])

    def _event_table(self, v: ViewerArrays, vis: Any, pv, pp, pt, pprice, products: list[str],
                     per_stream: int | None = None) -> Columns:
        """Events ordered by time, ties by kind (``EVENT_KINDS`` order), then shopper.

        Rows are laid out kind by kind, within a kind by shopper (stream events,
        which have none, in the order they were recorded), and then sorted by
        time with one stable sort: the same order as sorting on (time, kind,
        shopper), at the cost of one sort instead of three.  The table is
        kept as those blocks and the sort's permutation (:class:`Columns`):
        a slice of rows is gathered from the blocks when it is asked for.
        """
        n = len(vis.viewer)
        ids = v.shopper_id if _is_identity(vis.viewer, len(v.shopper_id)) else v.shopper_id[vis.viewer]
        ev = np.array(self._events, dtype=float).reshape(-1, 5)
        ev = ev[np.argsort(ev[:, 1], kind="stable")]
        bounds = np.searchsorted(ev[:, 1], np.arange(len(EVENT_KINDS) + 1), side="left")
        by_shopper = np.argsort(ids[pv], kind="stable")
        none16, none8, nan = np.int16(-1), np.int8(-1), np.float64(np.nan)
        # (time, kind, shopper, product, tactic, value, the stream's product): arrays, or one value for a block
        blocks: list[tuple[Any, ...]] = []
        for code, name in enumerate(EVENT_KINDS):
            e = ev[bounds[code]:bounds[code + 1]]
            if len(e):
                blocks.append((e[:, 0], np.int8(code), np.int64(-1), e[:, 2].astype(np.int16),
                               e[:, 3].astype(np.int8), e[:, 4], e[:, 2].astype(np.int16)))
            if name in ("arrive", "leave"):
                where = (vis.stream * (per_stream or 1)).astype(np.int16) if per_stream else np.int16(0)
                blocks.append((vis.start_s if name == "arrive" else vis.end_s, np.int8(code), ids, none16, none8,
                               nan, where))
            elif name == "purchase" and len(pt):
                p_s = pp[by_shopper]
                blocks.append((pt[by_shopper], np.int8(code), ids[pv][by_shopper], p_s, none8, pprice[by_shopper],
                               p_s))
            for t_s, k_s, v_s, p_s, tac_s, val_s in self._shopper_events:
                if k_s[0] == code:  # tactics' events with a shopper (e.g. a prize), after the stream's
                    blocks.append((t_s, k_s, ids[v_s], p_s, tac_s, val_s, p_s))
        table = _Blocks([b for b in blocks if len(b[0])], n)
        cats = self._cats

        def build(a: int, b: int, names: list[str] | None) -> dict[str, Any]:
            names = list(_EVENT_COLUMNS) if names is None else names
            wanted = [_EVENT_COLUMNS[c] for c in names if _EVENT_COLUMNS[c] >= 0]
            got = table.gather(a, b, wanted)
            out: dict[str, Any] = {}
            for c in names:
                if c == "run_id":
                    out[c] = self._constant(self.run_id, b - a)
                elif c == "kind":
                    out[c] = _categorical(got[1], EVENT_KINDS, cats[1])
                elif c == "shopper_id":
                    out[c] = pd.arrays.IntegerArray(got[2], got[2] < 0)
                elif c == "product":
                    out[c] = pd.Categorical.from_codes(got[3], categories=products)
                elif c == "tactic":
                    out[c] = _categorical(got[4], TACTIC_KINDS, cats[0])
                elif c == "stream":
                    if per_stream is None:
                        raise KeyError(c)
                    out[c] = got[6].astype(np.int64) // per_stream
                else:
                    out[c] = got[_EVENT_COLUMNS[c]]
            return out

        names = [*_EVENT_COLUMNS][:-1] if per_stream is None else list(_EVENT_COLUMNS)
        return Columns(table.n_rows, lambda a, b, cols: build(a, b, names if cols is None else cols))


#: The events table's columns and the block entry each comes from (-1: none).
_EVENT_COLUMNS = {"run_id": -1, "time_s": 0, "kind": 1, "shopper_id": 2, "product": 3, "tactic": 4, "value": 5,
                  "stream": 6}


class _Blocks:
    """Rows in blocks (each entry an array or one value for the whole block), read in a stored order.

    The order is the stable sort of the blocks' first entry (time), as if the
    blocks were concatenated and sorted; :meth:`gather` returns rows
    ``a:b`` of that order, entry by entry, without the concatenation.
    """

    def __init__(self, blocks: list[tuple[Any, ...]], n_visits: int) -> None:
        self.blocks = blocks
        self.offsets = np.cumsum([0, *(len(b[0]) for b in blocks)])
        self.n_rows = int(self.offsets[-1])
        self.dtypes = [np.result_type(*(b[k] for b in blocks)) if blocks else np.dtype(float)
                       for k in range(7)]
        time = np.concatenate([b[0] for b in blocks]) if blocks else np.empty(0)
        order = np.argsort(time, kind="stable")
        del time
        self.order = order.astype(np.int32) if self.n_rows < 2**31 else order

    def gather(self, a: int, b: int, entries: list[int]) -> dict[int, np.ndarray]:
        """Entries ``entries`` of rows ``a:b`` (in the stored order)."""
        idx = self.order[a:b]
        blk = np.searchsorted(self.offsets, idx, side="right") - 1
        present = np.flatnonzero(np.bincount(blk, minlength=len(self.blocks)))
        where = [(k, np.flatnonzero(blk == k)) for k in present] if len(present) > 1 else \
            [(k, None) for k in present]
        out = {}
        for e in entries:
            col = np.empty(len(idx), self.dtypes[e])
            for k, pos in where:
                x = self.blocks[k][e]
                local = (idx if pos is None else idx[pos]) - self.offsets[k]
                val = x[local] if isinstance(x, np.ndarray) else x
                if pos is None:
                    col[:] = val
                else:
                    col[pos] = val
            out[e] = col
        return out


def _is_identity(w: np.ndarray, n: int, chunk: int = 1 << 20) -> bool:
    """Whether ``w`` is ``0, 1, ..., n - 1`` (checked a chunk at a time)."""
    if len(w) != n:
        return False
    return all(np.array_equal(w[k:k + chunk], np.arange(k, min(k + chunk, n))) for k in range(0, n, chunk))


def _gather(x: np.ndarray, index: np.ndarray | None = None) -> Callable[[int, int], np.ndarray]:
    """Rows ``a:b`` of ``x`` (a view), or of ``x[index]`` when an index is given."""
    if index is None:
        return lambda a, b: x[a:b]
    return lambda a, b: x[index[a:b]]


def _coded(codes: Callable[[int, int], np.ndarray], cats: list[str]) -> Callable[[int, int], pd.Categorical]:
    return lambda a, b: pd.Categorical.from_codes(codes(a, b), categories=cats)


def _gini(x: np.ndarray) -> float:
    """Gini coefficient of the shares ``x`` (0: all equal; towards 1: one takes all).

    >>> _gini(np.array([0.25, 0.25, 0.25, 0.25])), round(_gini(np.array([1.0, 0, 0, 0])), 2)
    (0.0, 0.75)
    """
    x = np.sort(np.asarray(x, dtype=float))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def _watch_time(a: np.ndarray, b: np.ndarray, bins: np.ndarray, presorted: bool = False) -> np.ndarray:
    """Viewer-seconds watched before each bin edge by visits ``[a, b)`` (cumulative; ``presorted``: both sorted)."""
    if not presorted:
        a, b = np.sort(a), np.sort(b)
    ca = np.concatenate([[0.0], np.cumsum(a)])
    cb = np.concatenate([[0.0], np.cumsum(b)])
    ka = np.searchsorted(a, bins, side="right")
    kb = np.searchsorted(b, bins, side="right")
    return (ka * bins - ca[ka]) - (kb * bins - cb[kb])


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

    def hazard_traits(self, idx: np.ndarray) -> HazardTraits:
        """The hazard's traits of viewers ``idx``."""
        from fomolab.design import HazardTraits

        return HazardTraits(self.interest[idx], self.impulsiveness[idx], self.price_sensitivity[idx])
