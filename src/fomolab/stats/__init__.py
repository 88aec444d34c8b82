"""Statistics of time to purchase and conversion, on any DataFrame.

Every function takes a DataFrame and the names of the columns to use, so the
same tools read simulated results and field data.  Numbers agree with R's
``survival`` and ``sandwich`` packages to printed precision; bad input raises
:class:`fomolab.errors.DataError` naming the column, the rule and a value.

Wrappers for results folders take a :class:`fomolab.Results` (or its path):
:func:`episodes` (counting-process data for a time-varying Cox model),
:func:`compare_arms` (every arm against the control, with Holm and BH
adjusted p values), :func:`deadline_shares`, and for sweeps
:func:`sweep_points`, :func:`response_surface` and :func:`sobol_indices`.
"""

from __future__ import annotations

from fomolab.stats.compare import compare_arms, deadline_shares, p_adjust
from fomolab.stats.conversion import (
    ConversionResult,
    RiskDifferenceResult,
    conversion,
    risk_difference,
)
from fomolab.stats.cox import CoxResult, cox
from fomolab.stats.deadline import deadline_effect
from fomolab.stats.episodes import episodes
from fomolab.stats.kaplan_meier import KaplanMeierResult, kaplan_meier
from fomolab.stats.logrank import LogrankResult, logrank
from fomolab.stats.power import PowerPlan, plan_replicates
from fomolab.stats.sweep import response_surface, sobol_indices, sweep_points

__all__ = [
    "ConversionResult",
    "CoxResult",
    "KaplanMeierResult",
    "LogrankResult",
    "PowerPlan",
    "RiskDifferenceResult",
    "compare_arms",
    "conversion",
    "cox",
    "deadline_effect",
    "deadline_shares",
    "episodes",
    "kaplan_meier",
    "logrank",
    "p_adjust",
    "plan_replicates",
    "response_surface",
    "risk_difference",
    "sobol_indices",
    "sweep_points",
]
