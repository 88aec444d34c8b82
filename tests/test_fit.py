"""Calibration: the visit-level likelihood, maximum likelihood, predictive checks, bad data, the CLI."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from fomolab import load_experiment
from fomolab.errors import DataError, StatisticalWarning
from fomolab.fit import field_data_from_tables, fit_mle, parse_parameter, read_field_data
from fomolab.fit.checks import predictive_checks
from fomolab.fit.estimate import arm_scenario_raw
from fomolab.fit.likelihood import VisitLikelihood
from fomolab.fit.synthetic import simulate_field_data
from fomolab.spec import Scenario

ROOT = Path(__file__).resolve().parents[1]

SMALL = """
[experiment]
name = "small_field"
seed = 7
replicates = 2

[stream]
duration_s = {duration}

[stream.arrivals]
{arrivals}

[population.segments.all]
share = 1.0
impulsiveness = {{ beta = [2.0, 3.0] }}
dwell = {{ mean_s = 240.0 }}

[lineup.mug]
price = 10.0
base_rate_per_s = 0.002

[lineup.mug.tactics.lightning_sale]
start_s = 300.0
end_s = 500.0
gain = 5.0

[lineup.mug.tactics.countdown_timer]
gain = 3.0

[arms.control]

[arms.sale]
tactics = ["mug.lightning_sale", "mug.countdown_timer"]

