"""Self-check item 11 (few replicates) at quick size, and the truths it measures coverage against."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fomolab.validation import ITEMS, run_checks
from fomolab.validation import replicates as item


def test_item_11_is_registered():
    assert 11 in ITEMS


def test_truth_closed_forms_against_numerical_integration():
    # the cumulative incidence of buying by tau and the restricted mean, integrated on a fine grid
    mu, tau = 1 / item.DWELL, item.TAU
    t = np.linspace(0.0, tau, 200_001)
    out = {}
    for arm, h in (("control", item.BASE), ("sale", item.BASE * (1 + item.GAIN * item.Z))):
        out[arm] = (np.trapezoid(h * np.exp(-(h + mu) * t), t), np.trapezoid(np.exp(-h * t), t))
    truth = item.truth()
    assert truth["hazard_ratio"] == 1.5
    assert truth["cif_difference"] == pytest.approx(out["sale"][0] - out["control"][0], rel=1e-8)
    assert truth["rmst_difference_s"] == pytest.approx(out["sale"][1] - out["control"][1], rel=1e-8)
    # conversion over the visit (which the stream's end cuts), against the model's numerical integration
    from fomolab.theory import expected_outcomes
    from fomolab.validation._sim import experiment

    exp = experiment(item.scenario())
    conv = {a: expected_outcomes(exp.arms[a].scenario, dt=0.05).conversion for a in ("control", "sale")}
    # the trapezoid rule of expected_outcomes is within 5e-6 of the exact value at this step
    assert truth["risk_difference"] == pytest.approx(conv["sale"] - conv["control"], abs=5e-6)


def test_band_is_the_acceptance_band_at_full_size_and_wider_at_quick_size():
    assert item._band((0.93, 0.97), 0.95, 1000, 1000)[:2] == (0.93, 0.97)
    lo, hi, text = item._band((0.93, 0.97), 0.95, 100, 1000)
    se = math.sqrt(0.95 * 0.05 / 100)
    assert (lo, hi) == pytest.approx((0.93 - 3 * se, min(1.0, 0.97 + 3 * se)))
    assert "widened by 3 binomial SE at 100 experiments" in text


def test_item_11_quick():
    checks = run_checks("quick", [11])
    assert len(checks) == 3 * 4 * 2
    failed = [c for c in checks if not c.passed]
    assert not failed, "\n".join(map(repr, failed))
    for c in checks:
        assert c.figure and c.target and c.item == 11


def test_full_size_runs_at_least_400_experiments_per_replicate_count_on_every_required_measure():
    assert item.REPLICATES == (3, 5, 10)
    assert {"hazard_ratio", "rmst_difference_s", "cif_difference"} <= set(item.MEASURES)
    assert all(item._experiments(G, item.SIZES["full"]) >= 400 for G in item.REPLICATES)
    assert (item.COVER_BAND, item.FPR_BAND) == ((0.93, 0.97), (0.03, 0.07))


@pytest.mark.slow
def test_item_11_full():
    """The self-check at full size: 1,000 to 3,000 experiments per replicate count, the acceptance bands unwidened."""
    import re

    checks = run_checks("full", [11])
    assert len(checks) == 3 * 4 * 2
    failed = [c for c in checks if not c.passed]
    assert not failed, "\n".join(map(repr, failed))
    for c in checks:
        n = int(re.search(r"of ([\d,]+) experiments", c.figure).group(1).replace(",", ""))
        assert n >= 400 and c.target in ("93% to 97%", "3% to 7%")
