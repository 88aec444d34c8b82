"""Figure: time to first purchase — the Kaplan–Meier share who have bought, with numbers at risk."""

from __future__ import annotations

from typing import Any

import numpy as np

from fomolab._format import compact
from fomolab.plot._style import (
    NARROW_WIDTH,
    arm_colors,
    arm_styles,
    as_analysis,
    figure,
    is_narrow,
    level_text,
    style,
    top_legend,
)

__all__ = ["time_to_purchase"]


def time_to_purchase(analysis: Any):
    """Kaplan–Meier share of viewers who have bought, by time since arrival.

    Draws the analysis' ``survival`` table: ``1 - S(t)`` per arm with its
    pointwise interval (Greenwood variance, log intervals, as R's
    ``survfit``), at the analysis' ``conf_level``; below the curves, the
    numbers at risk (viewers still watching and not yet buying, pooled over
    runs) at each tick.
    """
    a = as_analysis(analysis)
    sv = a.survival
    arms = [x for x in a.arm_order if x in set(sv.arm)]
    colors, ls = arm_colors(a.arm_order), arm_styles(a.arm_order)
    max_min = float(sv.time_s.max()) / 60
    ticks = np.unique(sv.time_s[sv.tick].to_numpy()) / 60
    with style():
        if is_narrow():  # a phone: room for the legend's rows and one 12 pt row of numbers at risk per arm
            risk_in = 0.2 + 0.17 * len(arms)
            fig = figure(figsize=(7.2, 4.0))
            fig.set_size_inches(NARROW_WIDTH, 2.8 + risk_in + 0.9 + 0.2 * ((len(arms) + 1) // 2))
            ratios = [2.8, risk_in]
        else:
            fig = figure(figsize=(7.2, 4.2 + 0.17 * len(arms)))
            ratios = [4.0, 0.3 + 0.2 * len(arms)]
        ax, ax_risk = fig.subplots(2, 1, sharex=True, height_ratios=ratios)
        top = 0.0
        for arm in arms:
            cur = sv[sv.arm == arm]
            x = cur.time_s.to_numpy() / 60
            c = colors[arm]
            ax.step(x, 100 * cur.bought, where="post", color=c, ls=ls[arm], label=arm)
            ax.fill_between(x, 100 * cur.ci_lower, 100 * cur.ci_upper, step="post", color=c, alpha=0.18, lw=0,
                            gid=f"band:{arm}")
            top = max(top, float(np.nanmax(100 * cur.ci_upper)))
        ax.set_xlim(0, max_min)
        ax.set_ylim(0, top * 1.08 if top > 0 else 1)
        ax.set_ylabel("Viewers who have bought (%)")
        ax.set_title(f"Time to first purchase (Kaplan–Meier, {level_text(a.conf_level)} bands)")
        top_legend(fig, ax)
        ax.tick_params(labelbottom=True)
        ax.set_xlabel("Time since arrival (min)")
        ax.set_xticks(ticks)
        ax_risk.set_ylim(-0.5, len(arms) - 0.5)
        ax_risk.invert_yaxis()
        ax_risk.set_yticks(range(len(arms)), arms)
        for tick, arm in zip(ax_risk.get_yticklabels(), arms, strict=False):
            tick.set_color(colors[arm])
        for j, arm in enumerate(arms):
            cur = sv[(sv.arm == arm) & sv.tick]
            for t, n in zip(cur.time_s / 60, cur.at_risk, strict=False):
                ax_risk.text(t, j, compact(n), ha="center", va="center", fontsize=7.5, color=colors[arm],
                             gid="at-risk")
        ax_risk.set_title("Number at risk (all runs)", fontsize=8.5, fontweight="normal")
        ax_risk.grid(False)
        ax_risk.tick_params(axis="both", length=0)
        ax_risk.tick_params(axis="y", pad=16)
        ax_risk.tick_params(axis="x", labelbottom=False)
        for side in ("left", "bottom"):
            ax_risk.spines[side].set_visible(False)
    return fig
