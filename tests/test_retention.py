"""Retention: departures under tactics that hold viewers, against the closed-form dwell law they imply."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fomolab.errors import SpecError

from helpers import experiment, make_spec, run_tables

MEAN, A, B, R = 300.0, 600.0, 1200.0, 0.25


def spec(r=R, **retention):
    out = make_spec(
        stream={"duration_s": 40_000.0, "retention": {"deal": r, **retention}},
        population={"segments": {"all": {"dwell": {"mean_s": MEAN}}}},
        lineup={"item": {"tactics": {"lightning_sale": {"start_s": A, "end_s": B, "discount": 0.2}}}},
        arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]}},
    )
    # viewers arrive before the window only (5 per second for 600 s)
    out["stream"]["arrivals"] = {"schedule": [{"start_s": 0.0, "rate_per_s": 5.0}, {"start_s": A, "rate_per_s": 0.0}]}
    return out


def cumulative_hazard(t0, t, r=R):
    """H(t | arrival t0 <= A) of an exponential dwell whose hazard is multiplied by r on [A, B)."""
    return ((np.minimum(t, A) - t0) + r * (np.clip(t, A, B) - A) + (np.maximum(t, B) - B)) / MEAN


def test_departures_follow_the_closed_form_dwell_law():
    """Probability integral transform: exp(-H(departure | arrival)) is uniform on (0, 1) when the
    departures follow the law (Kolmogorov-Smirnov at the 0.1 % level), and the number at risk
    inside the window matches its expectation within 4 standard deviations."""
    t = run_tables(spec())["sale"].shoppers
    t0, dep = t.arrival_s.to_numpy(), t.departure_s.to_numpy()
    assert len(t0) > 2500 and dep.max() < 40_000.0  # nobody censored
    u = np.exp(-cumulative_hazard(t0, dep))
    ks = stats.kstest(u, "uniform")
    assert ks.statistic < 1.95 / math.sqrt(len(u)), ks
    for at in (700.0, 1100.0, 1500.0):
        p = np.exp(-cumulative_hazard(t0, np.full(len(t0), at)))
        present = int(((t0 <= at) & (dep > at)).sum())
        assert abs(present - p.sum()) < 4 * math.sqrt((p * (1 - p)).sum()), (at, present, p.sum())
    # the law without the hold is refused by the same test: the check has power
    u1 = np.exp(-cumulative_hazard(t0, dep, r=1.0))
    assert stats.kstest(u1, "uniform").statistic > 1.95 / math.sqrt(len(u))


def test_holds_say_who_stayed_longer_because_of_what():
    tables = run_tables(spec(countdown=0.5))
    control, sale = tables["control"].shoppers, tables["sale"].shoppers
    # the same viewers with the same dwell (common random numbers); no tactic, no hold
    np.testing.assert_array_equal(control.dwell_s, sale.dwell_s)
    np.testing.assert_allclose(control.departure_s, np.minimum(control.arrival_s + control.dwell_s, 40_000.0))
    assert (control.held_by_deal_s == 0).all()
    # the sale holds: the hold is the departure minus the control's, who saw no sale
    np.testing.assert_allclose(sale.held_by_deal_s, sale.departure_s - control.departure_s, atol=1e-6)
    present = (sale.arrival_s < B) & (control.departure_s > A)
    assert (sale.held_by_deal_s[present] > 0).all() and (sale.held_by_deal_s[~present] == 0).all()
    assert (sale.held_by_countdown_s == 0).all()  # no timer switched on
    # a viewer present through the window gains (1 / r - 1) x the window's operational length, at most
    assert sale.held_by_deal_s.max() <= (1 / R - 1) * R * (B - A) + 1e-6
    # more at risk in the sale arm while it runs
    at = 900.0
    n_c = ((control.arrival_s <= at) & (control.departure_s > at)).sum()
    n_s = ((sale.arrival_s <= at) & (sale.departure_s > at)).sum()
    assert n_s > 1.5 * n_c


def test_off_changes_nothing_and_bad_values_are_named():
    plain = experiment(make_spec())
    assert "retention" not in plain.arms["control"].scenario.stream.model_dump()
    assert "dwell_s" not in run_tables(make_spec())["control"].shoppers
    bad = spec(r=0.0, draw=-1.0)
    with pytest.raises(SpecError) as exc:
        experiment(bad)
    assert {p.path for p in exc.value.errors} == {"stream.retention.deal", "stream.retention.draw"}
    market = spec()
    market["market"] = {"streams": 2}
    with pytest.raises(SpecError, match="retention is not modelled in a marketplace"):
        experiment(market)
