"""Figures of an analysis: what the tactics did, ready for a paper.

Each function takes an :class:`~fomolab.analysis.Analysis` (what
:func:`fomolab.analysis.analyze` returns) and returns a
:class:`matplotlib.figure.Figure`.  Figures draw the analysis' tables and
compute nothing of their own: every point, line and interval is a row of a
table in ``analysis/`` (:mod:`fomolab.figure_data`, ``docs/schema.md``), at
the analysis' ``conf_level``.  Nothing is drawn on a global pyplot figure, so
figures do not pile up in memory and work without a display (Agg).  All
figures share one style: the Okabe–Ito colour-blind-safe palette with one
fixed colour and line style per arm (the control in black), units in every
axis label, light grids.

==========================  ====================  ==========================================
function                    module                draws
==========================  ====================  ==========================================
:func:`purchase_rate`       ``plot.timeline``     ``timeline``, ``windows``
:func:`time_to_purchase`    ``plot.survival``     ``survival``
:func:`forest`              ``plot.effects``      ``arms`` (one point) or ``pooled`` (sweeps)
:func:`deadline`            ``plot.deadline``     ``deadline_curve``
:func:`impulsiveness`       ``plot.segments``     ``impulsiveness``
:func:`harm`                ``plot.segments``     ``impact``
:func:`lineup`              ``plot.lineup``       ``lineup`` (lineups of 20 products or more)
:func:`sweep_metrics`       ``plot.sweep``        ``marginals``
:func:`sweep_heatmap`       ``plot.sweep``        ``cells``
:func:`sobol_indices`       ``plot.sweep``        ``sobol``
==========================  ====================  ==========================================

Averages are over runs (replicates, and sweep points when there are several):
a rate "per run" is what one simulated stream shows on average.

>>> from fomolab import plot
>>> plot.arm_colors(["control", "sale"])
{'control': '#000000', 'sale': '#E69F00'}
"""

from __future__ import annotations

from fomolab.plot._style import (
    KELLY,
    LINESTYLES,
    NARROW_WIDTH,
    OKABE_ITO,
    STYLE,
    arm_colors,
    arm_styles,
    is_narrow,
    narrow,
    style,
)
from fomolab.plot.deadline import deadline
from fomolab.plot.effects import effects_table, forest
from fomolab.plot.incidence import purchase_incidence, repeat_purchases
from fomolab.plot.lineup import lineup
from fomolab.plot.segments import harm, impulsiveness
from fomolab.plot.survival import time_to_purchase
from fomolab.plot.sweep import METRICS, param_label, sobol_indices, sweep_heatmap, sweep_metrics
from fomolab.plot.timeline import purchase_rate

__all__ = [
    "KELLY",
    "LINESTYLES",
    "METRICS",
    "NARROW_WIDTH",
    "OKABE_ITO",
    "STYLE",
    "arm_colors",
    "arm_styles",
    "deadline",
    "effects_table",
    "forest",
    "harm",
    "impulsiveness",
    "is_narrow",
    "lineup",
    "narrow",
    "param_label",
    "purchase_incidence",
    "purchase_rate",
    "repeat_purchases",
    "sobol_indices",
    "style",
    "sweep_heatmap",
    "sweep_metrics",
    "time_to_purchase",
]
