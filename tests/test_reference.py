"""The reference scenario against the conversion its hazards imply.

The hazard is written out here by hand from the model (docs/MODEL.md), not taken
from the engine, and integrated numerically: the simulated conversion must lie
within 3 binomial standard errors of it.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fomolab import Results
from fomolab.cli import main

R0 = 1 / 1800  # base purchase hazard, per second
T, RATE, DWELL = 3600.0, 2.0, 300.0
SALE = (1200.0, 1500.0)


def cumulative_hazard(t: np.ndarray, z: float, flash: bool) -> np.ndarray:
    """H(t) = integral of h from 0 to t, for one impulsiveness z."""
    H = R0 * t
    if flash:
        a, b = SALE
        u = np.clip(t, a, b) - a  # seconds of sale elapsed by t
        # h - R0 inside the sale: R0 * [(1+4z)(1+2z u/300) - 1] = R0 * [4z + (1+4z) 2z u / 300]
        H = H + R0 * (4 * z * u + (1 + 4 * z) * (2 * z / 300) * u**2 / 2)
    return H


def expected_conversion(flash: bool) -> float:
    """P(a viewer buys), integrating over arrival time, dwell (cut at T) and z ~ Beta(2, 5)."""
    t = np.linspace(0.0, T, 72_001)  # 0.05 s grid
    zq, wq = np.polynomial.legendre.leggauss(64)
    z_nodes = (zq + 1) / 2
    weights = wq / 2 * stats.beta(2, 5).pdf(z_nodes)
    total = 0.0
    for z, w in zip(z_nodes, weights, strict=True):
        G = t / DWELL + cumulative_hazard(t, z, flash)
        f = np.exp(-G) / DWELL
        # I(a) = int_a^T f dt by the trapezoid rule, accumulated from the right
        seg = (f[1:] + f[:-1]) / 2 * np.diff(t)
        I = np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]])
        p_no_buy = np.exp(G) * (I + np.exp(-G[-1]))
        buy = 1 - p_no_buy
        total += w * np.sum((buy[1:] + buy[:-1]) / 2 * np.diff(t)) / T
    return float(total)


def test_integration_is_accurate():
    # Without tactics the conversion has a closed form for exponential dwell:
    # P = (r/(r+mu)) * (1 - (1 - exp(-(r+mu) T)) / ((r+mu) T)), with mu = 1/dwell.
    r, mu = R0, 1 / DWELL
    closed = r / (r + mu) * (1 - (1 - np.exp(-(r + mu) * T)) / ((r + mu) * T))
    assert expected_conversion(False) == pytest.approx(closed, rel=1e-7)


def test_reference_conversion_matches_integration(tmp_path, root):
    out = tmp_path / "ref"
    assert main(["run", str(root / "experiments/reference_flash.toml"), "--out", str(out), "--quiet",
                 "--workers", "1"]) == 0
    runs = Results(out).runs
    assert len(runs) == 40
    for arm, flash in (("control", False), ("flash", True)):
        sub = runs[runs.arm == arm]
        n, buyers = sub.viewers.sum(), sub.buyers.sum()
        p_hat = buyers / n
        p = expected_conversion(flash)
        se = np.sqrt(p * (1 - p) / n)
        assert abs(p_hat - p) < 3 * se, f"{arm}: simulated {p_hat:.5f}, integrated {p:.5f}, se {se:.5f}"
