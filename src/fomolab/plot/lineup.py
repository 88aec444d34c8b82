"""Figure: buyers and revenue of each product of a long lineup, by slot over stream time."""

from __future__ import annotations

from typing import Any

import numpy as np

from fomolab.plot._style import arm_colors, arm_styles, as_analysis, figure, level_text, style, top_legend

__all__ = ["lineup"]

_PANELS = (("revenue", "Revenue per product"), ("buyers", "Buyers per product"))


def lineup(analysis: Any):
    """Revenue and buyers of each product against its slot's start in stream time, per arm.

    Draws the analysis' ``lineup`` table (long lineups only): one step line
    per arm over the slots, means over runs with their band, so hundreds of
    products stay readable (no label per product; the x axis is stream time
    in hours).
    """
    a = as_analysis(analysis)
    lu = a.lineup
    if lu is None or lu.empty:
        raise ValueError("no lineup table: the analysis has one only for lineups of 20 products or more")
    arms = [x for x in a.arm_order if x in set(lu.arm)]
    colors, ls = arm_colors(a.arm_order), arm_styles(a.arm_order)
    with style():
        fig = figure(figsize=(7.2, 5.6))
        axes = fig.subplots(2, 1, sharex=True)
        for ax, (measure, label) in zip(axes, _PANELS, strict=True):
            for arm in arms:
                cur = lu[(lu.arm == arm) & (lu.measure == measure)].sort_values("slot")
                x = np.append(cur.slot_start_s.to_numpy(float), cur.slot_end_s.to_numpy(float)[-1:]) / 3600
                y = cur["mean"].to_numpy(float)
                c = colors[arm]
                ax.stairs(y, x, color=c, ls=ls[arm], label=arm, lw=1.0)
                ax.stairs(cur.ci_upper.to_numpy(float), x, baseline=cur.ci_lower.to_numpy(float), fill=True,
                          color=c, alpha=0.18, lw=0, gid=f"band:{arm}")
            ax.set_ylabel(label)
            ax.set_ylim(bottom=0)
        n = int(lu["product"].nunique())
        axes[-1].set_xlabel("Stream time (h), each product at its slot")
        axes[-1].set_xlim(float(lu.slot_start_s.min()) / 3600, float(lu.slot_end_s.max()) / 3600)
        axes[0].set_title(f"{n} products in slot order (means over runs, {level_text(a.conf_level)} bands)")
        top_legend(fig, axes[0])
    return fig
