"""What every figure shares: the style, one colour and line style per arm, the analysis it draws."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["KELLY", "LINESTYLES", "NARROW_WIDTH", "OKABE_ITO", "STYLE", "arm_colors", "arm_styles", "as_analysis",
           "is_narrow", "narrow", "style"]

#: The Okabe–Ito palette (Okabe & Ito 2008), distinguishable with every common
#: colour-vision deficiency.  Black first: the control arm.  Yellow last: it is
#: faint on white.
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")

#: For more than eight arms: Kelly's (1965) colours of maximum contrast, black
#: first (the control) and the faint yellows last: 21 colours, each arm its own.
#: Past eight colours no palette stays safe for every colour-vision
#: deficiency; the line styles (and the legend's order) keep arms apart.
KELLY = ("#000000", "#F38400", "#0067A5", "#BE0032", "#008856", "#875692", "#A1CAF1", "#E68FAC", "#848482",
         "#882D17", "#8DB600", "#604E97", "#F6A600", "#B3446C", "#654522", "#E25822", "#2B3D26", "#C2B280",
         "#F99379", "#DCD300", "#F3C300")

#: Line styles per arm (solid for the control): arms whose lines coincide stay
#: visible, and the figures read in grey print.
LINESTYLES = ("-", (0, (5, 1.5)), (0, (3, 1.5, 1, 1.5)), (0, (1, 1.2)), (0, (7, 2, 1, 2, 1, 2)))

#: Matplotlib settings shared by every figure.
STYLE: dict[str, Any] = {
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "lines.linewidth": 1.6,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "axes.formatter.limits": (-9, 12),  # tick labels in fixed-point notation, never "1e6" or "×10³"
    "axes.formatter.useoffset": False,
    "svg.fonttype": "path",
    "svg.hashsalt": "fomolab",  # identical SVG for identical figures
}

#: Shading of tactic windows.
WINDOW = {"color": "#999999", "alpha": 0.16, "lw": 0}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Context in which figures get fomolab's style (used by every figure function)."""
    from fomolab._optional import require

    mpl = require("matplotlib", "figures and the report")
    from cycler import cycler

    rc = dict(STYLE, **{"axes.prop_cycle": cycler(color=list(OKABE_ITO))})
    with mpl.rc_context(rc):
        yield


#: Width (inches) of figures drawn for phones (:func:`narrow`): at 96 px per
#: inch about the 366 px of a 390 px screen's column, so text keeps its size.
NARROW_WIDTH = 3.9

_NARROW: contextvars.ContextVar[bool] = contextvars.ContextVar("fomolab_narrow_figures", default=False)


@contextlib.contextmanager
def narrow() -> Iterator[None]:
    """Context in which figures are drawn for a phone's width.

    Figures are :data:`NARROW_WIDTH` inches wide instead of 7.2 to 9.6, with
    the same font sizes (so their text reads at the size it has on a laptop),
    a row of side-by-side panels becomes a column, and legends take two
    columns.  The report embeds these next to the wide ones and lets the
    browser pick by screen width.

    >>> from fomolab import plot
    >>> with plot.narrow():
    ...     plot.is_narrow()
    True
    >>> plot.is_narrow()
    False
    """
    token = _NARROW.set(True)
    try:
        yield
    finally:
        _NARROW.reset(token)


def is_narrow() -> bool:
    """Whether figures are being drawn for a phone (inside :func:`narrow`)."""
    return _NARROW.get()


def figure(**kw: Any):
    """A matplotlib Figure not registered with pyplot (constrained layout).

    Titles and axis labels longer than their axes are broken into lines
    when the figure is first drawn (:func:`wrap_labels`).  Inside
    :func:`narrow` the width is :data:`NARROW_WIDTH`, and a row of panels
    (``fig.subplots(1, n)``) is laid out as a column.
    """
    from fomolab._optional import require

    require("matplotlib", "figures and the report")
    from matplotlib.figure import Figure

    cls = _figure_class(Figure)
    if not is_narrow():
        return cls(layout="constrained", **kw)
    _w, h = kw.pop("figsize", (7.2, 4.2))
    fig = cls(layout="constrained", figsize=(NARROW_WIDTH, max(2.8, 0.85 * h)), **kw)
    fig._fomolab_column = True
    return fig


