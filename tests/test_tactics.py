"""Each tactic's mechanism, shown with common random numbers against a control."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from helpers import make_spec, run_tables


def purchases(tables) -> pd.DataFrame:
    ev = tables.events
    return ev[ev.kind == "purchase"][["time_s", "shopper_id", "product", "value"]].reset_index(drop=True)


def test_sale_and_timer_act_only_in_their_window():
    spec = make_spec(
        stream={"duration_s": 1800.0, "arrivals": {"rate_per_s": 3.0}},
        lineup={"item": {"tactics": {"lightning_sale": {"start_s": 600.0, "end_s": 900.0, "gain": 4.0},
                                     "countdown_timer": {"gain": 2.0}}}},
        arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]},
              "timer": {"tactics": ["item.countdown_timer"]}},
    )
    t = run_tables(spec)
    ctrl = purchases(t["control"])
    for arm in ("sale", "timer"):
        p = purchases(t[arm])
        # Before the window: exactly the same purchases, viewer by viewer.
        pd.testing.assert_frame_equal(ctrl[ctrl.time_s < 600].reset_index(drop=True),
                                      p[p.time_s < 600].reset_index(drop=True))
        # In the window: more purchases.
        n_ctrl = ((ctrl.time_s >= 600) & (ctrl.time_s < 900)).sum()
        n_arm = ((p.time_s >= 600) & (p.time_s < 900)).sum()
        assert n_arm > n_ctrl * 1.2
        # After it: the hazard is back to the control's; a viewer who has not yet
        # bought decides exactly as in the control.
        sh_c = t["control"].shoppers.set_index("shopper_id")
        sh_a = t[arm].shoppers.set_index("shopper_id")
        late = sh_a.index[(sh_a.arrival_s >= 900)]
        pd.testing.assert_series_equal(sh_c.loc[late, "first_purchase_s"], sh_a.loc[late, "first_purchase_s"])


def test_timer_urgency_rises_toward_the_deadline():
    """Purchases in each half of the countdown match the compensator of the linear urgency hazard.

    For every viewer at risk (present, not yet bought) the expected number of
    purchases is the integral of the hazard over their time at risk; summed over
    viewers it is the expected count (the martingale property of counting
    processes), so observed - expected is within 3 sqrt(expected).
    """
    r0, g, a, b = 1 / 900, 6.0, 600.0, 1200.0
    spec = make_spec(
        stream={"duration_s": 1800.0, "arrivals": {"rate_per_s": 6.0}},
        lineup={"item": {"tactics": {"countdown_timer": {"start_s": a, "deadline_s": b, "gain": g}}}},
        arms={"control": {}, "timer": {"tactics": ["item.countdown_timer"]}},
    )
    spec["population"]["segments"]["all"]["impulsiveness"] = {"fixed": 1.0}
    sh = run_tables(spec)["timer"].shoppers
    stop = sh.first_purchase_s.fillna(sh.departure_s).to_numpy()

    def H(t):  # cumulative hazard of the timer from a: r0 * [u + g u^2 / (2 (b - a))]
        u = np.clip(t, a, b) - a
        return r0 * (u + g * u**2 / (2 * (b - a)))

    rates = []
    for lo, hi in ((a, 900.0), (900.0, b)):
        start = np.clip(sh.arrival_s.to_numpy(), lo, hi)
        end = np.clip(stop, lo, hi)
        expected = np.sum(H(end) - H(start))
        observed = ((sh.first_purchase_s >= lo) & (sh.first_purchase_s < hi)).sum()
        assert abs(observed - expected) < 3 * np.sqrt(expected), (lo, observed, expected)
        rates.append(observed / np.sum(end - start))
    # the per-second purchase rate among viewers at risk rises toward the deadline:
    # mean factor 1 + 6 * 0.25 = 2.5 in the first half, 1 + 6 * 0.75 = 5.5 in the second
    assert rates[1] / rates[0] > 1.8


def test_scarcity_cue_acts_only_while_shown():
    spec = make_spec(
        stream={"duration_s": 1800.0, "arrivals": {"rate_per_s": 3.0}},
        lineup={"item": {"stock": 150, "tactics": {"scarcity_cue": {"threshold": 40, "gain": 4.0}}}},
        arms={"control": {}, "cue": {"tactics": ["item.scarcity_cue"]}},
    )
    t = run_tables(spec)
    ev = t["cue"].events
    shown = ev[(ev.kind == "tactic_start") & (ev.tactic == "scarcity_cue")].time_s
    assert len(shown) == 1
    t_shown = shown.iloc[0]
    c, x = purchases(t["control"]), purchases(t["cue"])
    # Until the cue appears (110 units sold), both arms sell to the same viewers at the same times.
    pd.testing.assert_frame_equal(c[c.time_s <= t_shown].reset_index(drop=True),
                                  x[x.time_s <= t_shown].reset_index(drop=True))
    assert (x.time_s <= t_shown).sum() == 150 - 40
    # Once shown, the last 40 units sell faster than in the control.
    assert x.time_s.max() < c.time_s.iloc[149] if len(c) >= 150 else len(x) > len(c)


@settings(max_examples=25, deadline=None)
@given(stock=st.integers(0, 60), quota=st.one_of(st.none(), st.integers(1, 40)),
       rate=st.floats(0.5, 4.0), gain=st.floats(0.0, 8.0), seed=st.integers(0, 2**32 - 1),
       cue=st.booleans(), proof=st.booleans())
def test_stock_never_negative(stock, quota, rate, gain, seed, cue, proof):
    tactics = {"lightning_sale": {"start_s": 200.0, "end_s": 500.0, "gain": gain, "quota": quota,
                                  "discount": 0.5}}
    if cue:
        tactics["scarcity_cue"] = {"threshold": 10, "gain": gain}
    if proof:
        tactics["social_proof"] = {"gain": gain}
    spec = make_spec(experiment={"seed": seed}, stream={"duration_s": 900.0, "arrivals": {"rate_per_s": rate}},
                     lineup={"item": {"stock": stock, "base_rate_per_s": 1 / 200, "tactics": tactics}},
                     arms={"control": {"tactics": ["item.*"]}})
    t = run_tables(spec)["control"]
    p = purchases(t)
    assert len(p) <= stock
    assert t.runs.units_sold.iloc[0] == len(p) == t.shoppers.purchases.sum()
    out = t.events[t.events.kind == "stock_out"].time_s
    if len(p) == stock:
        assert len(out) == 1 and (p.time_s <= out.iloc[0]).all()
    else:
        assert len(out) == 0
    if quota is not None:
        at_sale_price = p[p.value < 10.0]
        assert len(at_sale_price) <= quota
        assert ((at_sale_price.time_s >= 200) & (at_sale_price.time_s < 500)).all()
    assert not t.shoppers.groupby("shopper_id").purchases.sum().gt(1).any()


def dispersion(times: np.ndarray, lo: float, hi: float, width: float) -> float:
    counts, _ = np.histogram(times, bins=np.arange(lo, hi + width / 2, width))
    return counts.var(ddof=1) / counts.mean()


def test_social_proof_clusters_purchases():
    """Each purchase raises the others' hazard for a minute: purchases come in bursts.

    Parameters are chosen subcritical (a purchase triggers on average
    150 viewers x 1/12000 per s x 5/5 x 60 s = 0.75 further purchases), so the
    ticker is usually quiet and bursts are visible.  The control's counts per
    two-minute bin are Poisson: (k - 1) x dispersion ~ chi2(k - 1), inside the
    central 99.8 %; with the ticker the dispersion is far above it.
    """
    spec = make_spec(
        stream={"duration_s": 7200.0, "arrivals": {"rate_per_s": 0.5}},
        lineup={"item": {"base_rate_per_s": 1 / 12000,
                         "tactics": {"social_proof": {"window_s": 60.0, "saturation": 5, "gain": 5.0}}}},
        arms={"control": {}, "proof": {"tactics": ["item.social_proof"]}},
    )
    spec["population"]["segments"]["all"]["impulsiveness"] = {"fixed": 1.0}
    t = run_tables(spec)
    width, lo_t, hi_t = 120.0, 600.0, 7200.0
    k = int((hi_t - lo_t) / width)
    ctrl = dispersion(purchases(t["control"]).time_s.to_numpy(), lo_t, hi_t, width)
    proof = dispersion(purchases(t["proof"]).time_s.to_numpy(), lo_t, hi_t, width)
    lo, hi = stats.chi2.ppf([0.001, 0.999], k - 1) / (k - 1)
    assert lo < ctrl < hi
    assert proof > hi
    assert proof > 2 * ctrl


def test_exclusive_code_reaches_only_viewers_present_at_announcement():
    spec = make_spec(
        stream={"duration_s": 1800.0, "arrivals": {"rate_per_s": 3.0}},
        lineup={"item": {"tactics": {"exclusive_code": {"announce_s": 600.0, "expires_s": 1200.0,
                                                        "discount": 0.2, "gain": 4.0}}}},
        arms={"control": {}, "code": {"tactics": ["item.exclusive_code"]}},
    )
    t = run_tables(spec)
    c = t["control"].shoppers.set_index("shopper_id")
    x = t["code"].shoppers.set_index("shopper_id")
    holder = (c.arrival_s <= 600) & (c.departure_s > 600)
    # Viewers who were not there at 600 s never see the code: identical decisions.
    pd.testing.assert_series_equal(c.loc[~holder, "first_purchase_s"], x.loc[~holder, "first_purchase_s"])
    pd.testing.assert_series_equal(c.loc[~holder, "spend"], x.loc[~holder, "spend"])
    # Holders buy more, and those who buy while the code is valid pay 20 % less.
    assert x.loc[holder, "purchases"].sum() > 1.2 * c.loc[holder, "purchases"].sum()
    p = purchases(t["code"]).set_index("shopper_id")
    in_code = p[(p.time_s >= 600) & (p.time_s < 1200) & p.index.isin(holder[holder].index)]
    assert len(in_code) > 0 and np.allclose(in_code.value, 8.0)
    others = p[~p.index.isin(in_code.index)]
    assert np.allclose(others.value, 10.0)
