"""The giveaway: a lucky draw among the viewers present, validated against an independent integral."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fomolab import run
from fomolab.design import expand
from fomolab.engine import simulate
from fomolab.stats import episodes
from fomolab.theory import expected_outcomes

from helpers import experiment, make_spec

T, RATE, DWELL, BASE = 1200.0, 3.0, 300.0, 1 / 900
A, D, GAIN, Z = 300.0, 700.0, 2.0, 0.6


def giveaway_spec(winners: int = 5, replicates: int = 8, rate: float = RATE) -> dict:
    spec = make_spec(
        experiment={"name": "giveaway", "seed": 7, "replicates": replicates},
        stream={"duration_s": T, "arrivals": {"rate_per_s": rate}},
        lineup={"item": {"price": 10.0, "base_rate_per_s": BASE, "tactics": {
            "giveaway": {"announce_s": A, "draw_s": D, "winners": winners, "gain": GAIN}}}},
        arms={"control": {}, "draw": {"tactics": ["item.giveaway"]}},
    )
    spec["population"] = {"segments": {"all": {"share": 1.0, "impulsiveness": {"fixed": Z},
                                               "dwell": {"mean_s": DWELL}, "price_sensitivity": 0.0}}}
    return spec


def conversion_by_integration(gain: float) -> float:
    """P(buy) of a viewer arriving uniformly on [0, T], staying Exp(DWELL) (cut at T), with hazard
    BASE * (1 + gain * Z) while the draw is pending and BASE otherwise: written from the model's
    definition, without fomolab."""
    def H(x, y):  # cumulative hazard on [x, y]
        pending = np.clip(np.minimum(y, D) - np.maximum(x, A), 0.0, None)
        return BASE * (y - x) + BASE * gain * Z * pending

    arrivals = np.linspace(0.0, T, 1201)
    p = np.empty_like(arrivals)
    for i, a in enumerate(arrivals):
        w = np.linspace(0.0, T - a, 2001)
        dens = np.exp(-w / DWELL) / DWELL
        stay = math.exp(-(T - a) / DWELL)  # still watching at the end
        p[i] = np.trapezoid(dens * (1 - np.exp(-H(a, a + w))), w) + stay * (1 - math.exp(-H(a, T)))
    return float(np.trapezoid(p, arrivals) / T)


@pytest.fixture(scope="module")
def tables():
    exp = experiment(giveaway_spec())
    return [simulate(r) for r in expand(exp)]


def test_conversion_matches_the_integrated_hazard(tables):
    runs = pd.concat([t.runs for t in tables])
    for arm, gain in (("control", 0.0), ("draw", GAIN)):
        r = runs[runs.arm == arm]
        n, buyers = int(r.viewers.sum()), int(r.buyers.sum())
        truth = conversion_by_integration(gain)
        se = math.sqrt(truth * (1 - truth) / n)
        assert abs(buyers / n - truth) < 4 * se, (arm, buyers / n, truth, se)
    assert conversion_by_integration(GAIN) - conversion_by_integration(0.0) > 20 * se  # the test can tell


def test_theory_integrates_the_plugin_hazard():
    exp = experiment(giveaway_spec())
    got = expected_outcomes(exp.arms["draw"].scenario, dt=0.5, nodes=4).conversion
    assert got == pytest.approx(conversion_by_integration(GAIN), abs=5e-4)


def present_at_draw(t) -> pd.DataFrame:
    sh = t.shoppers
    return sh[(sh.arrival_s <= D) & (sh.departure_s > D)]


@pytest.mark.parametrize("winners", [5, 10_000])
def test_the_draw_picks_viewers_present(winners):
    exp = experiment(giveaway_spec(winners=winners, replicates=3))
    for r in expand(exp):
        t = simulate(r)
        prizes = t.events[t.events.kind == "prize"]
        if r.arm == "control":
            assert prizes.empty
            continue
        present = present_at_draw(t)
        assert len(present) > 5
        assert (prizes.time_s == D).all() and (prizes.tactic == "giveaway").all() and (prizes.value == 10.0).all()
        assert prizes.shopper_id.is_unique
        assert set(prizes.shopper_id) <= set(present.shopper_id)  # only viewers present win
        assert len(prizes) == min(winners, len(present))  # as many as drawn, or everyone present
        end = t.events[(t.events.kind == "tactic_end") & (t.events.tactic == "giveaway")]
        assert end.time_s.tolist() == [D] and end.value.tolist() == [len(prizes)]
        assert t.windows[["start_s", "end_s"]].values.tolist() == [[A, D]]


def test_the_draw_is_uniform_among_those_present():
    # one winner among the viewers present, over many replicates: the winner's rank among
    # those present (by shopper id) is uniform; a draw that favoured early arrivals would fail
    exp = experiment(giveaway_spec(winners=1, replicates=200, rate=0.05))
    ranks = []
    for r in expand(exp):
        if r.arm != "draw":
            continue
        t = simulate(r)
        present = np.sort(present_at_draw(t).shopper_id.to_numpy())
        won = t.events[t.events.kind == "prize"].shopper_id.to_numpy(dtype="int64")
        if len(present) >= 2:
            ranks.append((np.searchsorted(present, won[0]) + 0.5) / len(present))
    ranks = np.array(ranks)
    assert len(ranks) > 150
    assert abs(ranks.mean() - 0.5) < 4 * math.sqrt(1 / 12 / len(ranks))  # mean 1/2, variance <= 1/12


def test_episodes_carry_the_pending_draw(tmp_path):
    res = run(experiment(giveaway_spec(replicates=1)), tmp_path / "g", workers=1)
    ep = episodes(res)
    assert {"draw_pending", "draw_x_impulsiveness"} <= set(ep.columns)
    mid = (ep.start_s + ep.stop_s) / 2
    inside = (mid >= A) & (mid < D) & (ep.arm == "draw")
    assert (ep.draw_pending == inside.astype(int)).all()
