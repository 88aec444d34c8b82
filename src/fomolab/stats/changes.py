"""What each arm changes, against the control: buyers, purchases, spend and revenue.

The picture: the seller's and the regulator's first question about a tactic is
not who was moved but how much more was sold, to how many more buyers, for how
much money.  These are differences of totals between two arms run on the same
replicate's viewers, so they are defined by the two arms' outcome
distributions alone: they do not depend on how the simulation couples a
viewer's outcome in one arm to the same viewer's outcome in the other.

Per-viewer labels (a purchase "induced" or "accelerated", "seconds gained by
the seller", :mod:`fomolab.attribution`) compare one viewer's two potential
outcomes, which no experiment observes jointly; their split depends on the
engine's coupling of the arms (``docs/MODEL.md``, *What depends on the
coupling*).  Only their net sums are coupling-free, and those are here: the
share of viewers induced to buy, net of those the arm stopped from buying, is
the conversion difference.

Each change is estimated within each replicate (the arm's run minus the
control's run of the same replicate) and the ``G`` differences give a t
interval with ``G - 1`` degrees of freedom (:func:`fomolab.stats.replicates.t_across`),
the interval that keeps its coverage with 3 replicates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["CHANGE_COLUMNS", "CHANGE_MEASURES", "MAX_BATCHES", "across", "batches", "change_table"]

#: The measures of ``Analysis.changes``: (name, unit, what it is).
CHANGE_MEASURES: tuple[tuple[str, str, str], ...] = (
    ("buyers", "viewers per run", "viewers who bought at least once"),
    ("purchases", "units per run", "purchases of all products"),
    ("revenue", "currency per run", "sum of prices paid (the viewers' spend)"),
    ("viewers", "viewers per run", "viewer visits (an arrival boost adds some)"),
    ("conversion", "share", "buyers per viewer; its change is the net share of viewers induced to buy"),
    ("purchases_per_viewer", "units per viewer", "purchases per viewer visit"),
    ("spend_per_viewer", "currency per viewer", "revenue per viewer visit"),
)

#: The columns of ``Analysis.changes``.
CHANGE_COLUMNS = ["point", "arm", "control", "measure", "unit", "control_value", "arm_value", "change",
                  "ci_lower", "ci_upper", "p", "relative_change", "replicates", "note"]


def across(values: np.ndarray, conf_level: float) -> tuple[float, float, float, float, str]:
    """Mean of per-replicate effects, its t interval and p on ``G - 1`` df, and a note on what is missing.

    Returns ``(estimate, ci_lower, ci_upper, p, note)``; with one replicate
    the interval and p are NaN, and the note says why.
    """
    from fomolab.stats.replicates import t_across

    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return np.nan, np.nan, np.nan, np.nan, "no replicate with both arms"
    r = {k: float(v) for k, v in t_across(x, conf_level=conf_level).items()}
    if len(x) == 1:
        note = "one replicate: no interval (needs 2 or more)"
    elif not r["se"] > 0:
        note = "the same effect in every replicate: no interval"
    else:
        note = "2 replicates: a t interval on 1 df, very wide" if len(x) == 2 else ""
    return r["estimate"], r["ci_lower"], r["ci_upper"], r["p"], note


#: Most groups of replicates the per-replicate model fits of the analysis use (see :func:`batches`).
MAX_BATCHES = 20


def batches(replicate: pd.Series | np.ndarray, most: int = MAX_BATCHES) -> np.ndarray:
    """Each row's group of replicates: the replicate itself, or with more than ``most`` replicates one of
    ``most`` disjoint groups of them (replicate ``k`` of the sorted ids in group ``k mod most``).

    Model fits within each group (stratified by replicate, so each replicate
    keeps its own baseline) then give ``most`` independent estimates: the t
    interval on ``most - 1`` df stays valid, and the number of fits stays
    bounded however many replicates a folder has.
    """
    r = np.asarray(replicate)
    ids, code = np.unique(r, return_inverse=True)
    return code % most if len(ids) > most else code


def _per_run(runs: pd.DataFrame) -> pd.DataFrame:
    r = runs.assign(arm=runs.arm.astype(str))
    v = r.viewers.to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame({
            "point": r.point.to_numpy(), "replicate": r.replicate.to_numpy(), "arm": r.arm.to_numpy(),
            "buyers": r.buyers.to_numpy(float), "purchases": r.units_sold.to_numpy(float),
            "revenue": r.revenue.to_numpy(float), "viewers": v,
            "conversion": np.where(v > 0, r.buyers.to_numpy(float) / v, np.nan),
            "purchases_per_viewer": np.where(v > 0, r.units_sold.to_numpy(float) / v, np.nan),
            "spend_per_viewer": np.where(v > 0, r.revenue.to_numpy(float) / v, np.nan)})


def change_table(runs: pd.DataFrame, order: list[str], control: str, conf_level: float = 0.95) -> pd.DataFrame:
    """Each treatment arm's change against the control, per point (``Analysis.changes``).

    Parameters
    ----------
    runs : pandas.DataFrame
        The ``runs`` table (``point, replicate, arm, viewers, buyers,
        units_sold, revenue``), finished runs only.
    order : list of str
        The arms, in the order of the rows.
    control : str
        The reference arm.
    conf_level : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        One row per point, treatment arm and measure of :data:`CHANGE_MEASURES`:
        the control's and the arm's means over replicates, the mean
        per-replicate change with its t interval and p value across
        replicates, the change relative to the control, and a ``note``.

    Examples
    --------
    >>> import pandas as pd
    >>> runs = pd.DataFrame({"point": 0, "replicate": [0, 0, 1, 1, 2, 2], "arm": ["c", "t"] * 3,
    ...                      "viewers": 100, "buyers": [10, 14, 12, 15, 11, 16],
    ...                      "units_sold": [12, 17, 13, 18, 12, 20], "revenue": [120.0, 150, 130, 160, 120, 170]})
    >>> t = change_table(runs, ["c", "t"], "c")
    >>> [float(v) for v in t.set_index("measure").loc["buyers", ["change", "replicates"]]]
    [4.0, 3.0]
    """
    per = _per_run(runs)
    rows = []
    for point, g in per.groupby("point", sort=True):
        base = g[g.arm == control].set_index("replicate")
        if base.empty:
            continue
        for arm in order:
            if arm == control:
                continue
            mine = g[g.arm == arm].set_index("replicate")
            both = mine.index.intersection(base.index)
            if mine.empty:
                continue
            for name, unit, _ in CHANGE_MEASURES:
                d = (mine.loc[both, name] - base.loc[both, name]).to_numpy(float)
                est, lo, hi, p, note = across(d, conf_level)
                c0 = float(base.loc[both, name].mean()) if len(both) else np.nan
                rows.append(dict(point=int(point), arm=arm, control=control, measure=name, unit=unit,
                                 control_value=c0, arm_value=float(mine.loc[both, name].mean()) if len(both)
                                 else np.nan, change=est, ci_lower=lo, ci_upper=hi, p=p,
                                 relative_change=est / c0 if c0 else np.nan, replicates=len(both), note=note))
    out = pd.DataFrame(rows, columns=CHANGE_COLUMNS)
    floats = ("control_value", "arm_value", "change", "ci_lower", "ci_upper", "p", "relative_change")
    return out.astype(dict.fromkeys(floats, "float64"))
