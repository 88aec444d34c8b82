"""Marketplace concentration (HHI, Gini, top share) in the statistics, equal to what runs record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fomolab.errors import DataError
from fomolab.stats.concentration import concentration, gini, hhi, top_share


def test_known_values():
    assert hhi([0.5, 0.5]) == 0.5 and hhi([1.0, 0.0, 0.0]) == 1.0
    assert gini([0.2] * 5) == pytest.approx(0.0, abs=1e-15) and gini([1.0, 0, 0, 0, 0]) == pytest.approx(0.8)
    # shares 1/6, 2/6, 3/6: sum of |s_i - s_j| over ordered pairs / (2 n^2 mean) = (8/6) / (2 * 9 / 3) = 2/9
    assert gini(np.array([1, 2, 3]) / 6) == pytest.approx(2 / 9)
    assert top_share([0.1, 0.7, 0.2]) == 0.7
    assert hhi([]) == 0.0 and gini([]) == 0.0 and np.isnan(top_share([]))


def test_bad_shares_name_the_rule():
    with pytest.raises(DataError, match=">= 0"):
        hhi([0.5, -0.1])
    with pytest.raises(DataError, match="column 'share'"):
        concentration(pd.DataFrame({"run_id": ["a"]}), "share", "run_id")


def test_analysis_concentration_equals_the_runs_table(root, tmp_path):
    """The statistics recompute each run's HHI, Gini and top share from the streams table, exactly."""
    from fomolab import run
    from fomolab.analysis import analyze
    from fomolab.figure_data import run_concentration

    res = run(root / "experiments/virtual_host.toml", tmp_path / "vh", replicates=2, workers=1)
    per_run = run_concentration(res.streams).set_index("run_id")
    runs = res.runs.assign(run_id=res.runs.run_id.astype(str)).set_index("run_id")
    cols = ["hhi_viewers", "hhi_sales", "gini_viewers", "gini_sales", "top1_share_viewers", "top1_share_sales"]
    assert len(per_run) == len(runs)
    for c in cols:
        assert per_run.loc[runs.index, c].to_numpy() == pytest.approx(runs[c].to_numpy(), rel=1e-12, abs=1e-15), c
    a = analyze(res, n_boot=0)
    row = a.concentration[(a.concentration.of == "viewers") & (a.concentration.measure == "hhi")].iloc[0]
    arm_runs = runs[(runs.arm.astype(str) == row.arm) & (runs.point == row.point)]
    assert row["mean"] == pytest.approx(arm_runs.hhi_viewers.mean(), rel=1e-12)
    assert row.replicates == 2
