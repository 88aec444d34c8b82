"""Calibration by the simulated method of moments: per-minute data, untractable arms, shared parameters."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fomolab import load_experiment
from fomolab.errors import DataError
from fomolab.fit import fit, parse_parameter
from fomolab.fit.estimate import arm_scenario_raw, check_parameters, expand_path, fit_mle, get_path
from fomolab.fit.smm import METHOD, aggregate_from_tables, aggregate_of_visits, fit_smm, minute_moments
from fomolab.fit.synthetic import simulate_field_data

ROOT = Path(__file__).resolve().parents[1]

SMALL = """
[experiment]
name = "small_minutes"
seed = 11
replicates = 2
control = "sale"

[stream]
duration_s = 600.0

[stream.arrivals]
rate_per_s = 0.4

[population.segments.all]
share = 1.0
impulsiveness = { beta = [2.0, 3.0] }
dwell = { mean_s = 240.0 }

[lineup.mug]
price = 10.0
base_rate_per_s = 0.003
slot_s = [0.0, 300.0]
tactics.lightning_sale = { start_s = 120.0, end_s = 240.0, gain = 4.0 }

[lineup.cup]
price = 8.0
base_rate_per_s = 0.003
slot_s = [300.0, 600.0]
tactics.lightning_sale = { start_s = 420.0, end_s = 540.0, gain = 4.0 }

