"""The grounded shopper: the timer's deferral (formerly procrastination), a sale's sell-out,
the valuation gate, perceived and experienced value, budgets and multi-unit demand, returns."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

from fomolab.design import expand
from fomolab.engine import simulate
from fomolab.errors import DeprecatedKeyWarning, SpecError

from helpers import experiment, make_spec, run_tables

TIMER = {"start_s": 200.0, "deadline_s": 800.0, "gain": 3.0, "urgency": "hyperbolic", "kappa_per_s": 0.02}


def _timer_spec(**timer):
    return make_spec(lineup={"item": {"tactics": {"countdown_timer": {**TIMER, **timer}}}},
                     arms={"control": {}, "timer": {"tactics": ["item.countdown_timer"]}})


def test_deferral_is_read_under_its_former_name_with_the_same_meaning():
    with pytest.warns(DeprecatedKeyWarning, match="deferral"):
        old = experiment(_timer_spec(procrastination=0.6))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecatedKeyWarning)  # the new key warns of nothing
        new = experiment(_timer_spec(deferral=0.6))
    a, b = ({r.arm: r for r in expand(e, range(1))} for e in (old, new))
    assert a["timer"].scenario.lineup["item"].tactics.countdown_timer.deferral == 0.6
    assert a["timer"].run_id == b["timer"].run_id  # the same run: same identity, same tables
    ta, tb = simulate(a["timer"]), simulate(b["timer"])
    pd.testing.assert_frame_equal(ta.shoppers, tb.shoppers)
    # and it does something: purchases move towards the deadline
    plain = simulate(next(r for r in expand(experiment(_timer_spec()), range(1)) if r.arm == "timer"))
    early = lambda t: (t.shoppers.first_purchase_s.between(200, 500)).sum()  # noqa: E731
    assert early(ta) < early(plain)


def test_deferral_and_its_former_name_together_are_refused():
    with pytest.warns(DeprecatedKeyWarning), pytest.raises(SpecError, match="procrastination"):
        experiment(_timer_spec(procrastination=0.6, deferral=0.6))


def test_after_a_quota_sells_out_the_boost_runs_on_and_the_timer_still_counts_down():
    """Documented behaviour (docs/MODEL.md, "Sell-out"): a quota ends the sale's price and factor,
    not its announced window: the arrival boost runs to ``end_s`` and a timer counting
    down the sale keeps raising hazards, at the list price, until its deadline."""
    sale = {"start_s": 100.0, "end_s": 900.0, "discount": 0.5, "gain": 2.0, "quota": 10, "arrival_boost": 3.0}
    spec = make_spec(stream={"arrivals": {"rate_per_s": 2.0}},
                     lineup={"item": {"base_rate_per_s": 1 / 300, "tactics": {
                         "lightning_sale": sale, "countdown_timer": {"gain": 6.0}}}},
                     arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]},
                           "sale_timer": {"base": "sale", "tactics": ["item.countdown_timer"]}})
    late = {"sale": 0, "sale_timer": 0}
    for rep in range(3):
        t = run_tables(spec, rep)
        for arm in late:
            ev = t[arm].events
            end = ev[(ev.kind == "tactic_end") & (ev.tactic == "lightning_sale")]
            sold_out = float(end.time_s.iloc[0])
            assert sold_out < 300.0 and end.value.iloc[0] == 10  # the quota ended the sale early
            sh = t[arm].shoppers
            boosted = sh[sh.boosted].arrival_s
            assert (boosted > sold_out + 100).sum() > 50  # viewers still come for the sale
            assert not (boosted >= sale["end_s"]).any()  # until its announced end
            buys = ev[(ev.kind == "purchase") & (ev.time_s > 400) & (ev.time_s < 900)]
            assert (buys.value == 10.0).all()  # at the list price
            late[arm] += len(buys)
    # the timer still counts down to the announced end: its factor raises the list-price hazard
    assert late["sale_timer"] > 1.25 * late["sale"]  # 1.45 with these seeds; sampling SE about 2 %


# ----- the valuation gate ---------------------------------------------------------------------

GATE_POP = {"segments": {"all": {"share": 1.0, "impulsiveness": {"fixed": 0.5}, "dwell": {"mean_s": 300.0},
                                 "price_sensitivity": 1.0, "valuation": {"mean": 1.0, "cv": 0.3}}}}
SALE = {"start_s": 400.0, "end_s": 800.0, "discount": 0.25, "gain": 2.0}


def _gate_spec(shopper=None, **lineup):
    spec = make_spec(experiment={"seed": 7, "replicates": 1}, stream={"duration_s": 1200.0,
                                                                     "arrivals": {"rate_per_s": 10.0}},
                     lineup={"item": {"price": 10.0, "base_rate_per_s": 1 / 400, "tactics": {"lightning_sale": SALE},
                                      **lineup}},
                     arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]}})
    spec["population"] = copy.deepcopy(GATE_POP)  # replaced, not merged into the base spec's
    if shopper is not None:
        spec["shopper"] = shopper
    return spec


def _gated_conversion(sale: bool) -> float:
    """P(buy) of a viewer by numerical integration of the gated hazard (scipy), independent of the engine.

    Arrivals are uniform on [0, T] (Poisson), dwell exponential (mean 300 s), the
    valuation ``V = 10 * LogNormal(mean 1, cv 0.3)``.  A viewer with ``V`` above the
    list price buys at ``h = r`` outside the sale and ``h_sale = r (1 + 2 z) / 0.75``
    inside it (gain 2, price sensitivity 1); one with ``V`` between the sale price
    and the list price only inside the sale; others never.
    """
    from scipy import integrate, stats

    T, D, r, z = 1200.0, 300.0, 1 / 400, 0.5
    a_s, b_s = SALE["start_s"], SALE["end_s"]
    h_sale = r * (1 + SALE["gain"] * z) / (1 - SALE["discount"]) if sale else r
    s2 = np.log1p(0.3**2)
    V = stats.lognorm(np.sqrt(s2), scale=np.exp(-s2 / 2))  # V / price
    p_full = V.sf(1.0)
    p_sale_only = V.cdf(1.0) - V.cdf(1 - SALE["discount"]) if sale else 0.0

    def in_sale(x, y):
        return max(0.0, min(y, b_s) - max(x, a_s))

    def p_buy(h_out, h_in):
        def given_arrival(a):
            def given_dwell(d):
                end = min(a + d, T)
                cum = h_out * ((end - a) - in_sale(a, end)) + h_in * in_sale(a, end)
                return (1 - np.exp(-cum)) * np.exp(-d / D) / D
            pts = sorted({max(0.0, x - a) for x in (a_s, b_s, T) if x > a})
            return integrate.quad(given_dwell, 0, np.inf, points=pts[:-1] or None, limit=200)[0] \
                if not pts else sum(integrate.quad(given_dwell, lo, hi, limit=200)[0]
                                    for lo, hi in zip([0.0, *pts], [*pts, np.inf], strict=True))
        return integrate.quad(given_arrival, 0, T, points=[a_s, b_s], limit=200)[0] / T

    return p_full * p_buy(r, h_sale) + p_sale_only * p_buy(0.0, h_sale)


@pytest.mark.parametrize("arm", ["control", "sale"])
def test_conversion_with_a_valuation_gate_matches_the_gated_hazard_integrated(arm):
    expected = _gated_conversion(sale=arm == "sale")
    bought = viewers = 0
    for rep in range(4):
        runs = run_tables(_gate_spec(shopper={}), rep)[arm].runs
        bought += int(runs.buyers.iloc[0])
        viewers += int(runs.viewers.iloc[0])
    p = bought / viewers
    se = np.sqrt(expected * (1 - expected) / viewers)
    assert abs(p - expected) < 4 * se, (p, expected, se, viewers)
    # the gate binds: without it, conversion is clearly higher
    ungated = run_tables(_gate_spec(), 0)[arm].runs
    assert ungated.buyers.iloc[0] / ungated.viewers.iloc[0] > expected + 10 * se


def test_with_no_tactic_and_no_misperception_no_purchase_is_regretted():
    t = run_tables(_gate_spec(shopper={}), 0)
    for arm in ("control", "sale"):  # the sale adds urgency and a lower price, not value
        sh = t[arm].shoppers
        assert sh.purchases.sum() > 200 and sh.regretted.sum() == 0 and (sh.surplus[sh.purchases > 0] > 0).all()
    ungated = run_tables(_gate_spec(), 0)["control"].shoppers
    assert ungated.regretted.sum() > 0.3 * ungated.purchases.sum()  # the accounting-only model regrets much


def test_misperception_and_value_lifts_make_regret():
    shopper = {"misperception_cv": 0.3}
    mis = run_tables(_gate_spec(shopper=shopper), 0)["control"].shoppers
    share = mis.regretted.sum() / mis.purchases.sum()
    assert 0.02 < share < 0.5
    lifted = run_tables(_gate_spec(shopper={"value_lift": {"lightning_sale": 0.3}}), 0)
    assert lifted["control"].shoppers.regretted.sum() == 0  # the lift acts only while the sale runs
    sale = lifted["sale"]
    ev = sale.events[sale.events.kind == "purchase"]
    assert sale.shoppers.regretted.sum() > 20
    sh = sale.shoppers
    assert (sh.surplus[sh.regretted > 0] < 0).all()
    # regretted purchases fall inside the sale, where the lift acts
    rid = set(sh.shopper_id[sh.regretted > 0])
    assert ev[ev.shopper_id.isin(rid)].time_s.between(400, 800).all()


def test_a_live_lift_is_decided_in_the_walk():
    """A scarcity cue's lift raises perceived value only once the cue shows."""
    spec = _gate_spec(shopper={"value_lift": {"scarcity_cue": 0.5}}, stock=400)
    spec["lineup"]["item"]["tactics"]["scarcity_cue"] = {"threshold": 100, "gain": 1.0}
    spec["arms"]["cue"] = {"tactics": ["item.scarcity_cue"]}
    t = run_tables(spec, 0)
    assert t["control"].shoppers.regretted.sum() == 0
    cue = t["cue"]
    shown = cue.events[(cue.events.kind == "tactic_start") & (cue.events.tactic == "scarcity_cue")].time_s
    sh = cue.shoppers
    assert len(shown) and sh.regretted.sum() > 0
    ev = cue.events[(cue.events.kind == "purchase") & cue.events.shopper_id.isin(set(sh.shopper_id[sh.regretted > 0]))]
    assert (ev.time_s >= shown.iloc[0]).all()
    assert sh.purchases.sum() <= 400
