"""Figure: effects against the control — a forest plot of hazard and odds ratios."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fomolab._format import fixed, nice_step
from fomolab.plot._style import arm_colors, as_analysis, figure, level_text, style

__all__ = ["effects_table", "forest"]


def effects_table(analysis: Any) -> pd.DataFrame:
    """The contrasts the forest plot draws: ``pooled`` for a sweep, else ``arms`` (hazard and odds ratios)."""
    a = as_analysis(analysis)
    tab = a.pooled if a.pooled is not None else a.arms
    return tab[tab.measure.isin(["hazard_ratio", "odds_ratio"])].reset_index(drop=True)


def forest(analysis: Any, *, table: pd.DataFrame | None = None):
    """Forest plot of hazard ratios and odds ratios against the control arm.

    Parameters
    ----------
    analysis : fomolab.analysis.Analysis
        Draws :func:`effects_table`: the analysis' ``arms`` table (one
        point), or its ``pooled`` table (a sweep: pooled over the points).
    table : pandas.DataFrame, optional
        Other rows to draw, with columns ``arm, measure, estimate, ci_lower,
        ci_upper`` (one point's rows of ``analysis.arms``, say).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, hazard ratio (how much faster viewers buy) and odds ratio
        (how much likelier they buy), on log scales with a line at 1; each
        treatment arm a point with its interval (``gid`` ``"ci:ARM"``), and
        the numbers on the right.
    """
    a = as_analysis(analysis)
    colors = arm_colors(a.arm_order)
    table = effects_table(a) if table is None else table
    if "point" in table.columns and table.point.nunique() > 1:
        raise ValueError("forest: the table has several sweep points; pass one point's rows "
                         "(or none, for the analysis' own table)")
    table = table.assign(arm=table.arm.astype(str))
    treat = [x for x in a.arm_order if x in set(table.arm)]
    with style():
        fig = figure(figsize=(7.2, 1.5 + 0.42 * max(len(treat), 1)))
        axes = fig.subplots(1, 2, sharey=True)
        for ax, measure, title in zip(axes, ("hazard_ratio", "odds_ratio"),
                                      ("Hazard ratio of purchase\n(× control, log scale)",
                                       "Odds ratio of buying\n(× control, log scale)"), strict=False):
            sub = table[table.measure == measure].set_index("arm")
            ax.axvline(1.0, color="#777777", lw=0.9, ls="--")
            labels = []
            for j, arm in enumerate(treat):
                if arm not in sub.index or pd.isna(sub.loc[arm, "estimate"]):
                    labels.append("")
                    continue
                r = sub.loc[arm]
                ax.plot([r.ci_lower, r.ci_upper], [j, j], color=colors.get(arm, "#000000"), lw=2.0,
                        solid_capstyle="butt", gid=f"ci:{arm}")
                ax.plot([r.estimate], [j], "o", color=colors.get(arm, "#000000"), ms=6, mec="white", mew=0.8,
                        gid=f"estimate:{arm}")
                labels.append(f"{r.estimate:.2f} ({r.ci_lower:.2f}–{r.ci_upper:.2f})")
            ax.set_xscale("log")
            lo = float(np.nanmin([1.0, *sub.ci_lower.to_numpy(float)]))
            hi = float(np.nanmax([1.0, *sub.ci_upper.to_numpy(float)]))
            pad = (np.log(hi) - np.log(lo)) * 0.12 + 0.02
            ax.set_xlim(lo * np.exp(-pad), hi * np.exp(pad))
            ax.set_xlabel(title)
            ax.grid(axis="y", visible=False)
            ax.set_ylim(len(treat) - 0.5, -0.5)
            sec = ax.secondary_yaxis("right")
            sec.set_yticks(range(len(treat)), labels, fontsize=7.5)
            sec.tick_params(length=0)
            sec.spines["right"].set_visible(False)
            _ratio_ticks(ax, lo * np.exp(-pad), hi * np.exp(pad))
        axes[0].set_yticks(range(len(treat)), treat)
        for tick in axes[0].get_yticklabels():
            tick.set_color(colors.get(tick.get_text(), "#000000"))
        how = "clustered by point and replicate" if a.pooled is not None else "t over replicates"
        fig.suptitle(f"Effects against {a.control} ({level_text(a.conf_level)} intervals, {how})",
                     x=0.01, ha="left", fontweight="bold", fontsize=10)
    return fig


def _ratio_ticks(ax, lo: float, hi: float) -> None:
    """Readable ticks on a log-scaled ratio axis: evenly spaced round values
    over a narrow range (1 to 1.3), powers and halves over a wide one."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    if hi / lo < 4:
        step = nice_step(hi - lo, 4)
        ticks = np.arange(np.ceil(lo / step) * step, hi + step * 1e-9, step)
        ticks = ticks[ticks > 0]
    else:
        dec = np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
        ticks = np.array([m * 10 ** d for d in dec for m in (1, 2, 5)])
        ticks = ticks[(ticks >= lo) & (ticks <= hi)]
    ax.xaxis.set_major_locator(FixedLocator(ticks.tolist()))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: fixed(x, 3)))
