"""The effect tables of ``fomolab analyze`` alone: ``changes``, ``rates``, ``ph`` and ``hr_windows``;
with ``--deadline-episodes`` also the ``deadline`` table and the episode model.

Reads a results folder as ``fomolab analyze`` does (``--slim``: only the
per-visit columns these tables read, arms as categories, for folders of tens
of millions of visits), then times the four tables
(``fomolab.analysis._effect_tables``) in-process and prints, per table, the
wall time and the peak resident memory above what the process held before
(sampled from ``/proc/self/statm`` every 2 ms) with the CPU time (the
machine is shared), and the process's own peak
(``ru_maxrss``).  ``--save DIR`` writes the tables as pickles, ``--compare
DIR`` compares them with pickles written before (exact for integers and text,
1e-8 relative for floats).

    PYTHONPATH=src python benchmarks/effect_tables.py FOLDER [--save DIR | --compare DIR] [--events-without-visits]
        [--deadline-episodes] [--slim]

Target at 2 x 10^6 visits (``benchmarks/episode_scale.py``'s 10^6 folder): a
few seconds and a few hundred MB for the four tables together.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

_PAGE = os.sysconf("SC_PAGE_SIZE")


class _Peak:
    """Peak resident memory (MB) above the start, sampled on a thread while the block runs."""

    def __enter__(self) -> _Peak:
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        self.t0 = time.perf_counter()
        self.c0 = time.process_time()
        return self

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE

    def _watch(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.c0
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())
        self.mb = (self.peak - self.base) / 2**20


def inputs(folder: Path, events_without_visits: bool = False, slim: bool = False) -> dict:
    """What ``analyze`` hands ``_effect_tables``, read the same way (``slim``: the columns they read)."""
    from fomolab.analysis import _stream_end, visit_outcomes
    from fomolab.stats import _folder
    from fomolab.stats.compare import time_to_purchase

    res = _folder.as_results(folder)
    runs = _folder.nonempty_runs(res)
    if slim:
        sh = res.viewers(["run_id", "arm", "replicate", "point", "shopper_id", "arrival_s", "departure_s",
                          "first_purchase_s"])
        fp = sh.first_purchase_s.to_numpy(float)
        sh["time_s"] = np.where(np.isnan(fp), sh.departure_s.to_numpy(float), fp) - sh.arrival_s.to_numpy(float)
        sh["bought"] = (~np.isnan(fp)).astype(np.int8)
        del fp
        r = runs.assign(arm=runs.arm.astype(str))
        return dict(res=res, runs=r, raw_runs=runs, sh=sh, conf_level=0.95, control=res.manifest.get("control"),
                    events=res.events_except(["arrive", "leave"], ["run_id", "time_s", "kind", "shopper_id",
                                                                   "product", "tactic"]),
                    order=[a for a in _folder.arm_order(res.manifest, r.arm, control_first=False)
                           if a in set(res.manifest.get("arms", []))], end_s=_stream_end(res, r))
    shoppers = res.viewers(["run_id", "arm", "replicate", "point", "shopper_id", "segment", "impulsiveness",
                            "arrival_s", "departure_s", "first_purchase_s"])
    events = res.table("events", ["run_id", "time_s", "kind", "shopper_id", "product", "tactic"])
    if events_without_visits:
        events = events[~events.kind.isin(["arrive", "leave"])].reset_index(drop=True)
    control = res.manifest.get("control", "control")
    sh = time_to_purchase(shoppers)
    sh = sh.assign(arm=sh.arm.astype(str))
    r = runs.assign(arm=runs.arm.astype(str))
    spec_arms = set(res.manifest.get("arms", []))
    order = [a for a in _folder.arm_order(res.manifest, r.arm, control_first=False) if a in spec_arms]
    end_s = _stream_end(res, r)
    sh = visit_outcomes(sh, end_s)
    return dict(res=res, runs=r, raw_runs=runs, sh=sh, events=events, order=order, control=control, end_s=end_s,
                conf_level=0.95)


def timed_deadline_episodes(a: dict) -> tuple[dict[str, pd.DataFrame | None], dict[str, tuple[float, float, float]]]:
    """``analyze``'s deadline table and episode model (on the visits in memory), timed as the others."""
    from fomolab.analysis import _episode_model
    from fomolab.stats.compare import deadline_tables

    cost, tables = {}, {}
    with _Peak() as m:
        tables["deadline"] = deadline_tables(a["res"], a["raw_runs"], a["sh"], a["events"], 0.1)
    cost["deadline"] = (m.seconds, m.cpu, m.mb)
    with _Peak() as m:
        try:
            tables["episode_model"] = _episode_model(a["res"], a["conf_level"], a["sh"])
        except TypeError:  # a fomolab before 0.2, whose episode model read each run's file twice
            tables["episode_model"] = _episode_model(a["res"], a["conf_level"])
    cost["episode_model (visits in memory)"] = (m.seconds, m.cpu, m.mb)
    return tables, cost


