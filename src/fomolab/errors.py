"""Errors and warnings of fomolab, all in one place.

Every error derives from :class:`FomolabError` and also from the nearest
built-in exception, so an ordinary ``except ValueError`` still catches a bad
spec.  Each message names the thing that is wrong, the rule it breaks, the
value it had, and where possible a fix.
"""

from __future__ import annotations

__all__ = [
    "FomolabError",
    "SpecError",
    "ResultsError",
    "DataError",
    "MissingExtraError",
    "StatisticalWarning",
    "ConvergenceWarning",
]


class FomolabError(Exception):
    """Base class of every error fomolab raises on purpose."""


class SpecError(FomolabError, ValueError):
    """An experiment spec or population profile that cannot be used.

    Parameters
    ----------
    file : str
        The spec or profile file (or ``"<spec>"`` for an in-memory spec).
    path : str
        The dotted key path of the offending entry (``""`` for the file itself).
    value : object
        The offending value.
    rule : str
        What the value should have been, and a fix where one is known.
    """

    def __init__(self, file: str, path: str, value: object, rule: str) -> None:
        self.file = str(file)
        self.path = path
        self.value = value
        self.rule = rule
        where = f"{self.file}: {path}" if path else self.file
        super().__init__(f"{where}: {rule} (got {value!r})")


class ResultsError(FomolabError, ValueError):
    """A results folder that cannot be read, extended or written to."""


class DataError(FomolabError, ValueError):
    """A DataFrame handed to :mod:`fomolab.stats` that does not fit the request."""


class MissingExtraError(FomolabError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it.

    >>> print(MissingExtraError("matplotlib", "report", "figures"))
    matplotlib is not installed (needed for figures): pip install 'fomolab[report]' (or 'fomolab[all]')
    """

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(f"{package} is not installed (needed for {purpose}): "
                         f"pip install 'fomolab[{extra}]' (or 'fomolab[all]')", name=package)


class StatisticalWarning(UserWarning):
    """A statistic was computed, but a property of the data makes it fragile."""


class ConvergenceWarning(StatisticalWarning):
    """A model fit did not converge, or converged to the edge of its space."""