[arms.no_timer]
base = "sale"
remove = ["mug.countdown_timer"]
"""


def _spec(tmp_path: Path, duration: float = 900.0, arrivals: str = "rate_per_s = 1.0", name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(SMALL.format(duration=duration, arrivals=arrivals))
    return path


# -- the likelihood against brute-force integration ---------------------------------------------------------------

def test_likelihood_of_one_visit_equals_brute_force_integration():
    raw = {
        "stream": {"duration_s": 1000.0, "arrivals": {"rate_per_s": 1.0}},
        "population": {"segments": {"s": {"share": 1.0, "impulsiveness": {"beta": [2.0, 4.0]},
                                          "interest": {"mean": 1.2, "cv": 0.5}, "dwell": {"mean_s": 300.0},
                                          "price_sensitivity": 1.5}}},
        "lineup": {
            "a": {"price": 10.0, "base_rate_per_s": 0.003, "tactics": {
                "lightning_sale": {"start_s": 200.0, "end_s": 400.0, "gain": 3.0, "discount": 0.2},
                "countdown_timer": {"start_s": 200.0, "deadline_s": 400.0, "gain": 2.0, "deferral": 0.5}}},
            "b": {"price": 5.0, "base_rate_per_s": 0.001, "slot_s": [300.0, 1000.0]},
        },
    }
    sc = Scenario.model_validate(raw)
    arrival, departure, t_buy = 150.0, 640.0, 350.0  # buys a at 350 s, not b
    visits = pd.DataFrame({"visit_id": ["v"], "arrival_s": [arrival], "departure_s": [departure]})
    purchases = pd.DataFrame({"visit_id": ["v"], "product": ["a"], "time_s": [t_buy]})
    fd = field_data_from_tables(visits, purchases, products=["a", "b"], duration_s=1000.0)
    got = VisitLikelihood(fd, ["a", "b"]).per_visit(sc)[0]

    def h_a(t, z, q):
        sale = 200 <= t < 400
        s_timer = (t - 200) / 200 if sale else 0.0
        timer = (1 + 2 * z * s_timer) * (1 - 0.5 * z * (1 - s_timer) * sale)
        return 0.003 * q * (1 + 3 * z * sale) * timer * (0.8 if sale else 1.0) ** -1.5

    def h_b(t, q):
        return 0.001 * q * (t >= 300)

    def integrand(z, q):
        Ha = integrate.quad(lambda t: h_a(t, z, q), arrival, t_buy, points=[200, 400], limit=200)[0]
        Hb = integrate.quad(lambda t: h_b(t, q), arrival, departure, points=[300], limit=200)[0]
        return (h_a(t_buy, z, q) * np.exp(-Ha - Hb) * stats.beta.pdf(z, 2, 4)
                * stats.gamma.pdf(q, 4.0, scale=1.2 / 4.0))

    purchases_part = integrate.dblquad(lambda q, z: integrand(z, q), 0, 1, 0, 20, epsabs=1e-14, epsrel=1e-10)[0]
    dwell = -np.log(300.0) - (departure - arrival) / 300.0
    assert got == pytest.approx(np.log(purchases_part) + dwell, rel=1e-7)


# -- maximum likelihood -----------------------------------------------------------------------------------------

def test_mle_recovers_known_parameters_within_three_standard_errors():
    exp = load_experiment(ROOT / "experiments" / "reference_flash.toml")
    visits, purchases = simulate_field_data(exp, "flash", replicate=0)
    fd = field_data_from_tables(visits, purchases, products=["gloss"], duration_s=3600.0)
    params = [parse_parameter("lineup.gloss.base_rate_per_s"), parse_parameter("lineup.gloss.tactics.lightning_sale.gain"),
              parse_parameter("population.segments.reference.dwell.mean_s")]
    res = fit_mle(arm_scenario_raw(exp, "flash"), params, fd, start=np.array([1e-3, 1.5, 100.0]))
    truth = np.array([1 / 1800, 4.0, 300.0])
    assert res.converged
    assert np.all(np.abs(res.estimate - truth) < 3 * res.se), (res.estimate, res.se)
    lo, hi = res.intervals()
    assert np.all(lo < res.estimate) and np.all(res.estimate < hi)


def test_bounded_parameter_stays_inside_its_bounds():
    p = parse_parameter("x.y=0.5:2")
    u = np.linspace(-40, 40, 9)
    x = p.from_free(u)
    assert np.all((x >= 0.5) & (x <= 2.0))
    assert p.from_free(p.to_free(1.3)) == pytest.approx(1.3)


def test_untractable_parameters_are_refused(tmp_path):
    spec = _spec(tmp_path)
    text = spec.read_text().replace("base_rate_per_s = 0.002", "base_rate_per_s = 0.002\nstock = 50")
    spec.write_text(text)
    exp = load_experiment(spec)
    fd = field_data_from_tables(pd.DataFrame({"visit_id": ["1"], "arrival_s": [1.0], "departure_s": [2.0]}),
                                pd.DataFrame({"visit_id": [], "product": [], "time_s": []}),
                                products=["mug"], duration_s=900.0)
    with pytest.raises(DataError, match="stock is finite"):
        fit_mle(arm_scenario_raw(exp, "sale"), [parse_parameter("lineup.mug.base_rate_per_s")], fd)


# -- bad data -----------------------------------------------------------------------------------------------------

GOOD_VISITS = "visit_id,arrival_s,departure_s\n1,10,100\n2,20,300\n"
GOOD_PURCHASES = "visit_id,product,time_s\n1,mug,50\n"

BAD = [
    ("missing column", "visit_id,arrival_s\n1,10\n", GOOD_PURCHASES, ["visits.csv: column 'departure_s': missing"]),
    ("non-numeric", "visit_id,arrival_s,departure_s\n1,ten,100\n2,20,300\n", GOOD_PURCHASES,
     ["visits.csv: column 'arrival_s', row 1 (value 'ten'): must be a finite number"]),
    ("negative time", "visit_id,arrival_s,departure_s\n1,-5,100\n2,20,300\n", GOOD_PURCHASES,
     ["column 'arrival_s', row 1 (value -5.0): must be >= 0"]),
    ("reversed times", "visit_id,arrival_s,departure_s\n1,10,100\n2,300,20\n", GOOD_PURCHASES,
     ["column 'departure_s', row 2 (value 20.0): must not be before the visit's arrival_s"]),
    ("after the stream", "visit_id,arrival_s,departure_s\n1,10,100\n2,20,3000\n", GOOD_PURCHASES,
     ["column 'departure_s', row 2 (value 3000.0): must be <= the stream's duration"]),
    ("purchase outside its visit", GOOD_VISITS, "visit_id,product,time_s\n1,mug,150\n",
     ["purchases.csv: column 'time_s', row 1 (value 150.0): must lie within its visit"]),
    ("unknown product", GOOD_VISITS, "visit_id,product,time_s\n1,cup,50\n",
     ["purchases.csv: column 'product', row 1 (value 'cup'): is not a product of the spec's lineup (mug)"]),
    ("unknown visit", GOOD_VISITS, "visit_id,product,time_s\n9,mug,50\n",
     ["purchases.csv: column 'visit_id', row 1 (value '9'): names no visit"]),
    ("duplicate visit ids", "visit_id,arrival_s,departure_s\n1,10,100\n1,20,300\n", GOOD_PURCHASES,
     ["visits.csv: column 'visit_id', row 2 (value '1'): visit ids must be unique"]),
    ("repeat purchase", GOOD_VISITS, "visit_id,product,time_s\n1,mug,50\n1,mug,60\n",
     ["column 'product', row 2 (value 'mug'): a second purchase of the same product in one visit"]),
    ("two problems at once", "visit_id,arrival_s,departure_s\n1,-5,100\n2,20,x\n", "visit_id,product,time_s\n1,cup,50\n",
     ["row 1 (value -5.0): must be >= 0", "column 'departure_s', row 2 (value 'x'): must be a finite number",
      "row 1 (value 'cup'): is not a product"]),
]


@pytest.mark.parametrize(("case", "visits", "purchases", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_data_is_refused_with_one_message_per_problem(tmp_path, case, visits, purchases, expected):
    (tmp_path / "visits.csv").write_text(visits)
    (tmp_path / "purchases.csv").write_text(purchases)
    with pytest.raises(DataError) as info:
        read_field_data(tmp_path, products=["mug"], duration_s=900.0)
    lines = info.value.problems
    assert len(lines) == len(expected), lines
    for want in expected:
        assert any(want in line for line in lines), (want, lines)


def test_missing_tables_are_named(tmp_path):
    with pytest.raises(DataError) as info:
        read_field_data(tmp_path, products=["mug"], duration_s=900.0)
    assert len(info.value.problems) == 2 and "no 'visits.csv' or 'visits.parquet'" in info.value.problems[0]


# -- predictive checks --------------------------------------------------------------------------------------------

def test_predictive_checks_flag_bursty_arrivals_the_model_lacks(tmp_path):
    bursty = _spec(tmp_path, 1200.0, 'schedule = [{ start_s = 0.0, rate_per_s = 0.1 }, '
                   '{ start_s = 400.0, rate_per_s = 3.0 }, { start_s = 600.0, rate_per_s = 0.1 }]', "bursty.toml")
    visits, purchases = simulate_field_data(load_experiment(bursty), "sale", replicate=0)
    model = load_experiment(_spec(tmp_path, 1200.0, "rate_per_s = 0.6", "model.toml"))
    fd = field_data_from_tables(visits, purchases, products=["mug"], duration_s=1200.0)
    res = fit_mle(arm_scenario_raw(model, "sale"), [parse_parameter("stream.arrivals.rate_per_s"),
                                                    parse_parameter("lineup.mug.base_rate_per_s")], fd)
    from fomolab.fit.counterfactual import fitted_spec
    from fomolab.spec import parse_spec

    fitted = parse_spec(fitted_spec(model.spec, "sale", res), resolve=False)
    with pytest.warns(StatisticalWarning, match="concurrent viewers"):
        checks = predictive_checks(visits, purchases, fitted, "sale", simulations=79)
    fam = checks.families.set_index("family")
    assert not fam.loc["concurrent viewers", "passed"]
    # the same data against the model that made them pass
    truth = load_experiment(bursty)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StatisticalWarning)
        ok = predictive_checks(visits, purchases, truth, "sale", simulations=79)
    assert ok.passed


# -- the command line ---------------------------------------------------------------------------------------------

def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "fomolab.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


def test_cli_fit_end_to_end(tmp_path):
    spec = _spec(tmp_path)
    visits, purchases = simulate_field_data(load_experiment(spec), "sale", replicate=1)
    data = tmp_path / "field"
    data.mkdir()
    visits.to_parquet(data / "visits.parquet")
    purchases.to_csv(data / "purchases.csv", index=False)
    out = tmp_path / "fit"
    r = _cli("fit", str(spec), "--data", str(data), "--arm", "sale", "--param", "lineup.mug.base_rate_per_s",
             "--param", "lineup.mug.tactics.lightning_sale.gain=0:50", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    est = pd.read_csv(out / "estimates.csv")
    assert list(est.columns[:4]) == ["parameter", "estimate", "ci_lower", "ci_upper"]
    assert set(est["method"]) == {"maximum likelihood"}
    assert (est.ci_lower < est.estimate).all() and (est.estimate < est.ci_upper).all()
    assert (out / "report.md").is_file() and len(list((out / "figures").glob("*.png"))) == 3
    v = _cli("validate", str(out / "fitted.toml"), cwd=tmp_path)
    assert v.returncode == 0, v.stderr
    fitted = load_experiment(out / "fitted.toml")
    assert fitted.sweep is not None and len(fitted.points) == 20
    rate = fitted.arms["sale"].scenario.lineup["mug"].base_rate_per_s
    assert rate == pytest.approx(est.estimate[0])
    # a second fit into the same folder is refused, the first kept
    again = _cli("fit", str(spec), "--data", str(data), "--arm", "sale", "--param", "lineup.mug.base_rate_per_s",
                 "--out", str(out), cwd=tmp_path)
    assert again.returncode == 2 and "never overwritten" in again.stderr


def test_cli_bad_data_exits_2_and_writes_nothing(tmp_path):
    spec = _spec(tmp_path)
    data = tmp_path / "field"
    data.mkdir()
    (data / "visits.csv").write_text("visit_id,arrival_s,departure_s\n1,-1,10\n2,50,40\n")
    (data / "purchases.csv").write_text("visit_id,product,time_s\n1,cup,5\n")
    out = tmp_path / "fit"
    r = _cli("fit", str(spec), "--data", str(data), "--arm", "sale", "--param", "lineup.mug.base_rate_per_s",
             "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("fomolab: error:")]
    assert len(errors) == 3, r.stderr
    assert not out.exists() and not list(tmp_path.glob(".fit*"))
    bad = _cli("fit", str(spec), "--data", str(data), "--arm", "sale", "--param", "lineup.mug.nope", cwd=tmp_path)
    assert bad.returncode == 2


def test_predictive_checks_flag_a_timer_the_fitted_arm_omits(tmp_path):
    strong = _spec(tmp_path, 900.0, "rate_per_s = 1.5", "timer.toml")
    strong.write_text(strong.read_text().replace("[lineup.mug.tactics.countdown_timer]\ngain = 3.0",
                                                 "[lineup.mug.tactics.countdown_timer]\ngain = 40.0"))
    exp = load_experiment(strong)
    visits, purchases = simulate_field_data(exp, "sale", replicate=0)
    fd = field_data_from_tables(visits, purchases, products=["mug"], duration_s=900.0)
    params = [parse_parameter("lineup.mug.base_rate_per_s"), parse_parameter("lineup.mug.tactics.lightning_sale.gain")]
    from fomolab.fit.counterfactual import fitted_spec
    from fomolab.spec import parse_spec

    res = fit_mle(arm_scenario_raw(exp, "no_timer"), params, fd)  # the fitted model lacks the timer
    fitted = parse_spec(fitted_spec(exp.spec, "no_timer", res), resolve=False)
    with pytest.warns(StatisticalWarning, match="fails the purchase timing check"):
        checks = predictive_checks(visits, purchases, fitted, "no_timer", simulations=79)
    assert not checks.passed
    table = checks.table.set_index("statistic")  # the timer's rising urgency: the sale's second half sells more
    assert table.loc["purchases per viewer-hour in the second half of mug.lightning_sale", "outside"]
    # with the timer in the fitted arm, the same data pass
    res = fit_mle(arm_scenario_raw(exp, "sale"), params, fd)
    fitted = parse_spec(fitted_spec(exp.spec, "sale", res), resolve=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StatisticalWarning)
        assert predictive_checks(visits, purchases, fitted, "sale", simulations=79).passed
