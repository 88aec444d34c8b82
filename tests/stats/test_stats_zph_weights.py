"""Known-answer tests of cox_zph, Cox case weights, the weighted log-rank test
and the log-log / plain Kaplan–Meier intervals, with the edge cases of cox and
logrank.

Tolerance: half a unit in the last digit R printed.  ``ovarian.csv`` is R's
``survival::ovarian`` (data/cancer.rda of therneau/survival, commit a2533a92,
26 rows), written out unchanged.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_lung

from fomolab.errors import ConvergenceWarning, DataError, StatisticalWarning
from fomolab.stats import cox, cox_zph, kaplan_meier, logrank

from r_output import close_to_printed as _close

DATA = pathlib.Path(__file__).parent / "data"


def test_zph_ovarian_km_transform():
    # R: fit <- coxph(Surv(futime, fustat) ~ age + ecog.ps, data=ovarian)
    #    print(cox.zph(fit)), source SURV_EX_A2 (example of ?cox.zph, survival 3.x
    #    score-test form):
    #         chisq df    p
    # age     0.698  1 0.40
    # ecog.ps 2.371  1 0.12
    # GLOBAL  3.633  2 0.16
    ov = pd.read_csv(DATA / "ovarian.csv")
    zp = cox_zph(cox(ov, "futime", "fustat", ["age", "ecog.ps"]))
    for name, (chisq, p) in {"age": ("0.698", "0.40"), "ecog.ps": ("2.371", "0.12"),
                             "GLOBAL": ("3.633", "0.16")}.items():
        _close(zp.summary.loc[name, "chisq"], chisq)
        _close(zp.summary.loc[name, "p"], p)
    assert list(zp.summary["df"]) == [1, 1, 2]
    assert zp.transform == "km"


def _closed_form(g, U, imat):
    u2 = np.array([U.sum(), (g * U).sum()])
    i2 = np.array([[imat.sum(), (g * imat).sum()], [(g * imat).sum(), (g * g * imat).sum()]])
    return float(np.linalg.solve(i2, u2) @ u2)


# R: test1 of tests/zph.Rout.save (source ZPH) without its row whose status is NA
TEST1 = pd.DataFrame({"time": [9, 1, 1, 6, 6, 8], "status": [1, 1, 0, 1, 1, 0],
                      "x": [0, 1, 1, 1, 0, 0]})


def test_zph_is_the_score_test_breslow_and_efron():
    # Source ZPH: R checks cox.zph(fit1, transform='identity'/'log') against
    # the closed form score test below (aeq(...) TRUE), with r the exact MLE.
    g = np.array([1.0, 6.0, 6.0, 9.0])
    r = (3 + np.sqrt(33)) / 2
    U = np.array([1 / (r + 1), 3 / (r + 3), -r / (r + 3), 0])
    imat = np.array([r / (r + 1) ** 2, 3 * r / (r + 3) ** 2, 3 * r / (r + 3) ** 2, 0])
    fb = cox(TEST1, "time", "status", "x", ties="breslow")
    assert fb.summary.loc["x", "coef"] == pytest.approx(np.log(r), rel=1e-9)
    got = cox_zph(fb, "identity").summary.loc["x", "chisq"]
    assert got == pytest.approx(_closed_form(g, U, imat), rel=1e-8)
    g3 = np.log(g) - np.log(g).mean()
    assert cox_zph(fb, "log").summary.loc["x", "chisq"] == pytest.approx(
        _closed_form(g3, U, imat), rel=1e-8)
    # Efron: U, imat of the zph.Rout.save Efron block
    phi = np.arccos((45 / 23) * np.sqrt(3 / 23))
    r = 2 * np.sqrt(23 / 3) * np.cos(phi / 3)
    U = np.array([1 / (r + 1), 3 / (r + 3), -r / (r + 5), 0])
    imat = np.array([r / (r + 1) ** 2, 3 * r / (r + 3) ** 2, 5 * r / (r + 5) ** 2, 0])
    fe = cox(TEST1, "time", "status", "x")
    assert fe.summary.loc["x", "coef"] == pytest.approx(np.log(r), rel=1e-9)
    assert cox_zph(fe, "log").summary.loc["x", "chisq"] == pytest.approx(
        _closed_form(g3, U, imat), rel=1e-8)
    # start times of 0 change nothing (fit5 of the transcript)
    t0 = TEST1.assign(zero=0)
    f5 = cox(t0, "time", "status", "x", start="zero")
    assert cox_zph(f5, "log").summary.loc["x", "chisq"] == pytest.approx(
        _closed_form(g3, U, imat), rel=1e-8)
    # doubled data in two strata: the statistic doubles (fit6 of the transcript)
    t2 = pd.concat([TEST1.assign(grp="a"), TEST1.assign(grp="b")], ignore_index=True)
    f6 = cox(t2, "time", "status", "x", strata="grp")
    assert cox_zph(f6, "log").summary.loc["x", "chisq"] == pytest.approx(
        2 * _closed_form(g3, U, imat), rel=1e-8)


def test_zph_rank_transform_is_identity_on_ranks():
    ov = pd.read_csv(DATA / "ovarian.csv")
    from scipy.stats import rankdata
    a = cox_zph(cox(ov, "futime", "fustat", ["age"]), "rank").summary
    ov2 = ov.assign(r=rankdata(ov["futime"]))
    b = cox_zph(cox(ov2, "r", "fustat", ["age"]), "identity").summary
    assert a.loc["age", "chisq"] == pytest.approx(b.loc["age", "chisq"], rel=1e-10)


def test_zph_refuses_bad_transform():
    with pytest.raises(DataError, match="transform"):
        cox_zph(cox(TEST1, "time", "status", "x"), "sqrt")


TESTW1 = pd.DataFrame({"time": [1, 1, 2, 2, 2, 2, 3, 4, 5], "status": [1, 0, 1, 1, 1, 0, 0, 1, 0],
                       "x": [2, 0, 1, 1, 0, 1, 0, 1, 0], "wt": [1, 2, 3, 4, 3, 2, 1, 2, 1]})


def test_cox_case_weights_breslow_and_efron():
    # R, source DOWEIGHT: summary(coxph(Surv(time, status) ~ x, testw1, weights=wt,
    #                                   ties='breslow'))
    #     coef exp(coef) se(coef)     z Pr(>|z|)
    # x 0.8596    2.3621   0.7131 1.205    0.228
    # Likelihood ratio test= 1.69; Wald test = 1.45; Score (logrank) test = 1.52
    fb = cox(TESTW1, "time", "status", "x", weights="wt", ties="breslow")
    for col, v in zip(("coef", "hazard_ratio", "se", "z", "p"),
                      ("0.8596", "2.3621", "0.7131", "1.205", "0.228"), strict=True):
        _close(fb.summary.loc["x", col], v)
    _close(fb.summary.loc["x", "ci_lower"], "0.5839")
    _close(fb.summary.loc["x", "ci_upper"], "9.556")
    for test, v in (("likelihood_ratio", "1.69"), ("wald", "1.45"), ("score", "1.52")):
        _close(fb.tests.loc[test, "statistic"], v)
    # R: coxph(..., weights=wt, ties='efron')
    #     coef exp(coef) se(coef)     z     p
    # x 0.8726    2.3931   0.7126 1.225 0.221
    # Likelihood ratio test=1.75  on 1 df, p=0.1858
    fe = cox(TESTW1, "time", "status", "x", weights="wt")
    for col, v in zip(("coef", "hazard_ratio", "se", "z", "p"),
                      ("0.8726", "2.3931", "0.7126", "1.225", "0.221"), strict=True):
        _close(fe.summary.loc["x", col], v)
    _close(fe.tests.loc["likelihood_ratio", "statistic"], "1.75")
    _close(fe.tests.loc["likelihood_ratio", "p"], "0.1858")
    assert "weights='wt'" in repr(fe)


def test_cox_weights_score_residuals_match_r():
    # R, source DOWEIGHT: resid(fit, type='score') of the Efron weighted fit
    from fomolab.stats.cox import _score_residuals
    fe = cox(TESTW1, "time", "status", "x", weights="wt")
    got = _score_residuals(fe.summary["coef"].to_numpy(), fe._x, fe._rs, "efron").ravel()
    printed = ["0.88116056", "0.02477248", "0.06057806", "0.06057806", "-0.59724033",
               "-0.16737066", "0.38040295", "-0.13750290", "0.66631324"]
    for g, v in zip(got, printed, strict=True):
        _close(g, v)


def test_cox_integer_weights_equal_replicated_rows():
    rep = TESTW1.loc[TESTW1.index.repeat(TESTW1["wt"])].reset_index(drop=True)
    # under Breslow ties (under Efron, replicating a death adds tied deaths)
    a = cox(TESTW1, "time", "status", "x", weights="wt", ties="breslow")
    b = cox(rep, "time", "status", "x", ties="breslow")
    np.testing.assert_allclose(a.summary[["coef", "se"]], b.summary[["coef", "se"]], rtol=1e-9)


def test_cox_refuses_nonpositive_weights():
    with pytest.raises(DataError, match="wt"):
        cox(TESTW1.assign(wt=0), "time", "status", "x", weights="wt")


def test_logrank_rho_half_lung_inst():
    # R, source CANCER_A2: print(survdiff(Surv(time, status) ~ inst, lung, rho=.5), digits=6)
    #          N  Observed  Expected   (O-E)^2/E   (O-E)^2/V
    # inst=1  36 21.190058 17.455181 0.799149708 1.171232977
    # inst=21 13  9.263733  4.460746 5.171484268 6.149354145
    # inst=33  2  0.929177  0.416202 0.632249272 0.676682390
    #  Chisq= 15.1  on 17 degrees of freedom, p= 0.5904
    lung = load_lung().dropna(subset=["inst"])  # R: 1 observation deleted due to missingness
    res = logrank(lung, "time", "status", by="inst", rho=0.5)
    s = res.summary.set_index("group")
    for inst, vals in {1.0: ("21.190058", "17.455181", "0.799149708", "1.171232977"),
                       21.0: ("9.263733", "4.460746", "5.171484268", "6.149354145"),
                       33.0: ("0.929177", "0.416202", "0.632249272", "0.676682390")}.items():
        for col, v in zip(("observed", "expected", "oe2_e", "oe2_v"), vals, strict=True):
            _close(s.loc[inst, col], v)
    _close(res.statistic, "15.1")
    _close(res.p, "0.5904")
    assert res.df == 17 and res.rho == 0.5


def test_logrank_rho_zero_is_the_logrank_test():
    lung = load_lung()
    a = logrank(lung, "time", "status", by="sex")
    b = logrank(lung, "time", "status", by="sex", rho=0)
    assert a.statistic == b.statistic
    with pytest.raises(DataError, match="rho"):
        logrank(lung, "time", "status", by="sex", rho=-1)


def test_logrank_without_events_reports_zero_df_and_warns():
    df = pd.DataFrame({"t": [1, 2, 3, 4], "e": [0, 0, 0, 0], "g": ["a", "a", "b", "b"]})
    with pytest.warns(StatisticalWarning, match="no events"):
        res = logrank(df, "t", "e", by="g")
    assert res.df == 0 and np.isnan(res.statistic) and np.isnan(res.p)


def test_km_log_log_intervals_match_lifelines():
    # lifelines' KaplanMeierFitter uses the log(-log) ("exponential Greenwood")
    # interval: the same formula as R's conf.type="log-log" on Greenwood's variance.
    lung = load_lung()
    km = kaplan_meier(lung, "time", "status", conf_type="log-log")
    lf = KaplanMeierFitter().fit(lung["time"], lung["status"]).confidence_interval_
    cur = km.curve.set_index("time")
    common = cur.index.intersection(lf.index)
    common = common[(cur.loc[common, "survival"] > 0) & (cur.loc[common, "survival"] < 1)]
    np.testing.assert_allclose(cur.loc[common, "ci_lower"], lf.loc[common].iloc[:, 0], rtol=1e-9)
    np.testing.assert_allclose(cur.loc[common, "ci_upper"], lf.loc[common].iloc[:, 1], rtol=1e-9)
    assert "log-log" in repr(km)


def test_log_log_band_matches_r_fleming_harrington_lung():
    # The one log-log interval R prints (source CANCER_A2) is of a Fleming–Harrington curve with Tsiatis'
    # variance: S = exp(-H), H = sum d/n, se(log S) = sqrt(sum d/n^2).  kaplan_meier's log-log intervals
    # are confidence_band on its own se(log S); fed R's H and se it must give R's 90 % limits.
    #   temp <- survfit(Surv(time, status)~1, lung, type='fleming',
    #                   conf.int=.9, conf.type='log-log', error='tsiatis')
    #   summary(temp, times=30 *1:5)
    #    time n.risk n.event survival std.err lower 90% CI upper 90% CI
    #      30    219      10    0.956  0.0135        0.928        0.974
    #      60    213       7    0.926  0.0173        0.891        0.950
    #      90    201      10    0.882  0.0213        0.842        0.913
    #     120    189      10    0.838  0.0244        0.793        0.874
    #     150    179      10    0.794  0.0268        0.745        0.834
    from fomolab.stats import nelson_aalen
    from fomolab.stats.kaplan_meier import confidence_band

    cur = nelson_aalen(load_lung(), "time", "status").curve
    tsiatis = np.sqrt(np.cumsum(cur["events"] / cur["at_risk"] ** 2))
    z = 1.6448536269514722  # qnorm(0.95)
    for t, surv, std_err, lo, hi in [(30, "0.956", "0.0135", "0.928", "0.974"),
                                     (60, "0.926", "0.0173", "0.891", "0.950"),
                                     (90, "0.882", "0.0213", "0.842", "0.913"),
                                     (120, "0.838", "0.0244", "0.793", "0.874"),
                                     (150, "0.794", "0.0268", "0.745", "0.834")]:
        i = int(np.flatnonzero(cur["time"] <= t)[-1])
        S, se = float(np.exp(-cur["mcf"].iloc[i])), float(tsiatis.iloc[i])
        _close(S, surv)
        _close(S * se, std_err)
        lower, upper = confidence_band(np.array([S]), np.array([se]), z, "log-log")
        _close(float(lower[0]), lo)
        _close(float(upper[0]), hi)
        other = confidence_band(np.array([S]), np.array([se]), z, "log")  # R's default differs here
        assert abs(float(other[0][0]) - float(lo)) > 0.001


def test_km_plain_and_log_log_by_hand():
    # S = 5/6 after one death among 6: Greenwood se of log S = sqrt(1 / (6 * 5))
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "e": [1, 0, 0, 0, 0, 0]})
    s, se, z = 5 / 6, np.sqrt(1 / 30), 1.959963984540054
    plain = kaplan_meier(df, "t", "e", conf_type="plain").curve.iloc[0]
    assert plain["ci_lower"] == pytest.approx(s - z * se * s, rel=1e-12)
    assert plain["ci_upper"] == 1.0  # s + z se s = 1.17 is clipped
    ll = kaplan_meier(df, "t", "e", conf_type="log-log").curve.iloc[0]
    assert ll["ci_lower"] == pytest.approx(np.exp(-np.exp(np.log(-np.log(s)) - z * se / np.log(s))))
    assert ll["ci_upper"] == pytest.approx(np.exp(-np.exp(np.log(-np.log(s)) + z * se / np.log(s))))
    assert ll["ci_upper"] < 1.0
    with pytest.raises(DataError, match="conf_type"):
        kaplan_meier(df, "t", "e", conf_type="logit")


def test_cox_loglik_exactly_zero_warns_instead_of_dividing_by_zero():
    # one event, its covariate far above everyone else's: the first Newton step
    # reaches a log partial likelihood of exactly 0.
    n = 60
    df = pd.DataFrame({"t": np.arange(1, n + 1), "e": [1] + [0] * (n - 1), "x": [1.0] + [0.0] * (n - 1)})
    with pytest.warns(ConvergenceWarning, match="separate the events"):
        fit = cox(df, "t", "e", "x")
    assert fit.loglik[1] == 0.0 and not fit.converged
    assert np.isnan(fit.summary.loc["x", "se"])


def test_cox_one_cluster_warns_and_gives_nan():
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5], "e": [1, 1, 0, 1, 0], "x": [1.0, 0, 1, 0, 1], "rep": 7})
    with pytest.warns(StatisticalWarning, match="single cluster"):
        fit = cox(df, "t", "e", "x", cluster="rep")
    assert np.isnan(fit.summary.loc["x", "se"]) and np.isnan(fit.tests.loc["wald", "statistic"])
    assert np.isfinite(fit.summary.loc["x", "naive_se"])


def test_cox_covariate_constant_among_those_at_risk_says_so():
    # x is 1 only in an interval without an event time: every risk set has x = 0
    df = pd.DataFrame({"s": [0, 0, 3, 0], "t": [2, 3, 4, 5], "e": [1, 1, 0, 0], "x": [0.0, 0, 1, 0]})
    with pytest.raises(DataError, match="single value among the rows at risk"):
        cox(df, "t", "e", "x", start="s")
    # an arm indicator constant within every stratum
    df = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 1, 1, 0], "arm": [0.0, 0, 1, 1], "s": [0, 0, 1, 1]})
    with pytest.raises(DataError, match="'arm'"):
        cox(df, "t", "e", "arm", strata="s")


def test_zph_km_transform_with_start_times_is_unchanged_by_splitting_follow_up():
    # R's cox.zph(transform = "km") uses survfitKM of the fit's Surv(start, stop, event): rows are at risk only
    # for start < t <= stop. Cutting each subject's follow-up into (start, stop] pieces at the event times (R's
    # survSplit, as survival's tests/cancer.R does to check the score test) changes neither the fit nor the test.
    ov = pd.read_csv(DATA / "ovarian.csv")
    whole = cox_zph(cox(ov, "futime", "fustat", ["age", "ecog.ps"])).summary
    cuts = np.unique(ov.futime[ov.fustat == 1])
    rows = []
    for t, status, age, ecog in ov[["futime", "fustat", "age", "ecog.ps"]].itertuples(index=False):
        ends = [*(float(c) for c in cuts if c < t), float(t)]
        for lo, hi in zip([0.0, *ends[:-1]], ends, strict=True):
            rows.append({"start": lo, "stop": hi, "fustat": int(status == 1 and hi == t), "age": age, "ecog.ps": ecog})
    split = pd.DataFrame(rows)
    assert len(split) > 2 * len(ov)
    pieces = cox_zph(cox(split, "stop", "fustat", ["age", "ecog.ps"], start="start")).summary
    np.testing.assert_allclose(pieces.chisq.to_numpy(), whole.chisq.to_numpy(), rtol=1e-9)
