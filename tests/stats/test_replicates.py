"""Tests of the paired analysis across replicates (fomolab.stats.replicates).

The per-replicate estimators are checked against independent computations:
the Cox log hazard ratio against :func:`fomolab.stats.cox` (R's ``coxph``
numbers, Efron ties), the restricted mean against lifelines' integral of its
Kaplan–Meier curve, the cumulative incidence against ``1 - KM`` without a
competing event and against small cases worked by hand.  The interval across
replicates is checked against scipy's one-sample t test and, for exactness,
by its coverage on normal estimates (fixed seed, tolerance 3 binomial SE).
"""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from fomolab.errors import DataError, StatisticalWarning
from fomolab.stats import cox, kaplan_meier, replicate_effects, replicate_estimates
from fomolab.stats._counts import sorted_small_codes
from fomolab.stats.replicates import (
    _log_hazard_ratios,  # the fits of every replicate at once
    cumulative_incidence_at,
    format_p,
    log_hazard_ratio,
    replicate_contrast,
    restricted_mean,
    t_across,
)

T975 = {1: 12.706204736174707, 2: 4.302652729749464, 4: 2.7764451051977934}


# -- per-replicate estimators ------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("ties", [False, True])
def test_log_hazard_ratio_is_coxs_estimate(seed, ties):
    rng = np.random.default_rng(seed)
    n = 300
    x = rng.integers(0, 2, n)
    t = rng.exponential(1 / np.where(x == 1, 1.7, 1.0))
    c = rng.exponential(1.5, n)
    time = np.minimum(t, c)
    if ties:  # heavy ties: Efron's correction matters
        time = np.ceil(time * 4) / 4
    event = (t <= c).astype(int)
    fit = cox(pd.DataFrame({"t": time, "e": event, "x": x}), "t", "e", ["x"])
    # cox stops as R's coxph does (relative change of the log likelihood <= 1e-9), this at a step < 1e-10
    assert log_hazard_ratio(time, event, x) == pytest.approx(fit.summary.loc["x", "coef"], abs=1e-7)


def test_log_hazard_ratio_nan_when_a_group_has_no_event():
    assert math.isnan(log_hazard_ratio([1, 2, 3, 4], [1, 1, 0, 0], [0, 0, 1, 1]))
    assert math.isnan(log_hazard_ratio([1, 2, 3, 4], [0, 0, 1, 0], [0, 0, 1, 1]))


@pytest.mark.parametrize(("time", "event", "x"), [
    ([5, 1, 5, 2], [1, 1, 0, 1], [0, 1, 0, 1]),  # the control's event comes when only the control is at risk
    ([1, 2, 3, 4], [1, 1, 1, 1], [1, 1, 0, 0]),  # the same with every row an event
])
def test_log_hazard_ratio_nan_when_the_likelihood_rises_without_bound(time, event, x):
    # R: coxph(Surv(time, event) ~ x) warns "Loglik converged before variable 1; coefficient may be infinite"
    with np.errstate(all="raise"):
        assert math.isnan(log_hazard_ratio(time, event, x))
    # the fits of every replicate at once take the same path
    t, e, g = (np.asarray(v, float) for v in (time, event, x))
    out = _log_hazard_ratios(t, e, g, np.zeros(len(t), np.int64), 1, np.array([e[g > 0].sum()]), np.array([True]))
    assert math.isnan(out[0])


def test_restricted_mean_by_hand_and_against_lifelines():
    # S = 1 on [0, 1), 3/4 on [1, 3), 3/8 on [3, 4): area to 4 = 1 + 1.5 + 0.375; to 2.5 = 1 + 1.125
    assert restricted_mean([1, 2, 3, 4], [1, 0, 1, 0], tau=4) == pytest.approx(2.875)
    assert restricted_mean([1, 2, 3, 4], [1, 0, 1, 0], tau=2.5) == pytest.approx(2.125)
    from lifelines import KaplanMeierFitter
    from lifelines.utils import restricted_mean_survival_time

    rng = np.random.default_rng(7)
    t = np.round(rng.exponential(10, 200), 1)
    e = (rng.random(200) < 0.7).astype(int)
    km = KaplanMeierFitter().fit(t, e)
    for tau in (5.0, 12.3, 20.0):
        assert restricted_mean(t, e, tau) == pytest.approx(restricted_mean_survival_time(km, t=tau), rel=1e-9)


