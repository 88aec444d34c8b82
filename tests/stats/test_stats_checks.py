"""Bad input gives a DataError naming the column, the rule and a value;
property tests of invariants (Hypothesis, derandomized)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fomolab.errors import DataError
from fomolab.stats import (
    conversion,
    cox,
    deadline_effect,
    kaplan_meier,
    logrank,
    risk_difference,
)

GOOD = pd.DataFrame({"t": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "e": [1, 0, 1, 1, 0, 1],
                     "x": [0.1, 0.4, -0.3, 1.2, 0.0, 0.7], "g": list("aabbab"),
                     "s0": [0.0, 0.0, 1.0, 0.0, 2.0, 0.0], "cl": [1, 1, 2, 2, 3, 3]})

CALLS = {
    "kaplan_meier": lambda d, **k: kaplan_meier(d, "t", "e", by="g"),
    "logrank": lambda d, **k: logrank(d, "t", "e", by="g"),
    "cox": lambda d, **k: cox(d, "t", "e", ["x"], start="s0", cluster="cl"),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_missing_column(name):
    with pytest.raises(DataError, match=r"column 'e' not found in 'data' \(columns are"):
        CALLS[name](GOOD.drop(columns="e"))


@pytest.mark.parametrize("name", list(CALLS))
def test_non_numeric_duration(name):
    d = GOOD.astype({"t": object})
    d.loc[3, "t"] = "soon"
    with pytest.raises(DataError, match=r"column 't' .*must be numeric: row 3 holds 'soon'"):
        CALLS[name](d)


@pytest.mark.parametrize("name", list(CALLS))
def test_negative_time(name):
    d = GOOD.copy()
    d.loc[2, "t"] = -1.5
    with pytest.raises(DataError, match=r"column 't' .*must be >= 0: row 2 holds -1.5"):
        CALLS[name](d)


@pytest.mark.parametrize("name", list(CALLS))
def test_nan_in_used_column(name):
    d = GOOD.copy()
    d.loc[4, "t"] = np.nan
    with pytest.raises(DataError, match=r"column 't' .*missing values: row 4 is NaN"):
        CALLS[name](d)


@pytest.mark.parametrize("name", list(CALLS))
def test_events_not_01(name):
    d = GOOD.copy()
    d.loc[1, "e"] = 2
    with pytest.raises(DataError, match=r"column 'e' .*0/1 or boolean: row 1 holds 2"):
        CALLS[name](d)


@pytest.mark.parametrize("name", list(CALLS))
def test_empty(name):
    with pytest.raises(DataError, match="empty"):
        CALLS[name](GOOD.iloc[:0])


def test_not_a_dataframe():
    with pytest.raises(DataError, match="must be a pandas DataFrame: got dict"):
        kaplan_meier({"t": [1]}, "t", "e")


def test_stop_not_after_start():
    d = GOOD.copy()
    d.loc[2, "s0"] = 3.0  # stop 3, start 3
    with pytest.raises(DataError, match=r"'t' must be > 's0'.*row 2 has start=3.0, stop=3.0"):
        cox(d, "t", "e", ["x"], start="s0")


def test_nan_in_group_cluster_strata_and_covariate():
    d = GOOD.copy()
    d.loc[5, "g"] = None
    with pytest.raises(DataError, match=r"column 'g' .*missing values: row 5"):
        logrank(d, "t", "e", by="g")
    d = GOOD.copy()
    d["cl"] = d["cl"].astype(float)
    d.loc[0, "cl"] = np.nan
    with pytest.raises(DataError, match=r"column 'cl' .*row 0"):
        cox(d, "t", "e", ["x"], cluster="cl")
    d = GOOD.copy()
    d.loc[3, "x"] = np.nan
    with pytest.raises(DataError, match=r"column 'x' .*row 3 is NaN"):
        cox(d, "t", "e", ["x"])
    with pytest.raises(DataError, match=r"column 'x' .*row 3 is NaN"):
        conversion(d, "e", ["x"])


def test_other_rules():
    with pytest.raises(DataError, match="no events"):
        cox(GOOD.assign(e=0), "t", "e", ["x"])
    with pytest.raises(DataError, match="'x' is constant"):
        cox(GOOD.assign(x=1.0), "t", "e", ["x"])
    with pytest.raises(DataError, match="'ties' must be"):
        cox(GOOD, "t", "e", ["x"], ties="exact")
    with pytest.raises(DataError, match="at least 2 groups"):
        logrank(GOOD.assign(g="a"), "t", "e", by="g")
    with pytest.raises(DataError, match="'covariates' must name"):
        cox(GOOD, "t", "e", [])
    with pytest.raises(DataError, match="collinear"):
        cox(GOOD.assign(x2=2 * GOOD["x"] + 1), "t", "e", ["x", "x2"])
    with pytest.raises(DataError, match=r"column 'e' .*row 0 holds 'yes'"):
        risk_difference(GOOD.assign(e=["yes"] * 6), "e", "g", control="a")
    with pytest.raises(DataError, match="'windows' must have at least one row"):
        deadline_effect(pd.DataFrame({"time_s": [1.0]}), pd.DataFrame({"start_s": [], "end_s": []}))


def test_boolean_events_accepted():
    a = cox(GOOD, "t", "e", ["x"])
    b = cox(GOOD.assign(e=GOOD["e"].astype(bool)), "t", "e", ["x"])
    assert a.summary["coef"].iloc[0] == b.summary["coef"].iloc[0]


def test_events_kept_as_their_integers_are_the_rows_own_values_and_checked_alike():
    from fomolab.stats import _checks

    df = pd.DataFrame({"i": [0, 1, 1, 0], "u": np.array([1, 0, 0, 1], np.uint8), "b": [True, False, True, True],
                       "f": [0.0, 1.0, 1.0, 0.0], "r": [1, 2, 2, 1], "o": [0, 1, 3, 0]}, index=list("wxyz"))
    for col in ("i", "u", "b", "f"):
        got = _checks.events01(df, col, as_float=False)
        assert np.shares_memory(got, df[col].to_numpy())  # the column's own values, not a copy
        assert got.tolist() == _checks.events01(df, col).tolist()
    for col, match in (("r", r"row 'x' holds 2 \(R's 1 = censored / 2 = event coding\? use status - 1\)"),
                       ("o", r"column 'o' of 'data' \(event indicator\) must be 0/1 or boolean: row 'y' holds 3$")):
        for as_float in (True, False):
            with pytest.raises(DataError, match=match):
                _checks.events01(df, col, as_float=as_float)


# ---------------------------------------------------------------- properties

surv_data = st.integers(min_value=2, max_value=40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 12), min_size=n, max_size=n),
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.floats(-2, 2, allow_nan=False), min_size=n, max_size=n),
        st.lists(st.integers(0, 2), min_size=n, max_size=n),
    ))


@settings(max_examples=60, derandomize=True, deadline=None)
@given(surv_data)
def test_km_curve_is_a_survival_function(args):
    t, e, _, g = args
    d = pd.DataFrame({"t": t, "e": e, "g": g})
    km = kaplan_meier(d, "t", "e", by="g")
    for _, cur in km.curve.groupby("group"):
        s = cur["survival"].to_numpy()
        assert np.all((s >= 0) & (s <= 1)) and np.all(np.diff(s) <= 1e-15)
        ok = ~np.isnan(cur["ci_lower"].to_numpy())
        assert np.all(cur["ci_lower"].to_numpy()[ok] <= s[ok] + 1e-12)
        assert np.all(cur["ci_upper"].to_numpy()[ok] >= s[ok] - 1e-12)
    assert km.summary["n"].sum() == len(d)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(surv_data)
def test_logrank_invariant_to_row_order_and_labels(args):
    t, e, _, g = args
    d = pd.DataFrame({"t": t, "e": e, "g": g})
    if d["g"].nunique() < 2:
        return
    import warnings

    from fomolab.errors import StatisticalWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        a = logrank(d, "t", "e", by="g")
        b = logrank(d.iloc[::-1].assign(g=d["g"].iloc[::-1].map({0: "z", 1: "y", 2: "x"})),
                    "t", "e", by="g")
    assert a.df == b.df
    if np.isnan(a.statistic):
        assert np.isnan(b.statistic)
        return
    assert a.statistic == pytest.approx(b.statistic, rel=1e-7, abs=1e-9)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(st.integers(min_value=8, max_value=40), st.integers(0, 10_000))
def test_cox_invariances(n, seed):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"t": rng.permutation(n) + 1.0, "e": (rng.random(n) < 0.7).astype(int),
                      "x": rng.normal(size=n)})
    d.loc[0, "e"] = 1
    d.loc[1, "e"] = 1
    import warnings

    from fomolab.errors import ConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = cox(d, "t", "e", ["x"])
        # shifting a covariate leaves the fit unchanged; without tied times
        # Efron and Breslow agree; row order does not matter
        b = cox(d.assign(x=d["x"] + 100.0), "t", "e", ["x"])
        c = cox(d.iloc[::-1], "t", "e", ["x"], ties="breslow")
        s = cox(d.assign(s0=0.0), "t", "e", ["x"], start="s0")
    for other in (b, c, s):
        assert other.summary["coef"].iloc[0] == pytest.approx(a.summary["coef"].iloc[0],
                                                              rel=1e-6, abs=1e-9)


def test_logrank_all_tied_deaths_warns_nan():
    from fomolab.errors import StatisticalWarning
    d = pd.DataFrame({"t": [1.0, 1.0], "e": [1, 1], "g": ["a", "b"]})
    with pytest.warns(StatisticalWarning, match="singular"):
        res = logrank(d, "t", "e", by="g")
    assert np.isnan(res.statistic) and np.isnan(res.p)
