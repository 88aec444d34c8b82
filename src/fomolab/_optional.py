"""Optional dependencies: import one, or say which extra installs it.

fomolab's core (the simulator and :mod:`fomolab.stats`) needs numpy, scipy,
pandas, pyarrow, pydantic, rich, statsmodels and simpy.  The rest comes with
extras: ``fomolab[report]`` (matplotlib, jinja2) for figures and the HTML
report, ``fomolab[dask]`` for Dask clusters, ``fomolab[sobol]`` (SALib) for
Saltelli designs and Sobol indices, ``fomolab[all]`` for everything.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from fomolab.errors import MissingExtraError

__all__ = ["EXTRAS", "require"]

#: The extra that installs each optional top-level module.
EXTRAS = {"matplotlib": "report", "cycler": "report", "jinja2": "report", "distributed": "dask", "dask": "dask",
          "SALib": "sobol"}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`~fomolab.errors.MissingExtraError` naming the extra to install.

    Parameters
    ----------
    module : str
        The module's import name (a key of :data:`EXTRAS`, or a submodule of one).
    purpose : str
        What needs it, for the message: "needed for figures".

    >>> require("json", "a doctest").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingExtraError(top, EXTRAS.get(top, "all"), purpose) from exc
