"""Statistics of time to purchase and conversion, on any DataFrame.

Every function takes a DataFrame and the names of the columns to use, so the
same tools read simulated results and field data.  Numbers agree with R's
``survival`` and ``sandwich`` packages to printed precision; bad input raises
:class:`fomolab.errors.DataError` naming the column, the rule and a value.
"""

from __future__ import annotations

from fomolab.stats.cox import CoxResult, cox
from fomolab.stats.kaplan_meier import KaplanMeierResult, kaplan_meier
from fomolab.stats.logrank import LogrankResult, logrank

__all__ = [
    "CoxResult",
    "KaplanMeierResult",
    "LogrankResult",
    "cox",
    "kaplan_meier",
    "logrank",
]
