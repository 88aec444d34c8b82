"""Known-answer tests of cumulative_incidence and restricted_time_in_state.

R's printed ``rmean`` / ``se(rmean)`` of multi-state survfit objects (source
SURV_EX_A2) test both the Aalen–Johansen curves (their integrals) and the
infinitesimal-jackknife influence the standard errors are built from.  The
pointwise standard errors are checked against a brute-force infinitesimal
jackknife (numerical derivatives with respect to each case weight), the curves
against lifelines' AalenJohansenFitter.

Data: ``mgus1_first.csv`` is R's ``survival::mgus1`` rows with ``enum == 1``
(columns id, sex, stop, event; 241 rows) and ``transplant.csv`` is R's
``survival::transplant`` (columns abo, futime, event; 815 rows), both from
therneau/survival data/*.rda at commit a2533a92, values unchanged.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest

from fomolab.errors import DataError
from fomolab.stats import cumulative_incidence, kaplan_meier, restricted_time_in_state

from r_output import close_to_printed as _close

DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def mgus() -> pd.DataFrame:
    d = pd.read_csv(DATA / "mgus1_first.csv")
    assert len(d) == 241
    return d


def test_mgus_restricted_mean_time_in_state(mgus):
    # R, source SURV_EX_A2 (example of ?mgus):
    # sfit <- survfit(Surv(start, stop, event) ~ sex, mgus1, id=id, subset=(enum==1))
    # print(sfit)
    #                     n nevent    rmean se(rmean)*
    # sex=female, (s0)  104      0 5762.379   372.6367
    # sex=male, (s0)    137      0 4543.293   315.1668
    # sex=female, pcm   104     33 2881.500   400.8899
    # sex=male, pcm     137     31 2478.026   397.9675
    # sex=female, death 104     63 5681.121   462.1850
    # sex=male, death   137    100 7303.682   452.9533
    #    *restricted mean time in state (max time = 14325 )
    res = restricted_time_in_state(mgus, "stop", "event", by="sex", censored="censor")
    assert res.tau == 14325
    s = res.summary.set_index(["group", "state"])
    printed = {("female", "(none)"): "5762.379", ("male", "(none)"): "4543.293",
               ("female", "pcm"): "2881.500", ("male", "pcm"): "2478.026",
               ("female", "death"): "5681.121", ("male", "death"): "7303.682"}
    for key, v in printed.items():
        _close(s.loc[key, "rmean"], v)
    assert s.loc[("female", "pcm"), "events"] == 33 and s.loc[("male", "death"), "events"] == 100
    # per group the states share out tau
    assert s.xs("female", level="group")["rmean"].sum() == pytest.approx(14325)
    # R's se(rmean) is that of the integral up to each group's last time
    ses = {("female", "(none)"): "372.6367", ("male", "(none)"): "315.1668",
           ("female", "pcm"): "400.8899", ("male", "pcm"): "397.9675",
           ("female", "death"): "462.1850", ("male", "death"): "452.9533"}
    for sex in ("female", "male"):
        sub = mgus[mgus["sex"] == sex]
        r = restricted_time_in_state(sub, "stop", "event", censored="censor",
                                     tau=float(sub["stop"].max())).summary.set_index("state")
        for state in ("(none)", "pcm", "death"):
            _close(r.loc[state, "se"], ses[(sex, state)])


def test_transplant_time_lost_to_death_by_blood_type():
    # R, source SURV_EX_A2 (example of ?transplant):
    # pfit <- survfit(Surv(futime, event) ~ abo, transplant); pfit[,2]
    #                 n nevent    rmean se(rmean)*
    # abo=A, death  325     21 164.9734   17.49968
    # abo=B, death  103     10 202.4902   59.61134
    # abo=AB, death  41      3 137.8293   19.65319
    # abo=O, death  346     32 182.1075   28.17050
    #    *restricted mean time in state (max time = 2055 )
    tp = pd.read_csv(DATA / "transplant.csv")
    res = restricted_time_in_state(tp, "futime", "event", by="abo", censored="censored")
    s = res.summary[res.summary["state"] == "death"].set_index("group")
    printed = {"A": ("325", "21", "164.9734", "17.49968"), "B": ("103", "10", "202.4902", "59.61134"),
               "AB": ("41", "3", "137.8293", "19.65319"), "O": ("346", "32", "182.1075", "28.17050")}
    for abo, (n, ev, mean, se) in printed.items():
        assert (s.loc[abo, "n"], s.loc[abo, "events"]) == (int(n), int(ev))
        _close(s.loc[abo, "rmean"], mean)
        sub = tp[tp["abo"] == abo]
        last = restricted_time_in_state(sub, "futime", "event", censored="censored",
                                        tau=float(sub["futime"].max())).summary
        _close(float(last.loc[last["state"] == "death", "se"].iloc[0]), se)


def _brute_ij(t, ev, cause, times):
    """Numerical derivative of the Aalen–Johansen estimate w.r.t. each case weight."""
    def aj(w):
        ut = np.unique(t)
        S, F, out = 1.0, 0.0, []
        for u in ut:
            n = w[t >= u].sum()
            d = w[(t == u) & (ev != 0)].sum()
            dk = w[(t == u) & (ev == cause)].sum()
            F += S * dk / n
            S *= 1 - d / n
            out.append(F)
        out = np.array(out)
        return np.array([out[np.searchsorted(ut, x, side="right") - 1] for x in times])
    base = np.ones(len(t))
    h = 1e-6
    infl = np.array([(aj(base + h * np.eye(len(t))[i]) - aj(base - h * np.eye(len(t))[i])) / (2 * h)
                     for i in range(len(t))])
    return np.sqrt((infl ** 2).sum(axis=0))


def test_pointwise_se_is_the_infinitesimal_jackknife():
    rng = np.random.default_rng(3)
    n = 40
    t = rng.integers(1, 15, size=n).astype(float)  # many ties
    ev = rng.choice([0, 1, 2], size=n, p=[0.3, 0.4, 0.3])
    df = pd.DataFrame({"t": t, "ev": ev})
    ci = cumulative_incidence(df, "t", "ev")
    for cause in (1, 2):
        cur = ci.curve[ci.curve["cause"] == cause]
        want = _brute_ij(t, ev, cause, cur["time"].to_numpy())
        np.testing.assert_allclose(cur["std_err"], want, rtol=1e-6, atol=1e-9)


def test_curves_match_lifelines_and_add_up(mgus):
    from lifelines import AalenJohansenFitter
    codes = mgus["event"].map({"censor": 0, "pcm": 1, "death": 2})
    ci = cumulative_incidence(mgus.assign(code=codes), "stop", "code")
    for cause in (1, 2):
        aj = AalenJohansenFitter(calculate_variance=False).fit(mgus["stop"], codes, event_of_interest=cause)
        lf = aj.cumulative_density_.iloc[:, 0]
        cur = ci.curve[ci.curve["cause"] == cause].set_index("time")["cuminc"]
        common = cur.index.intersection(lf.index)
        np.testing.assert_allclose(cur.loc[common], lf.loc[common], rtol=1e-10, atol=1e-12)
    # causes + event-free = 1, the event-free share being Kaplan–Meier of any event
    km = kaplan_meier(mgus.assign(any=(codes > 0).astype(int)), "stop", "any").curve
    total = ci.curve.groupby("time")["cuminc"].sum()
    np.testing.assert_allclose(total.to_numpy() + km["survival"].to_numpy(), 1.0, atol=1e-12)


def test_summary_at_a_horizon_and_bad_input():
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "what": ["buy", "leave", "buy", 0, "leave", "buy"]})
    ci = cumulative_incidence(df, "t", "what", at=3.5)
    row = ci.summary.set_index("cause").loc["buy"]
    assert row["cuminc"] == pytest.approx(1 / 6 + 4 / 6 * 1 / 4)  # S(2) = 4/6, 1 buy of 4 at t=3
    assert row["at_risk"] == 3
    ll = cumulative_incidence(df, "t", "what", conf_type="log-log").summary
    assert (ll["ci_lower"] <= ll["cuminc"]).all()
    with pytest.raises(DataError, match="only the censoring value"):
        cumulative_incidence(df.assign(what=0), "t", "what")
    with pytest.raises(DataError, match="conf_type"):
        cumulative_incidence(df, "t", "what", conf_type="arcsin")
