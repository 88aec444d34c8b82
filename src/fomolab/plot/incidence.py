"""Figures: buying before leaving (cumulative incidence) and repeat purchases (mean cumulative count)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fomolab.plot._style import arm_colors, arm_styles, as_analysis, figure, level_text, style, top_legend

__all__ = ["purchase_incidence", "repeat_purchases"]


def _curves(ax, table, arms, colors, ls, col: str, scale: float) -> float:
    top = 0.0
    for arm in arms:
        cur = table[table.arm == arm]
        x = cur.time_s.to_numpy(float) / 60
        c = colors[arm]
        ax.step(x, scale * cur[col], where="post", color=c, ls=ls[arm], label=arm)
        ax.fill_between(x, scale * cur.ci_lower, scale * cur.ci_upper, step="post", color=c, alpha=0.18, lw=0,
                        gid=f"band:{arm}")
        top = max(top, float(np.nanmax(scale * cur.ci_upper)))
    return top


def purchase_incidence(analysis: Any):
    """The share of viewers who have bought by time since arrival, leaving being the competing event.

    Draws the analysis' ``incidence`` table: the Aalen–Johansen cumulative
    incidence of buying per arm with its pointwise band, at the analysis'
    ``conf_level``, and a vertical line at the headline's horizon, where the
    curve's value is the headline's ``cuminc``.
    """
    a = as_analysis(analysis)
    inc = a.incidence
    arms = [x for x in a.arm_order if x in set(inc.arm)]
    colors, ls = arm_colors(a.arm_order), arm_styles(a.arm_order)
    with style():
        fig = figure(figsize=(7.2, 4.2))
        ax = fig.subplots()
        top = _curves(ax, inc, arms, colors, ls, "cuminc", 100)
        h = float(a.horizon)
        if np.isfinite(h):
            ax.axvline(h / 60, color="0.4", lw=0.8, ls=":", gid="horizon")
            ax.annotate(f"horizon {h:,.0f} s", (h / 60, top * 1.02 if top > 0 else 0.5), fontsize=8,
                        color="0.3", ha="left", xytext=(3, 0), textcoords="offset points")
        ax.set_xlim(0, float(inc.time_s.max()) / 60 if len(inc) else 1)
        ax.set_ylim(0, top * 1.12 if top > 0 else 1)
        ax.set_xlabel("Time since arrival (min)")
        ax.set_ylabel("Viewers who have bought (%)")
        ax.set_title(f"Buying before leaving (cumulative incidence, {level_text(a.conf_level)} bands)")
        top_legend(fig, ax)
    return fig


def repeat_purchases(analysis: Any):
    """The mean number of purchases per viewer by time since arrival, every purchase counted.

    Draws the analysis' ``repeat`` table: the mean cumulative function per arm
    with its pointwise band (robust to repeat purchases of one viewer).
    """
    a = as_analysis(analysis)
    rp = a.repeat
    arms = [x for x in a.arm_order if x in set(rp.arm)]
    colors, ls = arm_colors(a.arm_order), arm_styles(a.arm_order)
    with style():
        fig = figure(figsize=(7.2, 4.2))
        ax = fig.subplots()
        top = _curves(ax, rp, arms, colors, ls, "mcf", 1)
        ax.set_xlim(0, float(rp.time_s.max()) / 60 if len(rp) else 1)
        ax.set_ylim(0, top * 1.08 if top > 0 else 1)
        ax.set_xlabel("Time since arrival (min)")
        ax.set_ylabel("Purchases per viewer")
        ax.set_title(f"Repeat purchases (mean cumulative number, {level_text(a.conf_level)} bands)")
        top_legend(fig, ax)
    return fig