def test_restricted_mean_beyond_follow_up_is_refused():
    with pytest.raises(DataError, match="beyond the last follow-up time 4"):
        restricted_mean([1, 2, 3, 4], [1, 0, 1, 0], tau=5)
    # a curve that reached 0 is known beyond the last time: S = 0 there
    assert restricted_mean([1, 2], [1, 1], tau=10) == pytest.approx(1 + 0.5)


def test_cumulative_incidence_by_hand():
    # buy at 1 (n=4), leave at 2 (n=3), buy at 3 (n=2), censored at 4:
    # F = 1/4 + S(3-) * 1/2 with S(3-) = (3/4)(2/3) = 1/2
    assert cumulative_incidence_at([1, 2, 3, 4], [1, 0, 1, 0], [0, 1, 0, 0], tau=4) == pytest.approx(0.5)
    assert cumulative_incidence_at([1, 2, 3, 4], [1, 0, 1, 0], [0, 1, 0, 0], tau=2.9) == pytest.approx(0.25)
    # tied buy and leave at the same time: both leave the risk set together
    assert cumulative_incidence_at([1, 1, 2, 3], [1, 0, 1, 0], [0, 1, 0, 0], tau=3) == pytest.approx(0.25 + 0.5 / 2)


def test_cumulative_incidence_without_competing_event_is_one_minus_km():
    rng = np.random.default_rng(11)
    t = np.round(rng.exponential(5, 150), 1)
    e = (rng.random(150) < 0.6).astype(int)
    curve = kaplan_meier(pd.DataFrame({"t": t, "e": e}), "t", "e").curve
    s = curve.survival[curve.time <= 6.0].iloc[-1]
    assert cumulative_incidence_at(t, e, np.zeros(150), tau=6.0) == pytest.approx(1 - s, rel=1e-12)


def test_cumulative_incidences_and_event_free_share_add_to_one():
    rng = np.random.default_rng(5)
    t = rng.exponential(5, 300)
    kind = rng.choice([0, 1, 2], 300, p=[0.2, 0.4, 0.4])
    buy, leave = (kind == 1).astype(int), (kind == 2).astype(int)
    tau = 7.0
    f_buy = cumulative_incidence_at(t, buy, leave, tau)
    f_leave = cumulative_incidence_at(t, leave, buy, tau)
    curve = kaplan_meier(pd.DataFrame({"t": t, "e": buy + leave}), "t", "e").curve
    s = curve.survival[curve.time <= tau].iloc[-1]
    assert f_buy + f_leave + s == pytest.approx(1.0, abs=1e-12)


def test_replicate_contrast_by_hand():
    c = ([1, 2, 3, 4], [1, 0, 1, 0], [0, 1, 0, 0])
    a = ([1, 2, 3, 4], [1, 1, 1, 0], [0, 0, 0, 0])
    out = replicate_contrast(c, a, tau=4)
    # arm RMST 1 + 3/4 + 2/4 + 1/4 = 2.5 against 2.875; CIF 3/4 against 1/2; risk 3/4 against 2/4
    assert out["rmst_difference_s"] == pytest.approx(-0.375)
    assert out["cif_difference"] == pytest.approx(0.25)
    assert out["risk_difference"] == pytest.approx(0.25)
    assert out["odds_ratio"] == pytest.approx(3.0)
    d = pd.DataFrame({"t": c[0] + a[0], "e": c[1] + a[1], "x": [0] * 4 + [1] * 4})
    assert out["hazard_ratio"] == pytest.approx(cox(d, "t", "e", ["x"]).summary.loc["x", "hazard_ratio"])


# -- the interval across replicates --------------------------------------------------------------------

def test_t_across_is_the_one_sample_t_test():
    x = np.array([0.31, 0.52, 0.12, 0.44, 0.27])
    r = t_across(x, null=0.1, conf_level=0.9)
    ref = st.ttest_1samp(x, 0.1)
    lo, hi = st.t.interval(0.9, 4, loc=x.mean(), scale=st.sem(x))
    assert float(r["t"]) == pytest.approx(ref.statistic)
    assert float(r["p"]) == pytest.approx(ref.pvalue)
    assert (float(r["ci_lower"]), float(r["ci_upper"])) == pytest.approx((lo, hi))
    assert float(r["df"]) == 4


def test_t_across_vectorised_equals_one_at_a_time():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3))
    r = t_across(x, axis=1)
    for i in range(7):
        one = t_across(x[i])
        for k in r:
            assert r[k][i] == pytest.approx(float(one[k]))
    rt = t_across(x.T, axis=0)
    np.testing.assert_allclose(rt["ci_lower"], r["ci_lower"])


