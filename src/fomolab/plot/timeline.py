"""Figure: what happened over the stream — purchase rate, viewers and stock, tactic windows shaded."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fomolab.plot._style import WINDOW, arm_colors, arm_styles, as_analysis, figure, style, top_legend

__all__ = ["purchase_rate", "window_groups"]


def window_groups(wins: pd.DataFrame) -> list[tuple[float, float, str]]:
    """The tactic windows as shaded spans: ``(start_s, end_s, label)``, one per run of overlapping windows.

    Windows with the same times share a span, labelled with their tactics
    ("lightning sale + countdown timer"); windows of the same tactics that
    overlap one another (a marketplace's sales staggered from stream to
    stream) are merged into one span labelled with their number
    ("lightning sale (100 windows)"), so a hundred labels do not print on
    top of each other.

    >>> w = pd.DataFrame({"label": ["sale"] * 3 + ["cue"], "start_s": [0.0, 30.0, 60.0, 0.0],
    ...                   "end_s": [300.0, 330.0, 360.0, 3600.0]})
    >>> window_groups(w)
    [(0.0, 360.0, 'sale (3 windows)'), (0.0, 3600.0, 'cue')]
    """
    if wins is None or wins.empty:
        return []
    w = wins.assign(key=list(zip(wins.start_s.round(0), wins.end_s.round(0), strict=False)))
    spans: dict[str, list[list[float]]] = {}
    for (start, end), grp in w.groupby("key", sort=True):
        names = " + ".join(dict.fromkeys(grp.label))
        runs = spans.setdefault(names, [])
        if runs and start <= runs[-1][1]:  # overlaps the run of windows before it
            runs[-1][1] = max(runs[-1][1], float(end))
            runs[-1][2] += 1
        else:
            runs.append([float(start), float(end), 1])
    out = [(a, b, names if n == 1 else f"{names} ({int(n)} windows)")
           for names, runs in spans.items() for a, b, n in runs]
    return sorted(out, key=lambda g: (g[0], g[1]))


#: Size of a window's label (points); labels that would touch go up a row.
LABEL_SIZE = 7.5


def shade_windows(axes, wins: pd.DataFrame, scale: float, label_ax=None) -> None:
    """Shade each tactic window of the ``windows`` table on every axis, labelled above ``label_ax``.

    Spans come from :func:`window_groups`.  Labels are centred on their span
    but kept inside the axis, and a label that would touch one already placed
    moves up a row (widths are estimated from the text before layout; the
    figure tests measure the drawn text).  Set the axis' x limits first.
    """
    groups = window_groups(wins)
    if not groups:
        return
    for start, end, _ in groups:
        for ax in axes:
            ax.axvspan(start / scale, end / scale, **WINDOW)
    if label_ax is None:
        return
    x0, x1 = label_ax.get_xlim()
    width_pt = label_ax.figure.get_figwidth() * 72 * 0.8  # the axis' length, a little under the figure's
    per_pt = (x1 - x0) / width_pt
    rows: list[list[tuple[float, float]]] = []
    for start, end, names in groups:
        half = 0.5 * 0.62 * LABEL_SIZE * len(names) * per_pt + 4 * per_pt  # a margin of 4 pt each side
        mid = min(max((start + end) / 2 / scale, x0 + half), x1 - half)
        lo, hi = mid - half, mid + half
        row = next((i for i, taken in enumerate(rows) if all(hi <= a or lo >= b for a, b in taken)), len(rows))
        if row == len(rows):
            rows.append([])
        rows[row].append((lo, hi))
        label_ax.annotate(names, xy=(mid, 1.0), xycoords=("data", "axes fraction"),
                          xytext=(0, 2 + row * (LABEL_SIZE + 3)), textcoords="offset points", ha="center",
                          va="bottom", fontsize=LABEL_SIZE, color="#555555", annotation_clip=False,
                          gid="window-label")


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
        axes[-1].set_xlim(0, T / 60)
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
