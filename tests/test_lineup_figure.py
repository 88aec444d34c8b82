"""The per-product figure of a long lineup: it draws the analysis' ``lineup`` table (from the runs'
``product_results``), stays readable with hundreds of products, and is in the report only for long lineups."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.patches import StepPatch

from fomolab import plot, report
from fomolab.analysis import analyze
from fomolab.runner import run
from test_analysis import documented_analysis
from test_plot import draw, overlapping_texts

from helpers import experiment, make_spec

N = 240


def spec(count=N):
    out = make_spec(
        experiment={"name": "lineup_test", "seed": 5, "replicates": 3},
        stream={"duration_s": count * 30.0, "arrivals": {"rate_per_s": 0.3}},
        lineup_template={"count": count, "name": "p{n:03d}", "slot_s": 30.0, "price": {"cycle": [10.0, 20.0]},
                         "base_rate_per_s": 4e-3,
                         "tactics": {"lightning_sale": {"every": 10, "start_s": 0.0, "end_s": 30.0,
                                                        "discount": 0.2, "gain": 3.0}}},
        arms={"control": {}, "sale": {"tactics": ["*.lightning_sale"]}},
    )
    del out["lineup"]
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return run(experiment(spec()), tmp_path_factory.mktemp("lu") / "r", workers=1)


@pytest.fixture(scope="module")
def ana(folder):
    return analyze(folder, n_boot=0)


def test_the_table_is_the_mean_of_product_results_over_runs(ana, folder):
    pr = folder.table("product_results")
    pr = pr.assign(arm=pr.arm.astype(str), product=pr["product"].astype(str))
    want = pr.groupby(["arm", "product"]).revenue.mean()
    lu = ana.lineup[ana.lineup.measure == "revenue"].set_index(["arm", "product"])["mean"]
    np.testing.assert_allclose(lu.sort_index().to_numpy(), want.sort_index().to_numpy())
    buyers = ana.lineup[ana.lineup.measure == "buyers"]
    for _, b in buyers.groupby("arm"):
        assert list(b.slot) == list(range(1, N + 1)) and b.slot_start_s.is_monotonic_increasing
    # the sale shows: its products sell more in the sale arm than in the control
    on = buyers["product"].isin([f"p{k:03d}" for k in range(1, N + 1, 10)])
    m = buyers[on].groupby("arm")["mean"].mean()
    assert m["sale"] > 1.5 * m["control"], m


def test_the_table_matches_the_schema(ana, root):
    want = documented_analysis(root)["analysis/lineup"]
    assert list(ana.lineup.columns) == list(want)
    assert {c: str(ana.lineup[c].dtype) for c in want} == want


def test_the_figure_draws_the_table_and_stays_readable(ana):
    fig = draw(plot.lineup, ana)
    assert overlapping_texts(fig) == []
    top, bottom = fig.axes[:2]
    for ax, measure in ((top, "revenue"), (bottom, "buyers")):
        steps = [p for p in ax.patches if isinstance(p, StepPatch) and not p.get_fill()]
        assert len(steps) == 2  # one line per arm
        for p, arm in zip(steps, ["control", "sale"], strict=True):
            want = ana.lineup[(ana.lineup.arm == arm) & (ana.lineup.measure == measure)].sort_values("slot")
            np.testing.assert_allclose(p.get_data().values, want["mean"].to_numpy())
        # stream time on the axis, not a label per product
        assert len([t for t in bottom.get_xticklabels() if t.get_text()]) < 15
    # it draws only the table: change the table, the figure follows
    changed = ana.lineup.assign(mean=ana.lineup["mean"] * 2)
    fig2 = plot.lineup(type(ana)(**{**ana.__dict__, "lineup": changed}))
    p = next(p for p in fig2.axes[1].patches if isinstance(p, StepPatch) and not p.get_fill())
    want = changed[(changed.arm == "control") & (changed.measure == "buyers")].sort_values("slot")
    np.testing.assert_allclose(p.get_data().values, want["mean"].to_numpy())


def test_only_long_lineups_get_the_table_and_the_figure(ana, folder, tmp_path):
    names = [f.name for f, _ in report._figures(folder, ana, None, [])]
    assert "lineup" in names
    small = run(experiment(spec(12)), tmp_path / "s", workers=1)
    short = analyze(small, n_boot=0)
    assert short.lineup is None
    assert "lineup" not in [f.name for f, _ in report._figures(small, short, None, [])]
    with pytest.raises(ValueError, match="lineups of 20 products or more"):
        plot.lineup(short)
