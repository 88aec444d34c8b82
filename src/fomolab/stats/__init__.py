"""Statistics of time to purchase and conversion, on any DataFrame.

Every function takes a DataFrame and the names of the columns to use, so the
same tools read simulated results and field data.  Numbers agree with R's
``survival`` and ``sandwich`` packages to printed precision; bad input raises
:class:`~fomolab.errors.DataError` naming the column, the rule and a value.

One vocabulary
--------------
The same argument means the same thing in every function:

====================  ===============================================================================
``data``              the DataFrame, one row per subject (viewer visit) or interval
``duration``          column of follow-up times in seconds (to the event or censoring)
``event``             column of 0/1 (or boolean) indicators: did the viewer buy?
``by``                column whose values define the groups compared (e.g. ``"arm"``)
``control``           the value of ``by`` (or the arm) used as the reference
``covariates``        column(s) of a regression's explanatory variables
``start``             column of interval starts, for ``(start, duration]`` rows
``strata``            column(s) whose levels get their own baseline
``cluster``           column of cluster ids for robust (sandwich) standard errors
``replicate``         column of replicate ids: the independent units of :func:`replicate_effects`
``conf_level``        level of every interval (default 0.95); a planned test is at ``1 - conf_level``
``n_boot``, ``seed``  bootstrap resamples and their seed
====================  ===============================================================================

Older names (``outcome``, ``group``, ``level``, ``alpha``) still work until
fomolab 0.3 and raise a :class:`DeprecationWarning` saying which name to use.

Result objects
--------------
A function on a DataFrame returns a frozen result object: its ``summary`` is
a DataFrame whose columns are fixed (the class's ``COLUMNS``), its other
fields say how it was computed (``conf_level``, ``cluster``, ...), and it
prints itself: an informative ``repr``, ``print_summary()``, and an HTML table
in a notebook.  :class:`KaplanMeierResult`, :class:`LogrankResult`,
:class:`CoxResult`, :class:`ConversionResult`, :class:`RiskDifferenceResult`,
:class:`DeadlineResult`, :class:`PowerPlan`, :class:`ZphResult`
(:func:`cox_zph`), :class:`RMSTResult` and :class:`RMSTDifferenceResult`
(:func:`rmst`, :func:`rmst_difference`), :class:`CumulativeIncidenceResult`
and :class:`StateTimeResult` (:func:`cumulative_incidence`,
:func:`restricted_time_in_state`: competing risks, e.g. buying versus
leaving), :class:`MeanCumulativeResult` (:func:`nelson_aalen`,
:func:`mean_cumulative_function`: repeat purchases), :class:`RateModelResult`
(:func:`rate_model`: Andersen–Gill rates of repeat purchases), :class:`ReplicateEffectsResult`.
:func:`fine_gray` returns a :class:`CoxResult` of subdistribution hazard
ratios, fitted on the weighted rows of :func:`fine_gray_data`.

With few replicates, :func:`replicate_effects` estimates each effect within
each replicate and forms a t interval with ``G - 1`` degrees of freedom
across the ``G`` replicates (the paired analysis of arms that share viewers):
its intervals keep their coverage with 3 replicates, where intervals
clustered by replicate do not.

Wrappers for results folders take a :class:`fomolab.Results` (or its path)
and return the analysis's tables as DataFrames with the columns of
``docs/schema.md``: :func:`episodes` (counting-process data for a
time-varying Cox model), :func:`compare_arms` (every arm against the
control, with Holm and BH adjusted p values), :func:`deadline_shares`, and
for sweeps :func:`sweep_points`, :func:`response_surface` and
:func:`sobol_indices`.

Warnings have their own classes: :class:`StatisticalWarning` (a number was
computed but is fragile) and :class:`ConvergenceWarning` (a fit did not
converge).

>>> import pandas as pd
>>> from fomolab import stats
>>> df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "bought": [1, 1, 0, 1, 1, 0],
...                    "arm": ["a", "a", "a", "b", "b", "b"]})
>>> stats.kaplan_meier(df, duration="t", event="bought", by="arm").summary.columns.tolist()
['group', 'n', 'events', 'median', 'median_ci_lower', 'median_ci_upper']
"""

from __future__ import annotations

from fomolab.errors import ConvergenceWarning, DataError, StatisticalWarning
from fomolab.stats.compare import compare_arms, deadline_shares, p_adjust
from fomolab.stats.competing import (
    CumulativeIncidenceResult,
    StateTimeResult,
    cumulative_incidence,
    restricted_time_in_state,
)
from fomolab.stats.concordance import ConcordanceResult, concordance
from fomolab.stats.conversion import (
    ConversionResult,
    RiskDifferenceResult,
    conversion,
    risk_difference,
)
from fomolab.stats.cox import CoxResult, cox
from fomolab.stats.deadline import DeadlineResult, deadline_effect
from fomolab.stats.episodes import episodes
from fomolab.stats.finegray import fine_gray, fine_gray_data
from fomolab.stats.kaplan_meier import KaplanMeierResult, kaplan_meier
from fomolab.stats.logrank import LogrankResult, logrank
from fomolab.stats.power import PowerPlan, plan_replicates
from fomolab.stats.pwe import PiecewiseExponentialResult, person_time, piecewise_exponential
from fomolab.stats.rates import RateModelResult, rate_model
from fomolab.stats.recurrent import MeanCumulativeResult, mean_cumulative_function, nelson_aalen
from fomolab.stats.replicates import ReplicateEffectsResult, replicate_effects, replicate_estimates
from fomolab.stats.rmst import RMSTDifferenceResult, RMSTResult, rmst, rmst_difference
from fomolab.stats.sweep import response_surface, sobol_indices, sweep_points
from fomolab.stats.zph import ZphResult, cox_zph

__all__ = [
    "ConcordanceResult",
    "ConvergenceWarning",
    "ConversionResult",
    "CoxResult",
    "CumulativeIncidenceResult",
    "DataError",
    "DeadlineResult",
    "KaplanMeierResult",
    "LogrankResult",
    "MeanCumulativeResult",
    "PiecewiseExponentialResult",
    "PowerPlan",
    "RMSTDifferenceResult",
    "RMSTResult",
    "RateModelResult",
    "ReplicateEffectsResult",
    "RiskDifferenceResult",
    "StateTimeResult",
    "StatisticalWarning",
    "ZphResult",
    "compare_arms",
    "concordance",
    "conversion",
    "cox",
    "cox_zph",
    "cumulative_incidence",
    "deadline_effect",
    "deadline_shares",
    "episodes",
    "fine_gray",
    "fine_gray_data",
    "kaplan_meier",
    "logrank",
    "mean_cumulative_function",
    "nelson_aalen",
    "p_adjust",
    "person_time",
    "piecewise_exponential",
    "plan_replicates",
    "rate_model",
    "replicate_effects",
    "replicate_estimates",
    "response_surface",
    "restricted_time_in_state",
    "risk_difference",
    "rmst",
    "rmst_difference",
    "sobol_indices",
    "sweep_points",
]
