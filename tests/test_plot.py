"""fomolab.plot on analyses of small results made here: panels, lines per arm, labels with units, no
warnings; what a figure draws is the analysis table's numbers, and drawing fits no model."""

from __future__ import annotations

import re
import warnings

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from fomolab import plot
from fomolab.analysis import analyze
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
def results(tmp_path_factory):
    return run(experiment(SPEC), tmp_path_factory.mktemp("p") / "r", workers=1)


@pytest.fixture(scope="module")
def res(results):
    return analyze(results, n_boot=0)


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
    return analyze(run(experiment(spec), tmp_path_factory.mktemp("s") / "r", workers=1), n_boot=0)


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
    return analyze(run(experiment(spec), tmp_path_factory.mktemp("sa") / "r", workers=1), n_boot=0)


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
    return [ln.get_label() for ln in ax.get_lines() if ln.get_label() in ARMS]


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
    assert any(t.get_text() == "lightning sale + countdown timer" for t in rate.texts)
    # stock starts at 120 and never rises
    y = stock.get_lines()[0].get_ydata()
    assert y[0] == 300 and (y[1:] <= y[:-1]).all()


def test_purchase_rate_without_stock_has_two_panels(sweep):
    assert len(panels(draw(plot.purchase_rate, sweep))) == 2


def test_time_to_purchase_has_bands_and_numbers_at_risk(res, results):
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
    viewers = results.runs.groupby("arm", observed=True).viewers.sum()
    assert [first[j] for j in range(len(ARMS))] == [f"{viewers[a]:,}" for a in ARMS]
    assert "Number at risk" in risk.get_title("left")


def test_purchase_incidence_draws_the_incidence_table_and_the_horizon(res):
    fig = draw(plot.purchase_incidence, res)
    ax = fig.axes[0]
    assert arm_lines(ax) == ARMS and len(ax.collections) == len(ARMS)
    inc = res.incidence
    for ln in ax.get_lines():
        if ln.get_label() in ARMS:
            np.testing.assert_allclose(ln.get_ydata(), 100 * inc[inc.arm == ln.get_label()].cuminc)
    horizon = [ln for ln in ax.get_lines() if ln.get_gid() == "horizon"]
    assert len(horizon) == 1 and horizon[0].get_xdata()[0] == pytest.approx(res.horizon / 60)
    # at the horizon the curve is the headline's share who have bought
    at = inc[inc.horizon].set_index("arm").cuminc
    np.testing.assert_allclose(at[ARMS], res.headline.set_index("arm").cuminc[ARMS], rtol=1e-12)


def test_repeat_purchases_draws_the_mean_cumulative_count(res):
    fig = draw(plot.repeat_purchases, res)
    ax = fig.axes[0]
    assert arm_lines(ax) == ARMS and ax.get_ylabel() == "Purchases per viewer"
    rp = res.repeat
    for ln in ax.get_lines():
        if ln.get_label() in ARMS:
            np.testing.assert_allclose(ln.get_ydata(), rp[rp.arm == ln.get_label()].mcf)


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


def test_forest_draws_the_analysis_arms_table(res):
    """The drawn intervals and points, read back from the Axes, are the ``arms`` table's, row by row."""
    fig = draw(plot.forest, res)
    hr, orr = panels(fig)[:2]
    for ax, measure in ((hr, "hazard_ratio"), (orr, "odds_ratio")):
        tab = res.arms[res.arms.measure == measure].set_index("arm")
        drawn = {ln.get_gid().split(":", 1)[1]: ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("ci:")}
        assert sorted(drawn) == sorted(tab.index)
        for arm, ln in drawn.items():
            assert list(ln.get_xdata()) == [tab.loc[arm, "ci_lower"], tab.loc[arm, "ci_upper"]]
            (dot,) = [d for d in ax.get_lines() if d.get_gid() == f"estimate:{arm}"]
            assert list(dot.get_xdata()) == [tab.loc[arm, "estimate"]]


def test_forest_of_a_sweep_draws_the_pooled_table(sweep):
    fig = draw(plot.forest, sweep)
    hr = panels(fig)[0]
    row = sweep.pooled[(sweep.pooled.measure == "hazard_ratio")].set_index("arm").loc["sale"]
    (ln,) = [x for x in hr.get_lines() if x.get_gid() == "ci:sale"]
    assert list(ln.get_xdata()) == [row.ci_lower, row.ci_upper]
    assert (sweep.pooled.clusters == 6 * 2).all()  # a point's replicates: 6 points x 2 replicates


