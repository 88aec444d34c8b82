"""What every result object of :mod:`fomolab.stats` can do.

A result is a frozen dataclass whose ``summary`` is a DataFrame with fixed
columns (listed in the class's ``COLUMNS``), plus the fields that say how it
was computed.  :class:`StatsResult` gives them all the same three ways to be
read: ``repr(result)`` (one informative line), ``result.print_summary()`` (the
line and the table, as text) and ``result._repr_html_()`` (the same in a
notebook).
"""

from __future__ import annotations

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

        Examples
        --------
        >>> import pandas as pd
        >>> from fomolab.stats import risk_difference
        >>> df = pd.DataFrame({"arm": ["c"] * 4 + ["t"] * 4, "bought": [1, 0, 0, 0, 1, 1, 0, 0]})
        >>> risk_difference(df, "bought", by="arm", control="c").print_summary(decimals=3)
        <RiskDifferenceResult: 1 group(s) vs control 'c'>
        group  risk  control_risk  risk_difference    se  ci_lower  ci_upper    p  n  control_n method
            t   0.5          0.25             0.25 0.331    -0.398     0.898 0.45  4          4   wald
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
        """The description and the tables as HTML, for Jupyter.

        Examples
        --------
        >>> import pandas as pd
        >>> from fomolab.stats import kaplan_meier
        >>> km = kaplan_meier(pd.DataFrame({"t": [1, 2, 3], "e": [1, 0, 1]}), "t", "e")
        >>> km._repr_html_().splitlines()[0].removeprefix('<div class="fomolab">')
        '<p><strong>&lt;KaplanMeierResult: 1 group(s), 3 subjects, 2 events, conf_level=0.95&gt;</strong></p>'
        """
        from fomolab._terminal import html_view

        return html_view(repr(self), [("", self.summary), *self._extra()])
