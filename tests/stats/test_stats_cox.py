"""Known-answer tests of fomolab.stats.cox against printed R output.

Tolerance: half a unit in the last digit R printed (``_close`` below), no more.
Datasets come from lifelines (shipped CSVs, offline); each test says why the
lifelines table is the same data R used.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_lung, load_rossi, load_stanford_heart_transplants

from fomolab.errors import ConvergenceWarning, DataError
from fomolab.stats import cox

# Sources SURV_EX and CANCER in the comments below: see r_output.py.
from r_output import close_to_printed as _close


def _rows(fit, table: dict[str, tuple[str, ...]], cols: tuple[str, ...]) -> None:
    for name, vals in table.items():
        for col, v in zip(cols, vals, strict=True):
            _close(float(fit.summary.loc[name, col]), v)


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    # lifelines' lung.csv is R's survival::lung (228 rows, same columns) with
    # status recoded from R's 1/2 to 0/1 (165 deaths, as R's "number of events").
    d = load_lung()
    assert len(d) == 228 and int(d["status"].sum()) == 165
    return d


def test_efron_lung_age_sex(lung):
    # R: summary(coxph(Surv(time, status) ~ age + sex, lung)), source SURV_EX
    # (example of summary.coxph):
    #          coef exp(coef)  se(coef)      z Pr(>|z|)
    # age  0.017045  1.017191  0.009223  1.848  0.06459
    # sex -0.513219  0.598566  0.167458 -3.065  0.00218
    #     exp(coef) exp(-coef) lower .95 upper .95
    # age    1.0172     0.9831    0.9990    1.0357
    # sex    0.5986     1.6707    0.4311    0.8311
    # Concordance= 0.603  (se = 0.025 )
    # Likelihood ratio test= 14.12 on 2 df; Wald test = 13.47; Score = 13.72
    fit = cox(lung, "time", "status", ["age", "sex"])
    _rows(fit, {"age": ("0.017045", "1.017191", "0.009223", "1.848", "0.06459"),
                "sex": ("-0.513219", "0.598566", "0.167458", "-3.065", "0.00218")},
          ("coef", "hazard_ratio", "se", "z", "p"))
    _rows(fit, {"age": ("0.9990", "1.0357"), "sex": ("0.4311", "0.8311")},
          ("ci_lower", "ci_upper"))
    _close(fit.tests.loc["likelihood_ratio", "statistic"], "14.12")
    _close(fit.tests.loc["wald", "statistic"], "13.47")
    _close(fit.tests.loc["score", "statistic"], "13.72")
    assert list(fit.tests["df"]) == [2, 2, 2]
    _close(fit.concordance["concordance"], "0.603")
    _close(fit.concordance["se"], "0.025")


def test_efron_rossi_fox_weisberg():
    # R: coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio,
    # data = Rossi), as printed in Fox & Weisberg, "Cox Proportional-Hazards
    # Regression for Survival Data in R", appendix to An R Companion to Applied
    # Regression (2011), section 3 (URL:
    # https://socialsciences.mcmaster.ca/jfox/Books/Companion/appendices/Appendix-Cox-Regression.pdf);
    # the fin row (-0.37942 0.68426 0.19138 -1.983 0.04742, CI 0.4702-0.9957)
    # is also quoted as R output in surpyval's test suite
    # (test_cox_summary_matches_r, found in the public code index).  lifelines'
    # rossi.csv is the same 432 x 9 table (114 arrests).
    rossi = load_rossi()
    assert len(rossi) == 432 and int(rossi["arrest"].sum()) == 114
    fit = cox(rossi, "week", "arrest",
              ["fin", "age", "race", "wexp", "mar", "paro", "prio"])
    printed = {  #        coef  exp(coef) se(coef)      z  Pr(>|z|)
        "fin": ("-0.37942", "0.68426", "0.19138", "-1.983", "0.04742"),
        "age": ("-0.05744", "0.94418", "0.02200", "-2.611", "0.00903"),
        "race": ("0.31390", "1.36875", "0.30799", "1.019", "0.30812"),
        "wexp": ("-0.14980", "0.86088", "0.21222", "-0.706", "0.48029"),
        "mar": ("-0.43370", "0.64810", "0.38187", "-1.136", "0.25606"),
        "paro": ("-0.08487", "0.91863", "0.19576", "-0.434", "0.66461"),
        "prio": ("0.09150", "1.09581", "0.02865", "3.194", "0.00140"),
    }
    _rows(fit, printed, ("coef", "hazard_ratio", "se", "z", "p"))
    # Likelihood ratio test= 33.27 on 7 df, Wald test = 32.11, Score = 33.53
    _close(fit.tests.loc["likelihood_ratio", "statistic"], "33.27")
    _close(fit.tests.loc["wald", "statistic"], "32.11")
    _close(fit.tests.loc["score", "statistic"], "33.53")
    # Concordance= 0.64 (se = 0.027)
    _close(fit.concordance["concordance"], "0.64")
    _close(fit.concordance["se"], "0.027")


def test_stratified_lung_cancer_rout(lung):
    # R: summary(coxph(Surv(time, status) ~ ph.ecog + ph.karno + pat.karno +
    # wt.loss + sex + age + meal.cal + strata(inst), lung)), source CANCER:
    # n= 167, number of events= 120 (complete cases; R drops rows with NA)
    cols = ["ph.ecog", "ph.karno", "pat.karno", "wt.loss", "sex", "age", "meal.cal"]
    d = lung.dropna(subset=cols + ["inst"])
    assert len(d) == 167 and int(d["status"].sum()) == 120
    fit = cox(d, "time", "status", cols, strata="inst")
    printed = {  #           coef     exp(coef)   se(coef)      z Pr(>|z|)
        "ph.ecog": ("0.7299987", "2.0750779", "0.2689397", "2.714", "0.00664"),
        "ph.karno": ("0.0130512", "1.0131368", "0.0137362", "0.950", "0.34204"),
        "pat.karno": ("-0.0140955", "0.9860034", "0.0093680", "-1.505", "0.13242"),
        "wt.loss": ("-0.0148821", "0.9852281", "0.0084811", "-1.755", "0.07931"),
        "sex": ("-0.6612534", "0.5162039", "0.2339979", "-2.826", "0.00471"),
        "age": ("0.0050920", "1.0051050", "0.0137288", "0.371", "0.71071"),
        "meal.cal": ("-0.0002398", "0.9997602", "0.0003019", "-0.794", "0.42701"),
    }
    _rows(fit, printed, ("coef", "hazard_ratio", "se", "z", "p"))
    _rows(fit, {"ph.ecog": ("1.2249", "3.5153"), "sex": ("0.3263", "0.8166")},
          ("ci_lower", "ci_upper"))
    # Likelihood ratio test= 30.6 on 7 df; Wald test = 28.15; Score = 30.72
    _close(fit.tests.loc["likelihood_ratio", "statistic"], "30.6")
    _close(fit.tests.loc["wald", "statistic"], "28.15")
    _close(fit.tests.loc["score", "statistic"], "30.72")


def test_stratified_test1_coxph_example():
    # R: coxph(Surv(time, status) ~ x + strata(sex), test1), source SURV_EX
    # (?coxph example): x 0.8023 2.2307 0.8224 0.976 0.329; LR 1.09 on 1 df
    test1 = pd.DataFrame({"time": [4, 3, 1, 1, 2, 2, 3], "status": [1, 1, 1, 0, 1, 1, 0],
                          "x": [0, 2, 1, 1, 1, 0, 0], "sex": [0, 0, 0, 0, 1, 1, 1]})
    fit = cox(test1, "time", "status", "x", strata="sex")
    _rows(fit, {"x": ("0.8023", "2.2307", "0.8224", "0.976", "0.329")},
          ("coef", "hazard_ratio", "se", "z", "p"))
    _close(fit.tests.loc["likelihood_ratio", "statistic"], "1.09")


TEST2 = pd.DataFrame({"start": [1, 2, 5, 2, 1, 7, 3, 4, 8, 8],
                      "stop": [2, 3, 6, 7, 8, 9, 9, 9, 14, 17],
                      "event": [1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
                      "x": [1, 0, 0, 1, 0, 1, 1, 1, 0, 0]})


def test_start_stop_test2_coxph_example():
    # R: summary(coxph(Surv(start, stop, event) ~ x, test2)), source SURV_EX:
    #       coef exp(coef) se(coef)      z Pr(>|z|)
    # x -0.02111   0.97912  0.79518 -0.027    0.979
    # x    0.9791      1.021    0.2061     4.653
    # Concordance= 0.526  (se = 0.129 )
    # The rows (8, 14] and (8, 17] start at the event time 8 of row (1, 8]:
    # under R's (start, stop] rule they are not at risk then.
    fit = cox(TEST2, "stop", "event", "x", start="start")
    _rows(fit, {"x": ("-0.02111", "0.97912", "0.79518", "-0.027", "0.979")},
          ("coef", "hazard_ratio", "se", "z", "p"))
    _rows(fit, {"x": ("0.2061", "4.653")}, ("ci_lower", "ci_upper"))
    _close(fit.concordance["concordance"], "0.526")
    _close(fit.concordance["se"], "0.129")
    # Likelihood ratio test= 0 on 1 df, p=1 (rounded)
    _close(fit.tests.loc["likelihood_ratio", "statistic"], "0")


@pytest.fixture(scope="module")
def heart() -> pd.DataFrame:
    # lifelines' stanford_heart.csv is R's survival::heart (not jasa1, which
    # has 170 rows): 172 intervals, 75 deaths, first rows as R's head(heart)
    # (0,50] event -17.155373 0.1232033 ... and (1,16] for id 3 after transplant.
    h = load_stanford_heart_transplants()
    assert len(h) == 172 and int(h["event"].sum()) == 75
    assert h.loc[0, ["start", "stop", "event"]].tolist() == [0, 50, 1]
    assert round(h.loc[0, "age"], 6) == -17.155373
    assert h.loc[3, ["start", "stop", "event"]].tolist() == [1, 16, 1]
    h = h.copy()
    h["transplant"] = h["transplant"].astype(int)
    return h


HEART_SRC = ("knitr output of summary(coxph(Surv(heart$start, heart$stop, "
             "heart$event) ~ age + year + as.factor(surgery) + "
             "as.factor(transplant), data = heart)) in a public R Markdown "
             "README (survival 2.x: it prints 'Rsquare'); public code index id "
             "46422325395")


def test_start_stop_heart(heart):
    # R output, source HEART_SRC:
    #                            coef exp(coef) se(coef)      z Pr(>|z|)
    # age                     0.02717   1.02754  0.01371  1.981   0.0476
    # year                   -0.14635   0.86386  0.07047 -2.077   0.0378
    # as.factor(surgery)1    -0.63721   0.52877  0.36723 -1.735   0.0827
    # as.factor(transplant)1 -0.01025   0.98980  0.31375 -0.033   0.9739
    # lower/upper .95: age 1.0003 1.0555; year 0.7524 0.9918;
    #   surgery 0.2574 1.0860; transplant 0.5352 1.8307
    # Concordance= 0.636; Likelihood ratio test= 15.11, Wald 14.49, Score 15.03
    fit = cox(heart, "stop", "event", ["age", "year", "surgery", "transplant"],
              start="start")
    _rows(fit, {"age": ("0.02717", "1.02754", "0.01371", "1.981", "0.0476"),
                "year": ("-0.14635", "0.86386", "0.07047", "-2.077", "0.0378"),
                "surgery": ("-0.63721", "0.52877", "0.36723", "-1.735", "0.0827"),
                "transplant": ("-0.01025", "0.98980", "0.31375", "-0.033", "0.9739")},
          ("coef", "hazard_ratio", "se", "z", "p"))
    _rows(fit, {"age": ("1.0003", "1.0555"), "year": ("0.7524", "0.9918"),
                "surgery": ("0.2574", "1.0860"), "transplant": ("0.5352", "1.8307")},
          ("ci_lower", "ci_upper"))
    _close(fit.tests.loc["likelihood_ratio", "statistic"], "15.11")
    _close(fit.tests.loc["wald", "statistic"], "14.49")
    _close(fit.tests.loc["score", "statistic"], "15.03")
    _close(fit.concordance["concordance"], "0.636")
    # (R 2.x printed "se = 0.037" for the concordance with its older variance
    # formula; survival >= 3 uses the infinitesimal jackknife implemented here,
    # checked against test2 and lung above, so that se is not compared.)


def test_start_stop_heart_strata(heart):
    # Same source: ~ age + year + strata(as.factor(surgery)) + as.factor(transplant)
    # age 0.02681 1.02718 0.01367 1.962 0.0498; year -0.14924 0.86136 0.07010
    # -2.129 0.0333; transplant -0.02178 0.97846 0.31588 -0.069 0.9450
    # Concordance= 0.606; LR 10.17, Wald 9.72, Score 9.9 on 3 df
    fit = cox(heart, "stop", "event", ["age", "year", "transplant"], start="start",
              strata="surgery")
    _rows(fit, {"age": ("0.02681", "1.02718", "0.01367", "1.962", "0.0498"),
                "year": ("-0.14924", "0.86136", "0.07010", "-2.129", "0.0333"),
                "transplant": ("-0.02178", "0.97846", "0.31588", "-0.069", "0.9450")},
          ("coef", "hazard_ratio", "se", "z", "p"))
    _close(fit.tests.loc["likelihood_ratio", "statistic"], "10.17")
    _close(fit.tests.loc["wald", "statistic"], "9.72")
    _close(fit.tests.loc["score", "statistic"], "9.9")
    _close(fit.concordance["concordance"], "0.606")


JSTABLE = ("jstable cox2.display example output, "
           "https://jinseob2kim.github.io/jstable/reference/cox2.display.html")


def test_cluster_robust_lung_inst(lung):
    # R: coxph(Surv(time, status) ~ ph.ecog + age + cluster(inst), data = lung)
    # tabulated by jstable::cox2.display (HRs and robust 95% CIs to 2 decimals,
    # robust p values), source JSTABLE:
    #   No. of observations 226, No. of events 163
    #   adj. HR(95%CI): ph.ecog "1.56 (1.22,2)"  p "< 0.001"
    #                   age     "1.01 (1,1.02)"  p "0.085"
    #   crude (one covariate + cluster(inst)):
    #                   ph.ecog "1.61 (1.25,2.08)" p "< 0.001"
    #                   age     "1.02 (1.01,1.03)" p "0.007"
    # The model-based (naive) errors give other numbers at this precision
    # (ph.ecog CI 1.24-1.96, age p 0.22), so these pin the robust variance.
    d = lung.dropna(subset=["inst", "ph.ecog"])
    assert len(d) == 226 and int(d["status"].sum()) == 163
    fit = cox(d, "time", "status", ["ph.ecog", "age"], cluster="inst")
    _rows(fit, {"ph.ecog": ("1.56", "1.22", "2.00"), "age": ("1.01", "1.00", "1.02")},
          ("hazard_ratio", "ci_lower", "ci_upper"))
    _close(fit.summary.loc["age", "p"], "0.085")
    assert fit.summary.loc["ph.ecog", "p"] < 0.001
    naive_p = 2 * __import__("scipy").stats.norm.sf(
        abs(fit.summary.loc["age", "coef"] / fit.summary.loc["age", "naive_se"]))
    assert abs(naive_p - 0.085) > 0.05
    one = cox(d, "time", "status", "ph.ecog", cluster="inst")
    _rows(one, {"ph.ecog": ("1.61", "1.25", "2.08")}, ("hazard_ratio", "ci_lower", "ci_upper"))
    assert one.summary.loc["ph.ecog", "p"] < 0.001
    one = cox(d, "time", "status", "age", cluster="inst")
    _rows(one, {"age": ("1.02", "1.01", "1.03")}, ("hazard_ratio", "ci_lower", "ci_upper"))
    _close(one.summary.loc["age", "p"], "0.007")
    assert set(fit.tests.index) == {"likelihood_ratio", "wald", "score", "robust_score"}


# ----------------------------------------------------------------------------
# Independent reference: a naive O(n^2) weighted Efron partial likelihood.
# The robust variance is the infinitesimal jackknife, D'D with D the cluster
# sums of dfbeta = (d beta / d w_i) = I^-1 (d U / d w_i); we differentiate the
# weighted score numerically, so the Efron score residuals are checked by a
# different computation than the one in fomolab.stats.cox.
# ----------------------------------------------------------------------------


def _naive_score(beta, X, start, stop, event, strata, w, ties):
    """Weighted Efron/Breslow score (R: mean death weight per tie group)."""
    u = np.zeros(X.shape[1])
    eta = X @ beta
    r = w * np.exp(eta)
    for s in np.unique(strata):
        ins = strata == s
        for t in np.unique(stop[ins & (event == 1)]):
            risk = ins & (start < t) & (stop >= t)
            dead = ins & (stop == t) & (event == 1)
            d = int(dead.sum())
            mw = w[dead].sum() / d
            u += (w[dead][:, None] * X[dead]).sum(axis=0)
            for k in range(d):
                f = k / d if ties == "efron" else 0.0
                s0 = r[risk].sum() - f * r[dead].sum()
                s1 = (r[risk][:, None] * X[risk]).sum(0) - f * (r[dead][:, None] * X[dead]).sum(0)
                u -= mw * s1 / s0
    return u


def _ij_robust(fit, X, start, stop, event, strata, cluster, ties):
    beta = fit.summary["coef"].to_numpy()
    V = fit.naive_vcov.to_numpy()
    n = len(event)
    h = 1e-6
    dU = np.zeros((n, X.shape[1]))
    for i in range(n):
        wp = np.ones(n)
        wm = np.ones(n)
        wp[i] += h
        wm[i] -= h
        dU[i] = (_naive_score(beta, X, start, stop, event, strata, wp, ties)
                 - _naive_score(beta, X, start, stop, event, strata, wm, ties)) / (2 * h)
    dfb = dU @ V
    groups = pd.factorize(cluster)[0]
    D = np.zeros((groups.max() + 1, X.shape[1]))
    np.add.at(D, groups, dfb)
    return D.T @ D


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cluster_robust_equals_numeric_infinitesimal_jackknife(ties):
    # tied times, (start, stop] rows, strata, a row censored before the first
    # event of its stratum, clusters spanning strata
    rng = np.random.default_rng(20261126)
    n = 60
    start = rng.integers(0, 3, n).astype(float)
    stop = start + rng.integers(1, 6, n)
    event = (rng.random(n) < 0.6).astype(float)
    stop[0], start[0], event[0] = 0.5, 0.0, 0.0
    strata = rng.integers(0, 2, n)
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n)])
    cl = rng.integers(0, 12, n)
    df = pd.DataFrame({"start": start, "stop": stop, "event": event, "s": strata,
                       "x1": X[:, 0], "x2": X[:, 1], "cl": cl})
    fit = cox(df, "stop", "event", ["x1", "x2"], start="start", strata="s",
              cluster="cl", ties=ties)
    ref = _ij_robust(fit, X, start, stop, event, strata, cl, ties)
    np.testing.assert_allclose(fit.vcov.to_numpy(), ref, rtol=1e-5, atol=1e-10)
    assert np.isfinite(fit.summary["se"]).all()


# ----------------------------------------------------------------------------
# statsmodels PHReg traps: each test fails if the trap were not handled.
# ----------------------------------------------------------------------------


def _phreg():
    from statsmodels.duration.hazard_regression import PHReg
    return PHReg


def test_trap_phreg_default_ties_are_breslow():
    # R's Efron fin coefficient -0.37942 (Fox & Weisberg): statsmodels' default
    # (Breslow) misses it at R's printed precision, its ties="efron" matches,
    # and so does fomolab's default.
    rossi = load_rossi()
    cols = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
    PHReg = _phreg()
    sm_default = PHReg(rossi["week"], rossi[cols], status=rossi["arrest"]).fit()
    assert abs(sm_default.params[0] - (-0.37942)) > 5e-6
    sm_efron = PHReg(rossi["week"], rossi[cols], status=rossi["arrest"], ties="efron").fit()
    ours = cox(rossi, "week", "arrest", cols)
    np.testing.assert_allclose(ours.summary["coef"], sm_efron.params, rtol=1e-6)
    np.testing.assert_allclose(ours.summary["se"], sm_efron.bse, rtol=1e-5)
    breslow = cox(rossi, "week", "arrest", cols, ties="breslow")
    np.testing.assert_allclose(breslow.summary["coef"], sm_default.params, rtol=1e-6)


def test_trap_status_coded_1_2_is_rejected(lung):
    # statsmodels treats any nonzero status as an event: with R's 1/2 coding it
    # silently fits "everyone died" and returns a wrong sex effect.
    d = lung.assign(status12=lung["status"] + 1)
    PHReg = _phreg()
    wrong = PHReg(d["time"], d[["age", "sex"]], status=d["status12"], ties="efron").fit()
    assert abs(wrong.params[1] - (-0.513219)) > 0.1
    with pytest.raises(DataError, match=r"status12.*0/1.*1 = censored / 2 = event"):
        cox(d, "time", "status12", ["age", "sex"])
    with pytest.raises(DataError, match="event indicator"):
        cox(d.assign(e=d["status"] * 3), "time", "e", ["age"])


def test_trap_phreg_counts_rows_at_risk_at_entry():
    # R's (start, stop] rule: a row entering at t is not at risk at t.  PHReg's
    # entry rule counts it, and misses R's -0.02111 for test2; fomolab matches.
    PHReg = _phreg()
    sm = PHReg(TEST2["stop"], TEST2[["x"]], status=TEST2["event"], entry=TEST2["start"],
               ties="efron").fit()
    assert abs(sm.params[0] - (-0.02111)) > 0.01
    ours = cox(TEST2, "stop", "event", "x", start="start")
    _close(float(ours.summary.loc["x", "coef"]), "-0.02111")


def test_trap_phreg_cluster_robust_under_efron_and_early_censoring(lung):
    # PHReg's robust covariance ignores the Efron weighting of tied deaths, and
    # is NaN when a row is censored before the first event in its stratum.
    d = lung.dropna(subset=["inst", "ph.ecog"])
    PHReg = _phreg()
    sm = PHReg(d["time"], d[["ph.ecog", "age"]], status=d["status"], ties="efron").fit(
        groups=d["inst"].to_numpy())
    ours = cox(d, "time", "status", ["ph.ecog", "age"], cluster="inst")
    np.testing.assert_allclose(ours.summary["coef"], sm.params, rtol=1e-6)
    assert np.all(np.abs(ours.summary["se"].to_numpy() / sm.bse - 1) > 2e-3)
    early = pd.DataFrame({"t": [0.5, 1, 2, 3, 4, 5, 6, 7], "e": [0, 1, 1, 0, 1, 1, 0, 1],
                          "x": [1, 0, 1, 0, 1, 1, 0, 0], "g": [1, 1, 2, 2, 3, 3, 4, 4]})
    sm_early = PHReg(early["t"], early[["x"]], status=early["e"], ties="efron").fit(
        groups=early["g"].to_numpy())
    assert np.isnan(sm_early.bse).all()
    fit = cox(early, "t", "e", "x", cluster="g")
    assert np.isfinite(fit.summary["se"]).all()


def test_trap_phreg_has_no_lr_score_concordance(lung):
    # PHReg reports none of these; fomolab computes them (values checked above
    # against R).  Cross-check: without tied event times the Cox score test of
    # one binary covariate is the log-rank statistic (R labels it "Score
    # (logrank) test"); with ties they differ slightly, as in R.
    from statsmodels.duration.hazard_regression import PHRegResults

    from fomolab.stats import logrank
    assert not any(hasattr(PHRegResults, a) for a in ("llr", "score_test", "concordance"))
    d = lung.assign(time=lung["time"] + np.arange(len(lung)) * 1e-4)
    fit = cox(d, "time", "status", "sex")
    lr = logrank(d, "time", "status", by="sex")
    assert fit.tests.loc["score", "statistic"] == pytest.approx(lr.statistic, rel=1e-9)
    assert set(fit.concordance.index) >= {"concordance", "se"}


def test_convergence_and_monotone_likelihood_warn():
    # x = 1 for every event-free row's complement: no censored row has x = 1
    # among the late risk sets, the likelihood rises as beta_x -> infinity.
    # R stops after 20 iterations ("Ran out of iterations"); so does fomolab,
    # and it names the covariate.
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6, 7, 8], "e": [1, 1, 1, 1, 0, 0, 1, 0],
                       "x": [1, 1, 1, 1, 0, 0, 1, 0],
                       "z": [0.1, 0.5, -0.2, 0.3, 0.9, -1, 0, 2]})
    with pytest.warns(ConvergenceWarning, match=r"x seem to have an infinite"):
        cox(df, "t", "e", ["x", "z"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cox(load_rossi(), "week", "arrest", ["fin", "age"])


def test_repr_and_print(lung, capsys):
    fit = cox(lung, "time", "status", ["age", "sex"])
    assert "CoxResult" in repr(fit) and "events=165" in repr(fit)
    fit.print_summary()
    assert "likelihood_ratio" in capsys.readouterr().out
