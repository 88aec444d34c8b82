"""fomolab.plot on small results made here: panels, lines per arm, labels with units, no warnings."""

from __future__ import annotations

import re
import warnings

import matplotlib
import pytest
from matplotlib.figure import Figure

from fomolab import plot
from fomolab.runner import run
from helpers import experiment, make_spec

ARMS = ["control", "sale", "sale_timer"]

SPEC = make_spec(
    experiment={"name": "plot_test", "seed": 11, "replicates": 3},
    stream={"duration_s": 900.0, "arrivals": {"rate_per_s": 0.6}},
    lineup={"item": {"price": 10.0, "base_rate_per_s": 1e-3, "stock": 300,
                     "tactics": {"lightning_sale": {"start_s": 300.0, "end_s": 480.0, "discount": 0.3, "gain": 3.0},
                                 "countdown_timer": {"gain": 2.0}}}},
    arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]},
          "sale_timer": {"tactics": ["item.lightning_sale", "item.countdown_timer"]}},
)

#: An axis label has a unit in parentheses, e.g. "Stream time (min)".
UNIT = re.compile(r"\(.+\)")


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    return run(experiment(SPEC), tmp_path_factory.mktemp("p") / "r", workers=1)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    spec = make_spec(
        experiment={"name": "plot_sweep", "seed": 3, "replicates": 2},
        stream={"duration_s": 600.0, "arrivals": {"rate_per_s": 0.5}},
        lineup={"item": {"price": 10.0, "base_rate_per_s": 2e-3,
                         "tactics": {"lightning_sale": {"start_s": 200.0, "end_s": 400.0, "discount": 0.3,
                                                        "gain": 3.0}}}},
        arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]}},
        sweep={"design": "grid", "parameters": {"lineup.item.tactics.lightning_sale.discount": [0.1, 0.5],
                                                 "lineup.item.tactics.lightning_sale.gain": [1.0, 3.0, 5.0]}},
    )
    return run(experiment(spec), tmp_path_factory.mktemp("s") / "r", workers=1)


@pytest.fixture(scope="module")
def saltelli(tmp_path_factory):
    spec = make_spec(
        experiment={"name": "plot_saltelli", "seed": 4, "replicates": 1},
        stream={"duration_s": 300.0, "arrivals": {"rate_per_s": 0.5}},
        lineup={"item": {"price": 10.0, "base_rate_per_s": 3e-3,
                         "tactics": {"lightning_sale": {"start_s": 100.0, "end_s": 200.0, "discount": 0.3,
                                                        "gain": 3.0}}}},
        arms={"control": {"tactics": ["item.lightning_sale"]}},
        sweep={"design": "saltelli", "samples": 8, "parameters": {
            "lineup.item.tactics.lightning_sale.discount": {"low": 0.1, "high": 0.6},
            "lineup.item.tactics.lightning_sale.gain": {"low": 0.5, "high": 5.0}}},
    )
    return run(experiment(spec), tmp_path_factory.mktemp("sa") / "r", workers=1)


def draw(fn, *args, **kw) -> Figure:
    """Call a figure function with every warning an error; check it is a saveable Figure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = fn(*args, **kw)
        assert isinstance(fig, Figure)
        fig.canvas.draw()  # layout and text rendering, where most warnings come from
    return fig


def panels(fig: Figure) -> list:
    """Axes with data (not colour bars or secondary axes)."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.get_visible() and ax.axison
            and type(ax).__name__ != "SecondaryAxis"]


def arm_lines(ax) -> list[str]:
    return [ln.get_label() for ln in ax.get_lines() if ln.get_label() in ARMS + ["timer"]]


def legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for leg in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
            for t in leg.get_texts()]


def test_agg_backend_and_no_pyplot_figures(res):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    draw(plot.impulsiveness, res)
    assert plt.get_fignums() == before, "figures must not be registered with pyplot"
    assert matplotlib.get_backend().lower() == "agg"


def test_purchase_rate(res):
    fig = draw(plot.purchase_rate, res)
    rate, viewers, stock = panels(fig)  # the item has a finite stock: three panels
    assert arm_lines(rate) == ARMS and arm_lines(viewers) == ARMS and arm_lines(stock) == ARMS
    assert legend_texts(fig) == ARMS
    assert rate.get_ylabel() == "Purchase rate\n(purchases/min per run)"
    for ax in (rate, viewers, stock):
        assert UNIT.search(ax.get_ylabel()), ax.get_ylabel()
    assert stock.get_xlabel() == "Stream time (min)"
    assert rate.get_xlim() == pytest.approx((0, 15))
    # the sale's window (5-8 min) is shaded on every panel and labelled
    spans = [p for p in rate.patches if p.get_x() == pytest.approx(5.0)]
    assert spans and spans[0].get_width() == pytest.approx(3.0)
    assert any(t.get_text() == "sale + timer" for t in rate.texts)
    # stock starts at 120 and never rises
    y = stock.get_lines()[0].get_ydata()
    assert y[0] == 300 and (y[1:] <= y[:-1]).all()


def test_purchase_rate_without_stock_has_two_panels(sweep):
    assert len(panels(draw(plot.purchase_rate, sweep))) == 2


