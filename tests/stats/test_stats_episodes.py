"""episodes(): the counting-process table of a results folder, and a planted hazard ratio."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fomolab import run
from fomolab.stats import cox, episodes
from fomolab.stats.episodes import EPISODE_COLUMNS

from helpers import experiment, make_spec

Z, GAIN = 0.5, 2.0  # the sale multiplies every hazard by 1 + GAIN * Z = 2


def planted_spec(**extra):
    tactics = {"lightning_sale": {"start_s": 300.0, "end_s": 900.0, "discount": 0.2, "gain": GAIN}}
    tactics.update(extra)
    spec = make_spec(
        experiment={"name": "planted", "seed": 20260, "replicates": 12},
        lineup={"item": {"price": 10.0, "base_rate_per_s": 1 / 600, "tactics": tactics}},
        arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]}},
    )
    spec["population"] = {"segments": {"all": {"share": 1.0, "impulsiveness": {"fixed": Z},
                                               "dwell": {"mean_s": 300.0}, "price_sensitivity": 0.0}}}
    return spec


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return run(experiment(planted_spec()), tmp_path_factory.mktemp("ep") / "planted", workers=1)


@pytest.fixture(scope="module")
def ep(planted):
    return episodes(planted)


def test_planted_hazard_ratio_is_recovered(ep):
    # Impulsiveness is fixed and price sensitivity 0, so during the sale every
    # viewer's hazard is exactly (1 + GAIN * Z) times the control's at the same
    # stream time: a proportional-hazards model with a time-varying covariate.
    fit = cox(ep, "stop_s", "event", ["sale_active"], start="start_s", cluster="replicate")
    row = fit.summary.loc["sale_active"]
    truth = math.log(1 + GAIN * Z)
    lo, hi = math.log(row.ci_lower), math.log(row.ci_upper)
    assert lo <= truth <= hi, (row.coef, lo, hi)
    assert abs(row.coef - truth) < 4 * row.se  # and not by a huge interval
    assert row.se < 0.06


def test_episodes_cover_each_visit_exactly(planted, ep):
    assert list(ep.columns) == EPISODE_COLUMNS
    assert (ep.start_s < ep.stop_s).all()
    sh = planted.shoppers
    end = sh.first_purchase_s.fillna(sh.departure_s)
    keep = end > sh.arrival_s
    # total time at risk and number of events are those of the visits
    assert ep.stop_s.sub(ep.start_s).sum() == pytest.approx((end - sh.arrival_s)[keep].sum(), rel=1e-12)
    assert ep.event.sum() == sh.first_purchase_s.notna().sum()
    assert ep.groupby(["run_id", "shopper_id"], observed=True).event.sum().max() == 1
    # the event is on the last episode of a buyer
    last = ep.groupby(["run_id", "shopper_id"], observed=True).tail(1)
    assert ep.event.sum() == last.event.sum()
    # in the sale arm pieces are cut at the sale's edges (the control has no
    # sale events, so its visits stay whole), and the covariate is 1 exactly inside
    s = ep[ep.arm == "sale"]
    inside = (s.start_s >= 300.0) & (s.stop_s <= 900.0)
    outside = (s.stop_s <= 300.0) | (s.start_s >= 900.0)
    assert (inside | outside).all()
    assert (s.sale_active == inside.astype(int)).all()
    assert (ep[ep.arm == "control"].sale_active == 0).all()
    assert ep[ep.arm == "control"].episode.max() == 0
    assert (ep.sale_x_impulsiveness == ep.sale_active * Z).all()
    assert (ep.timer_signal == 0).all() and (ep.social_proof_level == 0).all()


def test_episodes_subset_and_timer_signal(tmp_path):
    spec = planted_spec(countdown_timer={"gain": 1.0, "urgency": "linear"})
    spec["experiment"]["replicates"] = 2
    spec["arms"]["timer"] = {"tactics": ["item.*"]}
    res = run(experiment(spec), tmp_path / "t", workers=1)
    ep = episodes(res, arms=["control", "timer"], replicates=[1], timer_pieces=4)
    assert set(ep.arm.astype(str)) == {"control", "timer"} and set(ep.replicate) == {1}
    t = ep[ep.arm == "timer"]
    mid = (t.start_s + t.stop_s) / 2
    inside = (mid >= 300) & (mid < 900)
    # linear signal at the midpoint; the window is cut in 4 pieces of 150 s
    assert np.allclose(t.timer_signal[inside], (mid[inside] - 300) / 600)
    assert (t.timer_signal[~inside] == 0).all()
    edges = np.array([300.0, 450.0, 600.0, 750.0, 900.0])
    for a in edges[:-1]:  # no episode straddles a cut
        assert not ((t.start_s < a) & (t.stop_s > a)).any()
    assert (ep[ep.arm == "control"].timer_signal == 0).all()


def test_social_proof_level_counts_recent_purchases(tmp_path):
    spec = make_spec(
        experiment={"name": "sp", "seed": 3, "replicates": 1},
        lineup={"item": {"price": 10.0, "base_rate_per_s": 1 / 300,
                         "tactics": {"social_proof": {"window_s": 60.0, "saturation": 5, "gain": 2.0}}}},
        arms={"control": {}, "proof": {"tactics": ["item.social_proof"]}},
    )
    res = run(experiment(spec), tmp_path / "sp", workers=1)
    ep = episodes(res)
    p = ep[ep.arm == "proof"]
    buys = res.events[(res.events.kind == "purchase") & (res.events.run_id.isin(set(p.run_id)))].time_s.to_numpy()
    k = np.random.default_rng(0).choice(len(p), 200, replace=False)
    for s, level in zip(p.start_s.to_numpy()[k], p.social_proof_level.to_numpy()[k], strict=True):
        n = ((buys > s - 60.0) & (buys < s)).sum()
        assert level == pytest.approx(min(1.0, n / 5))
    assert p.social_proof_level.max() > 0
    assert (ep[ep.arm == "control"].social_proof_level == 0).all()
    assert not ((p.stop_s - p.start_s) > 30.0 + 1e-9).any()  # the grid cuts every 30 s
