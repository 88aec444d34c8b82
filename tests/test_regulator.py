"""The regulator's lens: deceptive variants, learning, attribution, welfare, bans."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fomolab import run
from fomolab.attribution import LABELS, attribute, impact

from helpers import ROOT, experiment, make_spec, run_tables


def purchases(t) -> pd.DataFrame:
    ev = t.events
    return ev[ev.kind == "purchase"].reset_index(drop=True)


def test_tactic_without_effect_induces_nothing(tmp_path):
    spec = make_spec(
        experiment={"replicates": 3},
        lineup={"item": {"tactics": {"lightning_sale": {"start_s": 300.0, "end_s": 900.0, "gain": 0.0},
                                     "countdown_timer": {"gain": 0.0}}}},
        arms={"control": {}, "null": {"tactics": ["item.*"]}, "real": {"tactics": ["item.*"],
              "set": {"lineup.item.tactics.lightning_sale.gain": 3.0}}},
    )
    lab = attribute(run(experiment(spec), tmp_path / "r"))
    null = lab[lab.arm == "null"]
    assert len(null) > 1000
    assert (null.label == "induced").sum() == 0
    assert set(null.label) <= {"same", "none"}
    assert (null.spend_change == 0).all() and (null.surplus_change == 0).all()
    real = lab[lab.arm == "real"]
    assert (real.label == "induced").sum() > 50
    # the sale only raises hazards and nothing is shared: monotone coupling
    assert not real.label.isin(["prevented", "delayed"]).any()
    assert (real.loc[real.label == "accelerated", "seconds_gained"] > 0).all()


def test_deceptive_timer_response_decays_with_exposures():
    """With learning, the purchase rate among viewers at risk falls with every reset they saw.

    Rates are purchases per second at risk (present, not yet bought, timer
    showing), split by the number of restarts the viewer has witnessed; the
    learning arm's rate relative to the naive arm's must fall with that
    number, and be exactly 1 before the first witnessed restart (the arms are
    the same viewers with the same hazards until then).
    """
    period, start = 120.0, 300.0
    timer = {"start_s": start, "deadline_s": start + period, "resets": True, "gain": 6.0, "urgency": "linear"}
    spec = make_spec(
        stream={"duration_s": 2400.0, "arrivals": {"rate_per_s": 4.0}},
        population={"segments": {"all": {"dwell": {"mean_s": 900.0}}}},
        lineup={"item": {"tactics": {"countdown_timer": timer}}},
        arms={"naive": {"tactics": ["item.countdown_timer"]},
              "learning": {"tactics": ["item.countdown_timer"],
                           "set": {"lineup.item.tactics.countdown_timer.credibility": 0.5}}},
        experiment={"control": "naive"},
    )
    del spec["arms"]["control"]
    exp = experiment(spec)
    tac = exp.arms["learning"].scenario.lineup["item"].tactics.countdown_timer
    assert tac.window() == (start, 2400.0)  # shows until the slot's end: the deadline never comes
    levels = 4
    events = {a: np.zeros(levels) for a in ("naive", "learning")}
    exposure = {a: np.zeros(levels) for a in ("naive", "learning")}
    for rep in range(3):
        for arm, t in run_tables(spec, rep).items():
            ev = t.events
            assert ((ev.kind == "tactic_start") & (ev.tactic == "countdown_timer")).sum() == 18  # 1 + 17 restarts
            sh = t.shoppers
            a = np.maximum(sh.arrival_s.to_numpy(), start)
            stop = sh.first_purchase_s.fillna(sh.departure_s).to_numpy()
            bought = sh.first_purchase_s.notna().to_numpy()
            first_restart = start + period * np.maximum(1, np.ceil((a - start) / period))
            for k in range(levels):
                lo = a if k == 0 else first_restart + (k - 1) * period
                hi = first_restart + k * period
                exposure[arm][k] += np.clip(np.minimum(hi, stop) - lo, 0, None).sum()
                events[arm][k] += (bought & (stop >= lo) & (stop < hi) & (stop >= start)).sum()
    rate = {arm: events[arm] / exposure[arm] for arm in events}
    ratio = rate["learning"] / rate["naive"]
    assert ratio[0] == 1.0
    assert ratio[1] < 0.9 and ratio[2] < ratio[1] and ratio[3] < ratio[2], ratio
    assert (tac.factor(np.array([350.0, 470.0, 590.0]), np.ones(3), np.zeros(3)) - 1).tolist() == pytest.approx(
        [6 * 50 / 120, 0.5 * 6 * 50 / 120, 0.25 * 6 * 50 / 120])


def test_displayed_stock_differs_from_real_only_when_deceptive():
    spec = make_spec(
        stream={"duration_s": 1800.0, "arrivals": {"rate_per_s": 3.0}},
        lineup={"item": {"stock": 200, "tactics": {"scarcity_cue": {"threshold": 30, "gain": 3.0}}}},
        arms={"control": {}, "honest": {"tactics": ["item.scarcity_cue"]},
              "fake": {"tactics": ["item.scarcity_cue"],
                       "set": {"lineup.item.tactics.scarcity_cue.displayed_stock": 3, "lineup.item.stock": None}}},
    )
    t = run_tables(spec)
    for arm in ("honest", "fake"):
        ev = t[arm].events
        cue = ev[(ev.tactic == "scarcity_cue") & (ev.kind == "tactic_start")]
        assert len(cue) == 1
        shown_at, displayed = cue.time_s.iloc[0], cue.value.iloc[0]
        sold_before = (purchases(t[arm]).time_s <= shown_at).sum()
        if arm == "honest":  # the cue says what is true: 30 left when 170 are sold
            assert displayed == 30 and 200 - sold_before == displayed
        else:  # "only 3 left" from the start, and it stays while hundreds are sold
            assert displayed == 3 and shown_at == 0.0 and sold_before == 0
            assert len(purchases(t[arm])) > 200
            assert t[arm].runs.units_sold.iloc[0] > 200


def test_regret_is_counted_from_surplus():
    spec = make_spec(
        stream={"duration_s": 1800.0, "arrivals": {"rate_per_s": 3.0}},
        population={"segments": {"all": {"valuation": {"mean": 0.9, "cv": 0.0}}}},
        lineup={"item": {"price": 10.0, "tactics": {"lightning_sale": {"start_s": 600.0, "end_s": 1200.0,
                                                                       "discount": 0.2, "gain": 1.0}}}},
        arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]}},
    )
    t = run_tables(spec)["sale"]
    p = purchases(t).merge(t.shoppers[["shopper_id", "surplus", "regretted"]], on="shopper_id")
    in_sale = (p.time_s >= 600) & (p.time_s < 1200)
    # valuation is 9 for everyone: at 10 every purchase is regretted (surplus -1), at 8 none (+1)
    assert np.allclose(p.loc[in_sale, "surplus"], 1.0) and (p.loc[in_sale, "regretted"] == 0).all()
    assert np.allclose(p.loc[~in_sale, "surplus"], -1.0) and (p.loc[~in_sale, "regretted"] == 1).all()
    assert t.runs.regretted_purchases.iloc[0] == (~in_sale).sum()
    assert t.runs.consumer_surplus.iloc[0] == pytest.approx(in_sale.sum() - (~in_sale).sum())


def test_dark_patterns_experiment(tmp_path):
    res = run(ROOT / "experiments/dark_patterns.toml", tmp_path / "dp", replicates=3, workers=1)
    exp = res.experiment
    assert set(exp.arms["ban_timer"].tactics) == set(exp.arms["all_dark"].tactics) - {"skincare.countdown_timer"}
    lab = attribute(res)
    assert set(lab.label.unique()) <= set(LABELS)
    by_q = impact(res)
    assert set(by_q.group) == {"Q1", "Q2", "Q3", "Q4", "Q5"}
    induced = by_q[(by_q.measure == "induced_purchases") & (by_q.arm == "all_dark")].set_index("group")["mean"]
    assert induced["Q5"] > 3 * induced["Q1"], "the most impulsive are the ones the tactics move"
    assert {"mean", "ci_lower", "ci_upper", "replicates"} <= set(by_q.columns)
    assert (by_q.replicates == 3).all()
    by_seg = impact(res, by="segment")
    assert set(by_seg.group) == {"deliberate", "average", "impulsive"}


def test_attribution_needs_common_random_numbers(tmp_path):
    from fomolab.errors import ResultsError

    spec = make_spec(experiment={"common_random_numbers": False}, arms={"control": {}, "b": {}})
    with pytest.raises(ResultsError, match="common random numbers"):
        attribute(run(experiment(spec), tmp_path / "r"))


def test_identical_arms_under_crn_are_reported_not_tested(tmp_path):
    from fomolab.stats import compare_arms

    spec = make_spec(experiment={"replicates": 3}, arms={"control": {}, "same": {}})
    tab = compare_arms(run(experiment(spec), tmp_path / "r"))
    assert len(tab) == 4 and tab.p.isna().all()
    assert tab.note.str.contains("identical to the control").all()
    assert tab.set_index("measure").estimate.to_dict() == {"hazard_ratio": 1.0, "median_shift_s": 0.0,
                                                           "odds_ratio": 1.0, "risk_difference": 0.0}