def timed_tables(a: dict) -> tuple[dict[str, pd.DataFrame | None], dict[str, tuple[float, float, float]]]:
    """The four tables and, per table, (wall seconds, CPU seconds, peak MB above the start)."""
    from fomolab import figure_data
    from fomolab.analysis import _effect_tables
    from fomolab.stats._facts import run_facts
    from fomolab.stats.changes import change_table
    from fomolab.stats.ph import ph_table, window_edges, window_table
    from fomolab.stats.rates import rate_table

    res, runs, sh, events = a["res"], a["runs"], a["sh"], a["events"]
    order, control, level = a["order"], a["control"], a["conf_level"]
    cost = {}
    with _Peak() as m:
        tables = dict(zip(("changes", "rates", "ph", "hr_windows"),
                          _effect_tables(res, runs, sh, events, order, control, a["end_s"], level), strict=True))
    cost["all four (_effect_tables)"] = (m.seconds, m.cpu, m.mb)
    if len(order) < 2:
        return tables, cost
    with _Peak() as m:
        change_table(runs, order, control, level)
    cost["changes"] = (m.seconds, m.cpu, m.mb)
    with _Peak() as m:
        facts = run_facts(res, runs, events)
        rate_table(sh, events, facts.products, runs, facts.tactics, order, control, level)  # reads its columns
    cost["rates (with the run facts)"] = (m.seconds, m.cpu, m.mb)
    with _Peak() as m:
        ph_table(sh, order, control, level)
    cost["ph"] = (m.seconds, m.cpu, m.mb)
    with _Peak() as m:
        edges = window_edges(figure_data.windows(events, runs), max(a["end_s"].values()))
        window_table(sh, order, control, edges, level)
    cost["hr_windows (with the edges)"] = (m.seconds, m.cpu, m.mb)
    return tables, cost


def same(old: pd.DataFrame | None, new: pd.DataFrame | None, rtol: float = 1e-8) -> list[str]:
    """Where two tables differ: exact for non-floats, ``rtol`` relative for floats (NaN equals NaN)."""
    if old is None or new is None:
        return [] if old is None and new is None else ["one table is None"]
    if list(old.columns) != list(new.columns) or len(old) != len(new):
        return [f"shape/columns {old.shape} {list(old.columns)} vs {new.shape} {list(new.columns)}"]
    out = []
    for c in old.columns:
        x, y = old[c].reset_index(drop=True), new[c].reset_index(drop=True)
        if x.dtype.kind == "f" or y.dtype.kind == "f":
            xf, yf = x.to_numpy(float), y.to_numpy(float)
            bad = ~((np.isnan(xf) & np.isnan(yf)) | np.isclose(xf, yf, rtol=rtol, atol=0))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                rel = np.nanmax(np.abs(xf[bad] / yf[bad] - 1)) if (yf[bad] != 0).all() else np.inf
                out.append(f"{c}: {int(bad.sum())} rows differ, e.g. row {i}: {xf[i]!r} vs {yf[i]!r} "
                           f"(max rel {rel:.2e})")
        elif not x.equals(y):
            i = int(np.flatnonzero((x != y).to_numpy())[0])
            out.append(f"{c}: row {i}: {x[i]!r} vs {y[i]!r}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description="time and peak memory of analyze's four effect tables")
    p.add_argument("folder", type=Path)
    p.add_argument("--save", type=Path, help="write the tables as pickles here")
    p.add_argument("--compare", type=Path, help="compare the tables with pickles written before")
    p.add_argument("--events-without-visits", action="store_true",
                   help="hand the tables the events without their arrive/leave rows")
    p.add_argument("--deadline-episodes", action="store_true",
                   help="time the deadline table and the episode model first, then the four")
    p.add_argument("--slim", action="store_true", help="read only the per-visit columns these tables read")
    args = p.parse_args()
    t0 = time.perf_counter()
    a = inputs(args.folder, args.events_without_visits, args.slim)
    frame = a["sh"].memory_usage(deep=False).sum() / 2**20
    print(f"{args.folder}: {len(a['sh']):,} visits ({frame:,.0f} MB), {len(a['events']):,} events, "
          f"{len(a['runs'])} runs; read in {time.perf_counter() - t0:.1f} s")
    tables, cost = timed_deadline_episodes(a) if args.deadline_episodes else ({}, {})
    more, cost4 = timed_tables(a)
    tables.update(more)
    cost.update(cost4)
    if args.deadline_episodes:
        three = ["deadline", "episode_model (visits in memory)", "all four (_effect_tables)"]
        cpu = sum(cost[k][1] for k in three)
        print(f"  the three (deadline, effect tables, episode model): {sum(cost[k][0] for k in three):.1f} s, "
              f"{cpu:.1f} s CPU = {cpu / len(a['sh']) * 1e6:.2f} us CPU per visit")
    for name, (s, cpu, mb) in cost.items():
        print(f"  {name:<28} {s:7.2f} s ({cpu:6.2f} s CPU)   peak +{mb:7.0f} MB")
    print(f"  process peak (ru_maxrss)     {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:7.0f} MB")
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for k, t in tables.items():
            pd.to_pickle(t, args.save / f"{k}.pkl")
    if args.compare:
        bad = False
        for k, t in tables.items():
            diff = same(pd.read_pickle(args.compare / f"{k}.pkl"), t)
            bad |= bool(diff)
            print(f"  {k}: {'same' if not diff else 'DIFFERENT'}" + "".join(f"\n    {d}" for d in diff))
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
