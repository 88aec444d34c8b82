"""The product_results table: each product's views, buyers, units, revenue, sell-out and windows,
checked against the shoppers, events and windows tables it summarises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fomolab import run

from helpers import experiment, make_spec, run_tables

SALE = {"lightning_sale": {"start_s": 300.0, "end_s": 600.0, "discount": 0.3, "gain": 3.0, "quota": 30}}


def spec(**market):
    out = make_spec(
        stream={"duration_s": 1800.0, "arrivals": {"rate_per_s": 2.0}},
        lineup={
            "first": {"price": 10.0, "base_rate_per_s": 1 / 400, "stock": 60, "slot_s": [0.0, 900.0],
                      "tactics": SALE},
            "second": {"price": 20.0, "base_rate_per_s": 1 / 900, "slot_s": [900.0, 1800.0],
                       "tactics": {"countdown_timer": {"start_s": 1000.0, "deadline_s": 1100.0, "resets": True,
                                                       "until_s": 1500.0}}},
        },
        arms={"control": {}, "on": {"tactics": ["*.*"]}},
    )
    if market:
        out["market"] = market
    return out


def expected(t) -> pd.DataFrame:
    """The table recomputed from the run's other tables, one product at a time."""
    sh, ev, prods, win = t.shoppers, t.events, t.products, t.windows
    rows = []
    stream = sh["stream"] if "stream" in sh else pd.Series(0, index=sh.index)
    for _, p in prods.iterrows():
        here = sh[stream == p.stream]
        a, b = p.slot_start_s, p.slot_end_s
        overlap = np.minimum(here.departure_s, b) - np.maximum(here.arrival_s, a)
        buys = ev[(ev.kind == "purchase") & (ev["product"] == p["product"])]
        outs = ev[(ev.kind == "stock_out") & (ev["product"] == p["product"])]
        w = win[win["product"] == p["product"]]
        rows.append(dict(views=int((overlap > 0).sum()), viewer_seconds=float(overlap.clip(lower=0).sum()),
                         buyers=buys.shopper_id.nunique(), units_sold=len(buys), revenue=float(buys.value.sum()),
                         sell_out_s=float(outs.time_s.min()) if len(outs) else np.nan,
                         windows=len(w), window_s=float((w.end_s - w.start_s).sum())))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("market", [None, {"streams": 3, "stagger_s": 60.0, "switching": {"enabled": True}}],
                         ids=["one_stream", "marketplace"])
def test_each_product_row_matches_the_other_tables(market):
    tables = run_tables(spec(**(market or {})))
    for arm, t in tables.items():
        got = t.product_results
        assert list(got["product"].astype(str)) == list(t.products["product"].astype(str))
        assert (got.arm == arm).all() and (got.run_id == t.runs.run_id[0]).all()
        want = expected(t)
        for col in want:
            np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), rtol=1e-9,
                                       err_msg=f"{arm}: {col}")
        assert got.units_sold.sum() == t.runs.units_sold[0]
        assert got.revenue.sum() == pytest.approx(t.runs.revenue[0])
    on = tables["on"].product_results.set_index(tables["on"].product_results["product"].astype(str))
    assert on.loc["first", "sell_out_s"] < 900.0, "the stock must sell out in the check"
    assert on.loc["second", "windows"] >= 3, "the resetting timer must have several windows"
    assert tables["control"].product_results.windows.sum() == 0


def test_results_folders_store_and_read_the_table(tmp_path):
    res = run(experiment(spec()), tmp_path / "r", workers=1)
    table = res.table("product_results")
    assert len(table) == 2 * 2 * 3  # arms x replicates x products
    assert set(table.columns) >= {"views", "buyers", "units_sold", "revenue", "sell_out_s", "window_s"}
    assert (tmp_path / "r" / "product_results").is_dir()
