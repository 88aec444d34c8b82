"""Tests of conversion (logit) and risk_difference.

Known answer for the model-based fit: the Spector & Mazzeo logit shipped with
statsmodels.  For the clustered errors no printed ``sandwich::vcovCL`` output on
a dataset shipped offline was found, so the expected value is derived
independently here: the sandwich computed by hand with numpy (bread = inverse
Fisher information, meat = outer products of per-cluster score sums, factor
G/(G-1) only, as vcovCL's default for a glm: type "HC0", cadjust = TRUE), and
cross-checked against statsmodels' cluster covariance times (N-K)/(N-1), which
removes the extra factor statsmodels (and Stata) apply.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from lifelines.datasets import load_lung

from fomolab.errors import DataError, StatisticalWarning
from fomolab.stats import conversion, risk_difference

from r_output import close_to_printed as _close


def test_logit_spector_mazzeo():
    # R: glm(GRADE ~ GPA + TUCE + PSI, family = binomial, data = spector); the
    # classic Spector & Mazzeo (1980) logit, Greene "Econometric Analysis"
    # (Table 21.1 in the 5th ed.), printed in statsmodels' discrete-choice docs
    # (https://www.statsmodels.org/stable/examples/notebooks/generated/discrete_choice_overview.html):
    #              coef    std err
    # const    -13.0213      4.931
    # GPA        2.8261      1.263
    # TUCE       0.0952      0.142
    # PSI        2.3787      1.065
    d = sm.datasets.spector.load_pandas().data
    fit = conversion(d, event="GRADE", covariates=["GPA", "TUCE", "PSI"])
    for term, coef, se in [("intercept", "-13.0213", "4.931"), ("GPA", "2.8261", "1.263"),
                           ("TUCE", "0.0952", "0.142"), ("PSI", "2.3787", "1.065")]:
        _close(fit.summary.loc[term, "coef"], coef)
        _close(fit.summary.loc[term, "se"], se)
    s = fit.summary
    np.testing.assert_allclose(s["odds_ratio"], np.exp(s["coef"]))
    np.testing.assert_allclose(s["ci_lower"], np.exp(s["coef"] - 1.959963984540054 * s["se"]))


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    # death (0/1) by age and sex, clustered by institution (18 clusters)
    return load_lung().dropna(subset=["inst"])


def _hand_sandwich(d: pd.DataFrame, y: str, xs: list[str], cl: str, beta: np.ndarray):
    X = np.column_stack([np.ones(len(d))] + [d[c].to_numpy(float) for c in xs])
    yy = d[y].to_numpy(float)
    mu = 1 / (1 + np.exp(-X @ beta))
    bread = np.linalg.inv(X.T @ (X * (mu * (1 - mu))[:, None]))
    meat = np.zeros((X.shape[1], X.shape[1]))
    for g in pd.unique(d[cl]):
        m = (d[cl] == g).to_numpy()
        u = (X[m] * (yy[m] - mu[m])[:, None]).sum(axis=0)
        meat += np.outer(u, u)
    G = d[cl].nunique()
    return G / (G - 1) * bread @ meat @ bread


def test_clustered_logit_matches_vcovcl_convention(lung):
    fit = conversion(lung, "status", ["age", "sex"], cluster="inst")
    beta = fit.summary["coef"].to_numpy()
    hand = _hand_sandwich(lung, "status", ["age", "sex"], "inst", beta)
    np.testing.assert_allclose(fit.vcov.to_numpy(), hand, rtol=1e-8)
    # statsmodels' cluster covariance = G/(G-1) (N-1)/(N-K) x sandwich: remove
    # the (N-1)/(N-K) factor and it must agree; keep it and it must not.
    X = sm.add_constant(lung[["age", "sex"]].astype(float))
    smfit = sm.GLM(lung["status"], X, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(lung["inst"])[0]})
    N, K = X.shape
    np.testing.assert_allclose(fit.vcov.to_numpy(), smfit.cov_params().to_numpy() * (N - K) / (N - 1),
                               rtol=1e-6)
    assert not np.allclose(fit.vcov.to_numpy(), smfit.cov_params().to_numpy(), rtol=1e-4)
    np.testing.assert_allclose(fit.summary["coef"], smfit.params, rtol=1e-7)
    assert fit.n_clusters == 18
    assert (fit.summary["naive_se"] != fit.summary["se"]).all()


def test_unclustered_logit_equals_statsmodels_model_based(lung):
    fit = conversion(lung, "status", ["age", "sex"])
    X = sm.add_constant(lung[["age", "sex"]].astype(float))
    smfit = sm.GLM(lung["status"], X, family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(fit.summary["se"], smfit.bse, rtol=1e-6)


def test_perfect_separation_is_a_data_error():
    d = pd.DataFrame({"x": [0.1, 0.5, 0.9, 1.2, 2.0, 2.5, 3.0, 3.5],
                      "y": [0, 0, 0, 0, 1, 1, 1, 1]})
    with pytest.raises(DataError, match="separate"):
        conversion(d, "y", "x")


def test_quasi_separation_binary_covariate_is_a_data_error():
    rng = np.random.default_rng(7)
    d = pd.DataFrame({"tactic": [0] * 50 + [1] * 50, "z": rng.normal(size=100)})
    d["y"] = np.where(d["tactic"] == 1, 1, (rng.random(100) < 0.3).astype(int))
    with pytest.raises(DataError, match=r"'tactic' separates.*tactic == 1 "):
        conversion(d, "y", ["tactic", "z"])


def test_quasi_separation_continuous_covariate_is_a_data_error():
    # x <= 0 never buys, x >= 0 always buys, both outcomes at x == 0: the MLE
    # does not exist; statsmodels returns a slope of ~250 with a warning only.
    rng = np.random.default_rng(3)
    x = np.concatenate([-rng.random(50) - 0.1, rng.random(50) + 0.1, [0, 0, 0, 0]])
    y = np.concatenate([np.zeros(50), np.ones(50), [0, 1, 0, 1]])
    d = pd.DataFrame({"x": x, "y": y, "z": rng.normal(size=104)})
    with pytest.raises(DataError, match=r"'x'.*separat"):
        conversion(d, "y", ["x", "z"])


def test_extreme_but_finite_fit_warns():
    # overlapping outcomes (the MLE exists) but one far outlier gets a fitted
    # probability of numerically 1: R's glm warns, so does fomolab.
    rng = np.random.default_rng(5)
    x = rng.normal(size=300)
    y = (rng.random(300) < 1 / (1 + np.exp(-2 * x))).astype(int)
    x[0], y[0] = 40.0, 1
    d = pd.DataFrame({"x": x, "y": y})
    with pytest.warns(StatisticalWarning, match="numerically 0 or 1"):
        fit = conversion(d, "y", "x")
    assert np.isfinite(fit.summary["se"]).all()


def test_constant_outcome_and_bad_outcome():
    d = pd.DataFrame({"x": [1.0, 2, 3], "y": [1, 1, 1]})
    with pytest.raises(DataError, match="constant"):
        conversion(d, "y", "x")
    with pytest.raises(DataError, match=r"'y'.*0/1"):
        conversion(d.assign(y=[1, 2, 2]), "y", "x")


def test_risk_difference_unclustered_wald():
    df = pd.DataFrame({"arm": ["c"] * 200 + ["a"] * 100 + ["b"] * 100,
                       "bought": [1] * 20 + [0] * 180 + [1] * 15 + [0] * 85 + [1] * 30 + [0] * 70})
    out = risk_difference(df, event="bought", by="arm", control="c").summary.set_index("group")
    assert list(out.index) == ["a", "b"]
    se_b = np.sqrt(0.3 * 0.7 / 100 + 0.1 * 0.9 / 200)
    assert out.loc["b", "risk_difference"] == pytest.approx(0.2)
    assert out.loc["b", "se"] == pytest.approx(se_b)
    assert out.loc["b", "ci_lower"] == pytest.approx(0.2 - 1.959963984540054 * se_b)


def test_risk_difference_clustered_equals_ols_vcovcl_hc0():
    # Independent derivation: OLS of y on an intercept and a group dummy,
    # sandwich with HC0 meat and G/(G-1): the dummy's variance.
    rng = np.random.default_rng(11)
    n = 600
    rep = rng.integers(0, 15, n)
    arm = rng.integers(0, 2, n)
    shock = rng.normal(0, 0.8, 15)[rep]
    y = (rng.random(n) < 1 / (1 + np.exp(-(-1 + 0.5 * arm + shock)))).astype(int)
    df = pd.DataFrame({"y": y, "arm": np.where(arm == 1, "t", "c"), "rep": rep})
    got = risk_difference(df, event="y", by="arm", control="c", cluster="rep").summary.iloc[0]
    X = np.column_stack([np.ones(n), arm])
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    e = y - X @ b
    bread = np.linalg.inv(X.T @ X)
    U = np.zeros((15, 2))
    np.add.at(U, rep, X * e[:, None])
    V = 15 / 14 * bread @ (U.T @ U) @ bread
    assert got["risk_difference"] == pytest.approx(b[1], rel=1e-12)
    assert got["se"] == pytest.approx(np.sqrt(V[1, 1]), rel=1e-10)


def test_risk_difference_bad_control():
    df = pd.DataFrame({"arm": ["a", "b"], "y": [0, 1]})
    with pytest.raises(DataError, match=r"control 'z' not found in column 'arm'"):
        risk_difference(df, "y", "arm", control="z")


def test_conversion_repr(lung):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = conversion(lung, "status", ["age"], cluster="inst")
    assert "18 clusters" in repr(fit)


def test_risk_difference_zero_risk_uses_newcombe_score():
    # 0 of 400 buyers in the control, 6 of 400 in the treatment: Wald would give
    # the control no uncertainty at all (its variance estimate p (1 - p) / n is 0).
    from scipy.stats import chi2_contingency
    from statsmodels.stats.proportion import confint_proportions_2indep

    df = pd.DataFrame({"arm": ["c"] * 400 + ["t"] * 400,
                       "bought": [0] * 400 + [1] * 6 + [0] * 394})
    row = risk_difference(df, "bought", by="arm", control="c").summary.iloc[0]
    assert row["method"] == "newcombe_score"
    lo, hi = confint_proportions_2indep(6, 400, 0, 400, method="newcomb")
    assert row["ci_lower"] == pytest.approx(lo, rel=1e-10)
    assert row["ci_upper"] == pytest.approx(hi, rel=1e-10)
    p = chi2_contingency([[6, 394], [0, 400]], correction=False)[1]
    assert row["p"] == pytest.approx(p, rel=1e-10)
    assert row["se"] == pytest.approx(np.sqrt(0.015 * 0.985 / 400))  # se stays the Wald one
    # away from the boundary: Wald as before
    df2 = pd.DataFrame({"arm": ["c"] * 4 + ["t"] * 4, "bought": [1, 0, 0, 0, 1, 1, 0, 0]})
    assert risk_difference(df2, "bought", by="arm", control="c").summary["method"].iloc[0] == "wald"


def test_risk_difference_zero_risk_with_cluster_warns():
    df = pd.DataFrame({"arm": ["c"] * 40 + ["t"] * 40, "bought": [0] * 40 + [1, 0] * 20,
                       "rep": list(range(4)) * 20})
    with pytest.warns(StatisticalWarning, match="too narrow"):
        out = risk_difference(df, "bought", by="arm", control="c", cluster="rep").summary
    assert out["method"].iloc[0] == "cluster_wald"