def test_deadline_histogram(res):
    fig = draw(plot.deadline, res)
    (ax,) = panels(fig)
    steps = [p.get_label() for p in ax.patches if p.get_label() in ARMS]
    assert steps == ARMS  # the control counted over the same stream time as a baseline
    assert ax.get_xlabel() == "Time left to the deadline (s)"
    assert UNIT.search(ax.get_ylabel()) or "/min" in ax.get_ylabel()
    assert ax.get_xlim() == pytest.approx((180, 0))  # the deadline at the right
    assert ax.get_title("left") == "item: lightning sale + countdown timer ends"
    # the steps are the analysis' deadline_curve, per minute and run
    tab = res.deadline_curve[res.deadline_curve.arm == "sale"].sort_values("left_to_s")
    (step,) = [p for p in ax.patches if p.get_label() == "sale"]
    assert list(step.get_data().values) == list(tab.purchases_per_min)


def test_impulsiveness_deciles(res):
    fig = draw(plot.impulsiveness, res)
    conv, ttp = panels(fig)
    for ax in (conv, ttp):
        assert [c.get_label() for c in ax.containers] == ARMS  # one line with error bars per arm
        assert len(ax.get_lines()[0].get_xdata()) == 10
        assert "decile" in ax.get_xlabel()
        assert UNIT.search(ax.get_ylabel())
    assert legend_texts(fig) == ARMS
    # error bars are the table's t intervals (conversion in %)
    tab = res.impulsiveness[(res.impulsiveness.arm == "sale") & (res.impulsiveness.measure == "conversion")]
    (bars,) = [c for c in conv.containers if c.get_label() == "sale"]
    segs = bars.lines[2][0].get_segments()
    assert [s[0][1] for s in segs] == pytest.approx(100 * tab.ci_lower.to_numpy(), rel=1e-12)
    assert [s[1][1] for s in segs] == pytest.approx(100 * tab.ci_upper.to_numpy(), rel=1e-12)


def test_figure_bands_are_t_intervals_over_runs(res, results, sweep):
    """Bands are mean +- t(n-1) sd / sqrt(n) over runs (not 1.96 standard errors): checked against
    the one interval function on the raw runs."""
    import numpy as np

    from fomolab.stats._intervals import t_interval

    # the sweep's marginal of conversion at each discount, per arm, from the runs table itself
    mg = sweep.marginals
    m = mg[(mg.metric == "conversion") & (mg.parameter == "lineup.item.tactics.lightning_sale.discount")]
    raw = analyze_runs(sweep)
    for row in m.itertuples():
        x = raw[(raw.arm == row.arm) & np.isclose(raw.discount, row.value)].conversion.to_numpy()
        mean, lo, hi = t_interval(x, 0.95)
        assert (row.mean, row.ci_lower, row.ci_upper) == pytest.approx((mean, lo, hi), rel=1e-12)
    assert m.runs.max() == 6  # 3 gains x 2 replicates pooled at a discount
    # and the drawn band is the table's
    fig = draw(plot.sweep_metrics, sweep)
    ax = panels(fig)[0]  # conversion against the discount
    (band,) = [c for c in ax.collections if c.get_gid() == "band:sale"]
    ys = band.get_paths()[0].vertices[:, 1]
    tab = m[m.arm == "sale"]
    assert min(ys) == pytest.approx(100 * tab.ci_lower.min()) and max(ys) == pytest.approx(100 * tab.ci_upper.max())
    # the purchase-rate band of the experiment: t intervals over its 3 replicates
    rate = res.timeline[(res.timeline.series == "purchase_rate") & (res.timeline.arm == "sale")]
    ok = rate.ci_upper > rate.ci_lower
    half = (rate.ci_upper - rate["mean"])[ok].to_numpy()
    assert len(half) > 10 and (half > 0).all()


def analyze_runs(a):
    """The sweep's runs table with its swept discount, from the results folder of an analysis."""
    from fomolab.results import Results

    runs = Results(a.path).runs
    col = a.swept["lineup.item.tactics.lightning_sale.discount"]
    return runs.assign(arm=runs.arm.astype(str), discount=runs[col])


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
    assert xlabels == ["item lightning sale discount", "item lightning sale gain"]
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
    # the bars are the analysis' sobol table (not indices recomputed with other settings)
    tab = saltelli.sobol[saltelli.sobol.metric == "conversion"]
    assert [p.get_width() for p in s1.patches] == list(tab.s1)
    assert [p.get_width() for p in st.patches] == list(tab.st)


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


