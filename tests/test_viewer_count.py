"""The viewer count as a cue: purchases against the hazard the realised audience implies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fomolab.errors import SpecError

from helpers import experiment, make_spec, run_tables

RATE, Z, GAIN, HALF = 1 / 2000, 0.8, 3.0, 150.0


def spec(**count):
    out = make_spec(
        stream={"duration_s": 1200.0, "arrivals": {"rate_per_s": 1.0}},
        population={"segments": {"all": {"impulsiveness": {"fixed": Z}, "interest": {"mean": 1.0, "cv": 0.0},
                                         "price_sensitivity": 0.0, "dwell": {"mean_s": 300.0}}}},
        lineup={"item": {"base_rate_per_s": RATE,
                         "tactics": {"viewer_count": {"gain": GAIN, "half_viewers": HALF, **count}}}},
        arms={"control": {}, "count": {"tactics": ["item.viewer_count"]}},
    )
    out["population"]["segments"]["all"]["impulsiveness"] = {"fixed": Z}
    return out


def expected_buyers(sh, gain=GAIN):
    """Sum over viewers of 1 - exp(-integral of r (1 + g z N / (N + h)) over the visit), with N(t)
    the number present, piecewise constant between the arrivals and departures of the table."""
    a, d = sh.arrival_s.to_numpy(), sh.departure_s.to_numpy()
    x = np.unique(np.concatenate([[0.0], a, d]))
    mids = (x[:-1] + x[1:]) / 2
    n = np.searchsorted(np.sort(a), mids, side="right") - np.searchsorted(np.sort(d), mids, side="right")
    level = 1 + gain * Z * n / (n + HALF)
    F = np.concatenate([[0.0], np.cumsum(level * np.diff(x))])
    H = RATE * (np.interp(d, x, F) - np.interp(a, x, F))
    p = 1 - np.exp(-H)
    return p.sum(), (p * (1 - p)).sum()


def test_buyers_match_the_hazard_of_the_audience_present():
    tables = run_tables(spec())
    for arm, gain in (("control", 0.0), ("count", GAIN)):
        sh = tables[arm].shoppers
        mean, var = expected_buyers(sh, gain)
        buyers = int((sh.purchases > 0).sum())
        assert abs(buyers - mean) < 4 * math.sqrt(var), (arm, buyers, mean)
    # the cue matters: the expectations differ by far more than the sampling error
    sh = tables["count"].shoppers
    (m1, v1), (m0, _) = expected_buyers(sh), expected_buyers(sh, 0.0)
    assert m1 - m0 > 8 * math.sqrt(v1)


def test_a_bigger_audience_is_a_stronger_cue():
    small, big = spec(), spec()
    big["stream"]["arrivals"]["rate_per_s"] = 5.0
    lift = []
    for s in (small, big):
        t = run_tables(s)
        per_viewer = [(t[a].shoppers.purchases > 0).mean() for a in ("control", "count")]
        lift.append(per_viewer[1] / per_viewer[0])
    assert lift[1] > lift[0] * 1.2, lift


def test_window_rules_are_named():
    bad = spec(start_s=100.0)
    with pytest.raises(SpecError, match="give both start_s and end_s"):
        experiment(bad)
    with pytest.raises(SpecError) as exc:
        experiment(spec(half_viewers=0.0))
    assert exc.value.errors[0].path == "lineup.item.tactics.viewer_count.half_viewers"