@functools.cache
def _figure_class(base: Any) -> Any:
    """The Figure class of fomolab's figures: labels wrapped to their axes; in a narrow figure,
    ``subplots(1, n)`` stacks the ``n`` panels in a column (the axes array keeps its shape)."""

    class FomolabFigure(base):
        _fomolab_column = False

        def subplots(self, nrows: int = 1, ncols: int = 1, *, squeeze: bool = True, **kw: Any):
            if not self._fomolab_column or nrows != 1 or ncols < 2:
                return super().subplots(nrows, ncols, squeeze=squeeze, **kw)
            if "width_ratios" in kw:
                kw["height_ratios"] = kw.pop("width_ratios")
            w, h = self.get_size_inches()
            self.set_size_inches(w, h * (0.25 + 0.75 * ncols))
            axes = super().subplots(ncols, 1, squeeze=False, **kw).reshape(1, ncols)
            return axes.ravel() if squeeze else axes

        def draw(self, renderer):
            if not getattr(self, "_labels_wrapped", False):  # once: lay out, wrap to the axes, lay out again
                engine = self.get_layout_engine()
                if engine is not None:
                    engine.execute(self)
                wrap_labels(self)
                self._labels_wrapped = True
            return super().draw(renderer)

    return FomolabFigure


def _wrap(text: str, size_pt: float, length_pt: float) -> str:
    """``text`` broken into lines of at most ``length_pt`` (a character is taken as 0.6 of the font size)."""
    import textwrap

    width = max(12, int(length_pt / (0.6 * size_pt)))
    return "\n".join(textwrap.fill(line, width, break_on_hyphens=False) for line in text.split("\n"))


def wrap_labels(fig) -> None:
    """Break titles and axis labels that are longer than their axes (or the figure) into lines."""
    w, h = fig.get_size_inches() * 72
    if fig._suptitle is not None:
        t = fig._suptitle
        t.set_text(_wrap(t.get_text(), t.get_fontsize(), 0.95 * w))
    for ax in fig.axes:
        box = ax.get_position()
        titles = [(t, 0.92 * box.width * w) for t in (ax.title, ax._left_title, ax._right_title)]
        for t, length in (*titles, (ax.xaxis.label, box.width * w), (ax.yaxis.label, 1.1 * box.height * h)):
            if t.get_text():
                t.set_text(_wrap(t.get_text(), t.get_fontsize(), max(length, 60.0)))


def arm_colors(arms: Sequence[str]) -> dict[str, str]:
    """One colour per arm, in order (the first, the control, in black).

    Up to eight arms the Okabe–Ito palette; more arms take Kelly's colours of
    maximum contrast (:data:`KELLY`), so that no two of up to 21 arms share a
    colour.  Beyond 21 colours repeat, but no two arms share both colour and
    line style (:func:`arm_styles`) up to 105 arms.

    >>> arm_colors(["control", "sale"])
    {'control': '#000000', 'sale': '#E69F00'}
    >>> len(set(arm_colors([f"arm{i}" for i in range(10)]).values()))
    10
    """
    palette = OKABE_ITO if len(arms) <= len(OKABE_ITO) else KELLY
    return {str(a): palette[i % len(palette)] for i, a in enumerate(arms)}


def arm_styles(arms: Sequence[str]) -> dict[str, Any]:
    """One line style per arm, in order (the control solid).

    Styles cycle once per round of colours, so an arm that shares another's
    colour (more than 21 arms) has another line style.
    """
    n = len(OKABE_ITO) if len(arms) <= len(OKABE_ITO) else len(KELLY)
    if len(arms) <= n:
        return {str(a): LINESTYLES[i % len(LINESTYLES)] for i, a in enumerate(arms)}
    return {str(a): LINESTYLES[(i % len(LINESTYLES) + i // n) % len(LINESTYLES)] for i, a in enumerate(arms)}


def as_analysis(obj: Any):
    """The :class:`~fomolab.analysis.Analysis` a figure draws.

    A results folder (path or :class:`~fomolab.Results`) is still accepted,
    with a ``FutureWarning``: it is analysed first, once per figure.  Pass
    ``fomolab.analysis.analyze(results)`` to draw every figure from one
    analysis.
    """
    from fomolab.analysis import Analysis

    if isinstance(obj, Analysis):
        return obj
    from fomolab.errors import ResultsError
    from fomolab.results import Results

    if not isinstance(obj, (Results, str, Path)):
        raise ResultsError(f"expected an analysis (fomolab.analysis.analyze(results)): got {type(obj).__name__}")
    warnings.warn("figures draw an analysis: pass fomolab.analysis.analyze(results) instead of a results folder "
                  "(a folder is analysed anew for every figure)", FutureWarning, stacklevel=3)
    from fomolab.analysis import analyze

    return analyze(obj)


def top_legend(fig, ax) -> None:
    """One legend of the arms for the figure, in a row above the panels.

    Figures with such a legend have no overall title: the caption (in the
    report, or in a paper) says what is shown.
    """
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper left", ncols=min(len(labels), 2 if is_narrow() else 4),
               handlelength=2.6)


def errors(mean: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``yerr`` for ``errorbar`` from interval bounds (no bar where a bound is missing)."""
    mean, lo, hi = (np.asarray(v, float) for v in (mean, lo, hi))
    return np.nan_to_num(np.vstack([mean - lo, hi - mean]))


def level_text(conf_level: float) -> str:
    """'95 %' for 0.95."""
    from fomolab._format import level

    return level(conf_level)