def test_a_results_folder_is_analysed_with_a_future_warning(results):
    with pytest.warns(FutureWarning, match="analyze"):
        fig = plot.forest(results)
    assert isinstance(fig, Figure)


def test_drawing_fits_no_model(res, sweep, saltelli, monkeypatch):
    """Every figure draws from a precomputed analysis with every model fit and estimator disabled."""
    import importlib

    import SALib.analyze.sobol
    import statsmodels.base.model
    import statsmodels.regression.linear_model

    import fomolab.stats

    def module(name):  # fomolab.stats.cox is also the name of a function
        return importlib.import_module(f"fomolab.stats.{name}")

    def refuse(*args, **kw):
        raise AssertionError("a figure fitted a model")

    for mod, name in ((statsmodels.base.model.LikelihoodModel, "fit"),
                      (statsmodels.regression.linear_model.RegressionModel, "fit"),
                      (SALib.analyze.sobol, "analyze"), (module("cox"), "cox"),
                      (module("conversion"), "conversion"), (module("conversion"), "risk_difference"),
                      (module("kaplan_meier"), "kaplan_meier"), (module("compare"), "binary_logit"),
                      (module("compare"), "compare_arms"), (fomolab.stats, "cox"),
                      (fomolab.stats, "kaplan_meier"), (fomolab.stats, "conversion")):
        monkeypatch.setattr(mod, name, refuse)
    for fn in (plot.purchase_rate, plot.time_to_purchase, plot.forest, plot.deadline, plot.impulsiveness,
               plot.harm, plot.purchase_incidence, plot.repeat_purchases):
        draw(fn, res)
    for fn in (plot.sweep_metrics, plot.sweep_heatmap, plot.forest):
        draw(fn, sweep)
    draw(plot.sobol_indices, saltelli)


def test_plotting_code_imports_no_statistics():
    """plot/ imports no statistics (fomolab.stats, statsmodels, SALib, scipy) and names no tactic kind."""
    import ast
    from pathlib import Path

    from fomolab.tactics import KINDS

    banned = ("fomolab.stats", "statsmodels", "SALib", "scipy", "lifelines", "fomolab.attribution")
    folder = Path(plot.__file__).parent
    files = sorted(folder.glob("*.py"))
    assert len(files) >= 6
    for f in files:
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    assert not any(k in node.value for k in KINDS), (f.name, node.value)
                continue
            for n in names:
                assert not n.startswith(banned), (f.name, n)


# ------------------------------------------------------------- legible at any size


def drawn_texts(fig: Figure) -> list[tuple[str, object]]:
    """``(text, box in pixels)`` of every text matplotlib draws in the figure: visible and non-empty, except
    tick labels of ticks outside their axis' view (not drawn) and texts clipped to their axes."""
    from matplotlib.axis import Axis
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    hidden = set()
    for axis in fig.findobj(Axis):
        lo, hi = sorted(axis.get_view_interval())
        eps = (hi - lo) * 1e-9
        for tick in axis.get_major_ticks() + axis.get_minor_ticks():
            if not lo - eps <= tick.get_loc() <= hi + eps:
                hidden.update({id(tick.label1), id(tick.label2)})
    return [(t.get_text(), t.get_window_extent(renderer)) for t in fig.findobj(Text)
            if id(t) not in hidden and t.get_visible() and t.get_text().strip()]