@pytest.mark.parametrize("G", [2, 3, 5])
def test_t_interval_is_exact_on_normal_estimates(G):
    # 20,000 experiments of G normal per-replicate estimates: coverage 95 % within 3 binomial SE
    rng = np.random.default_rng(G)
    n = 20_000
    r = t_across(rng.normal(0.4, 0.07, size=(n, G)), null=0.0, axis=1)
    cover = np.mean((r["ci_lower"] <= 0.4) & (r["ci_upper"] >= 0.4))
    assert abs(cover - 0.95) < 3 * math.sqrt(0.95 * 0.05 / n)
    # and the test of a true null rejects at 5 %
    p = t_across(rng.normal(0.0, 0.07, size=(n, G)), axis=1)["p"]
    assert abs(np.mean(p < 0.05) - 0.05) < 3 * math.sqrt(0.95 * 0.05 / n)


def test_t_across_one_value_and_no_spread():
    one = t_across([0.3])
    assert float(one["estimate"]) == 0.3 and all(math.isnan(float(one[k])) for k in ("se", "ci_lower", "p"))
    flat = t_across([0.3, 0.3, 0.3])
    assert float(flat["se"]) == 0 and math.isnan(float(flat["p"])) and math.isnan(float(flat["ci_lower"]))


def test_format_p_never_prints_beyond_its_floor():
    assert format_p(0.0312) == "0.031"
    assert format_p(1e-300) == format_p(0.0) == "<1e-04"
    assert format_p(float("nan")) == ""
    # with 3 replicates a huge t gives a p value no smaller than about 1/t^2: nothing like 1e-300
    p = float(t_across([10.0, 10.0001, 10.0002])["p"])
    assert 1e-12 < p < 1e-4


# -- on a DataFrame ------------------------------------------------------------------------------------

