"""Field data drawn from fomolab's own engine (for recovery studies, checks and examples).

:func:`simulate_field_data` runs one arm of an experiment and returns what a
platform would observe: the ``visits`` and ``purchases`` tables of
:mod:`fomolab.fit.data`, without the latent traits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fomolab.spec import Experiment

__all__ = ["observed_tables", "simulate_field_data", "simulate_tables"]


def observed_tables(tables: Any) -> tuple[Any, Any]:
    """``(visits, purchases)`` DataFrames from one run's engine tables."""
    import pandas as pd

    sh = tables.shoppers
    ids = sh["shopper_id"].astype(np.int64).to_numpy()
    visits = pd.DataFrame({"visit_id": ids.astype(str), "arrival_s": sh["arrival_s"].to_numpy(float),
                           "departure_s": sh["departure_s"].to_numpy(float)})
    ev = tables.events
    buy = ev[ev["kind"] == "purchase"]
    purchases = pd.DataFrame({"visit_id": buy["shopper_id"].astype(np.int64).astype(str).to_numpy(),
                              "product": buy["product"].astype(str).to_numpy(),
                              "time_s": buy["time_s"].to_numpy(float),
                              "price_paid": buy["value"].to_numpy(float)})
    return visits, purchases


def simulate_tables(exp: Experiment, arm: str, replicates: range) -> list[Any]:
    """The engine's tables of ``arm`` for each replicate (in memory)."""
    from fomolab.design import expand
    from fomolab.engine import simulate

    runs = [r for r in expand(exp, replicates) if r.arm == arm]
    return [simulate(r) for r in runs]


def simulate_field_data(exp: Experiment, arm: str, replicate: int = 0) -> tuple[Any, Any]:
    """What a platform observes of one replicate of ``arm``: ``(visits, purchases)``."""
    return observed_tables(simulate_tables(exp, arm, range(replicate, replicate + 1))[0])
