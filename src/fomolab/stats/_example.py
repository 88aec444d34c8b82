"""A small results folder for the docstring examples of the results-folder wrappers.

``example_results()`` runs a tiny two-arm experiment (a lightning sale with a
countdown timer against no tactic; 4 replicates of a 10-minute stream) once per
process into a temporary folder and returns its :class:`~fomolab.Results`, so
that the examples of :mod:`fomolab.stats.episodes`, :mod:`fomolab.stats.compare`
and :mod:`fomolab.analysis` run as doctests in about a second.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import tomllib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from fomolab.results import Results

__all__ = ["EXAMPLE_SPEC", "EXAMPLE_SWEEP_SPEC", "example_frame", "example_results", "example_sweep_results"]



def _load(name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files("fomolab.stats").joinpath(name).read_text("utf-8"))


#: The example experiment's spec tables (``fomolab/stats/example.toml``).
EXAMPLE_SPEC: dict[str, Any] = _load("example.toml")

_CACHE: dict[str, Results] = {}
_FRAMES: dict[str, pd.DataFrame] = {}


def example_results() -> Results:
    """The tiny example experiment's results (run once per process, then cached).

    >>> example_results().manifest["arms"]
    ['control', 'sale_timer']
    """
    if "res" not in _CACHE:
        from fomolab.runner import run
        from fomolab.spec import parse_spec

        tmp = Path(tempfile.mkdtemp(prefix="fomolab-example-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        exp = parse_spec(EXAMPLE_SPEC, source="<example>")
        _CACHE["res"] = run(exp, tmp / "example", workers=1)
    return _CACHE["res"]


#: A Saltelli sweep over the sale's gain (which matters) and a linear timer's
#: ``kappa_per_s`` (which a linear timer ignores: no effect), for the sweep examples
#: (``fomolab/stats/example_sweep.toml`` on the example's stream, population and lineup).
EXAMPLE_SWEEP_SPEC: dict[str, Any] = {
    **{k: v for k, v in EXAMPLE_SPEC.items() if k not in ("experiment", "arms")},
    **_load("example_sweep.toml"),
}


def example_sweep_results() -> Results:
    """The example Saltelli sweep's results (run once per process, then cached).

    >>> example_sweep_results().manifest["sweep_design"]
    'saltelli'
    """
    if "sweep" not in _CACHE:
        from fomolab.runner import run
        from fomolab.spec import parse_spec

        tmp = Path(tempfile.mkdtemp(prefix="fomolab-example-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        exp = parse_spec(EXAMPLE_SWEEP_SPEC, source="<example>")
        _CACHE["sweep"] = run(exp, tmp / "example_sweep", workers=1)
    return _CACHE["sweep"]


def example_frame() -> pd.DataFrame:
    """One row per viewer of the example experiment's first 3 replicates, simulated in memory.

    Columns ``arm, replicate, shopper_id, time_s`` (from arrival to the first
    purchase, or to departure), ``bought`` (1 if the viewer bought) and
    ``left`` (1 if the viewer left before buying and before the stream
    ended).  The arms share viewers (common random numbers).

    >>> df = example_frame()
    >>> sorted(df.replicate.unique().tolist()), sorted(df.arm.unique().tolist())
    ([0, 1, 2], ['control', 'sale_timer'])
    """
    if "frame" not in _FRAMES:
        import numpy as np
        import pandas as pd

        from fomolab.design import expand
        from fomolab.engine import simulate
        from fomolab.spec import parse_spec

        exp = parse_spec(EXAMPLE_SPEC, source="<example>")
        T = exp.arms["control"].scenario.stream.duration_s
        parts = []
        for run in expand(exp, range(3)):
            sh = simulate(run).shoppers
            fp = sh.first_purchase_s.to_numpy(float)
            dep = sh.departure_s.to_numpy(float)
            bought = ~np.isnan(fp)
            parts.append(pd.DataFrame({
                "arm": run.arm, "replicate": run.replicate, "shopper_id": sh.shopper_id.to_numpy(),
                "time_s": np.where(bought, fp, dep) - sh.arrival_s.to_numpy(float),
                "bought": bought.astype(int), "left": (~bought & (dep < T)).astype(int)}))
        _FRAMES["frame"] = pd.concat(parts, ignore_index=True)
    return _FRAMES["frame"].copy()
