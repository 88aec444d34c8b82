"""The names used before the statistics vocabulary still work, with a DeprecationWarning.

Each old keyword gives exactly the numbers of its new name (a known answer
against R included), warns once, from the caller's line, naming the new name;
passing both is a TypeError.  ``CASES`` must cover every old name of every
function: a rename added without a case here fails
``test_every_old_name_is_exercised``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import fomolab.stats
from fomolab.errors import DataError, StatisticalWarning
from fomolab.stats import conversion, deadline_effect, plan_replicates, risk_difference
from fomolab.stats._compat import REMOVED_IN, Rename, renamed_kwargs
from fomolab.stats._intervals import t_interval
from fomolab.stats.compare import binary_logit

from r_output import close_to_printed as _close

ARMS = pd.DataFrame({"arm": ["c"] * 100 + ["t"] * 100,
                     "bought": [1] * 10 + [0] * 90 + [1] * 20 + [0] * 80,
                     "rep": np.random.default_rng(0).integers(0, 8, 200)})
Y = np.array([1, 0, 0, 0, 1, 1, 0, 0, 1, 0])
X = np.array([0, 0, 0, 0, 1, 1, 1, 0, 1, 1])


def _same(a, b) -> None:
    if hasattr(a, "summary"):
        a, b = a.summary, b.summary
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    else:
        np.testing.assert_array_equal(np.asarray(a, float), np.asarray(b, float))


#: (function, old keyword, call with the old name, the same call with the new name)
CASES = [
    (conversion, "outcome",
     lambda: conversion(ARMS.assign(x=(ARMS.arm == "t").astype(int)), outcome="bought", covariates=["x"]),
     lambda: conversion(ARMS.assign(x=(ARMS.arm == "t").astype(int)), event="bought", covariates=["x"])),
    (risk_difference, "outcome",
     lambda: risk_difference(ARMS, outcome="bought", by="arm", control="c", cluster="rep"),
     lambda: risk_difference(ARMS, event="bought", by="arm", control="c", cluster="rep")),
    (risk_difference, "group",
     lambda: risk_difference(ARMS, "bought", group="arm", control="c"),
     lambda: risk_difference(ARMS, "bought", by="arm", control="c")),
    (plan_replicates, "alpha",
     lambda: plan_replicates(0.6, alpha=0.1, events_per_replicate=9),
     lambda: plan_replicates(0.6, conf_level=0.9, events_per_replicate=9)),
    (binary_logit, "level",
     lambda: binary_logit(Y, X, None, level=0.9),
     lambda: binary_logit(Y, X, None, conf_level=0.9)),
    (t_interval, "level",
     lambda: t_interval(np.array([1.0, 2.0, 4.0]), level=0.8),
     lambda: t_interval(np.array([1.0, 2.0, 4.0]), conf_level=0.8)),
]


@pytest.mark.parametrize(("fn", "old", "call_old", "call_new"), CASES, ids=lambda v: getattr(v, "__name__", v))
def test_old_keyword_warns_and_gives_the_new_keywords_numbers(fn, old, call_old, call_new):
    new = fn.__renamed_kwargs__[old]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = call_old()
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1
    msg = str(deprecations[0].message)
    assert f"{fn.__name__}(): argument {old!r} is deprecated" in msg
    assert f"use {new!r} instead" in msg and REMOVED_IN in msg
    assert deprecations[0].filename == __file__  # points at the caller, not at the shim
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        want = call_new()
    _same(got, want)


def test_every_old_name_is_exercised():
    renamed = set()
    for mod in pkgutil.iter_modules(fomolab.stats.__path__):
        m = importlib.import_module(f"fomolab.stats.{mod.name}")
        for _, obj in inspect.getmembers(m, inspect.isfunction):
            for old in getattr(obj, "__renamed_kwargs__", {}):
                renamed.add((obj.__qualname__, old))
    assert renamed == {(fn.__qualname__, old) for fn, old, *_ in CASES}


def test_old_names_reproduce_the_spector_mazzeo_logit():
    # the known answer of test_stats_conversion, reached through the old keyword
    d = sm.datasets.spector.load_pandas().data
    with pytest.warns(DeprecationWarning, match="'outcome' is deprecated"):
        fit = conversion(d, outcome="GRADE", covariates=["GPA", "TUCE", "PSI"])
    for term, coef, se in [("intercept", "-13.0213", "4.931"), ("GPA", "2.8261", "1.263"),
                           ("TUCE", "0.0952", "0.142"), ("PSI", "2.3787", "1.065")]:
        _close(fit.summary.loc[term, "coef"], coef)
        _close(fit.summary.loc[term, "se"], se)


def test_alpha_translates_to_one_minus_conf_level():
    with pytest.warns(DeprecationWarning, match=r"use 'conf_level' instead \(conf_level = 1 - alpha\)"):
        old = plan_replicates(0.5, alpha=0.05)
    assert old.conf_level == 0.95
    _same(old, plan_replicates(0.5))
    with pytest.warns(DeprecationWarning, match="'alpha' is deprecated"), \
            pytest.raises(DataError, match="'conf_level' must be in"):
        plan_replicates(0.5, alpha=0)


def test_old_and_new_name_together_is_a_type_error():
    with pytest.raises(TypeError, match=r"got both 'outcome' .* and 'event'"):
        conversion(ARMS, "bought", ["rep"], outcome="bought")
    with pytest.raises(TypeError, match=r"got both 'group' .* and 'by'"):
        risk_difference(ARMS, "bought", by="arm", group="arm", control="c")
    with pytest.raises(TypeError, match="got both 'alpha'"):
        plan_replicates(0.5, alpha=0.05, conf_level=0.95)


def test_renamed_functions_show_only_the_new_names():
    for fn, old, *_ in CASES:
        params = inspect.signature(fn).parameters
        assert old not in params and fn.__renamed_kwargs__[old] in params
        assert fn.__doc__ and fn.__name__ in (fn.__qualname__.split(".")[-1],)


def test_warnings_inside_renamed_functions_still_point_at_the_caller():
    flat = ARMS.assign(bought=np.zeros(200))  # no buyer anywhere: zero standard error
    with pytest.warns(StatisticalWarning, match="zero standard error") as rec:
        risk_difference(flat, "bought", "arm", control="c")
    assert rec[0].filename == __file__
    # an outlier with a fitted probability of numerically 1 (as in test_stats_conversion)
    rng = np.random.default_rng(5)
    x = rng.normal(size=300)
    y = (rng.random(300) < 1 / (1 + np.exp(-2 * x))).astype(int)
    x[0], y[0] = 40.0, 1
    with pytest.warns(StatisticalWarning, match="numerically 0 or 1") as rec:
        conversion(pd.DataFrame({"x": x, "y": y}), "y", "x")
    assert rec[0].filename == __file__


def test_conversion_result_outcome_attribute_is_deprecated():
    fit = conversion(ARMS.assign(x=(ARMS.arm == "t").astype(int)), "bought", ["x"])
    with pytest.warns(DeprecationWarning, match=r"ConversionResult.outcome is deprecated.*\.event"):
        assert fit.outcome == fit.event == "bought"


def test_deadline_effect_result_still_reads_as_the_old_dataframe():
    windows = pd.DataFrame({"start_s": [0.0], "end_s": [100.0]}, index=["sale"])
    buys = pd.DataFrame({"time_s": [5, 20, 50, 91, 95, 97, 99, 100]})
    out = deadline_effect(buys, windows, last=0.1)
    frame = out.summary
    accesses = {
        "getitem": lambda: out["p"],
        "iloc": lambda: out.iloc[-1],
        "loc": lambda: out.loc[0, "in_last"],
        "set_index": lambda: out.set_index("window"),
        "columns": lambda: list(out.columns),
        "len": lambda: len(out),
        "iter": lambda: list(out),
    }
    want = {
        "getitem": frame["p"], "iloc": frame.iloc[-1], "loc": frame.loc[0, "in_last"],
        "set_index": frame.set_index("window"), "columns": list(frame.columns), "len": 2,
        "iter": list(frame.columns),
    }
    for name, access in accesses.items():
        with pytest.warns(DeprecationWarning, match=r"now returns a DeadlineResult: read its \.summary") as rec:
            got = access()
        assert rec[0].filename == __file__, name
        if isinstance(got, pd.DataFrame):
            pd.testing.assert_frame_equal(got, want[name])
        elif isinstance(got, pd.Series):
            pd.testing.assert_series_equal(got, want[name])
        else:
            assert got == want[name], name
    with pytest.raises(AttributeError, match="no attribute 'not_a_frame_method'"):
        out.not_a_frame_method  # noqa: B018


def test_renamed_kwargs_rejects_a_table_that_does_not_fit_the_function():
    def f(conf_level: float = 0.95) -> float:
        return conf_level

    with pytest.raises(TypeError, match="no parameter 'confidence'"):
        renamed_kwargs({"level": "confidence"})(f)
    with pytest.raises(TypeError, match="still has a parameter 'conf_level'"):
        renamed_kwargs({"conf_level": "conf_level"})(f)
    g = renamed_kwargs({"alpha": Rename("conf_level", lambda a: 1 - a, "= 1 - alpha")})(f)
    with pytest.raises(TypeError, match="got both"):
        g(0.9, alpha=0.1)  # the new name given positionally counts too
    with pytest.warns(DeprecationWarning, match=r"use 'conf_level' instead \(conf_level = 1 - alpha\)"):
        assert g(alpha=0.25) == 0.75
