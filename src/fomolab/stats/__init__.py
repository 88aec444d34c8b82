"""Statistics of time to purchase and conversion, on any DataFrame.

Every function takes a DataFrame and the names of the columns to use, so the
same tools read simulated results and field data.  Numbers agree with R's
``survival`` and ``sandwich`` packages to printed precision; bad input raises
:class:`fomolab.errors.DataError` naming the column, the rule and a value.
"""

from __future__ import annotations

from fomolab.stats.conversion import (
    ConversionResult,
    RiskDifferenceResult,
    conversion,
    risk_difference,
)
from fomolab.stats.cox import CoxResult, cox
from fomolab.stats.deadline import deadline_effect
from fomolab.stats.kaplan_meier import KaplanMeierResult, kaplan_meier
from fomolab.stats.logrank import LogrankResult, logrank
from fomolab.stats.power import PowerPlan, plan_replicates

__all__ = [
    "ConversionResult",
    "CoxResult",
    "KaplanMeierResult",
    "LogrankResult",
    "PowerPlan",
    "RiskDifferenceResult",
    "conversion",
    "cox",
    "deadline_effect",
    "kaplan_meier",
    "logrank",
    "plan_replicates",
    "risk_difference",
]
