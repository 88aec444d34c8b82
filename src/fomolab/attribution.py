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

from typing import Any

import numpy as np
import pandas as pd

from fomolab.errors import ResultsError

__all__ = ["attribute", "impact", "LABELS"]

LABELS = ("induced", "accelerated", "same", "delayed", "prevented", "none")
_COLS = ["run_id", "arm", "replicate", "point", "shopper_id", "segment", "boosted", "impulsiveness",
         "arrival_s", "first_purchase_s", "purchases", "spend", "surplus", "regretted"]


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
    from fomolab.results import Results
    from fomolab.stats._folder import text_values

    res = results if isinstance(results, Results) else Results(results)
    if not res.common_random_numbers:
        raise ResultsError(f"{res.path}: attribution pairs viewers across arms and needs common random numbers; "
                           "this experiment sets common_random_numbers = false")
    control = control or res.manifest.get("control") or res.experiment.control
    sh = res.viewers(_COLS)
    sh["arm"] = text_values(sh["arm"])  # the arms' names shared by the rows, not a new string per row
    if control not in set(sh.arm):
        raise ResultsError(f"{res.path}: no finished runs of the control arm {control!r}")
    is_control = sh.arm.to_numpy() == control
    base = sh.loc[is_control, ["point", "replicate", "shopper_id", "first_purchase_s", "purchases", "spend",
                               "surplus", "regretted"]]  # what the labels read of the control
    treat = sh[~is_control]
    del sh
    at = _pair(base, treat)  # each treatment visit's row of the control (-1: none)
    found = at >= 0
    take = np.maximum(at, 0)

    def ref(col: str) -> np.ndarray:
        v = base[col].to_numpy(dtype=float)[take] if len(base) else np.full(len(treat), np.nan)
        return np.where(found, v, np.nan)

    c_first = ref("first_purchase_s")
    t_first = treat.first_purchase_s.to_numpy()
    tb, cb = ~np.isnan(t_first), ~np.isnan(c_first)
    boosted = treat.boosted.to_numpy()
    code = {name: k for k, name in enumerate(LABELS)}
    label = np.select(
        [boosted & tb, boosted, tb & ~cb, tb & (t_first < c_first), tb & (t_first == c_first), tb & cb, cb],
        [code[x] for x in ("induced", "none", "induced", "accelerated", "same", "delayed", "prevented")],
        default=code["none"])
    out = treat.reset_index(drop=True)
    out["label"] = pd.Categorical.from_codes(label, categories=list(LABELS))
    out["seconds_gained"] = np.where(tb & cb & ~boosted, c_first - t_first, np.nan)
    for col in ("purchases", "spend", "surplus", "regretted"):
        out[f"{col}_change"] = out[col].to_numpy(dtype=float) - np.where(boosted, 0, np.nan_to_num(ref(col)))
    return out


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
    kb, kt = key[:len(base)], key[len(base):]
    if len(np.unique(kb)) < len(kb):
        raise ValueError("cannot reindex on an axis with duplicate labels")
    o = np.argsort(kb, kind="stable")
    pos = np.minimum(np.searchsorted(kb, kt, sorter=o), max(len(kb) - 1, 0))
    hit = (kb[o[pos]] == kt) if len(kb) else np.zeros(len(kt), bool)
    return np.where(hit, o[pos] if len(kb) else 0, -1)


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
    from fomolab.stats._intervals import t_interval

    res = results if isinstance(results, Results) else Results(results)
    full = attribute(res, control) if labels is None else labels
    # only the columns the measures use (a copy of those, not of every column)
    lab = full[["arm", "point", "replicate", "label", "purchases", "seconds_gained", "surplus_change",
                "spend_change", "regretted_change", "boosted", "surplus", "regretted"]].copy()
    if by == "quintile":
        edges = np.quantile(full.impulsiveness, [0.2, 0.4, 0.6, 0.8])
        lab["group"] = pd.Categorical(np.searchsorted(edges, full.impulsiveness, side="right") + 1)
        lab["group"] = lab["group"].map(lambda q: f"Q{q}")
    elif by == "segment":
        lab["group"] = full.segment.astype(str)
    elif by == "all":
        lab["group"] = "all"
    else:
        raise ValueError(f"by must be 'quintile', 'segment' or 'all': {by!r}")
    lab["induced_purchases"] = (lab.label == "induced") * lab.purchases
    lab["accelerated_purchases"] = (lab.label == "accelerated").astype(int)
    lab["seconds_gained_by_seller"] = np.where(lab.label == "accelerated", lab.seconds_gained, 0.0)
    lab["consumer_surplus_lost"] = -lab.surplus_change
    lab["seller_revenue_gained"] = lab.spend_change
    lab["regretted_added"] = lab.regretted_change
    # surplus lost on visits that lost (regret), arm minus control: a difference of totals, coupling-free
    control_surplus = np.where(lab.boosted, 0.0, lab.surplus - lab.surplus_change)
    lab["surplus_lost_to_regret_added"] = np.clip(-lab.surplus, 0, None) - np.clip(-control_surplus, 0, None)
    measures = ["induced_purchases", "accelerated_purchases", "seconds_gained_by_seller", "regretted",
                "regretted_added", "consumer_surplus_lost", "surplus_lost_to_regret_added", "seller_revenue_gained"]
    per_rep = lab.groupby(["arm", "point", "group", "replicate"], observed=True)[measures].sum().reset_index()
    rows = []
    for (arm, point, group), g in per_rep.groupby(["arm", "point", "group"], observed=True):
        for m in measures:
            mean, lo, hi = t_interval(g[m].to_numpy(dtype=float), level)
            rows.append({"arm": arm, "point": point, "group": group, "measure": m, "mean": mean,
                         "ci_lower": lo, "ci_upper": hi, "replicates": len(g)})
    order = {a: k for k, a in enumerate(res.manifest.get("arms", []))}
    out = pd.DataFrame(rows)
    return out.sort_values(["arm", "point"], key=lambda c: c.map(order) if c.name == "arm" else c,
                           kind="stable").reset_index(drop=True)
