"""The glue between the engine, the tables and the summaries, checked by value.

Each test recomputes a figure independently from the raw tables (read with
pandas from the Parquet files, not through fomolab's readers) or from the model's
formula, and compares it with what fomolab reports: the sale quota, the run
metrics and headline, the marketplace's per-viewer aggregation and per-minute
series, deadline exposure, switching probabilities and the number of workers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

import fomolab
from fomolab.analysis import analyze
from fomolab.design import expand
from fomolab.executor import VISITS_PER_WORKER, auto_workers, default_workers
from fomolab.lineup import Product
from fomolab.market import Market, streams_of, visits

from helpers import experiment, make_spec, run_tables

# ---------------------------------------------------------------- the sale quota

PRICE, DISCOUNT, QUOTA, SALE = 20.0, 0.25, 30, (60.0, 600.0)


def _quota_spec(stock: int | None, quota: int | None = QUOTA) -> dict:
    sale = {"start_s": SALE[0], "end_s": SALE[1], "discount": DISCOUNT, "gain": 3.0}
    if quota is not None:
        sale["quota"] = quota
    item = {"price": PRICE, "base_rate_per_s": 2e-3, "tactics": {"lightning_sale": sale}}
    if stock is not None:
        item["stock"] = stock
    return make_spec(experiment={"replicates": 1}, stream={"duration_s": 900.0, "arrivals": {"rate_per_s": 2.0}},
                     lineup={"item": item}, arms={"control": {"tactics": ["item.lightning_sale"]}})


@pytest.mark.parametrize("stock", [5000, None], ids=["stock above demand", "unlimited stock"])
def test_sale_sells_exactly_its_quota_at_the_sale_price(stock):
    """An early sale whose demand exceeds its quota, with stock to spare: the quota, not the stock, binds."""
    free = run_tables(_quota_spec(stock, quota=None))["control"].events
    free_buys = free[free.kind == "purchase"]
    in_sale = free_buys[(free_buys.time_s >= SALE[0]) & (free_buys.time_s < SALE[1])]
    assert len(in_sale) > 3 * QUOTA, "the sale's demand must exceed its quota for the quota to bind"
    tables = run_tables(_quota_spec(stock))["control"]
    ev = tables.events
    buys = ev[ev.kind == "purchase"].sort_values("time_s", kind="stable")
    assert stock is None or len(buys) < stock, "stock must never bind"
    assert not (ev.kind == "stock_out").any()
    discounted = buys[np.isclose(buys.value, PRICE * (1 - DISCOUNT))]
    full = buys[np.isclose(buys.value, PRICE)]
    assert len(discounted) + len(full) == len(buys)
    assert len(discounted) == QUOTA, f"the sale sold {len(discounted)} units at its price, quota {QUOTA}"
    end = ev[(ev.kind == "tactic_end") & (ev.tactic == "lightning_sale")]
    assert len(end) == 1 and end.value.iloc[0] == QUOTA
    t_end = end.time_s.iloc[0]
    assert SALE[0] <= discounted.time_s.min() and discounted.time_s.max() == t_end < SALE[1]
    assert (full[full.time_s >= SALE[0]].time_s >= t_end).all(), "no full-price purchase while the sale runs"
    assert len(full[(full.time_s > t_end) & (full.time_s < SALE[1])]) > 0, "purchases go on at the list price"
    assert tables.runs.revenue.iloc[0] == pytest.approx(buys.value.sum(), rel=1e-12)


# ------------------------------------------- run metrics, summary and headline


@pytest.fixture(scope="module")
def sale_results(tmp_path_factory):
    spec = make_spec(
        experiment={"replicates": 3},
        stream={"duration_s": 900.0, "arrivals": {"rate_per_s": 1.0}},
        population={"segments": {"all": {"price_sensitivity": 1.0, "valuation": {"mean": 1.0, "cv": 0.5}}}},
        lineup={"item": {"price": 10.0, "base_rate_per_s": 2e-3, "tactics": {"lightning_sale": {
            "start_s": 200.0, "end_s": 500.0, "discount": 0.3, "gain": 3.0, "arrival_boost": 1.5}}},
            "extra": {"price": 4.0, "base_rate_per_s": 1e-3, "stock": 60}},
        arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]}})
    out = tmp_path_factory.mktemp("glue") / "sale"
    return fomolab.run(experiment(spec), out)


def _raw(res, table: str) -> pd.DataFrame:
    """A table read straight from its Parquet files, categories as plain values."""
    df = pd.read_parquet(res.path / table)
    return df.astype(dict.fromkeys(df.select_dtypes("category").columns, object))


def test_run_metrics_match_the_shoppers_and_events(sale_results):
    sh, ev = _raw(sale_results, "shoppers"), _raw(sale_results, "events")
    runs = _raw(sale_results, "runs").set_index("run_id")
    assert len(runs) == 6
    for rid, g in sh.groupby("run_id", observed=True):
        r = runs.loc[rid]
        buys = ev[(ev.run_id == rid) & (ev.kind == "purchase")]
        bought = g.first_purchase_s.notna()
        assert r.viewers == len(g) and r.boosted_viewers == int(g.boosted.sum())
        assert r.buyers == int(bought.sum())
        assert r.conversion == pytest.approx(bought.sum() / len(g), rel=1e-12)
        assert r.units_sold == len(buys) == int(g.purchases.sum())
        assert r.revenue == pytest.approx(buys.value.sum(), rel=1e-12)
        assert r.consumer_surplus == pytest.approx(g.surplus.sum(), rel=1e-12)
        assert r.regretted_purchases == int(g.regretted.sum())
        ttp = (g.first_purchase_s - g.arrival_s)[bought]
        assert r.median_time_to_purchase_s == pytest.approx(float(np.median(ttp)), rel=1e-12)


def test_summary_is_pooled_over_runs(sale_results):
    sh, runs = _raw(sale_results, "shoppers"), _raw(sale_results, "runs")
    summary = sale_results.summary()
    assert list(summary.index) == ["control", "sale"]
    for arm, g in sh.groupby("arm", observed=True):
        row = summary.loc[arm]
        per_run = g.groupby("run_id", observed=True).size()
        assert len(per_run) == 3 and per_run.nunique() > 1, "runs must differ in viewers for pooling to matter"
        assert row.runs == 3
        assert row.viewers_per_run == pytest.approx(per_run.mean(), rel=1e-12)
        assert row.buyers_per_run == pytest.approx(g.first_purchase_s.notna().sum() / 3, rel=1e-12)
        assert row.conversion == pytest.approx(g.first_purchase_s.notna().mean(), rel=1e-12)
        ttp = (g.first_purchase_s - g.arrival_s).dropna()
        assert row.median_time_to_purchase_s == pytest.approx(float(np.median(ttp)), rel=1e-12)
        r = runs[runs.arm == arm]
        assert row.units_per_run == pytest.approx(g.purchases.sum() / 3, rel=1e-12)
        assert row.revenue_per_run == pytest.approx(g.spend.sum() / 3, rel=1e-12)
        assert len(r) == 3


def test_headline_values_match_an_independent_computation(sale_results):
    from lifelines import KaplanMeierFitter

    sh = _raw(sale_results, "shoppers")
    head = analyze(sale_results).headline.set_index("arm")
    assert list(head.index) == ["control", "sale"]
    for arm, g in sh.groupby("arm", observed=True):
        row = head.loc[arm]
        bought = g.first_purchase_s.notna()
        assert row.runs == 3 and row.viewers == len(g) and row.buyers == int(bought.sum())
        assert row.conversion == pytest.approx(bought.sum() / len(g), rel=1e-12)
        time = np.where(bought, g.first_purchase_s, g.departure_s) - g.arrival_s
        assert row.median_buyers_s == pytest.approx(float(np.median(time[bought])), rel=1e-12)
        km = KaplanMeierFitter().fit(time, bought.astype(int))
        assert row.median_s == pytest.approx(km.median_survival_time_, rel=1e-9)
    assert head.loc["control", "hazard_ratio"] == 1.0 and head.loc["sale", "hazard_ratio"] > 1.0


# ------------------------------------------------------------------ marketplace


def _market_spec(**market) -> dict:
    sale = {"start_s": 100.0, "end_s": 300.0, "discount": 0.3, "gain": 3.0}
    return make_spec(
        experiment={"replicates": 2}, stream={"duration_s": 930.0, "arrivals": {"rate_per_s": 2.0}},
        lineup={"item": {"price": 10.0, "base_rate_per_s": 3e-3, "tactics": {"lightning_sale": sale}},
                "other": {"price": 6.0, "base_rate_per_s": 3e-3,
                          "tactics": {"exclusive_code": {"announce_s": 400.0, "expires_s": 600.0, "gain": 2.0}}}},
        market={"streams": 3, "stagger_s": 120.0, "appeal_spread": 0.5,
                "switching": {"enabled": True, "probability": 0.6}, **market},
        arms={"control": {"tactics": ["item.lightning_sale", "other.exclusive_code"]}})


@pytest.fixture(scope="module")
def market_results(tmp_path_factory):
    return fomolab.run(experiment(_market_spec()), tmp_path_factory.mktemp("glue") / "market")


def test_marketplace_viewers_combine_visits(market_results):
    """One row per viewer: first arrival, last departure, the earliest purchase, sums of counts and money."""
    sh = _raw(market_results, "shoppers")
    g = sh.groupby(["run_id", "shopper_id"])
    expect = pd.DataFrame({"arrival_s": g.arrival_s.min(), "departure_s": g.departure_s.max(),
                           "first_purchase_s": g.first_purchase_s.min(), "purchases": g.purchases.sum(),
                           "spend": g.spend.sum(), "stream": g.stream.first(), "visits": g.size(),
                           "buying_visits": g.first_purchase_s.count(),
                           "latest_purchase_s": g.first_purchase_s.max()})
    both = expect[(expect.buying_visits >= 2) & (expect.latest_purchase_s > expect.first_purchase_s)]
    assert len(both) >= 5, "some viewers must buy in two visits, or min and max over visits agree"
    got = market_results.viewers().astype({"run_id": str}).set_index(["run_id", "shopper_id"])
    assert len(got) == len(expect) < len(sh)
    got = got.loc[expect.index]
    for col in ("arrival_s", "departure_s", "first_purchase_s", "spend"):
        np.testing.assert_allclose(got[col].to_numpy(float), expect[col].to_numpy(float), rtol=1e-12, err_msg=col)
    assert (got.purchases.to_numpy() == expect.purchases.to_numpy()).all()
    assert (got.stream.to_numpy() == expect.stream.to_numpy()).all()


def test_stream_series_viewers_are_watch_time_over_bin_width(market_results):
    """Mean viewers per minute = viewer-seconds in the minute / its width; the last minute ends at 930 s."""
    sh, ev, series = (_raw(market_results, t) for t in ("shoppers", "events", "stream_series"))
    T = 930.0
    edges = np.append(np.arange(0.0, T, 60.0), T)
    width = np.diff(edges)
    assert width[-1] == 30.0
    buys = ev[ev.kind == "purchase"]
    checked = 0
    for (rid, s), got in series.groupby(["run_id", "stream"]):
        got = got.sort_values("time_s")
        np.testing.assert_array_equal(got.time_s.to_numpy(), edges[:-1])
        vis = sh[(sh.run_id == rid) & (sh.stream == s)]
        a, b = vis.arrival_s.to_numpy()[:, None], vis.departure_s.to_numpy()[:, None]
        seconds = np.clip(np.minimum(b, edges[1:]) - np.maximum(a, edges[:-1]), 0, None).sum(axis=0)
        np.testing.assert_allclose(got.viewers.to_numpy(), seconds / width, rtol=1e-9, atol=1e-9)
        p = buys[(buys.run_id == rid) & (buys.stream == s)]
        k = np.minimum((p.time_s.to_numpy() // 60).astype(int), len(width) - 1)
        np.testing.assert_array_equal(got.purchases.to_numpy(), np.bincount(k, minlength=len(width)))
        np.testing.assert_allclose(got.revenue.to_numpy(),
                                   np.bincount(k, weights=p.value.to_numpy(), minlength=len(width)), rtol=1e-12)
        checked += 1
    assert checked == 6 and series.viewers.max() > 10


def test_switching_probability_depends_on_utilities():
    """At an announcement, a viewer on stream c moves to the announcing stream s with probability
    ``probability / (1 + exp(U_c - U_s))`` (``U``: the logit utilities of docs/MODEL.md)."""
    T, n, prob = 1000.0, 60_000, 0.5
    sale = {"start_s": 100.0, "end_s": 400.0, "discount": 0.2, "gain": 1.0}
    lineup = {"item": Product(price=10.0, base_rate_per_s=1e-3, tactics={"lightning_sale": sale})}
    market = Market(streams=3, stagger_s=200.0, appeal_spread=1.0,
                    choice={"appeal_weight": 1.0, "offer_weight": 0.5},
                    switching={"enabled": True, "probability": prob})
    streams = streams_of(lineup, market, T)
    appeal = np.array([s.host.appeal for s in streams])
    assert appeal[0] > appeal[1] > appeal[2]
    rng = np.random.default_rng(20261201)
    arrival = np.sort(rng.uniform(0.0, 50.0, n))
    vis = visits(streams, market, arrival, np.full(n, T), None, rng.random(n), np.random.default_rng(7), T)
    # The first announcement: stream 0's sale at 100 s (the other streams' offers start later).
    tau, target = 100.0, 0
    before = pd.DataFrame({"viewer": vis.viewer, "stream": vis.stream, "start": vis.start_s, "end": vis.end_s})
    on_at_tau = before[(before.start < tau) & (before.end >= tau)]
    left = on_at_tau[on_at_tau.end == tau]
    utility = 1.0 * appeal + 0.5 * np.array([1.0, 0.0, 0.0])  # stream 0 makes an offer at tau
    shares, ses = {}, {}
    for c in (1, 2):
        at_risk = on_at_tau[on_at_tau.stream == c]
        moved = int((left.stream == c).sum())
        p = prob / (1.0 + np.exp(utility[c] - utility[target]))
        se = np.sqrt(p * (1 - p) / len(at_risk))
        assert len(at_risk) > 4000
        assert abs(moved / len(at_risk) - p) < 4 * se, (c, moved / len(at_risk), p)
        shares[c], ses[c] = moved / len(at_risk), se
    assert shares[2] - shares[1] > 4 * np.hypot(ses[1], ses[2]), "a less appealing stream loses more viewers"


# ------------------------------------------------------------------- deadline exposure


def test_deadline_expected_share_is_exposure_at_risk(tmp_path):
    """Expected share of purchases in the sale's last 10 % = viewer-seconds at risk (present, not yet
    bought) in it / in the whole window; arrivals surge late, so it is far from 10 %."""
    spec = make_spec(
        experiment={"replicates": 2},
        stream={"duration_s": 900.0},
        population={"segments": {"all": {"dwell": {"mean_s": 200.0}}}},
        lineup={"item": {"price": 10.0, "base_rate_per_s": 4e-3,
                         "tactics": {"lightning_sale": {"start_s": 300.0, "end_s": 600.0, "gain": 3.0}}}},
        arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]}})
    spec = _with_arrivals(spec, schedule=[{"start_s": 0.0, "rate_per_s": 0.3}, {"start_s": 520.0, "rate_per_s": 3.0}])
    res = fomolab.run(experiment(spec), tmp_path / "d")
    sh, ev = _raw(res, "shoppers"), _raw(res, "events")
    ws, we, last = 300.0, 600.0, 0.1
    cut = we - last * (we - ws)
    sale_runs = set(sh[sh.arm == "sale"].run_id)
    n_all = n_last = 0
    weighted = weighted_no_cut = variance = 0.0
    for rid in sale_runs:
        g = sh[sh.run_id == rid]
        a, d, fp = g.arrival_s.to_numpy(), g.departure_s.to_numpy(), g.first_purchase_s.to_numpy()
        stop = np.where(np.isnan(fp), d, np.minimum(d, fp))
        e_all = np.clip(np.minimum(stop, we) - np.maximum(a, ws), 0, None).sum()
        e_last = np.clip(np.minimum(stop, we) - np.maximum(a, cut), 0, None).sum()
        no_cut = (np.clip(np.minimum(d, we) - np.maximum(a, cut), 0, None).sum()
                  / np.clip(np.minimum(d, we) - np.maximum(a, ws), 0, None).sum())
        t = ev[(ev.run_id == rid) & (ev.kind == "purchase")].time_s
        n = int(((t >= ws) & (t <= we)).sum())
        n_all += n
        n_last += int(((t >= cut) & (t <= we)).sum())
        weighted += n * e_last / e_all
        variance += n * e_last / e_all * (1 - e_last / e_all)
        weighted_no_cut += n * no_cut
    expected = weighted / n_all
    row = analyze(res).deadline.query("arm == 'sale' and tactic == 'lightning_sale'").iloc[0]
    assert row.purchases == n_all and row.in_last == n_last and row.windows == 2
    assert row.expected_share == pytest.approx(expected, rel=1e-9)
    assert expected > 2 * last, "late arrivals must make exposure matter"
    assert abs(weighted_no_cut / n_all - expected) > 0.002, "buyers must leave the risk set"
    z = (n_last - weighted) / np.sqrt(variance)  # pooled windows with their own expected shares
    assert row.p == pytest.approx(2 * st.norm.sf(abs(z)), rel=1e-9)


# --------------------------------------------------------------------- workers


def _with_arrivals(spec: dict, **arrivals) -> dict:
    spec["stream"]["arrivals"] = arrivals
    return spec


def _runs(rate: float, duration: float = 3600.0, replicates: int = 1) -> list:
    spec = make_spec(experiment={"replicates": replicates}, stream={"duration_s": duration})
    schedule = [{"start_s": 0.0, "rate_per_s": rate}, {"start_s": duration / 2, "rate_per_s": 2 * rate}]
    return expand(experiment(_with_arrivals(spec, schedule=schedule)))


def test_auto_workers_pays_for_each_worker():
    """One worker per VISITS_PER_WORKER expected visits (rate integrated over the stream), within the cap."""
    per_run = 100.0 * 1800 + 200.0 * 1800  # 540,000 expected visits
    assert auto_workers(_runs(100.0)) == min(default_workers(), int(per_run // VISITS_PER_WORKER))
    assert auto_workers(_runs(100.0), cap=16) == 2
    assert auto_workers(_runs(100.0, replicates=3), cap=16) == int(3 * per_run // VISITS_PER_WORKER) == 6
    assert auto_workers(_runs(100.0, replicates=3), cap=4) == 4
    assert auto_workers(_runs(1.0, replicates=5), cap=16) == 1, "small work runs serially"
    assert auto_workers([], cap=16) == 1


def test_small_experiment_runs_serially_by_default(tmp_path):
    res = fomolab.run(experiment(make_spec()), tmp_path / "w", workers=None)
    assert res.manifest["invocations"][-1]["workers"] == 1
