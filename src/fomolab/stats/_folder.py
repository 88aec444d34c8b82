"""Reading a results folder for the statistics: runs, scenarios, tactic windows.

Private helpers shared by :mod:`fomolab.stats.episodes`,
:mod:`fomolab.stats.compare` and :mod:`fomolab.stats.sweep`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fomolab.errors import ResultsError

if TYPE_CHECKING:
    from fomolab.results import Results

__all__ = ["as_results", "run_scenarios", "windows", "select_runs"]


def as_results(results: Any) -> Results:
    """A :class:`~fomolab.Results` from a Results object or a folder path."""
    from fomolab.results import Results

    if isinstance(results, Results):
        return results
    if isinstance(results, (str, Path)):
        return Results(results)
    raise ResultsError(f"expected a results folder (path or fomolab.Results): got {type(results).__name__}")


def nonempty_runs(res: Results) -> pd.DataFrame:
    """The runs table, or a ResultsError if no run has finished."""
    runs = res.runs
    if runs.empty:
        raise ResultsError(f"{res.path}: no finished runs to analyse "
                           f"(run the experiment first: `fomolab run SPEC --out {res.path}`)")
    return runs


def select_runs(res: Results, arms: str | list[str] | None = None,
                replicates: int | list[int] | None = None) -> pd.DataFrame:
    """The runs table, optionally restricted to some arms and replicates."""
    runs = nonempty_runs(res)
    if arms is not None:
        arms = [arms] if isinstance(arms, str) else list(arms)
        unknown = sorted(set(arms) - set(runs.arm.astype(str)))
        if unknown:
            have = ", ".join(map(str, runs.arm.cat.categories))
            raise ResultsError(f"{res.path}: no arm {unknown[0]!r} (arms: {have})")
        runs = runs[runs.arm.astype(str).isin(arms)]
    if replicates is not None:
        reps = [replicates] if isinstance(replicates, (int, np.integer)) else list(replicates)
        runs = runs[runs.replicate.isin(reps)]
        if runs.empty:
            raise ResultsError(f"{res.path}: no finished run has replicate in {reps}")
    return runs.reset_index(drop=True)


def run_scenarios(res: Results, runs: pd.DataFrame) -> dict[str, Any]:
    """Each run's resolved :class:`~fomolab.spec.Scenario` (its arm at its point)."""
    from fomolab.design import assign_points

    exp = res.experiment
    ids, _ = assign_points(exp, res.manifest.get("points"))
    by_point: dict[int, Any] = {}
    for pid, p in zip(ids, exp.points, strict=True):
        by_point.setdefault(pid, p)
    out = {}
    for rid, arm, point in zip(runs.run_id.astype(str), runs.arm.astype(str), runs.point, strict=True):
        p = by_point.get(int(point))
        if p is None or arm not in p.arms:
            raise ResultsError(f"{res.path}: run {rid} (arm {arm!r}, point {int(point)}) does not match the "
                               "experiment in manifest.json")
        out[rid] = p.arms[arm].scenario
    return out


def windows(events: pd.DataFrame) -> pd.DataFrame:
    """Slots and tactic windows of each run, from the events table.

    Returns columns ``run_id, product, tactic, start_s, end_s``: one row per
    ``slot_start``/``slot_end`` pair (``tactic = "slot"``) and per
    ``tactic_start``/``tactic_end`` pair (the k-th start of a run, product and
    tactic paired with its k-th end).  A lightning sale with a quota ends when
    the quota is sold; a scarcity cue runs while it was shown.
    """
    ev = events[events.kind.isin(["slot_start", "slot_end", "tactic_start", "tactic_end"])]
    kind = ev.kind.astype(str)
    tactic = np.where(kind.str.startswith("slot").to_numpy(), "slot", ev.tactic.astype(object).to_numpy())
    df = pd.DataFrame({
        "run_id": ev.run_id.astype(str).to_numpy(), "product": ev["product"].astype(str).to_numpy(),
        "tactic": tactic.astype(str), "time_s": ev.time_s.to_numpy(),
        "is_start": kind.str.endswith("_start").to_numpy(),
    })
    df = df.sort_values(["run_id", "product", "tactic", "time_s"], kind="stable")
    df["k"] = df.groupby(["run_id", "product", "tactic", "is_start"], sort=False).cumcount()
    keys = ["run_id", "product", "tactic", "k"]
    starts = df[df.is_start][keys + ["time_s"]].rename(columns={"time_s": "start_s"})
    ends = df[~df.is_start][keys + ["time_s"]].rename(columns={"time_s": "end_s"})
    out = starts.merge(ends, on=keys, how="inner").drop(columns="k")
    return out[out.end_s > out.start_s].reset_index(drop=True)


def arm_order(manifest: dict[str, Any], present: Any, *, control_first: bool = True) -> list[str]:
    """The arms in ``present``: the control first (unless ``control_first`` is False), then in the
    spec's order, then any others sorted.

    >>> arm_order({"arms": ["a", "ctl", "b"], "control": "ctl"}, ["b", "ctl", "a", "z"])
    ['ctl', 'a', 'b', 'z']
    >>> arm_order({"arms": ["a", "ctl", "b"], "control": "ctl"}, ["b", "ctl", "a"], control_first=False)
    ['a', 'ctl', 'b']
    """
    have = {str(a) for a in present}
    order = [a for a in manifest.get("arms", []) if a in have]
    control = manifest.get("control")
    if control_first and control in order:
        order.remove(control)
        order.insert(0, control)
    return order + sorted(have - set(order))


def positions(values: pd.Series, at: dict[str, int], missing: int) -> np.ndarray:
    """Each row's position ``at[str(value)]``, ``missing`` for a value not in ``at`` (or missing), as int64.

    A categorical column is looked up once per category, and another column
    once per distinct value, not once per row.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        lookup = np.array([at.get(str(c), missing) for c in values.cat.categories] + [missing], np.int64)
        out: np.ndarray = lookup[values.cat.codes.to_numpy()]  # code -1 (missing) takes the last entry
        return out
    cats, inv = np.unique(values.astype(str).to_numpy(), return_inverse=True)
    return np.array([at.get(str(c), missing) for c in cats] + [missing], np.int64)[inv.reshape(-1)]


def text_values(col: pd.Series) -> np.ndarray:
    """``col.astype(str)`` as an object array; a categorical's names taken by its codes.

    The names are shared by the rows: ``astype(str)`` of a categorical makes
    a fixed-width text array and then a new string per row (at 10^7 rows,
    900 MB at its peak for one column of arm names).
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        names = np.array([str(c) for c in col.cat.categories] + ["nan"], dtype=object)  # code -1: missing
        out: np.ndarray = names[col.cat.codes.to_numpy()]
        return out
    text: np.ndarray = col.astype(str).to_numpy(dtype=object)
    return text
