"""Figures: who responds — by impulsiveness group, and who the tactics move and harm."""

from __future__ import annotations

from typing import Any

import numpy as np

from fomolab.plot._style import arm_colors, arm_styles, as_analysis, errors, figure, style, top_legend

__all__ = ["harm", "impulsiveness"]


def impulsiveness(analysis: Any):
    """Conversion and time to purchase by impulsiveness group (deciles), per arm.

    Draws the analysis' ``impulsiveness`` table: left, the share who bought;
    right, the median minutes from arrival to first purchase among buyers;
    means over runs with the table's t intervals.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, one line with error bars per arm in each.
    """
    a = as_analysis(analysis)
    tab = a.impulsiveness
    arms = [x for x in a.arm_order if x in set(tab.arm)]
    colors, ls = arm_colors(a.arm_order), arm_styles(a.arm_order)
    k = int(tab.groups.max()) if len(tab) else 10
    x = np.arange(1, k + 1)
    with style():
        fig = figure(figsize=(7.2, 3.4))
        ax_c, ax_t = fig.subplots(1, 2)
        n = len(arms)
        for j, arm in enumerate(arms):
            dx = (j - (n - 1) / 2) * 0.08  # dodge the arms a little
            for ax, measure, scale in ((ax_c, "conversion", 100.0), (ax_t, "median_time_to_purchase_s", 1 / 60)):
                t = tab[(tab.arm == arm) & (tab.measure == measure)].set_index("group").reindex(x)
                m, lo, hi = (t[c].to_numpy(float) * scale for c in ("mean", "ci_lower", "ci_upper"))
                ax.errorbar(x + dx, m, yerr=errors(m, lo, hi), color=colors[arm], ls=ls[arm], marker="o", ms=3.5,
                            lw=1.4, elinewidth=0.9, capsize=0, label=arm, gid=f"ci:{arm}")
        ax_c.set_ylabel("Viewers who bought (%)")
        ax_t.set_ylabel("Median time to purchase (min)")
        ax_c.set_ylim(bottom=0)
        ax_t.set_ylim(bottom=0)
        for ax in (ax_c, ax_t):
            ax.set_xlabel(f"Impulsiveness {'decile' if k == 10 else 'group'} (1 = least impulsive)")
            ax.set_xticks(x)
        ax_c.set_title("Who buys")
        ax_t.set_title("How fast buyers buy")
        top_legend(fig, ax_c)
    return fig


def harm(analysis: Any, *, point: int | None = None):
    """Consumer impact by impulsiveness quintile: who the tactics move, and who regrets.

    Draws the analysis' ``impact`` table (:func:`fomolab.attribution.impact`):
    quintiles from Q1 (least impulsive) to Q5; each treatment arm's viewers
    against the same viewers in the control.  Left: purchases the arm
    induced; middle: regretted purchases it added (negative surplus); right:
    consumer surplus lost (negative is a gain).  Means per replicate with
    the table's intervals over replicates.  For a sweep, give the ``point``.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels, one line per treatment arm.
    """
    from fomolab.errors import ResultsError

    a = as_analysis(analysis)
    tab = a.impact
    if tab is None or tab.empty:
        raise ResultsError(f"{a.path}: no consumer impact in the analysis (it needs common random numbers and a "
                           "treatment arm)")
    if point is not None:
        tab = tab[tab.point == point]
    elif tab.point.nunique() > 1:
        raise ValueError(f"the results have {tab.point.nunique()} sweep points: give point=")
    arms = [x for x in a.arm_order if x in set(tab.arm)]
    colors, ls = arm_colors(a.arm_order), arm_styles(a.arm_order)
    groups = sorted(set(tab.group))
    x = np.arange(1, len(groups) + 1)
    panels = (("induced_purchases", "Induced purchases per replicate (units)", "Purchases induced"),
              ("regretted_added", "Regretted purchases added (units)", "Regret added"),
              ("consumer_surplus_lost", "Consumer surplus lost (currency)", "Surplus lost"))
    with style():
        fig = figure(figsize=(9.6, 3.4))
        axes = fig.subplots(1, 3)
        n = len(arms)
        for j, arm in enumerate(arms):
            dx = (j - (n - 1) / 2) * 0.06
            for ax, (measure, _, _) in zip(axes, panels, strict=False):
                t = tab[(tab.arm == arm) & (tab.measure == measure)].set_index("group").reindex(groups)
                m = t["mean"].to_numpy(float)
                ax.errorbar(x + dx, m, yerr=errors(m, t.ci_lower, t.ci_upper), color=colors[arm], ls=ls[arm],
                            marker="o", ms=3.5, lw=1.4, elinewidth=0.9, capsize=0, label=arm, gid=f"ci:{arm}")
        for ax, (_, ylabel, title) in zip(axes, panels, strict=False):
            ax.axhline(0, color="0.6", lw=0.8)
            ax.set_xticks(x, groups)
            ax.set_xlabel("Impulsiveness quintile")
            ax.set_ylabel(ylabel)
            ax.set_title(title)
        top_legend(fig, axes[0])
    return fig

