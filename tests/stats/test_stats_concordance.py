"""Concordance in O(n log n): equal to lifelines' ``concordance_index`` and to the
direct pair-by-pair count on data with ties in time and in the predictor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines.utils import concordance_index

from fomolab.errors import DataError
from fomolab.stats import cox
from fomolab.stats.concordance import CONCORDANCE_FIELDS, _prefix_counts, concordance
from fomolab.stats.cox import _RiskSets


def _direct(lp: np.ndarray, rs: _RiskSets) -> pd.Series:
    """Pair by pair over each event time's risk set: O(rows x event times)."""
    n = rs.n
    conc_i = np.zeros(n)
    pair_i = np.zeros(n)
    conc = disc = tx = ty = txy = 0.0
    for gi, gk in enumerate(rs.gkeys):
        dead = rs.ev_rows[rs.ev_group == gi]
        at_risk = (rs.key_start < gk) & (rs.key_stop >= gk)
        at_risk[dead] = False
        alive = np.flatnonzero(at_risk)
        for a in range(len(dead)):
            for b in range(a + 1, len(dead)):
                if lp[dead[a]] == lp[dead[b]]:
                    txy += 1
                else:
                    ty += 1
        for i in dead:
            for j in alive:
                if lp[j] < lp[i]:
                    conc += 1
                    conc_i[i] += 1  # each row's share of its concordant pairs
                    conc_i[j] += 1
                elif lp[j] > lp[i]:
                    disc += 1
                else:
                    tx += 1
                    conc_i[i] += 0.5
                    conc_i[j] += 0.5
                pair_i[i] += 1
                pair_i[j] += 1
    npair = conc + disc + tx
    c = (conc + tx / 2) / npair
    se = float(np.sqrt(np.sum(((conc_i - c * pair_i) / npair) ** 2)))
    return pd.Series(dict(zip(CONCORDANCE_FIELDS, (c, se, conc, disc, tx, ty, txy),
                              strict=True)))


def _tied_data(n: int, seed: int, counting: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, n).astype(float)  # heavy ties in the predictor
    t = np.ceil(rng.exponential(8.0 / (1 + x)) + 0.01)  # heavy ties in time
    e = rng.random(n) < 0.7
    d = pd.DataFrame({"t": t, "e": e.astype(int), "x": x, "s": rng.integers(0, 2, n),
                      "z": rng.normal(size=n).round(1)})
    if counting:
        d["t0"] = np.floor(rng.random(n) * d["t"] * 0.8)
    return d


def test_prefix_counts_match_brute_force():
    rng = np.random.default_rng(3)
    v = rng.integers(0, 7, 37)
    k = rng.integers(0, 38, 200)
    x = rng.integers(-1, 9, 200)
    lt, le = _prefix_counts(v, 7, k, np.clip(x, 0, 6))
    for kk, xx, a, b in zip(k, np.clip(x, 0, 6), lt, le, strict=True):
        assert a == (v[:kk] < xx).sum() and b == (v[:kk] <= xx).sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_lifelines_concordance_index_with_ties(seed):
    d = _tied_data(3000, seed)
    ours = concordance(d, "t", "e", "x").summary.iloc[0]
    theirs = concordance_index(d["t"], d["x"], d["e"])
    assert ours["concordance"] == pytest.approx(theirs, abs=1e-12)
    assert ours["tied_x"] > 0 and ours["tied_y"] > 0 and ours["tied_xy"] > 0
    # reverse: a larger predictor means an earlier event
    rev = concordance(d, "t", "e", "x", reverse=True).summary.iloc[0]
    assert rev["concordance"] == pytest.approx(1 - theirs, abs=1e-12)
    assert rev["concordant"] == ours["discordant"]


@pytest.mark.parametrize(("counting", "strata"), [(False, None), (True, None), (False, "s"),
                                             (True, "s")])
def test_equals_direct_count_on_small_data(counting, strata):
    d = _tied_data(150, 11, counting=counting)
    fit = cox(d, "t", "e", ["x", "z"], start="t0" if counting else None, strata=strata)
    got = fit.concordance
    want = _direct(fit._lp, fit._rs)
    for f in CONCORDANCE_FIELDS:
        assert got[f] == pytest.approx(want[f], rel=1e-12, abs=1e-12), f
    assert want["tied_x"] > 0 and want["tied_xy"] > 0
    # the public function on the linear predictor gives the same
    d["lp"] = fit._lp
    pub = concordance(d, "t", "e", "lp", start="t0" if counting else None, strata=strata,
                      reverse=True).summary.iloc[0]
    for f in CONCORDANCE_FIELDS:
        assert pub[f] == pytest.approx(want[f], rel=1e-12, abs=1e-12), f


def test_result_and_errors():
    d = _tied_data(50, 4)
    res = concordance(d, "t", "e", "x")
    assert list(res.summary.columns) == list(res.COLUMNS)
    assert repr(res).startswith("<ConcordanceResult: C=")
    with pytest.raises(DataError, match="nope"):
        concordance(d, "t", "e", "nope")