[arms.sale]
tactics = ["mug.lightning_sale", "cup.lightning_sale"]
"""


def _spec(tmp_path: Path, text: str = SMALL) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def _minutes(visits: pd.DataFrame, purchases: pd.DataFrame, T: float) -> pd.DataFrame:
    agg = aggregate_of_visits(visits, purchases, T)
    return pd.DataFrame({"minute": np.arange(agg.n_minutes), "viewers": agg.viewers, "sales": agg.sales.astype(int)})


# -- per-minute moments and the aggregate data's rules -------------------------------------------------------------

def test_minute_moments_count_sales_and_mean_viewers_present():
    v, s = minute_moments(np.array([0.0, 30.0]), np.array([90.0, 120.0]), np.array([10.0, 59.9, 60.0, 119.0]), 120.0)
    assert s.tolist() == [2.0, 2.0]
    assert v.tolist() == pytest.approx([(60 + 30) / 60, (30 + 60) / 60])


GOOD = "minute,viewers,sales\n0,10.5,1\n1,12,0\n"
BAD = [
    ("missing column", "minute,viewers\n0,1\n1,2\n", ["column 'sales': missing"]),
    ("non-numeric", "minute,viewers,sales\n0,ten,1\n1,12,0\n", ["column 'viewers', row 1 (value 'ten'): must be a finite"]),
    ("negative viewers", "minute,viewers,sales\n0,-1,1\n1,12,0\n", ["column 'viewers', row 1 (value -1.0): must be >= 0"]),
    ("fractional sales", "minute,viewers,sales\n0,3,1.5\n1,12,0\n", ["column 'sales', row 1 (value 1.5): must be a whole"]),
    ("minute past the stream", "minute,viewers,sales\n0,3,1\n1,12,0\n2,1,0\n",
     ["column 'minute', row 3 (value 2.0): must be a whole minute from 0 to 1"]),
    ("repeated minute", "minute,viewers,sales\n0,3,1\n0,12,0\n",
     ["row 2 (value 0.0): each minute appears once", "minutes 1 are missing"]),
]


@pytest.mark.parametrize(("case", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_minutes_are_refused_with_one_message_per_problem(tmp_path, case, text, expected):
    (tmp_path / "minutes.csv").write_text(text)
    df = pd.read_csv(tmp_path / "minutes.csv", dtype=str, keep_default_na=False)
    with pytest.raises(DataError) as info:
        aggregate_from_tables(df, duration_s=120.0, name="minutes.csv")
    lines = info.value.problems
    assert len(lines) == len(expected), lines
    for want in expected:
        assert any(want in line for line in lines), (want, lines)


def test_good_minutes_are_read_in_order():
    df = pd.DataFrame({"minute": ["1", "0"], "viewers": ["12", "10.5"], "sales": ["0", "1"]})
    agg = aggregate_from_tables(df, duration_s=120.0)
    assert agg.sales.tolist() == [1.0, 0.0] and agg.viewers.tolist() == [10.5, 12.0]


# -- shared parameters ---------------------------------------------------------------------------------------------

def test_a_star_part_shares_one_parameter_across_products(tmp_path):
    exp = load_experiment(_spec(tmp_path))
    raw = arm_scenario_raw(exp, "sale")
    assert expand_path(raw, "lineup.*.tactics.lightning_sale.gain") == [
        "lineup.mug.tactics.lightning_sale.gain", "lineup.cup.tactics.lightning_sale.gain"]
    visits, purchases = simulate_field_data(exp, "sale", replicate=3)
    from fomolab.fit import field_data_from_tables

    fd = field_data_from_tables(visits, purchases, products=["mug", "cup"], duration_s=600.0)
    res = fit_mle(raw, [parse_parameter("lineup.*.base_rate_per_s")], fd)
    est = res.estimate[0]
    assert get_path(res.raw, "lineup.mug.base_rate_per_s") == get_path(res.raw, "lineup.cup.base_rate_per_s") == est
    assert abs(est - 0.003) < 3 * res.se[0]
    different = _spec(tmp_path, SMALL.replace("price = 8.0\nbase_rate_per_s = 0.003", "price = 8.0\nbase_rate_per_s = 0.002"))
    raw2 = arm_scenario_raw(load_experiment(different), "sale")
    with pytest.raises(DataError, match="its matches hold different starting values"):
        check_parameters(raw2, [parse_parameter("lineup.*.base_rate_per_s")])


# -- the simulated method of moments -------------------------------------------------------------------------------

def test_smm_recovers_a_base_rate_from_minutes_within_three_standard_errors(tmp_path):
    exp = load_experiment(_spec(tmp_path))
    visits, purchases = simulate_field_data(exp, "sale", replicate=500)  # seeds apart from the simulator's 0 .. S-1
    agg = aggregate_from_tables(_minutes(visits, purchases, 600.0), duration_s=600.0)
    res = fit_smm(exp.spec, "sale", arm_scenario_raw(exp, "sale"), [parse_parameter("lineup.*.base_rate_per_s")],
                  agg, start=np.array([0.0015]), simulations=8)
    assert res.method == METHOD and res.converged
    assert abs(res.estimate[0] - 0.003) < 3 * res.se[0], res
    lo, hi = res.intervals()
    assert lo[0] < res.estimate[0] < hi[0]
    # the simulation-noise factor: S = 8 widens the sandwich by sqrt(1 + 1/8)
    assert res.simulations == 8


def test_fit_of_minutes_uses_smm_and_checks_per_minute(tmp_path):
    spec = _spec(tmp_path)
    visits, purchases = simulate_field_data(load_experiment(spec), "sale", replicate=501)
    data = tmp_path / "dashboard"
    data.mkdir()
    _minutes(visits, purchases, 600.0).to_parquet(data / "minutes.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = fit(spec, data, "sale", ["lineup.*.tactics.lightning_sale.gain=0:20"], tmp_path / "out",
                   simulations=19, smm_simulations=8, draws=3)
    est = pd.read_csv(tmp_path / "out" / "estimates.csv")
    assert list(est.columns[:4]) == ["parameter", "estimate", "ci_lower", "ci_upper"]
    assert est["method"].tolist() == [METHOD]
    assert set(done.checks.families.family) == {"sales per minute", "viewers per minute"}
    report = (tmp_path / "out" / "report.md").read_text()
    assert "simulated method of moments, because the data are viewers and sales per minute" in report
    fitted = load_experiment(tmp_path / "out" / "fitted.toml")
    gains = {p: fitted.arms["sale"].scenario.lineup[p].tactics.lightning_sale.gain for p in ("mug", "cup")}
    assert gains["mug"] == gains["cup"] == pytest.approx(est.estimate[0])
    assert len(fitted.points) == 3


def test_untractable_arm_with_visit_data_is_fitted_by_smm(tmp_path):
    spec = _spec(tmp_path, SMALL.replace("slot_s = [0.0, 300.0]", "slot_s = [0.0, 300.0]\nstock = 40"))
    visits, purchases = simulate_field_data(load_experiment(spec), "sale", replicate=502)
    data = tmp_path / "field"
    data.mkdir()
    visits.to_csv(data / "visits.csv", index=False)
    purchases.to_csv(data / "purchases.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = fit(spec, data, "sale", ["lineup.cup.base_rate_per_s"], tmp_path / "out", simulations=19,
                   smm_simulations=8, draws=0)
    assert done.result.method == METHOD
    assert "lineup.mug.stock is finite" in (tmp_path / "out" / "report.md").read_text()
    assert "purchase timing" in set(done.checks.families.family)  # visit-level data get the visit-level checks


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "fomolab.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


def test_cli_bad_minutes_exit_2_and_write_nothing(tmp_path):
    spec = _spec(tmp_path)
    data = tmp_path / "dashboard"
    data.mkdir()
    rows = "\n".join(f"{m},{5 + m},{1}" for m in range(10))
    (data / "minutes.csv").write_text("minute,viewers,sales\n" + rows.replace("3,8,1", "3,-8,1").replace("7,12,1",
                                                                                                       "7,12,x") + "\n")
    out = tmp_path / "out"
    r = _cli("fit", str(spec), "--data", str(data), "--arm", "sale", "--param", "lineup.mug.base_rate_per_s",
             "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("fomolab: error:")]
    assert len(errors) == 2, r.stderr
    assert "column 'viewers', row 4 (value -8.0): must be >= 0" in errors[0] + errors[1]
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    (data / "visits.csv").write_text("visit_id,arrival_s,departure_s\n1,0,10\n")
    both = _cli("fit", str(spec), "--data", str(data), "--arm", "sale", "--param", "lineup.mug.base_rate_per_s",
                "--out", str(out), cwd=tmp_path)
    assert both.returncode == 2 and "keep one form" in both.stderr and not out.exists()
