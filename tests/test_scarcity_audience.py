"""A scarcity message that depends on how many are watching: purchases against the hazard of the audience present."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fomolab.errors import SpecError
from fomolab.tactics import KINDS, ProductContext

from helpers import experiment, make_spec, run_tables

RATE, Z, GAIN, THRESHOLD, SHOWN, K = 1 / 600, 0.8, 3.0, 10, 3, 50.0
LEVEL = (THRESHOLD - SHOWN + 1) / THRESHOLD


def spec(**cue):
    out = make_spec(
        stream={"duration_s": 1200.0, "arrivals": {"rate_per_s": 1.0}},
        population={"segments": {"all": {"interest": {"mean": 1.0, "cv": 0.0},
                                         "price_sensitivity": 0.0, "dwell": {"mean_s": 300.0}}}},
        lineup={"item": {"base_rate_per_s": RATE,
                         "tactics": {"scarcity_cue": {"gain": GAIN, "threshold": THRESHOLD,
                                                      "displayed_stock": SHOWN, **cue}}}},
        arms={"control": {}, "cue": {"tactics": ["item.scarcity_cue"]}},
    )
    out["population"]["segments"]["all"]["impulsiveness"] = {"fixed": Z}
    return out


def expected_buyers(sh, k):
    """Sum over viewers of 1 - exp(-integral of r (1 + g z s N / (N + k S))) over the visit, N(t) the
    viewers present (from the table's arrivals and departures), s the "only S left" signal; k None: no
    audience term."""
    a, d = sh.arrival_s.to_numpy(), sh.departure_s.to_numpy()
    x = np.unique(np.concatenate([[0.0], a, d]))
    mids = (x[:-1] + x[1:]) / 2
    n = np.searchsorted(np.sort(a), mids, side="right") - np.searchsorted(np.sort(d), mids, side="right")
    crowd = np.ones(len(n)) if k is None else n / (n + k * SHOWN)
    level = 1 + GAIN * Z * LEVEL * crowd
    F = np.concatenate([[0.0], np.cumsum(level * np.diff(x))])
    p = 1 - np.exp(-RATE * (np.interp(d, x, F) - np.interp(a, x, F)))
    return p.sum(), (p * (1 - p)).sum()


@pytest.mark.parametrize(("rate", "k"), [(0.3, 30.0), (3.0, 300.0)], ids=["small_audience", "big_audience"])
def test_buyers_match_the_hazard_of_the_audience_present(rate, k):
    """About 90 or 900 watch; k puts the message near half strength in both."""
    s = spec(competition_per_unit=k)
    s["stream"]["arrivals"]["rate_per_s"] = rate
    sh = run_tables(s)["cue"].shoppers
    mean, var = expected_buyers(sh, k)
    buyers = int((sh.purchases > 0).sum())
    assert abs(buyers - mean) < 4 * math.sqrt(var), (buyers, mean)
    # the check has power: the same cue read without the audience is far off
    plain, _ = expected_buyers(sh, None)
    assert plain - mean > 5 * math.sqrt(var), (plain, mean)


def test_the_same_message_weighs_more_before_a_bigger_crowd():
    lift = []
    for rate in (0.3, 3.0):
        s = spec(competition_per_unit=K)
        s["stream"]["arrivals"]["rate_per_s"] = rate
        t = run_tables(s)
        per_viewer = [(t[a].shoppers.purchases > 0).mean() for a in ("control", "cue")]
        lift.append(per_viewer[1] / per_viewer[0])
    assert lift[1] > lift[0] + 0.3, lift


def test_the_honest_badge_scales_with_the_audience():
    """The live signal: (threshold - stock + 1) / threshold times N / (N + k stock), N counted at t."""
    cue = KINDS["scarcity_cue"](threshold=5, competition_per_unit=2.0)
    starts, ends = np.array([0.0, 0.0, 10.0, 20.0]), np.array([100.0, 15.0, 50.0, 30.0])
    ctx = ProductContext(None, 0, 5, 1.0, (0.0, 100.0), 100.0, 0, starts, ends, np.array([True, True, True, False]))
    badge = cue.live(ctx)
    assert badge.level(12.0, 2) == pytest.approx(0.8 * 3 / (3 + 4))
    assert badge.level(25.0, 2) == pytest.approx(0.8 * 2 / (2 + 4))  # a visit to another stream not counted
    assert badge.level(25.0, 6) == 0.0
    assert KINDS["scarcity_cue"](threshold=5).live(ctx).level(25.0, 2) == pytest.approx(0.8)


def test_bad_value_is_named():
    with pytest.raises(SpecError) as exc:
        experiment(spec(competition_per_unit=0.0))
    assert exc.value.errors[0].path == "lineup.item.tactics.scarcity_cue.competition_per_unit"