def test_time_to_purchase_has_bands_and_numbers_at_risk(res):
    fig = draw(plot.time_to_purchase, res)
    ax, risk = panels(fig)
    assert arm_lines(ax) == ARMS
    assert len(ax.collections) == len(ARMS)  # one confidence band per arm
    assert ax.get_xlabel() == "Time since arrival (min)" and ax.get_ylabel() == "Viewers who have bought (%)"
    assert [t.get_text() for t in risk.get_yticklabels()] == ARMS
    at_risk = [t for t in risk.texts if t.get_gid() == "at-risk"]
    ticks = [x for x in ax.get_xticks() if 0 <= x <= ax.get_xlim()[1]]
    assert len(at_risk) == len(ARMS) * len(ticks)
    # at time 0 everyone is at risk: the number of viewers of the arm over all runs
    first = {int(t.get_position()[1]): t.get_text() for t in at_risk if t.get_position()[0] == 0}
    viewers = res.runs.groupby("arm", observed=True).viewers.sum()
    assert [first[j] for j in range(len(ARMS))] == [f"{viewers[a]:,}" for a in ARMS]
    assert "Number at risk" in risk.get_title("left")


def test_forest_hazard_and_odds_ratios(res):
    fig = draw(plot.forest, res)
    hr, orr = panels(fig)[:2]
    assert "Hazard ratio" in hr.get_xlabel() and "Odds ratio" in orr.get_xlabel()
    assert hr.get_xscale() == "log" and orr.get_xscale() == "log"
    assert [t.get_text() for t in hr.get_yticklabels()] == ARMS[1:]  # treatment arms only
    # one interval and one point per treatment arm, a reference line at 1
    for ax in (hr, orr):
        lines = ax.get_lines()
        assert sum(1 for ln in lines if list(ln.get_xdata()) == [1.0, 1.0]) == 1
        assert sum(1 for ln in lines if ln.get_marker() == "o") == 2
    tab = plot.effects(res)
    assert list(tab.columns) == ["arm", "measure", "estimate", "ci_lower", "ci_upper", "p"]
    assert (tab.ci_lower < tab.estimate).all() and (tab.estimate < tab.ci_upper).all()


def test_deadline_histogram(res):
    fig = draw(plot.deadline, res)
    (ax,) = panels(fig)
    steps = [p.get_label() for p in ax.patches if p.get_label() in ARMS]
    assert steps == ARMS  # the control counted over the same stream time as a baseline
    assert ax.get_xlabel() == "Time left to the deadline (s)"
    assert UNIT.search(ax.get_ylabel()) or "/min" in ax.get_ylabel()
    assert ax.get_xlim() == pytest.approx((180, 0))  # the deadline at the right
    assert ax.get_title("left") == "item: timer + sale ends"


def test_impulsiveness_deciles(res):
    fig = draw(plot.impulsiveness, res)
    conv, ttp = panels(fig)
    for ax in (conv, ttp):
        assert [c.get_label() for c in ax.containers] == ARMS  # one line with error bars per arm
        assert len(ax.get_lines()[0].get_xdata()) == 10
        assert "decile" in ax.get_xlabel()
        assert UNIT.search(ax.get_ylabel())
    assert legend_texts(fig) == ARMS


def test_harm_by_quintile(res):
    fig = draw(plot.harm, res)
    induced, regret, surplus = panels(fig)
    treated = [a for a in ARMS if a != "control"]
    for ax in (induced, regret, surplus):
        assert [c.get_label() for c in ax.containers] == treated  # one line per treatment arm
        assert [t.get_text() for t in ax.get_xticklabels()] == ["Q1", "Q2", "Q3", "Q4", "Q5"]
        assert "quintile" in ax.get_xlabel() and UNIT.search(ax.get_ylabel())
    assert legend_texts(fig) == treated


def test_sweep_metrics_and_heatmap(sweep):
    fig = draw(plot.sweep_metrics, sweep)
    axes = panels(fig)
    assert len(axes) == 3 * 2  # 3 metrics x 2 swept parameters
    for ax in axes:
        assert arm_lines(ax) == ["control", "sale"]
    xlabels = [ax.get_xlabel() for ax in axes if ax.get_xlabel()]
    assert xlabels == ["item sale discount", "item sale gain"]
    assert all(UNIT.search(ax.get_ylabel()) for ax in axes if ax.get_ylabel())
    heat = draw(plot.sweep_heatmap, sweep)
    maps = panels(heat)
    assert len(maps) == 2  # one per arm
    assert maps[0].images[0].get_array().shape == (3, 2)  # gain x discount
    assert any(ax.get_label() == "<colorbar>" for ax in heat.axes)


def test_sobol_bars(saltelli):
    fig = draw(plot.sobol_indices, saltelli)
    s1, st = panels(fig)
    assert len(s1.patches) == 2 and len(st.patches) == 2  # one bar per parameter (one arm)
    assert "share of variance" in s1.get_xlabel()


def test_sweep_figures_refuse_a_plain_experiment(res):
    from fomolab.errors import ResultsError

    with pytest.raises(ResultsError, match="not a sweep"):
        plot.sweep_metrics(res)
    with pytest.raises(ResultsError, match="saltelli"):
        plot.sobol_indices(res)


def test_figures_save_as_png_and_svg(res, tmp_path):
    fig = draw(plot.forest, res)
    fig.savefig(tmp_path / "f.png")
    fig.savefig(tmp_path / "f.svg")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()[:2000]
