"""The statistics API as a whole: one argument vocabulary, result objects, exports.

These tests look at every public function and result class of
``fomolab.stats`` at once, so a new function that strays from the vocabulary,
or a result that is not a frozen object with a fixed summary, fails here.
"""

from __future__ import annotations

import dataclasses
import doctest
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fomolab
from fomolab import errors, stats
from fomolab.stats import compare as compare_mod
from fomolab.stats._intervals import t_interval
from fomolab.stats._result import StatsResult

ROOT = Path(__file__).resolve().parents[2]

#: Names the vocabulary replaced: no public function may take them any more.
OLD_NAMES = {"outcome", "group", "level", "alpha", "duration_col", "event_col", "groups"}

FUNCTIONS = [getattr(stats, n) for n in stats.__all__ if inspect.isfunction(getattr(stats, n))] + [
    compare_mod.binary_logit, t_interval]


def _params(fn) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(fn).parameters)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
def test_every_function_speaks_the_vocabulary(fn):
    params = _params(fn)
    assert not OLD_NAMES & set(params), f"{fn.__name__} still takes {sorted(OLD_NAMES & set(params))}"
    # an interval or test level is always conf_level, defaulting to 0.95
    if "conf_level" in params:
        assert params["conf_level"].default == 0.95
    src = inspect.getsource(inspect.unwrap(fn))
    if "ppf" in src and fn.__name__ not in ("p_adjust",):
        assert "conf_level" in params, f"{fn.__name__} computes a quantile but takes no conf_level"


def test_survival_functions_share_their_leading_arguments():
    for fn in (stats.kaplan_meier, stats.logrank, stats.cox):
        assert list(_params(fn))[:3] == ["data", "duration", "event"]
    for fn in (stats.conversion, stats.risk_difference):
        assert list(_params(fn))[:2] == ["data", "event"]
    for fn in (stats.kaplan_meier, stats.logrank, stats.risk_difference):
        assert "by" in _params(fn)
    for fn in (stats.cox, stats.conversion, stats.risk_difference):
        assert _params(fn)["cluster"].default is None


# -- result objects ---------------------------------------------------------------------------------

