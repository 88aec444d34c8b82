"""Figure: deadline bunching — purchases by seconds left to each tactic's deadline."""

from __future__ import annotations

from typing import Any

import numpy as np

from fomolab.plot._style import arm_colors, arm_styles, as_analysis, figure, style, top_legend

__all__ = ["deadline"]


def deadline(analysis: Any):
    """Purchases by the seconds left to each tactic's deadline.

    Draws the analysis' ``deadline_curve`` table: for every window with a
    deadline, purchases of its product inside the window per minute and run,
    by ``end - time``, for every arm (arms without the tactic are counted over
    the same stream time, as the baseline).  A rise towards 0 seconds left is
    deadline bunching.  One panel per distinct window.

    Returns
    -------
    matplotlib.figure.Figure
        Step histograms, one line per arm, with time running left to right
        (the deadline at the right edge).
    """
    a = as_analysis(analysis)
    dc = a.deadline_curve
    colors, ls = arm_colors(a.arm_order), arm_styles(a.arm_order)
    labels = list(dict.fromkeys(dc.window)) if dc is not None and not dc.empty else []
    with style():
        fig = figure(figsize=(7.2, 3.2 * max(1, (len(labels) + 1) // 2) if len(labels) > 1 else 3.4))
        if not labels:
            ax = fig.subplots()
            ax.text(0.5, 0.5, "No tactic with a deadline in these results", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_axis_off()
            return fig
        ncol = 1 if len(labels) == 1 else 2
        axes = np.atleast_1d(fig.subplots((len(labels) + ncol - 1) // ncol, ncol, squeeze=False)).ravel()
        for ax, label in zip(axes, labels, strict=False):
            w = dc[dc.window == label]
            length = float(w.left_from_s.max())
            for arm in [x for x in a.arm_order if x in set(w.arm)]:
                c = w[w.arm == arm].sort_values("left_to_s")
                edges = np.append(c.left_to_s.to_numpy(), c.left_from_s.to_numpy()[-1])
                ax.stairs(c.purchases_per_min.to_numpy(), edges, color=colors[arm], ls=ls[arm], lw=1.6, label=arm,
                          baseline=None)
            ax.set_xlim(length, 0)
            ax.set_ylim(bottom=0)
            ax.set_xlabel("Time left to the deadline (s)")
            ax.set_ylabel("Purchases/min per run")
            ax.set_title(label, fontsize=9)
        for ax in axes[len(labels):]:
            ax.set_axis_off()
        top_legend(fig, axes[0])
    return fig
