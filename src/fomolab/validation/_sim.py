"""Small helpers: load the packaged scenarios and simulate them in this process."""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from typing import Any

import numpy as np

from fomolab.design import expand
from fomolab.engine import simulate
from fomolab.recorder import Tables
from fomolab.spec import Experiment, parse_spec


def experiment(spec: dict[str, Any]) -> Experiment:
    return parse_spec(copy.deepcopy(spec), source="<selfcheck>")


def tables(exp: Experiment, replicates: range) -> dict[str, list[Tables]]:
    """Simulate every arm for the replicates: {arm: [Tables, ...]} in replicate order."""
    out: dict[str, list[Tables]] = {}
    for run in expand(exp, replicates):
        out.setdefault(run.arm, []).append(simulate(run))
    return out


def scenario(name: str, **overrides: Any) -> dict[str, Any]:
    """The packaged scenario ``name`` as raw spec tables, with values set by dotted path.

    Parameters
    ----------
    name : str
        The file's stem in ``fomolab/validation/scenarios/``.
    **overrides
        ``{"experiment.replicates": 40, "stream.arrivals.rate_per_s": 0.7}``: each
        path must already lead to a value in the file (a typo fails).

    Returns
    -------
    dict
        A fresh copy of the file's tables, ready for :func:`experiment`.
    """
    text = resources.files("fomolab.validation").joinpath("scenarios", f"{name}.toml").read_text("utf-8")
    spec = tomllib.loads(text)
    for dotted, value in overrides.items():
        *head, last = dotted.split(".")
        node = spec
        for part in head:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if last not in node:
            raise KeyError(f"{name}.toml has no value at '{dotted}'")
        node[last] = value
    return spec


def only_tactic(spec: dict[str, Any], product: str) -> dict[str, Any]:
    """The one tactic table of ``product`` in raw spec tables (to change in place)."""
    (table,) = spec["lineup"][product]["tactics"].values()
    return table


def arm_tactic(spec: dict[str, Any], arm: str) -> dict[str, Any]:
    """The table of the one tactic that ``arm`` switches on (``"PRODUCT.KIND"``)."""
    (ref,) = spec["arms"][arm]["tactics"]
    product, kind = ref.split(".")
    return spec["lineup"][product]["tactics"][kind]


def fmt_ci(est: float, lo: float, hi: float, digits: int = 3) -> str:
    return f"{est:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def time_to_purchase(shoppers) -> tuple[np.ndarray, np.ndarray]:
    """Duration from arrival (to first purchase or departure) and the event flag."""
    bought = shoppers.first_purchase_s.notna().to_numpy()
    stop = np.where(bought, shoppers.first_purchase_s, shoppers.departure_s)
    return stop - shoppers.arrival_s.to_numpy(), bought.astype(int)
