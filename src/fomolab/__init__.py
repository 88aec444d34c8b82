"""fomolab: a laboratory for FOMO tactics in live-shopping streams.

The public API is imported lazily, so ``import fomolab`` (and ``fomolab
--help``) stays light: a name or a submodule (``fomolab.stats``,
``fomolab.plot``, ``fomolab.report``, ``fomolab.attribution``,
``fomolab.analysis``) is imported on first use.

>>> import fomolab
>>> sorted(fomolab.__all__)[:4]
['ConvergenceWarning', 'DataError', 'Experiment', 'FomolabError']
>>> fomolab.stats.kaplan_meier.__name__
'kaplan_meier'
"""

from __future__ import annotations

from importlib import import_module
from importlib import metadata as _metadata
from typing import Any

try:  # one version source: the package metadata, from pyproject.toml
    __version__ = _metadata.version("fomolab")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

_EXPORTS = {
    "Experiment": "fomolab.spec",
    "load_experiment": "fomolab.spec",
    "run": "fomolab.runner",
    "Results": "fomolab.results",
    "analyze": "fomolab.analysis",
    "FomolabError": "fomolab.errors",
    "SpecError": "fomolab.errors",
    "ResultsError": "fomolab.errors",
    "DataError": "fomolab.errors",
    "StatisticalWarning": "fomolab.errors",
    "ConvergenceWarning": "fomolab.errors",
}

#: Submodules reachable as attributes of the package without importing them first.
_SUBMODULES = ("analysis", "attribution", "plot", "report", "stats")

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "Experiment",
    "FomolabError",
    "Results",
    "ResultsError",
    "SpecError",
    "StatisticalWarning",
    "__version__",
    "analyze",
    "load_experiment",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return import_module(f"fomolab.{name}")
    raise AttributeError(f"module 'fomolab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})
