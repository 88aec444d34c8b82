"""Figure: what happened over the stream — purchase rate, viewers and stock, tactic windows shaded."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fomolab.plot._style import WINDOW, arm_colors, arm_styles, as_analysis, figure, style, top_legend

__all__ = ["purchase_rate"]

def shade_windows(axes, wins: pd.DataFrame, scale: float, label_ax=None) -> None:
    """Shade each distinct tactic window of the ``windows`` table on every axis, labelled above ``label_ax``."""
    if wins is None or wins.empty:
        return
    w = wins.assign(key=list(zip(wins.start_s.round(0), wins.end_s.round(0), strict=False)))
    for (start, end), grp in w.groupby("key", sort=False):
        names = " + ".join(dict.fromkeys(grp.label))
        for ax in axes:
            ax.axvspan(start / scale, end / scale, **WINDOW)
        if label_ax is not None:
            label_ax.annotate(names, xy=((start + end) / 2 / scale, 1.0), xycoords=("data", "axes fraction"),
                              xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                              fontsize=7.5, color="#555555")

def purchase_rate(analysis: Any, *, band: bool = True):
    """Purchase rate over stream time per arm, with viewers and stock below.

    Parameters
    ----------
    analysis : fomolab.analysis.Analysis
        Draws its ``timeline`` and ``windows`` tables.
    band : bool, default True
        Draw the rate's interval over runs (the table's ``ci_lower``,
        ``ci_upper``: a t interval at the analysis' ``conf_level``).

    Returns
    -------
    matplotlib.figure.Figure
        Panels, top to bottom: purchases per minute (per run), concurrent viewers
        (per run), and, when a product has a finite stock, units left of each
        such product (per run).  Tactic windows are shaded (the median window
        over the runs that had it) and labelled above the top panel.
    """
    a = as_analysis(analysis)
    tl = a.timeline
    arms = a.arm_order
    colors, ls = arm_colors(arms), arm_styles(arms)
    stocked = sorted(set(tl["product"][tl.series == "stock"]))
    T = float(tl.time_s[tl.series == "viewers"].max())
    with style():
        fig = figure(figsize=(7.2, 6.2 if stocked else 4.8))
        ratios = [1.6, 1.0] + [1.0] * bool(stocked)
        axes = fig.subplots(len(ratios), 1, sharex=True, height_ratios=ratios)
        ax_rate, ax_view = axes[0], axes[1]
        ax_stock = axes[2] if stocked else None
        for arm in arms:
            mine = tl[tl.arm == arm]
            if mine.empty:
                continue
            c = colors[arm]
            rate = mine[mine.series == "purchase_rate"]
            ax_rate.plot(rate.time_s / 60, rate["mean"], color=c, ls=ls[arm], label=arm)
            if band and (rate.runs > 1).any():
                ax_rate.fill_between(rate.time_s / 60, rate.ci_lower, rate.ci_upper, color=c, alpha=0.15, lw=0,
                                     gid=f"band:{arm}")
            view = mine[mine.series == "viewers"]
            ax_view.plot(view.time_s / 60, view["mean"], color=c, ls=ls[arm], label=arm)
            for j, p in enumerate(stocked):
                st = mine[(mine.series == "stock") & (mine["product"] == p)]
                if len(st) and ax_stock is not None:
                    ax_stock.plot(st.time_s / 60, st["mean"], color=c, ls=ls[arm], lw=1.6 if j == 0 else 0.9,
                                  label=arm if len(stocked) == 1 else f"{arm}: {p}")
        shade_windows(axes, a.windows, 60.0, label_ax=ax_rate)
        ax_rate.set_ylabel("Purchase rate\n(purchases/min per run)")
        ax_rate.set_ylim(bottom=0)
        top_legend(fig, ax_rate)
        ax_view.set_ylabel("Concurrent viewers\n(viewers per run)")
        ax_view.set_ylim(bottom=0)
        if ax_stock is not None:
            ax_stock.set_ylabel(f"{stocked[0].capitalize()} stock left\n(units per run)" if len(stocked) == 1
                                else "Stock left (thin: 2nd+\nproduct; units per run)")
            ax_stock.set_ylim(bottom=0)
        axes[-1].set_xlabel("Stream time (min)")
        axes[-1].set_xlim(0, T / 60)
    return fig
