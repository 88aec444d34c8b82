"""A results folder's stored facts: products, tactics and windows of each run.

Each run stores them as tables (``docs/schema.md``): ``products`` (slot, price,
stock), ``tactics`` (each tactic switched on, its resolved fields as JSON) and
``windows`` (each tactic window as it ran).  The statistics read these and
never re-parse the spec.  Folders written before these tables existed get the
same facts derived once, from the spec in ``manifest.json`` and the events.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fomolab.stats import _folder
from fomolab.tactics import Tactic

if TYPE_CHECKING:
    from fomolab.results import Results

__all__ = ["Facts", "read", "run_facts", "stored_windows", "stream_ends", "starting_stock"]


@dataclass(frozen=True)
class Facts:
    """The stored facts of some runs (one DataFrame each, with ``run_id`` as str)."""

    products: pd.DataFrame
    tactics: pd.DataFrame
    windows: pd.DataFrame

    def lineup(self, run_id: str, stream: int = 0) -> list[tuple[str, tuple[float, float], list[Tactic]]]:
        """The run's products on ``stream``: ``(name, slot, [tactic objects])`` in lineup order."""
        from fomolab.tactics import KINDS

        p = self.products[(self.products.run_id == run_id) & (self.products.stream == stream)]
        t = self.tactics[self.tactics.run_id == run_id]
        out = []
        for name, a, b in zip(p["product"], p.slot_start_s, p.slot_end_s, strict=True):
            mine = t[t["product"] == name]
            tactics = [KINDS[k].model_validate(json.loads(c)) for k, c in zip(mine.tactic, mine.config, strict=True)]
            out.append((name, (float(a), float(b)), tactics))
        return out


#: Each Results object's fact tables as read (small: rows per run, not per visit).  An analysis asks
#: for them several times (deadline shares, rates, timeline, episode model); one read of each suffices,
#: for a Results object's runs are fixed once it has read them.
_READ: weakref.WeakKeyDictionary[Results, dict[str, pd.DataFrame]] = weakref.WeakKeyDictionary()


def read(res: Results, name: str) -> pd.DataFrame:
    """The whole ``products``, ``tactics`` or ``windows`` table of ``res``, read once per Results object.

    The frame is shared between callers: take columns or rows of it, never change it in place.
    """
    memo = _READ.setdefault(res, {})
    if name not in memo:
        memo[name] = res.table(name)
    return memo[name]


def _stored(res: Results) -> set[str]:
    """The runs of the folder that stored their facts (an older fomolab's runs did not)."""
    if not (res.path / "products").is_dir():
        return set()
    p = read(res, "products")
    return set(p.run_id.astype(str)) if "run_id" in p.columns else set()


def _tidy_windows(w: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"run_id": w.run_id.astype(str).to_numpy(), "product": w["product"].astype(str).to_numpy(),
                         "tactic": w.tactic.astype(str).to_numpy(), "start_s": w.start_s.to_numpy(float),
                         "end_s": w.end_s.to_numpy(float)})


def _of_runs(run_id: pd.Series, ids: set[str]) -> np.ndarray:
    """Whether each row's run (as text) is one of ``ids``: a categorical by its categories, not a string per row."""
    if isinstance(run_id.dtype, pd.CategoricalDtype):
        hit = np.array([str(c) in ids for c in run_id.cat.categories] + [False])
        return np.asarray(hit[run_id.cat.codes.to_numpy()])  # a missing run (code -1) reads the last entry
    return np.asarray(run_id.astype(str).isin(ids).to_numpy())


def stored_windows(res: Results, events: pd.DataFrame) -> pd.DataFrame:
    """Tactic windows (``run_id, product, tactic, start_s, end_s``), ordered by run id, product,
    tactic and start: as stored, or rebuilt from the events for runs that did not store them."""
    stored = _stored(res)
    parts = []
    if stored:
        parts.append(_tidy_windows(read(res, "windows")))
    rest = events[~_of_runs(events.run_id, stored)] if stored else events
    if len(rest):
        w = _folder.windows(rest)
        parts.append(_tidy_windows(w[w.tactic != "slot"]))
    if not parts:
        return pd.DataFrame(columns=["run_id", "product", "tactic", "start_s", "end_s"])
    w = pd.concat(parts, ignore_index=True)
    return w.sort_values(["run_id", "product", "tactic", "start_s"], kind="stable").reset_index(drop=True)


def run_facts(res: Results, runs: pd.DataFrame, events: pd.DataFrame) -> Facts:
    """The facts of ``runs``: stored, or derived once from the manifest's spec for runs of an older
    fomolab (a folder may hold both)."""
    ids = set(runs.run_id.astype(str))
    win = stored_windows(res, events)
    win = win[win.run_id.isin(ids)]
    stored = _stored(res)
    prods, tacs = [], []
    if stored & ids:
        prods.append(read(res, "products"))
        tacs.append(read(res, "tactics"))
    older = runs[~runs.run_id.astype(str).isin(stored)]
    if len(older):
        p, t = _derived(res, older)
        prods.append(p)
        tacs.append(t)
    prod = pd.concat([x.assign(run_id=x.run_id.astype(str), product=x["product"].astype(str)) for x in prods],
                     ignore_index=True)
    tac = pd.concat([x.assign(run_id=x.run_id.astype(str), product=x["product"].astype(str),
                              tactic=x.tactic.astype(str)) for x in tacs], ignore_index=True)
    return Facts(prod[prod.run_id.isin(ids)], tac[tac.run_id.isin(ids)], win)


def _derived(res: Results, runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``products`` and ``tactics`` of an older folder's runs, from its spec."""
    from fomolab.market import streams_of

    scen = _folder.run_scenarios(res, runs)
    prows, trows = [], []
    for rid, sc in scen.items():
        T = sc.stream.duration_s
        streams = streams_of(sc.lineup, sc.market, T)
        for s in streams:
            for name, prod in s.lineup.items():
                pname = name if s.index == 0 else f"{name}@{s.index}"
                a, b = prod.slot(T)
                prows.append(dict(run_id=rid, stream=s.index, product=pname, stock=prod.stock, slot_start_s=a,
                                  slot_end_s=b))
                for kind, tac in prod.tactics.items():
                    trows.append(dict(run_id=rid, product=pname, tactic=kind,
                                      config=json.dumps(tac.model_dump(mode="json"), sort_keys=True)))
    cols = ["run_id", "product", "tactic", "config"]
    return pd.DataFrame(prows), pd.DataFrame(trows, columns=cols)


def stream_ends(res: Results, runs: pd.DataFrame) -> dict[str, float]:
    """Each run's stream end (s): the runs table's ``duration_s``, or the recorded spec for the runs
    of an older fomolab, which did not store it."""
    ids = runs.run_id.astype(str).tolist()
    if "duration_s" in runs.columns and runs.duration_s.notna().all():
        return dict(zip(ids, runs.duration_s.astype(float), strict=True))
    scen = _folder.run_scenarios(res, runs)
    return {rid: float(scen[rid].stream.duration_s) for rid in ids}


def starting_stock(facts: Facts) -> dict[tuple[str, str], int]:
    """Units in stock at the start, ``(run_id, product)`` -> units, for products of stream 0 with a finite stock."""
    p = facts.products
    p = p[(p.stream == 0) & p.stock.notna()]
    return {(r, name): int(s) for r, name, s in zip(p.run_id, p["product"], p.stock, strict=True)}