def _df() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 240
    arm = np.repeat(["control", "sale"], n // 2)
    x = (arm == "sale").astype(float)
    t = rng.exponential(1 / (0.01 * (1 + x)))
    c = rng.exponential(150, n)
    return pd.DataFrame({"t": np.minimum(t, c), "e": (t <= c).astype(int), "arm": arm, "x": x,
                         "rep": np.tile(np.arange(6), n // 6)})


def _results() -> dict[str, StatsResult]:
    d = _df()
    windows = pd.DataFrame({"start_s": [0.0, 0.0], "end_s": [100.0, 50.0]}, index=["a", "b"])
    buys = pd.DataFrame({"time_s": [5.0, 50.0, 95.0, 99.0, 40.0, 48.0]})
    return {
        "KaplanMeierResult": stats.kaplan_meier(d, "t", "e", by="arm"),
        "LogrankResult": stats.logrank(d, "t", "e", by="arm"),
        "CoxResult": stats.cox(d, "t", "e", ["x"]),
        "CoxResult (cluster)": stats.cox(d, "t", "e", ["x"], cluster="rep"),
        "ConversionResult": stats.conversion(d, "e", ["x"]),
        "ConversionResult (cluster)": stats.conversion(d, "e", ["x"], cluster="rep"),
        "RiskDifferenceResult": stats.risk_difference(d, "e", by="arm", control="control"),
        "DeadlineResult": stats.deadline_effect(buys, windows),
        "ConcordanceResult": stats.concordance(d, "t", "e", "x", reverse=True),
        "PiecewiseExponentialResult": stats.piecewise_exponential(
            stats.person_time(d, "t", "e", ["x"], breaks=[50, 100]), covariates=["x"]),
        "PiecewiseExponentialResult (cluster)": stats.piecewise_exponential(
            stats.person_time(d, "t", "e", ["x"], breaks=[50, 100], cluster="rep"),
            covariates=["x"], cluster="rep"),
        "PowerPlan": stats.plan_replicates(1.5, events_per_replicate=20),
        "PowerPlan (conversion)": stats.plan_replicates(0.3, metric="conversion", baseline=0.2),
        "ZphResult": stats.cox_zph(stats.cox(d, "t", "e", ["x"])),
        "RMSTResult": stats.rmst(d, "t", "e", by="arm", tau=100),
        "RMSTDifferenceResult": stats.rmst_difference(d, "t", "e", by="arm", control="control", tau=100),
        "CumulativeIncidenceResult": stats.cumulative_incidence(d.assign(what=np.where(d.e > 0, "buy", "leave")),
                                                                "t", "what", by="arm"),
        "StateTimeResult": stats.restricted_time_in_state(d.assign(what=np.where(d.e > 0, "buy", "leave")),
                                                          "t", "what", by="arm", tau=100),
        "MeanCumulativeResult": stats.mean_cumulative_function(d.assign(v=np.arange(len(d))), "t", "e",
                                                               by="arm", id="v"),
        "RateModelResult": stats.rate_model(d.assign(s=0.0), "t", "e", "x", start="s", replicate="rep"),
        "RateModelResult (cluster)": stats.rate_model(d.assign(s=0.0, v=np.arange(len(d))), "t", "e", "x",
                                                      start="s", cluster="v"),
        "ReplicateEffectsResult": stats.replicate_effects(d, "t", "e", "arm", control="control", replicate="rep",
                                                          tau=50.0),
    }


RESULTS = _results()


def test_every_result_class_is_exported_and_covered():
    classes = {n for n in stats.__all__ if inspect.isclass(getattr(stats, n))
               and issubclass(getattr(stats, n), StatsResult)}
    assert classes == {k.split(" ")[0] for k in RESULTS}


@pytest.mark.parametrize("name", list(RESULTS))
def test_result_is_a_frozen_dataclass_with_a_fixed_summary(name):
    res = RESULTS[name]
    cls = type(res)
    assert cls.__name__ == name.split(" ")[0]
    assert dataclasses.is_dataclass(res)
    fields = {f.name for f in dataclasses.fields(res)}
    assert "summary" in fields  # visible to tools, not hidden in __dict__.update
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.summary = pd.DataFrame()  # type: ignore[misc]
    assert isinstance(res.summary, pd.DataFrame)
    assert tuple(res.summary.columns) == cls.COLUMNS
    assert len(cls.COLUMNS) == len(set(cls.COLUMNS))


@pytest.mark.parametrize("name", list(RESULTS))
def test_result_prints_itself(name, capsys):
    res = RESULTS[name]
    line = repr(res)
    assert line.startswith(f"<{type(res).__name__}: ") and line.endswith(">")
    res.print_summary()
    out = capsys.readouterr().out
    assert out.splitlines()[0] == line
    for col in type(res).COLUMNS[:3]:
        assert col in out
    page = res._repr_html_()
    assert "<table" in page and type(res).__name__ in page
    assert all(f"<th>{c}</th>" in page for c in type(res).COLUMNS)


def test_model_based_and_robust_errors_both_in_every_regression_summary():
    # fixed columns: naive_se is there with and without a cluster; equal to se without one
    for plain, robust in (("CoxResult", "CoxResult (cluster)"),
                          ("ConversionResult", "ConversionResult (cluster)"),
                          ("PiecewiseExponentialResult", "PiecewiseExponentialResult (cluster)")):
        p, r = RESULTS[plain].summary, RESULTS[robust].summary
        np.testing.assert_array_equal(p["naive_se"], p["se"])
        np.testing.assert_allclose(r["naive_se"], p["se"], rtol=1e-12)
        assert not np.allclose(r["se"], r["naive_se"])


def test_results_record_their_level_and_cluster():
    d = _df()
    for fit in (stats.cox(d, "t", "e", ["x"], conf_level=0.9, cluster="rep"),
                stats.conversion(d, "e", ["x"], conf_level=0.9, cluster="rep"),
                stats.risk_difference(d, "e", "arm", control="control", conf_level=0.9, cluster="rep"),
                stats.kaplan_meier(d, "t", "e", conf_level=0.9)):
        assert fit.conf_level == 0.9
        assert getattr(fit, "cluster", "rep") == "rep"
    assert RESULTS["PowerPlan"].conf_level == 0.95


def test_deadline_result_total_row():
    res = RESULTS["DeadlineResult"]
    assert res.summary["window"].tolist() == ["a", "b", "total"]
    assert res.total["purchases"] == res.summary["purchases"].iloc[:-1].sum() == 6 + 4  # overlapping
    assert res.last == 0.1 and res.exposure is False


def test_power_plan_summary_is_one_row_with_nan_for_unused_numbers():
    hr, cv = RESULTS["PowerPlan"], RESULTS["PowerPlan (conversion)"]
    assert len(hr.summary) == len(cv.summary) == 1
    assert hr.events == hr.summary.loc[0, "events"] and hr.viewers_per_arm is None
    assert np.isnan(hr.summary.loc[0, "n_per_arm"]) and np.isnan(cv.summary.loc[0, "events"])
    assert cv.viewers_per_arm == cv.summary.loc[0, "n_per_arm"] and cv.events is None


# -- exports and the package's lazy attributes ------------------------------------------------------

@pytest.mark.parametrize("name", ["DataError", "StatisticalWarning", "ConvergenceWarning"])
def test_errors_and_warnings_exported_from_fomolab_and_stats(name):
    assert getattr(fomolab, name) is getattr(errors, name) is getattr(stats, name)
    assert name in fomolab.__all__ and name in stats.__all__
    assert name in dir(fomolab)


def test_data_error_is_a_value_error_and_warnings_are_user_warnings():
    assert issubclass(fomolab.DataError, ValueError) and issubclass(fomolab.DataError, fomolab.FomolabError)
    assert issubclass(fomolab.ConvergenceWarning, fomolab.StatisticalWarning)
    assert issubclass(fomolab.StatisticalWarning, UserWarning)


def test_import_fomolab_stays_light_and_submodules_load_on_first_use():
    code = (
        "import sys, fomolab\n"
        "heavy = [m for m in ('pandas', 'pyarrow', 'matplotlib', 'statsmodels', 'dask') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "for name in ('plot', 'report', 'attribution', 'analysis', 'stats'):\n"
        "    assert name in dir(fomolab), name\n"
        "    mod = getattr(fomolab, name)\n"
        "    assert mod.__name__ == 'fomolab.' + name, mod\n"
        "try:\n"
        "    fomolab.no_such_thing\n"
        "except AttributeError as exc:\n"
        "    assert 'no_such_thing' in str(exc)\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_python_defaults_equal_the_cli_defaults():
    from fomolab.analysis import analyze
    from fomolab.cli import _parser

    run_args = _parser().parse_args(["run", "spec.toml"])
    run_params = _params(fomolab.run)
    for name in ("out", "replicates", "seed", "workers", "scheduler"):
        assert run_params[name].default == getattr(run_args, name), name
    an_args = _parser().parse_args(["analyze", "results"])
    an_params = _params(analyze)
    assert an_params["n_boot"].default == an_args.boot
    for name in ("control", "seed"):
        assert an_params[name].default == getattr(an_args, name), name


def test_statistics_page_examples_run():
    fails, tried = doctest.testfile(str(ROOT / "docs" / "STATISTICS.md"), module_relative=False,
                                    optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and fails == 0


def test_package_all_lists_every_lazy_export():
    assert set(fomolab.__all__) == {*fomolab._EXPORTS, "__version__"}


@pytest.mark.parametrize("name", list(RESULTS))
def test_result_survives_pickling(name):
    import pickle

    res = RESULTS[name]
    back = pickle.loads(pickle.dumps(res))
    assert type(back) is type(res) and repr(back) == repr(res)
    pd.testing.assert_frame_equal(back.summary, res.summary)
