"""Calibration: fit the model to what a platform observes, check the fit, carry it to counterfactuals.

==================  ==============================================================
``data``            the observed visits and purchases (CSV or Parquet), checked
``likelihood``      the visit-level likelihood (latent traits integrated out)
``estimate``        maximum likelihood, observed-information standard errors
``checks``          parametric-bootstrap predictive checks with the engine
``counterfactual``  ``fitted.toml``: the spec at the estimates, with draws
``synthetic``       field data drawn from the engine (recovery, examples)
``fitting``         the whole step, as ``fomolab fit`` runs it
==================  ==============================================================
"""

from __future__ import annotations

from fomolab.fit.data import FieldData, field_data_from_tables, read_field_data
from fomolab.fit.estimate import FitResult, Parameter, fit_mle, parse_parameter
from fomolab.fit.likelihood import VisitLikelihood

__all__ = ["FieldData", "read_field_data", "field_data_from_tables", "Parameter", "parse_parameter", "fit_mle",
           "FitResult", "VisitLikelihood", "fit"]


def fit(*args, **kwargs):
    """Fit a spec to field data and write the outputs (see :func:`fomolab.fit.fitting.fit`)."""
    from fomolab.fit.fitting import fit as _fit

    return _fit(*args, **kwargs)
