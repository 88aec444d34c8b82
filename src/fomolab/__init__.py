"""fomolab: a laboratory for FOMO tactics in live-shopping streams.

The public API is imported lazily, so ``fomolab --help`` starts fast:

>>> import fomolab
>>> sorted(fomolab.__all__)[:3]
['Experiment', 'FomolabError', 'Results']
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
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name == "stats":
        return import_module("fomolab.stats")
    raise AttributeError(f"module 'fomolab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
