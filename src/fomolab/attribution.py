"""Counterfactual attribution: which purchases a tactic caused, and who paid.

Under common random numbers every (non-boosted) viewer of a replicate appears
in every arm with the same arrival, traits and decision randomness, and
sampling is coupled monotonically (``docs/MODEL.md``).  Pairing a treatment
arm's viewer with the same viewer in the control arm therefore tells what the
tactic did to that viewer:

=============  ==============================================================
label          the viewer in the treatment arm ...
=============  ==============================================================
``induced``    bought, and did not in the control (boosted viewers who bought:
               they came because of the tactic)
``accelerated`` bought sooner than in the control
``same``       bought at the same time as in the control
``delayed``    bought later than in the control
``prevented``  did not buy, but did in the control
``none``       bought in neither
=============  ==============================================================

Welfare: each purchase has a surplus, the viewer's valuation minus the price
paid; a purchase with negative surplus is *regretted*.  Per viewer, the
treatment's effect on surplus and spend is the difference from the control.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fomolab.errors import ResultsError

__all__ = ["attribute", "impact", "impact_tables", "LABELS"]

LABELS = ("induced", "accelerated", "same", "delayed", "prevented", "none")
_COLS = ["run_id", "arm", "replicate", "point", "shopper_id", "segment", "boosted", "impulsiveness",
         "arrival_s", "first_purchase_s", "purchases", "spend", "surplus", "regretted"]
#: What the impact tables read of a visit: its run (the arm, point and replicate are the run's), not its arrival
_IMPACT_COLS = [c for c in _COLS if c not in ("arm", "replicate", "point", "arrival_s")]
_GROUPINGS = ("quintile", "segment", "all")
_QUANTILES = [0.2, 0.4, 0.6, 0.8]
_MEASURES = ["induced_purchases", "accelerated_purchases", "seconds_gained_by_seller", "regretted", "regretted_added",
             "consumer_surplus_lost", "surplus_lost_to_regret_added", "seller_revenue_gained"]
#: Visits read, paired and summed at a time by impact_tables: about 35 MB at the batch's largest (250,000 held
#: 60 MB, in a side process of 210 MB; each batch costs about 10 ms of CPU besides its rows)
_BATCH_VISITS = 125_000
_BIN_BITS = 20  # _exact_quantiles' first pass: 2^20 bins of the values' bit patterns


def attribute(results: Any, control: str | None = None) -> pd.DataFrame:
    """Label every treatment-arm visit against the same viewer in the control.

    Parameters
    ----------
    results : fomolab.Results or path
        A results folder written with common random numbers (the default).
    control : str, optional
        The reference arm (default: the experiment's control).

    Returns
    -------
    pandas.DataFrame
        One row per visit of a treatment arm: the shoppers columns, ``label``
        (see the module docstring), ``seconds_gained`` (control's first
        purchase time minus the treatment's, for viewers who bought in both),
        and the differences from the control ``purchases_change``,
        ``spend_change``, ``surplus_change``, ``regretted_change``.

    Examples
    --------
    >>> from fomolab.stats._example import example_results
    >>> lab = attribute(example_results())
    >>> set(lab.label) <= set(LABELS)
    True
    """
    res, control = _open(results, control)
    return _label(res.viewers(_COLS), control)


def _open(results: Any, control: str | None) -> tuple[Any, str]:
    """The folder and its control arm, refused without common random numbers or finished control runs."""
    from fomolab.results import Results

    res = results if isinstance(results, Results) else Results(results)
    if not res.common_random_numbers:
        raise ResultsError(f"{res.path}: attribution pairs viewers across arms and needs common random numbers; "
                           "this experiment sets common_random_numbers = false")
    control = control or res.manifest.get("control") or res.experiment.control
    if control not in set(res.runs.arm.astype(str)):
        raise ResultsError(f"{res.path}: no finished runs of the control arm {control!r}")
    return res, control


def _label(sh: pd.DataFrame, control: str) -> pd.DataFrame:
    """The rows of :func:`attribute` for the visits ``sh`` (every arm of some replicates).

    ``sh`` is consumed (its ``arm`` column is replaced by the arms' names).
    A treatment visit whose viewer has no control visit in ``sh`` is labelled
    as one who bought nothing in the control.
    """
    from fomolab.stats._folder import text_values

    sh["arm"] = text_values(sh["arm"])  # the arms' names shared by the rows, not a new string per row
    is_control = sh.arm.to_numpy() == control
    base = sh.loc[is_control, ["point", "replicate", "shopper_id", "first_purchase_s", "purchases", "spend",
                               "surplus", "regretted"]]  # what the labels read of the control
    out = sh.take(np.flatnonzero(~is_control))  # the treatment visits: one copy, the table returned
    out.index = pd.RangeIndex(len(out))
    del sh
    at = _pair(base, out)  # each treatment visit's row of the control (-1: none)
    found = at >= 0
    take = np.maximum(at, 0)

    def ref(col: str) -> np.ndarray:
        v = base[col].to_numpy(dtype=float)[take] if len(base) else np.full(len(out), np.nan)
        return np.where(found, v, np.nan)

    c_first = ref("first_purchase_s")
    t_first = out.first_purchase_s.to_numpy()
    boosted = out.boosted.to_numpy()
    label, gained = _label_codes(boosted, t_first, c_first)
    out["label"] = pd.Categorical.from_codes(label, categories=list(LABELS))
    out["seconds_gained"] = gained
    for col in ("purchases", "spend", "surplus", "regretted"):
        out[f"{col}_change"] = _change(out[col].to_numpy(), ref(col), boosted)
    return out


def _label_codes(boosted: np.ndarray, t_first: np.ndarray, c_first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each treatment visit's label (its position in :data:`LABELS`) and seconds gained.

    ``t_first`` and ``c_first`` are the first purchase times in the arm and
    in the control (NaN: no purchase, or no control visit).
    """
    tb, cb = ~np.isnan(t_first), ~np.isnan(c_first)
    code = {name: k for k, name in enumerate(LABELS)}
    label = np.select(
        [boosted & tb, boosted, tb & ~cb, tb & (t_first < c_first), tb & (t_first == c_first), tb & cb, cb],
        [code[x] for x in ("induced", "none", "induced", "accelerated", "same", "delayed", "prevented")],
        default=code["none"])
    return label, np.where(tb & cb & ~boosted, c_first - t_first, np.nan)


def _change(treated: np.ndarray, control: np.ndarray, boosted: np.ndarray) -> np.ndarray:
    """A visit's value minus the same viewer's in the control (``control`` NaN: none; a boosted viewer: 0)."""
    return treated.astype(float) - np.where(boosted, 0, np.nan_to_num(control))


def _pair(base: pd.DataFrame, treat: pd.DataFrame) -> np.ndarray:
    """For each row of ``treat``, the position in ``base`` of the same ``point, replicate, shopper_id`` (or -1).

    The keys are combined into one integer per row and matched by binary
    search in the sorted keys of ``base`` (whose keys are unique: one control
    visit per viewer and replicate).
    """
    cols = ("point", "replicate", "shopper_id")
    both = [np.concatenate([base[c].to_numpy(), treat[c].to_numpy()]) for c in cols]
    key = np.zeros(len(both[0]), np.int64)
    for v in both:
        codes, uniq = pd.factorize(v)
        key = key * max(len(uniq), 1) + codes
    return _match(key[:len(base)], key[len(base):])


def impact(results: Any, control: str | None = None, *, by: str = "quintile",
           level: float = 0.95, labels: pd.DataFrame | None = None) -> pd.DataFrame:
    """Harm and gain by segment or impulsiveness quintile, with CIs over replicates.

    Per treatment arm and group (``by="quintile"``: impulsiveness quintiles,
    cut at the quintiles of all viewers; ``by="segment"``; ``by="all"``), the
    per-replicate totals of: induced and accelerated purchases, seconds gained
    by the seller (summed over accelerated viewers), regretted purchases (in
    the arm) and regretted purchases added (arm minus control), consumer
    surplus lost (control minus arm), the surplus lost to regret added (the
    losses of visits whose surplus is negative, arm minus control) and seller
    revenue gained (arm minus control).  Means over replicates with t
    intervals.  Regretted purchases, their change and the surplus and revenue
    changes are differences of per-replicate totals: they do not depend on
    how the arms are coupled.  Induced, accelerated and seconds gained pair
    each viewer with themselves in the control: they do.

    Without ``labels`` the folder is read a batch of replicates at a time
    (:func:`impact_tables`); with ``labels`` (a table of :func:`attribute`)
    the groups and totals are those of its rows.

    Returns
    -------
    pandas.DataFrame
        Long: ``arm, point, group, measure, mean, ci_lower, ci_upper, replicates``.

    Examples
    --------
    >>> from fomolab.stats._example import example_results
    >>> tab = impact(example_results(), by="all")
    >>> sorted(tab.measure.unique())[:3]
    ['accelerated_purchases', 'consumer_surplus_lost', 'induced_purchases']
    """
    from fomolab.results import Results

    if by not in _GROUPINGS:
        raise ValueError(f"by must be 'quintile', 'segment' or 'all': {by!r}")
    if labels is None:
        return impact_tables(results, control, level=level, by=(by,))[by]
    res = results if isinstance(results, Results) else Results(results)
    return _table(_stack([_sums(labels, None, (by,))[by]]), level, res.manifest.get("arms", []))


def impact_tables(results: Any, control: str | None = None, *, level: float = 0.95,
                  by: tuple[str, ...] = ("quintile", "segment", "all"),
                  batch_visits: int | None = None) -> dict[str, pd.DataFrame]:
    """The tables of :func:`impact` for several groupings, from one read of the visits.

    The visits are read, paired with the control and summed per arm, point,
    group and replicate a batch of replicates at a time (every arm of a
    replicate in the same batch), so memory is bounded by a batch, not by the
    folder; no per-visit labels are kept.  The quintile edges are the exact
    quantiles of all treatment visits' impulsiveness (as ``numpy.quantile``):
    with several batches they are found first, from a read of the
    impulsiveness column alone (:func:`_exact_quantiles`).  The tables equal
    those of ``impact(results, control, by=b, labels=attribute(results,
    control))``, bit for bit.

    Parameters
    ----------
    results : fomolab.Results or path
        A results folder written with common random numbers.
    control : str, optional
        The reference arm (default: the experiment's control).
    level : float
        Confidence level of the t intervals.
    by : tuple of str
        The groupings: any of ``"quintile"``, ``"segment"``, ``"all"``.
    batch_visits : int, optional
        About how many visits a batch holds (default 125,000: a folder of fewer
        visits is one batch).  A replicate is never split.

    Returns
    -------
    dict of str to pandas.DataFrame
        One table of :func:`impact` per grouping in ``by``.

    Examples
    --------
    >>> from fomolab.stats._example import example_results
    >>> tabs = impact_tables(example_results())
    >>> sorted(tabs), sorted(tabs["quintile"].group.unique())
    (['all', 'quintile', 'segment'], ['Q1', 'Q2', 'Q3', 'Q4', 'Q5'])
    """
    bad = [b for b in by if b not in _GROUPINGS]
    if bad:
        raise ValueError(f"by must be 'quintile', 'segment' or 'all': {bad[0]!r}")
    res, control = _open(results, control)
    batches = _batches(res.runs, _BATCH_VISITS if batch_visits is None else batch_visits)
    edges = None
    if "quintile" in by and len(batches) > 1:
        treat = set(res.runs.run_id[res.runs.arm.astype(str) != control].astype(str))

        def impulsiveness() -> Iterator[np.ndarray]:
            for ids in batches:
                mine = [i for i in ids if i in treat]
                if mine:
                    yield res.viewers(["impulsiveness"], run_ids=mine)["impulsiveness"].to_numpy(dtype=float)

        edges = _exact_quantiles(impulsiveness, _QUANTILES)
    keys = _RunKeys.of(res.runs, control)
    cols = [c for c in _IMPACT_COLS if not (c == "segment" and "segment" not in by)
            and not (c == "impulsiveness" and "quintile" not in by)]
    parts: dict[str, list[pd.DataFrame]] = {b: [] for b in by}
    for ids in batches:  # with one batch and no edges, the batch's quantiles are those of every visit
        for b, part in _batch_sums(res.viewers(cols, run_ids=ids), keys, edges, by).items():
            parts[b].append(part)
    arms = res.manifest.get("arms", [])
    return {b: _table(_stack(parts[b]), level, arms) for b in by}


def _batches(runs: pd.DataFrame, visits: int) -> list[list[str]]:
    """The runs' ids in batches of whole replicates (a point's replicate: all its arms) of about ``visits`` visits.

    Replicates are taken in the folder's order and a batch is closed once it
    holds ``visits`` visits or more (``runs.viewers``).
    """
    ids = runs.run_id.astype(str).to_numpy()
    rep = pd.MultiIndex.from_arrays([runs.point.to_numpy(), runs.replicate.to_numpy()])
    codes, _ = pd.factorize(rep)  # each replicate by first appearance
    size = runs.viewers.to_numpy() if "viewers" in runs.columns else np.zeros(len(runs), np.int64)
    per_rep = np.bincount(codes, weights=size, minlength=codes.max() + 1 if len(codes) else 0)
    batch_of = np.zeros(len(per_rep), np.int64)
    batch, held = 0, 0.0
    for k, n in enumerate(per_rep):
        if held >= visits:
            batch, held = batch + 1, 0.0
        batch_of[k] = batch
        held += n
    of_run = batch_of[codes]
    return [list(ids[of_run == b]) for b in range(batch + 1)] if len(ids) else []


class _RunKeys:
    """The runs' keys for pairing and summing a batch's visits, looked up per run rather than read per visit.

    ``arm``, ``point`` and ``replicate``: each run's position among the sorted
    distinct arm names, points and replicates (``arms``, ``points``,
    ``reps``); ``pair``: its point and replicate as one integer (the visits
    of a replicate are paired across its arms); ``control``: whether it is a
    run of the control arm.
    """

    def __init__(self, at: dict[str, int], arm: np.ndarray, arms: np.ndarray, point: np.ndarray, points: np.ndarray,
                 rep: np.ndarray, reps: np.ndarray, control: np.ndarray) -> None:
        self.at, self.arm, self.arms, self.point, self.points = at, arm, arms, point, points
        self.rep, self.reps, self.control = rep, reps, control
        self.pair = point.astype(np.int64) * max(len(reps), 1) + rep

    @classmethod
    def of(cls, runs: pd.DataFrame, control: str) -> _RunKeys:
        names = runs.arm.astype(str).to_numpy(dtype=object)
        arms, arm = np.unique(names, return_inverse=True)
        points, point = np.unique(runs.point.to_numpy(), return_inverse=True)
        reps, rep = np.unique(runs.replicate.to_numpy(), return_inverse=True)
        at = {rid: k for k, rid in enumerate(runs.run_id.astype(str))}
        return cls(at, arm.reshape(-1), arms, point.reshape(-1), points, rep.reshape(-1), reps, names == control)


def _batch_sums(sh: pd.DataFrame, keys: _RunKeys, edges: np.ndarray | None, by: tuple[str, ...]
                ) -> dict[str, pd.DataFrame]:
    """:func:`_sums` of :func:`_label` of a batch's visits (every arm of its replicates), without the labels' table.

    ``sh`` has the columns :data:`_IMPACT_COLS` (``run_id`` for the arm,
    point and replicate, looked up in ``keys``).  Each treatment visit finds
    the same viewer's control visit by an integer key (the replicate and the
    viewer, :func:`_match`), and the measures are computed on the
    treatment visits' arrays in their order: the numbers of the labelled
    table, summed in the same order.
    """
    from fomolab.stats._folder import positions

    run = positions(sh["run_id"], keys.at, 0)
    is_control = keys.control[run]
    base, treat = np.flatnonzero(is_control), np.flatnonzero(~is_control)
    sid = np.asarray(sh["shopper_id"].to_numpy(), dtype=np.int64)
    low = int(sid.min()) if len(sid) else 0
    width = int(sid.max()) - low + 1 if len(sid) else 1
    pair = keys.pair[run] * width + (sid - low)  # the viewer in the replicate: one integer
    del sid
    at = _match(pair[base], pair[treat])
    del pair
    found = at >= 0
    ci = base[np.maximum(at, 0)] if len(base) else np.zeros(len(treat), np.intp)  # the paired control rows
    del at, base

    boosted = sh["boosted"].to_numpy()[treat]
    paired = found & ~boosted  # the visits whose control counts in their changes

    def columns(col: str, missing: float) -> tuple[np.ndarray, np.ndarray]:
        """The treatment visits' values of ``col`` and their control's (``missing`` where it does not count)."""
        v = sh[col].to_numpy()
        c = v[ci].astype(float) if len(ci) and len(v) else np.zeros(len(treat))
        if np.isnan(missing):  # a first purchase time: NaN where there is no control visit
            return v[treat], np.where(found, c, np.nan)
        # _change's control term, without its two passes over the rows (the same numbers)
        return v[treat], np.where(paired, c if np.isfinite(c).all() else np.nan_to_num(c), missing)

    t_first, c_first = columns("first_purchase_s", np.nan)
    label, gained = _label_codes(boosted, t_first, c_first)
    del t_first, c_first
    own, change = {}, {}
    for col in ("purchases", "spend", "surplus", "regretted"):
        own[col], c = columns(col, 0.0)
        change[col] = own[col] - c  # a value minus the same viewer's in the control, as _change gives it
    m = _measures(label == LABELS.index("induced"), label == LABELS.index("accelerated"), boosted,
                  own["purchases"], gained, own["regretted"], change["regretted"], own["surplus"],
                  change["surplus"], change["spend"])
    del label, gained, change, own
    r = run[treat]
    arm, point, rep = keys.arm[r], keys.point[r], keys.rep[r]
    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for b in by:
        if b == "quintile":
            z = sh["impulsiveness"].to_numpy()[treat]
            groups[b] = _quintiles(z, edges)
        elif b == "segment":
            groups[b] = _segments(sh["segment"], treat)
        else:
            groups[b] = (np.zeros(len(treat), np.intp), np.array(["all"], dtype=object))
    return _group_sums(m, (arm, keys.arms), (point, keys.points), (rep, keys.reps), groups)


def _match(kb: np.ndarray, kt: np.ndarray) -> np.ndarray:
    """For each key of ``kt``, its position in ``kb`` (whose keys are unique), or -1.

    Keys spanning a range not much wider than their number (a batch's
    viewers: replicates times viewer ids) are looked up in a table of the
    range, without a sort; others by binary search in the sorted ``kb``.
    """
    if len(kb) and len(kt):
        low = min(int(kb.min()), int(kt.min()))
        span = max(int(kb.max()), int(kt.max())) - low + 1
        if span <= 8 * (len(kb) + len(kt)):
            table = np.full(span, -1, np.intp)
            table[kb - low] = np.arange(len(kb))
            if np.count_nonzero(table >= 0) < len(kb):
                raise ValueError("cannot reindex on an axis with duplicate labels")
            out: np.ndarray = table[kt - low]
            return out
    o = np.argsort(kb, kind="stable")
    sorted_kb = kb[o]
    if len(kb) and (sorted_kb[1:] == sorted_kb[:-1]).any():
        raise ValueError("cannot reindex on an axis with duplicate labels")
    if not len(kb):
        return np.full(len(kt), -1, np.intp)
    pos = np.minimum(np.searchsorted(sorted_kb, kt), len(kb) - 1)
    return np.where(sorted_kb[pos] == kt, o[pos], -1)


def _quintiles(z: np.ndarray, edges: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Each visit's impulsiveness quintile (0 to 4; ``edges`` default: the quintiles of ``z``) and their names."""
    cut = np.quantile(z, _QUANTILES) if edges is None else edges
    return np.searchsorted(cut, z, side="right"), np.array([f"Q{k}" for k in range(1, 6)], dtype=object)


def _segments(col: pd.Series, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's segment among ``rows``, as its position among the sorted segment names, and the names.

    A categorical is looked up once per category (a missing one reads as
    ``"nan"``, as ``astype(str)`` gives it), not once per row.
    """
    from fomolab.stats._folder import text_values

    if isinstance(col.dtype, pd.CategoricalDtype):
        names = np.array([str(c) for c in col.cat.categories] + ["nan"], dtype=object)
        uniq, of_code = np.unique(names, return_inverse=True)
        codes = col.cat.codes.to_numpy()[rows]
        return of_code.reshape(-1)[codes], uniq.astype(object)
    codes, uniq = pd.factorize(text_values(col.iloc[rows]), sort=True)
    return codes, np.asarray(uniq, dtype=object)


def _measures(induced: np.ndarray, accelerated: np.ndarray, boosted: np.ndarray, purchases: np.ndarray,
              seconds_gained: np.ndarray, regretted: np.ndarray, regretted_change: np.ndarray,
              surplus: np.ndarray, surplus_change: np.ndarray, spend_change: np.ndarray) -> np.ndarray:
    """The :data:`_MEASURES` of labelled visits, one row per measure (floats; the counts are whole numbers)."""
    # surplus lost on visits that lost (regret), arm minus control: a difference of totals, coupling-free
    control_surplus = np.where(boosted, 0.0, surplus - surplus_change)
    m = np.empty((len(_MEASURES), len(induced)))
    m[0] = induced * purchases
    m[1] = accelerated
    m[2] = np.where(accelerated, seconds_gained, 0.0)
    m[3] = regretted
    m[4] = regretted_change
    m[5] = -surplus_change
    m[6] = np.maximum(-surplus, 0) - np.maximum(-control_surplus, 0)  # np.clip(x, 0, None) is np.maximum(x, 0)
    m[7] = spend_change
    return m


def _group_sums(m: np.ndarray, arm: tuple[np.ndarray, np.ndarray], point: tuple[np.ndarray, np.ndarray],
                rep: tuple[np.ndarray, np.ndarray], groups: dict[str, tuple[np.ndarray, np.ndarray]]
                ) -> dict[str, pd.DataFrame]:
    """The measures ``m`` summed per ``arm, point, group, replicate`` for each grouping of ``groups``.

    Each key is a pair (each row's position among the sorted names, the
    names).  The four positions are combined into one integer per row and
    the measures summed by pandas (compensated sums, rows in their order: a
    grouping by the keys themselves gives the same sums, bit for bit); the
    whole numbers among them (counts) are exact as floats.
    """
    (a_code, arms), (p_code, points), (r_code, reps) = arm, point, rep
    values = pd.DataFrame(m.T, columns=_MEASURES, copy=False)  # one block of floats: one pass per grouping
    out = {}
    for b, (g, names) in groups.items():
        key = ((a_code.astype(np.int64) * len(points) + p_code) * len(names) + g) * len(reps) + r_code
        tot = values.groupby(key, sort=True).sum()
        k = tot.index.to_numpy().astype(np.int64)
        k, r = np.divmod(k, len(reps))
        k, gk = np.divmod(k, len(names))
        a, pk = np.divmod(k, len(points))
        tot.insert(0, "arm", np.asarray(arms, dtype=object)[a])
        tot.insert(1, "point", np.asarray(points)[pk])
        tot.insert(2, "group", names[gk])
        tot.insert(3, "replicate", np.asarray(reps)[r])
        out[b] = tot.reset_index(drop=True)
    return out


def _sums(lab: pd.DataFrame, edges: np.ndarray | None, by: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """The measures of labelled visits (a table of :func:`attribute`) summed per ``arm, point, group, replicate``.

    ``edges``: the quintile edges (default: the quantiles of ``lab``'s
    impulsiveness, ``lab`` holding every visit).
    """
    from fomolab.stats._folder import text_values

    label = lab["label"]
    m = _measures((label == "induced").to_numpy(), (label == "accelerated").to_numpy(), lab["boosted"].to_numpy(),
                  lab["purchases"].to_numpy(), lab["seconds_gained"].to_numpy(), lab["regretted"].to_numpy(),
                  lab["regretted_change"].to_numpy(), lab["surplus"].to_numpy(), lab["surplus_change"].to_numpy(),
                  lab["spend_change"].to_numpy())
    arm, point, rep = (pd.factorize(text_values(lab["arm"]) if c == "arm" else lab[c], sort=True)
                       for c in ("arm", "point", "replicate"))
    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for b in by:
        if b == "quintile":
            groups[b] = _quintiles(lab["impulsiveness"].to_numpy(), edges)
        elif b == "segment":
            groups[b] = _segments(lab["segment"], np.arange(len(lab)))
        else:
            groups[b] = (np.zeros(len(lab), np.intp), np.array(["all"], dtype=object))
    return _group_sums(m, arm, point, rep, groups)


def _stack(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The batches' per-replicate sums as one table, ordered by ``arm, point, group, replicate``."""
    per_rep = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["arm", "point", "group", "replicate", *_MEASURES])
    per_rep["group"] = per_rep["group"].astype(str).astype(object)
    return per_rep.sort_values(["arm", "point", "group", "replicate"], kind="stable").reset_index(drop=True)


def _table(per_rep: pd.DataFrame, level: float, arms: list[str]) -> pd.DataFrame:
    """Means over replicates with t intervals, per arm, point, group and measure, arms in the spec's order."""
    from fomolab.stats._intervals import t_interval

    rows = []
    for (arm, point, group), g in per_rep.groupby(["arm", "point", "group"], observed=True):
        for m in _MEASURES:
            mean, lo, hi = t_interval(g[m].to_numpy(dtype=float), level)
            rows.append({"arm": arm, "point": point, "group": group, "measure": m, "mean": mean,
                         "ci_lower": lo, "ci_upper": hi, "replicates": len(g)})
    order = {a: k for k, a in enumerate(arms)}
    out = pd.DataFrame(rows)
    return out.sort_values(["arm", "point"], key=lambda c: c.map(order) if c.name == "arm" else c,
                           kind="stable").reset_index(drop=True)


def _exact_quantiles(chunks: Callable[[], Iterable[np.ndarray]], q: Sequence[float]) -> np.ndarray:
    """``numpy.quantile`` (linear) of values read in chunks, exactly, holding about one chunk at a time.

    The values are counted in 2^20 bins of their bit patterns (ordered as the
    values); the order statistics the quantiles need lie in a few of them
    (the target bins), and only those bins' values are sorted.  To read the
    values once, the counts so far tell where the answers probably lie: the
    bins within five standard errors of each quantile (in rank, from the
    values counted so far) are watched, and their values kept, as the chunks
    go by; the watched bins only narrow (a bin no longer watched drops its
    values), so that what is kept grows as the square root of the values
    read.  When every target bin stayed watched (the chunks are alike, as
    replicates are) the kept values give the answer; otherwise ``chunks()``
    is read a second time for the target bins' values.  The quantiles are
    then interpolated as ``numpy.quantile`` does (the same float operations:
    equal to it bit for bit).

    Parameters
    ----------
    chunks : callable
        Called once or twice; each call yields the same values as arrays (in
        any order and chunking).
    q : sequence of float
        Probabilities in [0, 1].

    Returns
    -------
    numpy.ndarray
        ``numpy.quantile(all values, q)``.

    Examples
    --------
    >>> x = np.random.default_rng(1).normal(size=1000)
    >>> bool((_exact_quantiles(lambda: iter(np.split(x, 10)), [0.2, 0.5]) == np.quantile(x, [0.2, 0.5])).all())
    True
    """
    qs = np.asarray(q, dtype=float)
    counts = np.zeros(1 << _BIN_BITS, np.int64)
    n, nan = 0, False
    watched = np.ones(len(counts), bool)  # the bins whose values are kept as they are read
    kept, kept_bins = np.zeros(0), np.zeros(0, np.intp)
    for x in chunks():
        x = np.asarray(x, dtype=float)
        n += len(x)
        nan = nan or bool(np.isnan(x).any())
        if nan or not len(x):
            continue
        bins = _bins(x)
        counts += np.bincount(bins, minlength=len(counts))
        watched &= _likely_bins(counts, n, qs)
        keep = watched[bins]
        kept, kept_bins = np.concatenate([kept, x[keep]]), np.concatenate([kept_bins, bins[keep]])
        keep = watched[kept_bins]  # what the narrower watch lets go
        kept, kept_bins = kept[keep], kept_bins[keep]
    if nan or n == 0:  # numpy's answer: NaN for all, or its error on no values
        return np.asarray(np.quantile(np.array([np.nan] if nan else [], dtype=float), qs))
    h = (n - 1) * qs  # numpy's virtual index of the linear method
    lo = np.floor(h)
    r_lo = lo.astype(np.int64)
    r_hi = np.minimum(r_lo + 1, n - 1)
    cum = np.cumsum(counts)
    targets = np.unique(np.searchsorted(cum, np.concatenate([r_lo, r_hi]), side="right"))  # bins holding them
    if watched[targets].all():
        cand = np.sort(kept[np.isin(kept_bins, targets)])
    else:  # a second read, for the target bins' values
        cand = np.sort(np.concatenate([x[np.isin(_bins(x), targets)]
                                       for x in (np.asarray(c, dtype=float) for c in chunks())]))
    # cand: the target bins' values, bin after bin
    first_rank = cum[targets] - counts[targets]  # rank of each target bin's first value
    offset = np.concatenate([[0], np.cumsum(counts[targets])[:-1]])  # its place in cand

    def at(r: np.ndarray) -> np.ndarray:
        k = np.searchsorted(targets, np.searchsorted(cum, r, side="right"))
        return cand[offset[k] + r - first_rank[k]]

    a, b = at(r_lo), at(r_hi)
    # numpy interpolates prev + gamma (next - prev) with gamma = h - floor(h): on [prev, next] the same gamma
    return np.array([np.quantile(np.array([a[i], b[i]]), g) for i, g in enumerate(h - lo)])


def _likely_bins(counts: np.ndarray, n: int, qs: np.ndarray) -> np.ndarray:
    """The bins (a mask) where the quantiles ``qs`` of all values probably lie, from the ``n`` values counted.

    For each probability ``q``, the bins holding the ranks within ``w (n - 1)``
    of ``q (n - 1)``, with ``w`` five standard errors of a quantile of ``n``
    values (``sqrt(q (1 - q) / n)`` in probability) plus one value.
    """
    cum = np.cumsum(counts)
    w = 5 * np.sqrt(qs * (1 - qs) / n) + 1 / n
    lo = np.searchsorted(cum, np.floor(np.clip(qs - w, 0, 1) * (n - 1)), side="right")
    hi = np.searchsorted(cum, np.ceil(np.clip(qs + w, 0, 1) * (n - 1)), side="right")
    mask = np.zeros(len(counts), bool)
    for a, b in zip(lo, hi, strict=True):
        mask[a:b + 1] = True
    return mask


def _bins(x: np.ndarray) -> np.ndarray:
    """The bin of each value: the top bits of its float64 pattern, mapped so that bins follow the values."""
    bits = np.ascontiguousarray(x + 0.0, dtype=np.float64).view(np.uint64)  # + 0.0: -0.0 as 0.0
    key = np.where(bits >> np.uint64(63), ~bits, bits | np.uint64(1 << 63))
    return (key >> np.uint64(64 - _BIN_BITS)).astype(np.intp)
