"""What every result object of :mod:`fomolab.stats` can do.

A result is a frozen dataclass whose ``summary`` is a DataFrame with fixed
columns (listed in the class's ``COLUMNS``), plus the fields that say how it
was computed.  :class:`StatsResult` gives them all the same three ways to be
read: ``repr(result)`` (one informative line), ``result.print_summary()`` (the
line and the table, as text) and ``result._repr_html_()`` (the same in a
notebook).
"""

from __future__ import annotations

import html
from typing import ClassVar

import pandas as pd

__all__ = ["StatsResult"]


class StatsResult:
    """Mixin of the result dataclasses: ``print_summary()`` and ``_repr_html_()``.

    Subclasses define ``summary`` (a DataFrame with the columns ``COLUMNS``)
    and ``__repr__``; they may add further tables to print after the summary
    by overriding :meth:`_extra`.
    """

    #: The columns of ``summary``, in order.
    COLUMNS: ClassVar[tuple[str, ...]] = ()
    summary: pd.DataFrame

    def _extra(self) -> list[tuple[str, pd.DataFrame | str]]:
        """``(title, table or text)`` pairs shown after the summary."""
        return []

    def _show_index(self) -> bool:
        return not isinstance(self.summary.index, pd.RangeIndex)

    def print_summary(self, decimals: int = 4) -> None:
        """Print the one-line description, the summary table and any further tables.

        Parameters
        ----------
        decimals : int, default 4
            Significant digits of floating-point numbers.
        """
        fmt = f"{{:.{int(decimals)}g}}".format
        with pd.option_context("display.float_format", fmt, "display.width", 200,
                               "display.max_columns", 50):
            print(repr(self))
            print(self.summary.to_string(index=self._show_index()))
            for title, part in self._extra():
                print()
                if title:
                    print(title)
                print(part if isinstance(part, str) else part.to_string())

    def _repr_html_(self) -> str:
        """The description and the tables as HTML, for Jupyter."""
        parts = [f"<p><strong>{html.escape(repr(self))}</strong></p>",
                 self.summary.to_html(index=self._show_index(), float_format="{:.4g}".format)]
        for title, part in self._extra():
            if title:
                parts.append(f"<p>{html.escape(title)}</p>")
            parts.append(f"<pre>{html.escape(part)}</pre>" if isinstance(part, str)
                         else part.to_html(float_format="{:.4g}".format))
        return "\n".join(parts)
