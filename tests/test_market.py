"""The marketplace: many streams, one audience."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fomolab import run
from fomolab.errors import SpecError
from fomolab.market import Market

from helpers import ROOT, experiment, make_spec, run_tables

SALE = {"lightning_sale": {"start_s": 300.0, "end_s": 600.0, "discount": 0.3, "gain": 3.0, "arrival_boost": 1.5}}


def market_spec(**market) -> dict:
    spec = make_spec(
        stream={"duration_s": 1800.0, "arrivals": {"rate_per_s": 3.0}},
        lineup={"item": {"stock": 400, "tactics": {**SALE, "social_proof": {"gain": 2.0}}}},
        arms={"control": {}, "tactics": {"tactics": ["item.*"]}},
    )
    if market:
        spec["market"] = market
    return spec


def test_one_stream_market_reproduces_the_single_stream_tables():
    plain = run_tables(market_spec())
    one = run_tables(market_spec(streams=1, switching={"enabled": True}))
    for arm in ("control", "tactics"):
        for name in ("shoppers", "events", "runs"):
            a, b = getattr(plain[arm], name), getattr(one[arm], name)
            # the same columns, values and order; only the run id (the spec differs) and the
            # marketplace's extra columns differ
            cols = [c for c in a.columns if c != "run_id"]
            pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=True)
        assert one[arm].streams is not None and len(one[arm].streams) == 1
        assert plain[arm].streams is None
        assert one[arm].runs.hhi_viewers.iloc[0] == 1.0


def conserved(t, duration: float) -> None:
    """Every viewer is in exactly one stream from arrival to departure, or gone."""
    sh = t.shoppers.sort_values(["shopper_id", "arrival_s"])
    g = sh.groupby("shopper_id")
    # visits of a viewer are back to back: each starts when the previous ends
    nxt_start = g.arrival_s.shift(-1)
    inner = nxt_start.notna()
    assert np.array_equal(sh.departure_s[inner].to_numpy(), nxt_start[inner].to_numpy())
    # a switch always lands on another stream
    prev = g.stream.shift(1)
    assert (sh.stream[prev.notna()] != prev[prev.notna()]).all()
    assert (sh.switched_in == prev.notna()).all()
    # at any moment, the streams' audiences add up to the marketplace's
    ev = t.events
    for moment in np.linspace(1.0, duration - 1.0, 13):
        present = ((sh.arrival_s <= moment) & (sh.departure_s > moment))
        viewers = sh.loc[present, "shopper_id"]
        assert viewers.is_unique
        arrivals = ev[(ev.kind == "arrive") & (ev.time_s <= moment)].shape[0]
        leaves = ev[(ev.kind == "leave") & (ev.time_s <= moment)].shape[0]
        assert arrivals - leaves == present.sum()
    runs = t.runs.iloc[0]
    assert runs.viewers == sh.shopper_id.nunique()
    assert t.streams.visits.sum() == len(sh)
    assert t.streams.share_viewers.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("spread", [0.0, 2.0])
def test_viewers_are_conserved(spread):
    spec = market_spec(streams=5, stagger_s=120.0, appeal_spread=spread, switching={"enabled": True, "probability": 0.4})
    for arm, t in run_tables(spec).items():
        conserved(t, 1800.0)
        if arm == "tactics":
            assert t.runs.switches.iloc[0] > 0


def test_announcement_moves_viewers_only_with_switching():
    def two(enabled: bool) -> dict:
        spec = market_spec(streams=2, stagger_s=600.0, switching={"enabled": enabled, "probability": 0.5},
                           choice={"offer_weight": 0.0})
        spec["arms"] = {"control": {}, "tactics": {"tactics": ["item.lightning_sale"]}}
        return spec

    on, off = run_tables(two(True)), run_tables(two(False))
    for t in (off["control"], off["tactics"], on["control"]):  # no switching, or no announcement
        assert t.runs.switches.iloc[0] == 0 and not t.shoppers.switched_in.any()
    sh = on["tactics"].shoppers
    moved = sh[sh.switched_in]
    assert len(moved) > 50
    # stream 0 announces its sale at 300 s, stream 1 at 900 s: the switchers go to the announcing stream, then
    assert set(moved.arrival_s.round(6)) == {300.0, 900.0}
    assert (moved[moved.arrival_s == 300.0].stream == 0).all() and (moved[moved.arrival_s == 900.0].stream == 1).all()
    s = on["tactics"].streams.set_index("stream")
    assert s.switches_in.sum() == s.switches_out.sum() == len(moved)
    # the same viewers and the same first choices in both settings (common random numbers)
    first_on = sh.sort_values("arrival_s").groupby("shopper_id").stream.first()
    first_off = off["tactics"].shoppers.set_index("shopper_id").stream
    assert (first_on.loc[first_off.index] == first_off).all()


def test_appeal_spread_concentrates_viewers():
    hosts = Market(streams=10, appeal_spread=2.0).hosts()
    assert [round(h.appeal, 3) for h in hosts] == sorted([round(h.appeal, 3) for h in hosts], reverse=True)
    assert Market(streams=10).hosts()[0].appeal == Market(streams=10).hosts()[-1].appeal == 0.0
    equal = run_tables(market_spec(streams=10))["control"].runs.iloc[0]
    stars = run_tables(market_spec(streams=10, appeal_spread=2.0))["control"].runs.iloc[0]
    assert equal.hhi_viewers == pytest.approx(0.1, abs=0.01)
    assert stars.hhi_viewers > 2 * equal.hhi_viewers and stars.gini_viewers > equal.gini_viewers + 0.3


def test_virtual_hosts_cost_and_trust():
    spec = market_spec(streams=2, virtual_hosts=1, host={"cost_per_hour": 60.0},
                       virtual_host={"kind": "virtual", "appeal": 0.0, "trust": 0.5, "cost_per_hour": 6.0})
    spec["lineup"]["item"]["stock"] = None  # no sell-out to cut purchases short
    t = run_tables(spec)["control"]
    s = t.streams.set_index("stream")
    assert list(s.host_kind) == ["human", "virtual"] and list(s.cost) == [30.0, 3.0]  # half an hour
    assert s.cost_per_sale.tolist() == pytest.approx((s.cost / s.units_sold).tolist())
    # half the trust, half the hazard: purchases per second at risk (present, not yet bought) halve
    sh = t.shoppers
    at_risk = (sh.first_purchase_s.fillna(sh.departure_s) - sh.arrival_s).groupby(sh.stream).sum()
    rate = sh.groupby("stream").purchases.sum() / at_risk
    events = sh.groupby("stream").purchases.sum()
    ratio = rate[1] / rate[0]
    se = ratio * np.sqrt(1 / events[0] + 1 / events[1])  # Poisson counts
    assert abs(ratio - 0.5) < 3 * se, (ratio, se)


def test_market_paths_validate_and_sweep():
    with pytest.raises(SpecError, match="virtual_hosts must not exceed streams"):
        experiment(market_spec(streams=2, virtual_hosts=3))
    with pytest.raises(SpecError, match=r"market\.stagger_s"):
        experiment(market_spec(streams=5, stagger_s=400.0))
    with pytest.raises(SpecError, match=r"did you mean 'market\.appeal_spread'"):
        experiment(market_spec(streams=2) | {"sweep": {"parameters": {"market.apeal_spread": [0.0, 1.0]}}})


def test_fragmentation_sweep(tmp_path):
    spec = ROOT / "experiments/fragmentation.toml"
    exp = experiment(__import__("tomllib").loads(spec.read_text()))
    assert {p.values["market.streams"] for p in exp.points} >= {1, 100}
    res = run(spec, tmp_path / "frag", replicates=1, workers=1)
    r = res.runs
    for _spread, g in r.groupby("market_appeal_spread"):
        g = g.sort_values("market_streams")
        assert g.viewers_per_stream.is_monotonic_decreasing, "viewers per stream fall as streams are added"
    by = r.pivot_table(index="market_streams", columns="market_appeal_spread", values="hhi_viewers")
    assert (by.loc[by.index > 1, 2.0] > by.loc[by.index > 1, 0.0]).all(), "superstars concentrate viewers"
    assert not res.streams.empty and not res.stream_series.empty