def overlapping_texts(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of drawn texts (:func:`drawn_texts`: tick labels, axis labels, titles, legend entries,
    annotations, numbers at risk) whose boxes overlap by more than a pixel, as matplotlib renders them."""
    import itertools

    boxes = drawn_texts(fig)
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2)
            if ba.x0 + 1 < bb.x1 and bb.x0 + 1 < ba.x1 and ba.y0 + 1 < bb.y1 and bb.y0 + 1 < ba.y1]


def texts_outside(fig: Figure) -> list[str]:
    """Drawn texts that stick out of the figure (cut off in the saved image)."""
    w, h = fig.bbox.width, fig.bbox.height
    return [t for t, b in drawn_texts(fig) if b.x0 < -1 or b.y0 < -1 or b.x1 > w + 1 or b.y1 > h + 1]


def test_overlap_check_sees_overlapping_labels():
    """The check itself: two labels drawn on top of each other are found, the same labels apart are not."""
    from fomolab.plot._style import figure

    fig = figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.annotate("lightning sale", (0.5, 1.0), xycoords="axes fraction")
    ax.annotate("scarcity cue", (0.52, 1.0), xycoords="axes fraction")
    assert ("lightning sale", "scarcity cue") in overlapping_texts(fig)
    fig = figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.annotate("lightning sale", (0.0, 1.0), xycoords="axes fraction")
    ax.annotate("scarcity cue", (0.7, 1.0), xycoords="axes fraction")
    assert overlapping_texts(fig) == []


def _windows_analysis(res, windows):
    import dataclasses

    import pandas as pd

    return dataclasses.replace(res, windows=pd.DataFrame(windows))


def test_staggered_windows_get_one_label_and_coinciding_ones_stack(res):
    """A hundred staggered sales (a marketplace) print one label, not a hundred on top of each other; two
    windows centred on the same minute put their labels in two rows."""
    staggered = [{"product": "item", "tactic": "lightning_sale", "label": "lightning sale", "start_s": 3.0 * k,
                  "end_s": 3.0 * k + 60.0, "runs": 1} for k in range(100)]
    fig = draw(plot.purchase_rate, _windows_analysis(res, staggered))
    labels = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "window-label"]
    assert labels == ["lightning sale (100 windows)"]
    assert overlapping_texts(fig) == []
    coinciding = [{"product": "item", "tactic": "scarcity_cue", "label": "scarcity cue", "start_s": 0.0,
                   "end_s": 900.0, "runs": 1},
                  {"product": "item", "tactic": "lightning_sale", "label": "lightning sale + countdown timer",
                   "start_s": 300.0, "end_s": 600.0, "runs": 1}]
    fig = draw(plot.purchase_rate, _windows_analysis(res, coinciding))
    texts = [t for t in fig.axes[0].texts if t.get_gid() == "window-label"]
    assert [t.get_text() for t in texts] == ["scarcity cue", "lightning sale + countdown timer"]
    assert texts[0].xyann[1] < texts[1].xyann[1]  # the second label a row higher
    assert overlapping_texts(fig) == []


@pytest.mark.parametrize("name", ["purchase_rate", "purchase_incidence", "time_to_purchase", "repeat_purchases",
                                  "forest", "deadline", "harm", "impulsiveness"])
def test_narrow_figures_are_phone_sized_with_text_that_does_not_overlap(name, res):
    """Drawn for a phone, a figure is NARROW_WIDTH inches wide (its text at full size on a 390 px screen),
    a row of panels becomes a column, and no two texts overlap."""
    with plot.narrow():
        fig = draw(getattr(plot, name), res)
    assert fig.get_figwidth() == pytest.approx(plot.NARROW_WIDTH)
    assert overlapping_texts(fig) == []
    assert texts_outside(fig) == []
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]
    assert min(sizes) >= 7.5  # points: at 3.9 in shown 366 px wide, at least 9.4 CSS px
    ps = panels(fig)
    if name in ("harm", "impulsiveness"):  # side by side when wide, one above the other when narrow
        xs = {round(ax.get_position().x0, 2) for ax in ps}
        assert len(ps) >= 2 and len(xs) == 1, xs
    assert not plot.is_narrow()


def _lab(hex_colour: str) -> np.ndarray:
    """CIE L*a*b* (D65) of an sRGB colour."""
    from matplotlib.colors import to_rgb

    rgb = np.array(to_rgb(hex_colour))
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@pytest.mark.parametrize("n", [2, 8, 9, 10, 12, 21])
def test_arm_colours_stay_distinct_past_eight_arms(n):
    arms = [f"arm{i}" for i in range(n)]
    colours = plot.arm_colors(arms)
    assert len(set(colours.values())) == n
    assert colours["arm0"] == "#000000"  # the control in black
    if n <= 8:
        assert list(colours.values()) == list(plot.OKABE_ITO[:n])  # figures of up to 8 arms unchanged
    labs = [_lab(c) for c in colours.values()]
    closest = min(float(np.linalg.norm(a - b)) for i, a in enumerate(labs) for b in labs[i + 1:])
    assert closest >= 10, closest  # CIE76 distance: 2.3 is just noticeable, 10 is plainly different


@pytest.mark.parametrize("n", [22, 40, 105])
def test_past_21_arms_no_two_share_colour_and_line_style(n):
    arms = [f"arm{i}" for i in range(n)]
    colours, styles = plot.arm_colors(arms), plot.arm_styles(arms)
    assert len({(colours[a], str(styles[a])) for a in arms}) == n
