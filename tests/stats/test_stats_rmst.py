"""Known-answer tests of rmst and rmst_difference against R's printed output.

``pbc_trial.csv`` holds columns id, time (days), status (0 censored, 1
transplant, 2 death) and trt of the first 312 rows of R's ``survival::pbc``
(data/pbc.rda of therneau/survival, commit a2533a92), the rows
``survRM2::rmst2.sample.data()`` selects; that function uses time / 365.25
and status == 2 as the event, as the fixture below does.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_lung

from fomolab.errors import DataError
from fomolab.stats import rmst, rmst_difference

# Sources SURVRM2 and SURV_EX_A2 in the comments below: see r_output.py.
from r_output import close_to_printed as _close

DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def pbc() -> pd.DataFrame:
    d = pd.read_csv(DATA / "pbc_trial.csv")
    assert len(d) == 312 and (d["trt"] == 1).sum() == 158
    return d.assign(years=d["time"] / 365.25, dead=(d["status"] == 2).astype(int),
                    arm=(d["trt"] == 1).astype(int))


def test_rmst2_pbc_vignette(pbc):
    # R: obj = rmst2(time, status, arm, tau=10); print(obj), source SURVRM2:
    #               Est.    se lower .95 upper .95
    # RMST (arm=1) 7.146 0.283     6.592     7.701
    # RMST (arm=0) 7.283 0.295     6.704     7.863
    # RMTL (arm=1) 2.854 0.283     2.299     3.408
    # RMTL (arm=0) 2.717 0.295     2.137     3.296
    #                        Est. lower .95 upper .95     p
    # RMST (arm=1)-(arm=0) -0.137    -0.939     0.665 0.738
    # RMST (arm=1)/(arm=0)  0.981     0.878     1.096 0.738
    # RMTL (arm=1)/(arm=0)  1.050     0.787     1.402 0.738
    res = rmst_difference(pbc, "years", "dead", by="arm", control=0, tau=10)
    arms = res.arms.summary.set_index("group")
    for g, vals in {1: ("7.146", "0.283", "6.592", "7.701", "2.854"),
                    0: ("7.283", "0.295", "6.704", "7.863", "2.717")}.items():
        for col, v in zip(("rmst", "se", "ci_lower", "ci_upper", "rmtl"), vals, strict=True):
            _close(arms.loc[g, col], v)
    s = res.summary.set_index("measure")
    for m, vals in {"rmst_difference": ("-0.137", "-0.939", "0.665", "0.738"),
                    "rmst_ratio": ("0.981", "0.878", "1.096", "0.738"),
                    "rmtl_ratio": ("1.050", "0.787", "1.402", "0.738")}.items():
        for col, v in zip(("estimate", "ci_lower", "ci_upper", "p"), vals, strict=True):
            _close(s.loc[m, col], v)


def test_rmean_lung_by_ecog():
    # R: fit2 <- survfit(Surv(time, status) ~ ph.ecog, data=lung); print(fit2, rmean=730)
    # source SURV_EX_A2 (example of ?pseudo, "compare this to the fully
    # non-parametric estimate"):
    #             n events rmean* se(rmean) median 0.95LCL 0.95UCL
    # ph.ecog=0  63     37    429      32.2    394     348     574
    # ph.ecog=1 113     82    366      22.4    306     268     429
    # ph.ecog=2  50     44    256      30.0    199     156     288
    # ph.ecog=3   1      1    118       0.0    118      NA      NA
    lung = load_lung().dropna(subset=["ph.ecog"])
    s = rmst(lung, "time", "status", by="ph.ecog", tau=730).summary.set_index("group")
    for g, (n, ev, mu, se) in {0: (63, 37, "429", "32.2"), 1: (113, 82, "366", "22.4"),
                               2: (50, 44, "256", "30.0"), 3: (1, 1, "118", "0.0")}.items():
        assert (s.loc[g, "n"], s.loc[g, "events"]) == (n, ev)
        _close(s.loc[g, "rmst"], mu)
        _close(s.loc[g, "se"], se)


def test_rmst_by_hand_and_horizon_rules():
    df = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 1, 0, 1]})
    # S = 3/4 on [1, 2), 1/2 on [2, 4): area to 3.5 = 1 + .75 + .5 * 1.5
    res = rmst(df, "t", "e", tau=3.5).summary.iloc[0]
    assert res["rmst"] == pytest.approx(2.5)
    assert res["rmtl"] == pytest.approx(1.0)
    # variance by hand: A_1 = 0.75 + 0.75 (area from 1 to 3.5), A_2 = 0.75
    var = 1.5 ** 2 * 1 / (4 * 3) + 0.75 ** 2 * 1 / (3 * 2)
    assert res["se"] == pytest.approx(np.sqrt(var))
    assert res["at_risk_tau"] == 1
    # beyond the last time: allowed when the curve ended at 0 (last time is an event)
    assert rmst(df, "t", "e", tau=10).summary["rmst"].iloc[0] == pytest.approx(1 + .75 + .5 * 2)
    with pytest.raises(DataError, match="beyond the last follow-up"):
        rmst(df.assign(e=[1, 1, 1, 0]), "t", "e", tau=10)
    with pytest.raises(DataError, match="tau"):
        rmst(df, "t", "e", tau=-1)
    # default tau: the smallest of the groups' largest times
    two = pd.DataFrame({"t": [1, 2, 3, 1, 2, 5], "e": [1, 0, 0, 1, 0, 0], "g": list("aaabbb")})
    assert rmst(two, "t", "e", by="g").tau == 3.0


def test_rmst_difference_refuses_missing_control(pbc):
    with pytest.raises(DataError, match="control 5"):
        rmst_difference(pbc, "years", "dead", by="arm", control=5, tau=10)