def _frame(effects: dict[int, float], n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Replicates whose per-replicate risk differences are exactly ``effects``.

    Control: 20 % of ``n`` buy; arm: 20 % + effect.  Times are the row
    order within the arm, every non-buyer leaves (competing).
    """
    rows = []
    for rep, eff in effects.items():
        for arm, share in (("control", 0.2), ("sale", 0.2 + eff)):
            k = round(share * n)
            bought = np.r_[np.ones(k), np.zeros(n - k)]
            rng = np.random.default_rng(seed + rep)
            rows.append(pd.DataFrame({"arm": arm, "rep": rep, "t": rng.permutation(np.arange(1.0, n + 1)),
                                      "bought": bought, "left": 1 - bought}))
    return pd.concat(rows, ignore_index=True)


def test_known_case_three_replicates():
    df = _frame({0: 0.1, 1: 0.2, 2: 0.3})
    fx = replicate_effects(df, "t", "bought", "arm", control="control", replicate="rep",
                           measures="risk_difference")
    row = fx.summary.iloc[0]
    se = 0.1 / math.sqrt(3)  # sd of (0.1, 0.2, 0.3) is 0.1
    assert row.estimate == pytest.approx(0.2)
    assert row.se == pytest.approx(se)
    assert (row.ci_lower, row.ci_upper) == pytest.approx((0.2 - T975[2] * se, 0.2 + T975[2] * se))
    assert row.df == 2 and row.replicates == 3 and row.note == ""
    assert row.p == pytest.approx(2 * st.t.sf(0.2 / se, 2))
    assert fx.per_replicate.estimate.tolist() == pytest.approx([0.1, 0.2, 0.3])


def test_ratios_are_averaged_on_the_log_scale():
    df = _frame({0: 0.1, 1: 0.2, 2: 0.3})
    fx = replicate_effects(df, "t", "bought", "arm", control="control", replicate="rep",
                           measures=["odds_ratio", "hazard_ratio"])
    for m in ("odds_ratio", "hazard_ratio"):
        per = fx.per_replicate.loc[fx.per_replicate.measure == m, "estimate"].to_numpy()
        row = fx.summary.set_index("measure").loc[m]
        logs = np.log(per)
        assert row.estimate == pytest.approx(math.exp(logs.mean()))
        half = T975[2] * logs.std(ddof=1) / math.sqrt(3)
        assert (row.ci_lower, row.ci_upper) == pytest.approx((math.exp(logs.mean() - half),
                                                              math.exp(logs.mean() + half)))


def test_one_replicate_is_refused_with_a_reason():
    df = _frame({0: 0.1})
    with pytest.warns(StatisticalWarning, match="one replicate"):
        fx = replicate_effects(df, "t", "bought", "arm", control="control", replicate="rep", tau=100.0,
                               competing="left")
    s = fx.summary
    assert s.estimate.notna().all()
    assert s[["se", "ci_lower", "ci_upper", "t", "p"]].isna().all().all()
    assert (s.df == 0).all() and (s.replicates == 1).all()
    assert s.note.str.contains("no interval and no p value").all()


def test_two_replicates_give_the_wide_t1_interval_and_say_so():
    df = _frame({0: 0.1, 1: 0.3})
    with pytest.warns(StatisticalWarning, match="two replicates"):
        fx = replicate_effects(df, "t", "bought", "arm", control="control", replicate="rep",
                               measures="risk_difference")
    row = fx.summary.iloc[0]
    se = math.sqrt(((0.1 - 0.2) ** 2 + (0.3 - 0.2) ** 2) / 1) / math.sqrt(2)  # = 0.1
    assert row.ci_upper - row.ci_lower == pytest.approx(2 * T975[1] * se)
    assert "12.7" in row.note and row.df == 1


def test_identical_arms_have_nothing_to_test():
    df = _frame({0: 0.0, 1: 0.0, 2: 0.0})
    df.loc[df.arm == "sale", "t"] = df.loc[df.arm == "control", "t"].to_numpy()
    with pytest.warns(StatisticalWarning, match="nothing to test"):
        fx = replicate_effects(df, "t", "bought", "arm", control="control", replicate="rep", tau=100.0,
                               competing="left")
    s = fx.summary.set_index("measure")
    assert s.p.isna().all()
    assert s.loc["hazard_ratio", "ci_lower"] == s.loc["hazard_ratio", "ci_upper"] == 1.0
    assert s.loc["cif_difference", "ci_lower"] == s.loc["cif_difference", "ci_upper"] == 0.0


def test_a_replicate_without_purchases_in_a_group_gives_no_estimate():
    df = _frame({0: 0.1, 1: 0.2, 2: 0.3})
    df.loc[(df.rep == 1) & (df.arm == "control"), ["bought", "left"]] = [0, 1]
    with pytest.warns(StatisticalWarning, match="replicate\\(s\\) 1 give no estimate"):
        fx = replicate_effects(df, "t", "bought", "arm", control="control", replicate="rep",
                               measures=["hazard_ratio", "risk_difference"])
    s = fx.summary.set_index("measure")
    assert math.isnan(s.loc["hazard_ratio", "estimate"])
    assert s.loc["risk_difference", "estimate"] == pytest.approx((0.1 + 0.4 + 0.3) / 3)


def test_several_groups_each_against_the_control():
    df = _frame({0: 0.1, 1: 0.2, 2: 0.3})
    timer = _frame({0: 0.0, 1: 0.1, 2: 0.5}).query("arm == 'sale'").assign(arm="timer")
    fx = replicate_effects(pd.concat([df, timer]), "t", "bought", "arm", control="control", replicate="rep",
                           measures="risk_difference")
    assert fx.summary.group.tolist() == ["sale", "timer"]
    assert fx.summary.estimate.tolist() == pytest.approx([0.2, 0.2])
    assert fx.summary.se.tolist() == pytest.approx([0.1 / math.sqrt(3), np.std([0, 0.1, 0.5], ddof=1) / math.sqrt(3)])


def test_result_object():
    df = _frame({0: 0.1, 1: 0.2, 2: 0.3})
    fx = replicate_effects(df, "t", "bought", "arm", control="control", replicate="rep", tau=100.0,
                           competing="left", conf_level=0.9)
    assert repr(fx).startswith("<ReplicateEffectsResult: 1 group(s) vs control 'control', 3 replicate(s)")
    assert fx.conf_level == 0.9 and fx.tau == 100.0 and fx.replicate == "rep"
    assert tuple(fx.summary.columns) == type(fx).COLUMNS
    assert fx.summary.measure.tolist() == ["hazard_ratio", "rmst_difference_s", "cif_difference",
                                           "risk_difference", "odds_ratio"]
    back = pickle.loads(pickle.dumps(fx))
    pd.testing.assert_frame_equal(back.summary, fx.summary)


def test_replicate_estimates_is_the_first_step():
    df = _frame({0: 0.1, 1: 0.2, 2: 0.3})
    est = replicate_estimates(df, "t", "bought", "arm", control="control", replicate="rep", tau=100.0,
                              competing="left")
    fx = replicate_effects(df, "t", "bought", "arm", control="control", replicate="rep", tau=100.0,
                           competing="left")
    pd.testing.assert_frame_equal(est, fx.per_replicate)
    assert set(est.replicate) == {0, 1, 2} and len(est) == 3 * 5


def test_competing_column_matters_for_the_cumulative_incidence():
    # without the competing column the departures count as censoring: 1 - KM, larger
    df = _frame({0: 0.1, 1: 0.2, 2: 0.3})
    kw = dict(control="control", replicate="rep", tau=150.0, measures="cif_difference")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cr = replicate_estimates(df, "t", "bought", "arm", competing="left", **kw)
        km = replicate_estimates(df, "t", "bought", "arm", **kw)
    assert (km.estimate.abs() > cr.estimate.abs()).all()


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(measures="rmst_difference_s"), "need a horizon 'tau'"),
    (dict(measures="cif_difference", tau=-1.0), "'tau' must be a positive number"),
    (dict(measures="cif_difference", tau=10_000.0),
     "replicate 0, group 'sale' against the control: 'tau' = 10000 is beyond"),
    (dict(measures="median"), "unknown measure 'median'"),
    (dict(measures=[]), "at least one measure"),
    (dict(control="none"), "control 'none' not found in column 'arm'"),
    (dict(competing="bought"), "both 1 in row"),
    (dict(replicate="nope"), "column 'nope' not found"),
])
def test_bad_input_names_the_problem(kwargs, match):
    df = _frame({0: 0.1, 1: 0.2})
    args = dict(control="control", replicate="rep", measures="risk_difference") | kwargs
    with pytest.raises(DataError, match=match):
        replicate_effects(df, "t", "bought", "arm", **args)


def test_only_the_control_is_refused():
    df = _frame({0: 0.1})
    with pytest.raises(DataError, match="holds only the control"):
        replicate_effects(df[df.arm == "control"], "t", "bought", "arm", control="control", replicate="rep")


# -- many replicates at once ----------------------------------------------------------------------------

def _many(replicates: int, seed: int = 0) -> pd.DataFrame:
    """Replicates of three arms with tied times (whole seconds) and different numbers of viewers."""
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(replicates):
        for arm, hazard in (("control", 1 / 300), ("sale", 1 / 200), ("timer", 1 / 250)):
            n = int(rng.integers(40, 120))
            buy, leave = rng.exponential(1 / hazard, n), rng.exponential(250, n)
            rows.append(pd.DataFrame({"arm": arm, "rep": f"r{rep:02d}", "t": np.ceil(np.minimum(buy, leave)),
                                      "bought": (buy < leave).astype(int), "left": (buy >= leave).astype(int)}))
    return pd.concat(rows, ignore_index=True)


_FAST = ["hazard_ratio", "odds_ratio", "risk_difference"]


def test_estimates_of_many_replicates_are_each_replicates_own_contrast():
    df = _many(12)
    est = replicate_estimates(df, "t", "bought", "arm", control="control", replicate="rep", measures=_FAST)
    assert len(est) == 12 * 2 * 3
    for (rep, grp), got in est.groupby(["replicate", "group"]):
        cols = ["t", "bought", "left"]
        ctrl = df[(df.rep == rep) & (df.arm == "control")][cols].to_numpy().T
        arm = df[(df.rep == rep) & (df.arm == grp)][cols].to_numpy().T
        want = replicate_contrast(tuple(ctrl), tuple(arm), tau=None, measures=_FAST)
        assert dict(zip(got.measure, got.estimate, strict=True)) == want  # bit for bit


def test_shuffled_rows_give_the_same_tables():
    df = _many(8, seed=4)
    kw = dict(control="control", replicate="rep", tau=100.0, competing="left")
    a = replicate_effects(df, "t", "bought", "arm", **kw)
    b = replicate_effects(df.sample(frac=1.0, random_state=3), "t", "bought", "arm", **kw)
    pd.testing.assert_frame_equal(a.summary, b.summary, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(a.per_replicate, b.per_replicate, check_exact=False, rtol=1e-12)
    fast = [m for m in a.per_replicate.measure.unique() if m in _FAST]
    pick = a.per_replicate.measure.isin(fast)
    assert a.per_replicate[pick].equals(b.per_replicate[pick])  # counts only: exact whatever the row order


def test_a_replicate_lacking_the_control_or_an_arm_is_left_out_of_that_contrast():
    df = _many(6, seed=2)
    df = df[~((df.rep == "r01") & (df.arm == "control"))]  # r01: no contrast at all
    df = df[~((df.rep == "r03") & (df.arm == "timer"))]  # r03: sale only
    est = replicate_estimates(df, "t", "bought", "arm", control="control", replicate="rep", measures=_FAST)
    reps = est.groupby("group").replicate.unique()
    assert reps["sale"].tolist() == ["r00", "r02", "r03", "r04", "r05"]
    assert reps["timer"].tolist() == ["r00", "r02", "r04", "r05"]
    # the rows are listed replicate by replicate, each with its groups in order
    assert est.replicate.tolist() == sorted(est.replicate)
    fx = replicate_effects(df, "t", "bought", "arm", control="control", replicate="rep", measures=_FAST)
    assert fx.summary.set_index(["group", "measure"]).replicates.to_dict() == {
        (g, m): 5 if g == "sale" else 4 for g in ("sale", "timer") for m in _FAST}


def test_hazard_ratios_of_rows_in_any_order_are_each_replicates_own_fit():
    rng = np.random.default_rng(3)
    parts = []
    for rep in range(7):
        for arm, rate in (("control", 1.0), ("sale", 1.4), ("timer", 0.8)):
            n = int(rng.integers(150, 250))
            buy, leave = rng.exponential(1 / rate, n), rng.exponential(1.0, n)
            parts.append(pd.DataFrame({"arm": arm, "rep": rep, "t": np.round(np.minimum(buy, leave), 2),
                                       "bought": (buy <= leave).astype(int)}))
    data = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=2)  # rows in any order, tied times
    kw = dict(control="control", replicate="rep", measures=["hazard_ratio", "odds_ratio"])
    whole = replicate_estimates(data, "t", "bought", "arm", **kw)
    assert whole.estimate.notna().all() and len(whole) == 7 * 2 * 2
    fits = whole[whole.measure == "hazard_ratio"]
    for rep, grp, got in zip(fits.replicate, fits.group, fits.estimate, strict=True):
        mine = data[data.rep == rep]
        c, a = mine[mine.arm == "control"], mine[mine.arm == grp]
        b = log_hazard_ratio(np.r_[c.t, a.t], np.r_[c.bought, a.bought], np.r_[np.zeros(len(c)), np.ones(len(a))])
        assert got == math.exp(b)  # bit for bit


def test_cell_codes_made_a_few_rows_at_a_time_are_the_same(monkeypatch):
    import fomolab.stats.replicates as rp

    rng = np.random.default_rng(5)
    data = pd.DataFrame({"arm": rng.choice(["control", "sale", "timer"], 900), "rep": rng.integers(0, 6, 900),
                         "t": rng.exponential(1.0, 900), "bought": (rng.random(900) < 0.4).astype(int)})
    kw = dict(control="control", replicate="rep", measures=["hazard_ratio", "risk_difference"])
    whole = replicate_estimates(data, "t", "bought", "arm", **kw)
    monkeypatch.setattr(rp, "_KEY_ROWS", 7)  # codes of a few rows at a time, each chunk hashed on its own
    assert replicate_estimates(data, "t", "bought", "arm", **kw).equals(whole)


def test_groups_as_a_categorical_or_as_text_give_the_same_tables():
    df = _frame({0: 0.05, 1: 0.1, 2: 0.02, 3: 0.08}, n=60, seed=21).sample(frac=1.0, random_state=4)
    df = df.reset_index(drop=True)
    kw = dict(control="control", replicate="rep", tau=30.0, competing="left")
    text = replicate_effects(df, "t", "bought", "arm", **kw)
    for cats in (["sale", "control", "unused"], ["control", "sale"]):
        coded = df.assign(arm=pd.Categorical(df.arm, categories=cats))
        got = replicate_effects(coded, "t", "bought", "arm", **kw)
        pd.testing.assert_frame_equal(got.summary, text.summary, check_exact=True)
        pd.testing.assert_frame_equal(got.per_replicate, text.per_replicate, check_exact=True)
    gone = df.assign(arm=df.arm.where(df.index != 5, None))
    with pytest.raises(DataError, match="must not contain missing values: row 5 is missing"):
        replicate_effects(gone, "t", "bought", "arm", **kw)
    with pytest.raises(DataError, match="must not contain missing values: row 5 is missing"):
        replicate_effects(gone.assign(arm=gone.arm.astype("category")), "t", "bought", "arm",
                          **kw)
    with pytest.raises(DataError, match=r"control 'nobody' not found in column 'arm' \(values: 'control', 'sale'"):
        replicate_effects(df.sort_values("arm"), "t", "bought", "arm", **{**kw, "control": "nobody"})


def test_cells_taken_by_time_give_the_same_tables():
    from fomolab.stats.replicates import _effects

    rng = np.random.default_rng(12)
    df = _frame({0: 0.05, 1: 0.1, 2: 0.02}, n=80, seed=3).sample(frac=1.0, random_state=5).reset_index(drop=True)
    df["t"] = np.ceil(df.t / 7.0)  # ties within and across the arms
    df.loc[rng.random(len(df)) < 0.3, "bought"] = 0.0
    kw = dict(control="control", replicate="rep", measures=["hazard_ratio", "odds_ratio", "risk_difference"])
    want = replicate_effects(df, "t", "bought", "arm", **kw)
    got = _effects(df, "t", "bought", "arm", by_time=np.argsort(df.t.to_numpy(), kind="stable"), **kw)
    pd.testing.assert_frame_equal(got.summary, want.summary, check_exact=True)
    pd.testing.assert_frame_equal(got.per_replicate, want.per_replicate, check_exact=True)
    # tied rows in another order (the reverse of the rows'), and the replicates given as codes: the same tables
    backwards = np.lexsort((-np.arange(len(df)), df.t.to_numpy()))
    coded = sorted_small_codes(df.rep.to_numpy())
    got = _effects(df, "t", "bought", "arm", by_time=backwards, rep_code=coded, **kw)
    pd.testing.assert_frame_equal(got.summary, want.summary, check_exact=True)
    pd.testing.assert_frame_equal(got.per_replicate, want.per_replicate, check_exact=True)


def test_replicates_given_as_codes_give_the_same_tables_and_errors():
    from fomolab.stats.replicates import _effects

    df = _frame({0: 0.05, 1: 0.1, 2: 0.02, 3: 0.08}, n=60, seed=23).sample(frac=1.0, random_state=2)
    df = df.reset_index(drop=True).assign(rep=lambda d: d.rep * 3 + 10)  # replicate numbers with gaps
    kw = dict(control="control", replicate="rep", tau=30.0, competing="left")
    want = replicate_effects(df, "t", "bought", "arm", **kw)
    got = _effects(df, "t", "bought", "arm", rep_code=sorted_small_codes(df.rep.to_numpy()), **kw)
    pd.testing.assert_frame_equal(got.summary, want.summary, check_exact=True)
    pd.testing.assert_frame_equal(got.per_replicate, want.per_replicate, check_exact=True)
    gone = df.assign(rep=df.rep.where(df.index != 7, np.nan))
    with pytest.raises(DataError, match="must not contain missing values: row 7 is missing"):
        _effects(gone, "t", "bought", "arm", rep_code=sorted_small_codes(gone.rep.to_numpy()), **kw)


def test_events_as_integers_booleans_or_floats_give_the_same_tables():
    df = _many(6, seed=7)
    kw = dict(control="control", replicate="rep", tau=100.0, competing="left")
    want = replicate_effects(df.assign(bought=df.bought.astype(float)), "t", "bought", "arm", **kw)
    for kind in (int, np.int8, bool):
        got = replicate_effects(df.assign(bought=df.bought.astype(kind)), "t", "bought", "arm", **kw)
        pd.testing.assert_frame_equal(got.summary, want.summary, check_exact=True)
        pd.testing.assert_frame_equal(got.per_replicate, want.per_replicate, check_exact=True)


def test_the_rows_read_are_left_as_they_were():
    # times and events are read as the frame's own values (no copies): the estimates must not write into them
    df = _many(5, seed=9)
    for bought in (df.bought, df.bought.astype(float), df.bought.astype(bool)):
        data = df.assign(bought=bought)
        before = data.copy(deep=True)
        replicate_effects(data, "t", "bought", "arm", control="control", replicate="rep", tau=100.0,
                          competing="left")
        pd.testing.assert_frame_equal(data, before, check_exact=True)


@pytest.mark.parametrize("stretch", [None, 7])
def test_cells_taken_from_each_groups_rows_by_time_give_the_same_tables(monkeypatch, stretch):
    from fomolab.stats import replicates
    from fomolab.stats.replicates import _effects

    if stretch:  # a few rows placed at a time: the same cells
        monkeypatch.setattr(replicates, "_CELL_ROWS", stretch)
    df = _frame({0: 0.05, 1: 0.1, 2: 0.02}, n=60, seed=8).sample(frac=1.0, random_state=4).reset_index(drop=True)
    df["t"] = np.ceil(df.t / 5.0)  # ties within and across the arms
    kw = dict(control="control", replicate="rep", measures=["hazard_ratio", "odds_ratio", "risk_difference"])
    want = replicate_effects(df, "t", "bought", "arm", **kw)
    # each arm's rows by time, the arms one after the other (not all rows by time)
    runs = [np.flatnonzero(df.arm.to_numpy() == a) for a in ("sale", "control")]
    runs = [r[np.argsort(df.t.to_numpy()[r], kind="stable")].astype(np.int32) for r in runs]
    for rep_code in (None, sorted_small_codes(df.rep.to_numpy())):
        got = _effects(df, "t", "bought", "arm", by_time=runs, rep_code=rep_code, **kw)
        pd.testing.assert_frame_equal(got.summary, want.summary, check_exact=True)
        pd.testing.assert_frame_equal(got.per_replicate, want.per_replicate, check_exact=True)


@pytest.mark.parametrize("stretch", [3, 1 << 18])
def test_rows_by_cell_are_the_stable_sort_of_the_runs_by_cell(stretch):
    from fomolab.stats.replicates import _by_cell

    rng = np.random.default_rng(stretch)
    cell = rng.integers(0, 6, 50)
    runs = [rng.permutation(30).astype(np.int32), rng.permutation(np.arange(30, 50)).astype(np.int32)]
    bounds = np.r_[0, np.cumsum(np.bincount(cell, minlength=6))]
    got = _by_cell(runs, lambda rows: cell[rows].astype(np.int64), bounds, stretch)
    whole = np.concatenate(runs)
    assert np.array_equal(got, whole[np.argsort(cell[whole], kind="stable")]) and got.dtype == np.int32


def test_cells_taken_from_the_groups_rows_by_group_give_the_same_tables():
    from fomolab.stats.replicates import _effects

    df = _frame({0: 0.05, 1: 0.1, 2: 0.02}, n=50, seed=9)
    df = pd.concat([df, df[df.arm == "sale"].assign(arm="sale_timer", bought=lambda d: d.bought[::-1].to_numpy())],
                   ignore_index=True).sample(frac=0.9, random_state=6).reset_index(drop=True)  # cells of all sizes
    df["t"] = np.ceil(df.t / 4.0)  # ties within and across the arms
    kw = dict(control="control", replicate="rep", measures=["hazard_ratio", "odds_ratio", "risk_difference"])
    want = replicate_effects(df, "t", "bought", "arm", **kw)
    by_group = {a: np.flatnonzero(df.arm.to_numpy() == a) for a in ("sale", "control", "sale_timer")}
    by_group = {a: r[np.argsort(df.t.to_numpy()[r], kind="stable")].astype(np.int32) for a, r in by_group.items()}
    # a group given without rows (an arm with no visit at the point) may be absent from the rows
    for given in (by_group, {**by_group, "nobody": np.zeros(0, np.int32)}):
        got = _effects(df, "t", "bought", "arm", by_time=given, rep_code=sorted_small_codes(df.rep.to_numpy()), **kw)
        pd.testing.assert_frame_equal(got.summary, want.summary, check_exact=True)
        pd.testing.assert_frame_equal(got.per_replicate, want.per_replicate, check_exact=True)
    # rows given under the wrong group are refused, not counted as that group's
    swapped = {**by_group, "sale": by_group["sale_timer"], "sale_timer": by_group["sale"]}
    with pytest.raises(ValueError, match="hold other groups"):
        _effects(df, "t", "bought", "arm", by_time=swapped, **kw)


def test_group_codes_of_a_categorical_seen_in_its_order_are_its_own_codes():
    from fomolab.stats.replicates import _group_codes

    arm = np.array(["control", "control", "sale", "sale_timer", "sale", "control"], dtype=object)
    for cats, own in ((["control", "sale", "sale_timer"], True), (["sale", "control", "sale_timer"], False),
                      (["control", "sale", "sale_timer", "unused"], False)):
        df = pd.DataFrame({"arm": pd.Categorical(arm, categories=cats)})
        code, names = _group_codes(df, "arm")
        want_code, want_names = pd.factorize(arm)
        assert code.tolist() == want_code.tolist() and list(names) == list(want_names) and code.itemsize == 1
        assert np.shares_memory(code, df.arm.cat.codes.to_numpy()) == own  # no copy where they are the same
