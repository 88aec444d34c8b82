"""Figures of sweeps: metrics against the swept parameters, a heatmap over two, Sobol indices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fomolab._format import fixed
from fomolab.plot._style import arm_colors, arm_styles, as_analysis, figure, style, top_legend

__all__ = ["METRICS", "param_label", "sobol_indices", "sweep_heatmap", "sweep_metrics"]

#: Run metrics shown for sweeps: column -> (axis label with unit, scale of the drawn values).
METRICS = {
    "conversion": ("Conversion (% of viewers)", 100.0),
    "revenue": ("Revenue per run (currency)", 1.0),
    "units_sold": ("Units sold per run (units)", 1.0),
    "median_time_to_purchase_s": ("Median time to purchase (s)", 1.0),
    "viewers_per_stream": ("Viewers per stream (viewers)", 1.0),
    "hhi_viewers": ("Concentration of watch time (HHI, 0-1)", 1.0),
    "top1_share_viewers": ("Top stream's share of watch time (0-1)", 1.0),
}


def _label(metric: str) -> str:
    return METRICS.get(metric, (metric, 1.0))[0]


def _scale(metric: str) -> float:
    return METRICS.get(metric, (metric, 1.0))[1]


def param_label(path: str) -> str:
    """A short axis label for a swept parameter's dotted path.

    >>> param_label("lineup.lipstick.price")
    'lipstick price'
    >>> param_label("stream.duration_s")
    'stream duration (s)'
    """
    from fomolab.figure_data import tactic_label

    parts = [p for p in path.split(".") if p not in ("lineup", "tactics", "segments", "population", "arrivals")]
    unit = ""
    if parts and parts[-1].endswith("_s"):
        parts[-1] = parts[-1][:-2]
        unit = " (s)"
    return " ".join(tactic_label(p) for p in parts) + unit


def _need_sweep(a) -> None:
    from fomolab.errors import ResultsError

    if not a.swept:
        raise ResultsError(f"{a.path}: not a sweep (no swept parameters in manifest.json); "
                           "sweep figures need a spec with a [sweep] table")


def sweep_metrics(analysis: Any, *, metrics: Sequence[str] = ("conversion", "revenue", "median_time_to_purchase_s")):
    """Each run metric against each swept parameter, one line per arm.

    Draws the analysis' ``marginals`` table: at each parameter value, the
    mean over runs (over replicates and the other swept parameters) with its
    t interval at the analysis' ``conf_level``.  Sampled designs are cut into
    equal-count bins, drawn at the bins' mean values.

    Returns
    -------
    matplotlib.figure.Figure
        A grid of panels: one row per metric, one column per swept parameter.
    """
    a = as_analysis(analysis)
    _need_sweep(a)
    mg = a.marginals
    swept = list(a.swept)
    arms = a.arm_order
    colors, styles = arm_colors(arms), arm_styles(arms)
    metrics = [m for m in metrics if m in set(mg.metric)]
    with style():
        fig = figure(figsize=(min(3.1 * len(swept) + 0.8, 10.0), 2.3 * len(metrics) + 0.5))
        axes = fig.subplots(len(metrics), len(swept), squeeze=False, sharex="col")
        for i, metric in enumerate(metrics):
            k = _scale(metric)
            for j, path in enumerate(swept):
                ax = axes[i, j]
                sub = mg[(mg.metric == metric) & (mg.parameter == path)]
                for arm in arms:
                    g = sub[sub.arm == arm].sort_values("value")
                    if g.empty:
                        continue
                    ax.plot(g.value, k * g["mean"], marker="o", ms=3, color=colors[arm], ls=styles[arm], label=arm)
                    ax.fill_between(g.value, k * g.ci_lower, k * g.ci_upper, color=colors[arm], alpha=0.15, lw=0,
                                    gid=f"band:{arm}")
                if i == len(metrics) - 1:
                    ax.set_xlabel(param_label(path) + (" (binned)" if sub.binned.any() else ""))
                if j == 0:
                    ax.set_ylabel(_label(metric))
        top_legend(fig, axes[0, 0])
    return fig


def sweep_heatmap(analysis: Any):
    """Mean conversion over the first two swept parameters, one heatmap per arm.

    Draws the analysis' ``cells`` table (means over runs in each cell;
    sampled designs cut into equal-count bins).  All panels share one colour
    scale (viridis, readable in grey and by colour-blind readers), with the
    value written in each cell when there are few cells.
    """
    from fomolab.errors import ResultsError

    a = as_analysis(analysis)
    _need_sweep(a)
    cells = a.cells
    if cells is None or cells.empty:
        raise ResultsError(f"{a.path}: a heatmap needs two swept parameters; this sweep has {len(a.swept)}")
    arms = [x for x in a.arm_order if x in set(cells.arm)]
    metric = str(cells.metric.iloc[0])
    k = _scale(metric)
    tables = {arm: cells[cells.arm == arm].pivot_table(index="y", columns="x", values="mean", aggfunc="first") * k
              for arm in arms}
    vmin = min(float(np.nanmin(t.to_numpy())) for t in tables.values())
    vmax = max(float(np.nanmax(t.to_numpy())) for t in tables.values())
    xp, yp = str(cells.x_parameter.iloc[0]), str(cells.y_parameter.iloc[0])
    colors = arm_colors(a.arm_order)
    with style():
        ncol = min(len(arms), 3)
        nrow = (len(arms) + ncol - 1) // ncol
        fig = figure(figsize=(min(2.9 * ncol + 1.2, 10.0), 2.6 * nrow + 0.6))
        axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
        im = None
        for ax, arm in zip(axes, arms, strict=False):
            t = tables[arm]
            im = ax.imshow(t.to_numpy(), origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
            ax.set_xticks(range(t.shape[1]), [fixed(v, 3) for v in t.columns])
            ax.set_yticks(range(t.shape[0]), [fixed(v, 3) for v in t.index])
            ax.grid(False)
            if t.size <= 36:
                mid = (vmin + vmax) / 2
                for (r, c), v in np.ndenumerate(t.to_numpy()):
                    if np.isfinite(v):
                        ax.text(c, r, fixed(v, 3), ha="center", va="center", fontsize=7.5,
                                color="black" if v > mid else "white")
            ax.set_title(arm, color=colors[arm], fontsize=9)
            ax.set_xlabel(param_label(xp))
            ax.set_ylabel(param_label(yp))
        for ax in axes[len(arms):]:
            ax.set_axis_off()
        fig.colorbar(im, ax=list(axes[:len(arms)]), label=_label(metric), shrink=0.9)
        fig.suptitle(f"{_label(metric).split(' (')[0]} over two swept parameters (mean over runs)",
                     x=0.01, ha="left", fontweight="bold", fontsize=10.5)
    return fig


def sobol_indices(analysis: Any, *, metric: str = "conversion"):
    """Sobol sensitivity indices of a metric, as bars per swept parameter.

    Draws the analysis' ``sobol`` table (Saltelli designs): first-order (the
    share of the metric's variance due to the parameter alone) and total
    (including its interactions) indices per arm, with the table's bootstrap
    intervals.
    """
    from fomolab.errors import ResultsError

    a = as_analysis(analysis)
    if a.sweep_design != "saltelli" or a.sobol is None:
        raise ResultsError(f"{a.path}: Sobol indices need a saltelli sweep design "
                           f"(this one: {a.sweep_design!r})")
    table = a.sobol[a.sobol.metric == metric]
    arms = [x for x in a.arm_order if x in set(table.arm.astype(str))]
    colors = arm_colors(a.arm_order)
    params = list(dict.fromkeys(table.parameter))
    with style():
        fig = figure(figsize=(7.2, 1.4 + 0.55 * len(params) * max(1, len(arms)) ** 0.5))
        axes = fig.subplots(1, 2, sharey=True)
        h = 0.8 / max(len(arms), 1)
        y = np.arange(len(params))
        for ax, idx, title in zip(axes, ("s1", "st"), ("First-order index S1", "Total index ST"), strict=False):
            for j, arm in enumerate(arms):
                t = table[table.arm.astype(str) == arm].set_index("parameter").reindex(params)
                v = t[idx].to_numpy(float)
                err = np.vstack([v - t[f"{idx}_ci_lower"].to_numpy(float), t[f"{idx}_ci_upper"].to_numpy(float) - v])
                ax.barh(y + (j - (len(arms) - 1) / 2) * h, v, height=h * 0.9, xerr=np.nan_to_num(err),
                        color=colors[arm], label=arm, gid=f"{idx}:{arm}",
                        error_kw={"elinewidth": 0.8, "ecolor": "#444444"})
            ax.axvline(0, color="#777777", lw=0.8)
            ax.set_xlabel(f"{title} (share of variance)")
            ax.grid(axis="y", visible=False)
        axes[0].set_yticks(y, [param_label(p) for p in params])
        axes[0].invert_yaxis()
        axes[1].legend(title="arm", loc="lower right")
        fig.suptitle(f"Sobol indices of {_label(metric).split(' (')[0].lower()}", x=0.01,
                     ha="left", fontweight="bold", fontsize=10.5)
    return fig
