"""The timeline's counts per run come from each row's bin or grid index: those of a histogram and sorted searches per run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fomolab import figure_data, run
from fomolab.figure_data import _grid_index, _per_run

from helpers import experiment, make_spec


@pytest.mark.parametrize(("start", "stop", "points"), [(0.0, 3600.0, 361), (-2.5, 7.25, 40), (0.0, 1.0, 2)])
def test_grid_index_is_the_binary_search(start, stop, points):
    grid = np.linspace(start, stop, points)
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(start - 1, stop + 1, 20_000), grid, np.nextafter(grid, np.inf),
                        np.nextafter(grid, -np.inf), [np.nan, np.inf, -np.inf, start, stop]])
    for side in ("left", "right"):
        assert np.array_equal(_grid_index(grid, x, side), np.searchsorted(grid, x, side)), side


def test_counts_per_run_drop_the_margins():
    run = np.array([0, 0, 1, 2, 1, 0])  # run 2: no run of the table
    index = np.array([0, 3, 1, 0, -1, 2])  # -1 and 3: outside a table of 3 columns
    assert _per_run(run, index, 2, 3).tolist() == [[1, 0, 1], [0, 1, 0]]


def _reference(res, runs, events, arms, conf_level):
    """The timeline's series per run as a histogram and sorted searches of each run's rows."""
    from fomolab.stats._facts import run_facts, starting_stock, stream_ends

    T = float(max(stream_ends(res, runs).values()))
    stock0 = starting_stock(run_facts(res, runs, events))
    step = figure_data.nice_step(T, 60)
    edges = np.arange(0.0, T + step * 0.5, step)
    edges = np.append(edges, T) if edges[-1] < T else edges
    grid = np.linspace(0.0, T, 361)
    vis = res.table("shoppers", ["run_id", "arrival_s", "departure_s"])
    buy = events[(events.kind == "purchase").to_numpy()]
    out = {}
    for arm in arms:
        rates, viewers, stock = [], [], {}
        for rid in runs.run_id[runs.arm.astype(str) == arm].astype(str):
            t = buy.time_s[buy.run_id.astype(str) == rid].to_numpy()
            prod = buy["product"][buy.run_id.astype(str) == rid].astype(str).to_numpy()
            v = vis[vis.run_id.astype(str) == rid]
            rates.append(np.histogram(t, bins=edges)[0] / (np.diff(edges) / 60))
            viewers.append(np.searchsorted(np.sort(v.arrival_s.to_numpy()), grid, "right")
                           - np.searchsorted(np.sort(v.departure_s.to_numpy()), grid, "left"))
            for (r, p), s0 in stock0.items():
                if r == rid:
                    stock.setdefault(p, []).append(s0 - np.searchsorted(np.sort(t[prod == p]), grid, "right"))
        out[(arm, "purchase_rate", "")] = np.mean(rates, axis=0)
        out[(arm, "viewers", "")] = np.mean(np.asarray(viewers, float), axis=0)
        for p, vals in stock.items():
            out[(arm, "stock", p)] = np.mean(np.asarray(vals, float), axis=0)
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two arms, three replicates, a product with a stock that sells out and one without."""
    spec = make_spec(
        experiment={"replicates": 3}, stream={"duration_s": 900.0},
        lineup={"item": {"stock": 25, "base_rate_per_s": 1 / 200}, "other": {"price": 5.0, "base_rate_per_s": 1 / 600}},
        arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]}})
    spec["lineup"]["item"]["tactics"] = {"lightning_sale": {"start_s": 200.0, "end_s": 500.0, "discount": 0.3}}
    return run(experiment(spec), tmp_path_factory.mktemp("timeline") / "r", workers=1)


def test_the_timeline_is_the_per_run_histogram_and_counts(folder):
    res = folder
    runs = res.runs
    events = res.events_except(["arrive", "leave"], ["run_id", "time_s", "kind", "shopper_id", "product", "tactic"])
    arms = sorted(set(runs.arm.astype(str)))
    tab = figure_data.timeline(res, runs, events, arms, 0.95)
    ref = _reference(res, runs, events, arms, 0.95)
    got = {k: g["mean"].to_numpy() for k, g in tab.groupby(["arm", "series", "product"], sort=False)}
    assert set(got) == set(ref) and any(k[1] == "stock" for k in ref)
    for k, v in ref.items():
        assert np.array_equal(got[k], v), k
    assert isinstance(tab, pd.DataFrame)
