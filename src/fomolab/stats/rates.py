"""Rates of purchases per product: an Andersen–Gill model with few-replicate inference.

The picture: a viewer watching for twenty minutes may buy the lipstick during
its slot and the serum during the next one, and with multi-unit demand buy a
product more than once.  Time to the *first* purchase of anything throws all
but one of those purchases away.  The Andersen–Gill model (Andersen and Gill
1982) keeps them: each viewer is at risk of buying product *p* while *p* is on
show during the visit, the follow-up is cut at every purchase of *p* into
counting-process rows ``(start, stop]`` on the time since arrival, and a Cox
partial likelihood on those rows estimates how a covariate multiplies the rate
(intensity) of purchases of *p*: the rate ratio.

The covariates are either the arm (one 0/1 indicator per treatment arm, each
against the control) or the tactics acting on the product (one indicator per
tactic kind on that product, when the arms' tactics are not collinear: the
flagship's sale, then the timer added to it, then the cue added to both).

Inference with few replicates works as :mod:`fomolab.stats.replicates`: the
model is fitted within each replicate (the arms of a replicate share their
viewers by common random numbers, so each replicate gives one paired
estimate), and the ``G`` per-replicate log rate ratios give a t interval with
``G - 1`` degrees of freedom.  Purchases of one viewer are correlated (a
viewer with a high interest buys both products); that dependence stays inside
the replicate and is carried by the spread between replicates, so no
viewer-level sandwich is needed (:func:`rate_model` with ``cluster`` gives the
pooled fit with R's ``cluster(id)`` errors too, for comparison and for field
data without replicates).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from fomolab.errors import DataError
from fomolab.stats import _checks, _folder
from fomolab.stats._counts import (
    EventTimeCounts,
    event_time_counts,
    first_seen_small_codes,
    small_code_type,
    sorted_codes,
)
from fomolab.stats._result import StatsResult

__all__ = ["RateModelResult", "RATE_COLUMNS", "purchase_intervals", "rate_model", "rate_table"]

#: The columns of ``Analysis.rates``.
RATE_COLUMNS = ["point", "product", "model", "term", "rate_ratio", "ci_lower", "ci_upper", "p", "replicates",
                "events", "viewers", "note"]


@dataclass(frozen=True, eq=False)
class RateModelResult(StatsResult):
    """An Andersen–Gill rate model, per replicate and combined across replicates.

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by covariate, columns ``COLUMNS``: ``coef`` (mean of the
        per-replicate log rate ratios), ``rate_ratio`` (its exponential),
        ``se``, ``ci_lower``, ``ci_upper`` (of the rate ratio), ``t``, ``df``
        (``G - 1``), ``p``, ``replicates``, ``note``.  Without ``replicate``,
        the single fit's numbers (``df`` infinite; the robust errors with a
        ``cluster``).
    per_replicate : pandas.DataFrame
        ``replicate, covariate, coef``: the per-replicate estimates.
    events : int
        Events (purchases) in the rows used.
    conf_level : float
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("coef", "rate_ratio", "se", "ci_lower", "ci_upper", "t", "df", "p",
                                          "replicates", "note")
    summary: pd.DataFrame
    per_replicate: pd.DataFrame
    events: int
    replicate: str | None = None
    cluster: str | None = None
    conf_level: float = 0.95

    def __repr__(self) -> str:
        how = (f"t across {int(self.summary['replicates'].max())} replicates" if self.replicate
               else f"one fit{', cluster=' + repr(self.cluster) if self.cluster else ''}")
        return (f"<RateModelResult: {len(self.summary)} covariate(s), {self.events} events, {how}, "
                f"conf_level={self.conf_level:g}>")

    def _show_index(self) -> bool:
        return True


def rate_model(
    data: pd.DataFrame,
    duration: str,
    event: str,
    covariates: str | Sequence[str],
    *,
    start: str,
    replicate: str | None = None,
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
    ties: str = "efron",
    conf_level: float = 0.95,
) -> RateModelResult:
    """Andersen–Gill model of the rate of recurrent events, per replicate or pooled.

    Parameters
    ----------
    data : pandas.DataFrame
        Counting-process rows: one per interval ``(start, duration]`` of a
        subject's follow-up, cut at each of its events (:func:`purchase_intervals`).
    duration : str
        Column of the interval's end (time since arrival).
    event : str
        0/1 column: did the interval end with an event?
    covariates : str or list of str
        Numeric covariate columns (e.g. 0/1 arm or tactic indicators).
    start : str
        Column of the interval's start: a row is at risk for ``start < t <= duration``.
    replicate : str, optional
        Column of replicate ids.  The model is fitted within each replicate and
        the per-replicate coefficients combined by a t interval with ``G - 1``
        degrees of freedom (the paired analysis of arms sharing viewers).
        Without it, one fit of all rows.
    strata : str or list of str, optional
        Columns whose levels get their own baseline rate (R's ``strata()``).
    cluster : str, optional
        For the single fit (no ``replicate``): column of subject ids for R's
        ``cluster(id)`` robust errors, as ``coxph(Surv(start, stop, event) ~ x +
        cluster(id))``.  Ignored with ``replicate`` (the replicates are the sample).
    ties : {"efron", "breslow"}, default "efron"
    conf_level : float, default 0.95

    Returns
    -------
    RateModelResult

    Raises
    ------
    DataError
        Bad columns, or (with ``replicate``) no replicate gives an estimate.

    Notes
    -----
    With ``replicate``, a replicate whose fit fails (no event in an arm, a
    covariate constant among its rows) is left out of no coefficient silently:
    the coefficient is NaN and ``note`` names the replicate, as leaving it out
    would bias the rest.  With one replicate there is no interval.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"start": [0, 2, 0, 0, 3, 0, 0, 1], "stop": [2, 5, 4, 3, 6, 5, 1, 6],
    ...                   "event": [1, 0, 0, 1, 1, 0, 1, 1], "x": [1, 1, 0, 1, 1, 0, 0, 0],
    ...                   "id": [1, 1, 2, 3, 3, 4, 5, 5]})
    >>> fit = rate_model(d, "stop", "event", "x", start="start", cluster="id")
    >>> fit
    <RateModelResult: 1 covariate(s), 5 events, one fit, cluster='id', conf_level=0.95>
    >>> round(float(fit.summary.loc["x", "rate_ratio"]), 4)
    1.9212
    """
    from fomolab.stats.cox import cox

    data = _checks.check_frame(data)
    covs = _checks.as_list(covariates)
    _checks.check_columns(data, [start, duration, event, replicate, cluster, *covs, *_checks.as_list(strata)])
    level = _checks.check_probability(conf_level, "conf_level")
    events = int(_checks.events01(data, event).sum())
    if replicate is None:
        f = cox(data, duration, event, covs, start=start, strata=strata, cluster=cluster, ties=ties,
                conf_level=level)
        s = f.summary
        summary = pd.DataFrame({"coef": s.coef, "rate_ratio": s.hazard_ratio, "se": s.se, "ci_lower": s.ci_lower,
                                "ci_upper": s.ci_upper, "t": s.z, "df": np.inf, "p": s.p, "replicates": 1,
                                "note": ""}, index=s.index)
        return RateModelResult(summary=summary, per_replicate=pd.DataFrame(columns=["replicate", "covariate",
                                                                                    "coef"]),
                               events=events, replicate=None, cluster=cluster, conf_level=level)
    reps = list(pd.unique(_checks.keys(data, replicate)))
    with contextlib.suppress(TypeError):
        reps.sort()
    coefs, problems = [], {}
    for r in reps:
        sub = data[data[replicate].to_numpy() == r]
        coef, problem = _coefficients(len(covs), lambda f: f.summary.coef, cox, sub, duration, event, covs,
                                      start=start, strata=strata, ties=ties, conf_level=level)
        if problem:
            problems[r] = problem
        coefs.append(coef)
    summary, per = _across_replicates(reps, coefs, problems, covs, level)
    return RateModelResult(summary=summary, per_replicate=per, events=events, replicate=replicate,
                           cluster=None, conf_level=level)


def _coefficients(k: int, coef_of: Callable[[Any], Any], fit: Callable[..., Any], *args: Any,
                  **kwargs: Any) -> tuple[np.ndarray, str]:
    """``coef_of(fit(*args, **kwargs))``, one replicate's ``k`` coefficients, or NaN and why (the fit's
    error, or the warnings it gave)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            coef = np.asarray(coef_of(fit(*args, **kwargs)), float)
    except DataError as exc:
        return np.full(k, np.nan), str(exc)
    if caught or not np.isfinite(coef).all():
        return np.full(k, np.nan), "; ".join(sorted({str(w.message) for w in caught})) or "no finite estimate"
    return coef, ""


def _across_replicates(reps: list[Any], coefs: list[np.ndarray], problems: dict[Any, str], covs: list[str],
                       level: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:class:`RateModelResult`'s ``summary`` and ``per_replicate`` from per-replicate coefficients."""
    from scipy import stats as st

    from fomolab.stats.replicates import t_across

    rows = [(r, c, float(b)) for r, coef in zip(reps, coefs, strict=True) for c, b in zip(covs, coef, strict=True)]
    per = pd.DataFrame(rows, columns=["replicate", "covariate", "coef"])
    out = []
    for c in covs:
        x = per.coef[per.covariate == c].to_numpy(float)
        G = len(x)
        note = ""
        if not np.isfinite(x).all():
            bad = [r for r, v in zip(reps, x, strict=True) if not np.isfinite(v)]
            note = (f"replicate(s) {', '.join(map(repr, [_checks._py(b) for b in bad[:5]]))} give no estimate "
                    f"({problems.get(bad[0], 'no finite estimate')}): leaving them out would bias the rest")
            out.append(dict(coef=np.nan, rate_ratio=np.nan, se=np.nan, ci_lower=np.nan, ci_upper=np.nan,
                            t=np.nan, df=float(G - 1), p=np.nan, replicates=G, note=note))
            continue
        t = {k: float(v) for k, v in t_across(x, conf_level=level).items()}
        if G == 1:
            note = "one replicate: no interval (needs 2 or more)"
        elif G == 2:
            note = (f"2 replicates: a t interval on 1 df (critical value "
                    f"{float(st.t.ppf(0.5 + level / 2, 1)):.1f}), very wide")
        out.append(dict(coef=t["estimate"], rate_ratio=math.exp(t["estimate"]), se=t["se"],
                        ci_lower=math.exp(t["ci_lower"]) if np.isfinite(t["ci_lower"]) else np.nan,
                        ci_upper=math.exp(t["ci_upper"]) if np.isfinite(t["ci_upper"]) else np.nan,
                        t=t["t"], df=t["df"], p=t["p"], replicates=G, note=note))
    summary = pd.DataFrame(out, index=pd.Index(covs, name="covariate"))[list(RateModelResult.COLUMNS)]
    return summary, per


def purchase_intervals(shoppers: pd.DataFrame, events: pd.DataFrame, slots: pd.DataFrame) -> pd.DataFrame:
    """Counting-process rows of each viewer's purchases of each product, on the time since arrival.

    Parameters
    ----------
    shoppers : pandas.DataFrame
        ``run_id, shopper_id, arrival_s, departure_s`` and any columns to
        carry (``arm, replicate, point``).
    events : pandas.DataFrame
        ``run_id, time_s, kind, shopper_id, product``: the ``purchase`` rows count.
    slots : pandas.DataFrame
        ``run_id, product, slot_start_s, slot_end_s``: when each product is on show.

    Returns
    -------
    pandas.DataFrame
        The carried columns and ``product, start, stop, event``: a viewer is at
        risk of buying a product from ``max(arrival, slot start)`` to
        ``min(departure, slot end)`` (seconds since arrival), cut at each of
        its purchases of that product (``event`` 1 on the row a purchase
        ends).  Visits that do not overlap a product's slot give it no row.
    """
    sh = shoppers.assign(run_id=shoppers.run_id.astype(str)).reset_index(drop=True)
    sl = slots.assign(run_id=slots.run_id.astype(str), product=slots["product"].astype(str))
    sl = sl[["run_id", "product", "slot_start_s", "slot_end_s"]].drop_duplicates(["run_id", "product"])
    base = sh.merge(sl, on="run_id", how="inner")
    arr = base.arrival_s.to_numpy(float)
    lo = np.maximum(arr, base.slot_start_s.to_numpy(float)) - arr
    hi = np.minimum(base.departure_s.to_numpy(float), base.slot_end_s.to_numpy(float)) - arr
    base = base.assign(lo=lo, hi=hi)[hi > lo].drop(columns=["slot_start_s", "slot_end_s"])
    buys = events[events.kind.astype(str) == "purchase"]
    buys = pd.DataFrame({"run_id": buys.run_id.astype(str).to_numpy(),
                         "shopper_id": buys.shopper_id.to_numpy().astype("int64"),
                         "product": buys["product"].astype(str).to_numpy(), "time_s": buys.time_s.to_numpy(float)})
    key = ["run_id", "shopper_id", "product"]
    b = buys.merge(base[key + ["arrival_s", "lo", "hi"]], on=key, how="inner")
    b = b.assign(t=b.time_s - b.arrival_s)
    b = b[(b.t > b.lo) & (b.t <= b.hi)].sort_values(key + ["t"], kind="mergesort")
    # each purchase ends one row that starts at the previous purchase (or the entry)
    prev = b.groupby(key, sort=False).t.shift(1)
    b = b.assign(start=prev.fillna(b.lo).to_numpy(), stop=b.t.to_numpy(), event=1)
    last = b.groupby(key, sort=False).t.max().rename("last").reset_index()
    tail = base.merge(last, on=key, how="left")
    tail = tail.assign(start=tail["last"].fillna(tail.lo).to_numpy(), stop=tail.hi.to_numpy(), event=0)
    tail = tail[tail.stop > tail.start]
    carry = [c for c in sh.columns if c not in ("arrival_s", "departure_s")]
    ev_rows = b[key + ["start", "stop", "event"]].merge(base[carry + ["product"]].drop_duplicates(key), on=key)
    out = pd.concat([ev_rows, tail[carry + ["product", "start", "stop", "event"]]], ignore_index=True)
    return out.sort_values(key + ["stop"], kind="mergesort").reset_index(drop=True)


def _tactic_design(runs: pd.DataFrame, tactics: pd.DataFrame, product: str, arms: list[str]
                   ) -> pd.DataFrame | None:
    """Per arm, 0/1 columns of the tactic kinds acting on ``product``; None when they are collinear or absent."""
    t = tactics.assign(run_id=tactics.run_id.astype(str), product=tactics["product"].astype(str),
                       tactic=tactics.tactic.astype(str))
    t = t[t["product"] == product].merge(runs[["run_id", "arm"]].assign(run_id=runs.run_id.astype(str),
                                                                          arm=runs.arm.astype(str)), on="run_id")
    kinds = sorted(set(t.tactic))
    if not kinds:
        return None
    m = pd.DataFrame(0, index=arms, columns=kinds)
    for arm, g in t.groupby("arm"):
        if arm in m.index:
            m.loc[arm, sorted(set(g.tactic))] = 1
    m = m.loc[:, m.nunique() > 1]
    if m.empty or np.linalg.matrix_rank(np.column_stack([np.ones(len(m)), m.to_numpy(float)])) < m.shape[1] + 1:
        return None
    return m


@dataclass
class _Part:
    """One (point, product)'s counts: per replicate and arm, at risk and purchases at each purchase time."""

    point: int
    product: str
    arms: np.ndarray  # arm names of the patterns
    replicates: np.ndarray  # replicate of each stratum
    counts: EventTimeCounts
    rows: np.ndarray  # (strata, patterns): counting-process rows
    viewers: np.ndarray  # (patterns,)
    events: np.ndarray  # (patterns,)


def _part(point: int, product: str, arm: np.ndarray, rep: np.ndarray, lo: np.ndarray, hi: np.ndarray,
          n_rows: np.ndarray, viewer: np.ndarray, ev_arm: np.ndarray, ev_rep: np.ndarray, ev_t: np.ndarray,
          arm_names: np.ndarray | None = None, rep_names: np.ndarray | None = None) -> _Part:
    """A :class:`_Part` from at-risk intervals ``(lo, hi]`` (one per viewer, or per row) and purchase times.

    ``arm`` and ``rep`` (and ``ev_arm``, ``ev_rep``) are values, or codes into
    ``arm_names`` and ``rep_names`` when these are given.
    """
    if arm_names is None or rep_names is None:
        arms, pat = sorted_codes(arm)
        reps, st_ = sorted_codes(rep)
        ev_p = np.searchsorted(arms, ev_arm)
        ev_s = np.searchsorted(reps, ev_rep)
    else:  # codes: keep the levels that occur, in sorted order of their names
        used_a = np.flatnonzero(np.bincount(arm, minlength=len(arm_names)))
        used_r = np.flatnonzero(np.bincount(rep, minlength=len(rep_names)))
        oa, orr = np.argsort(arm_names[used_a], kind="stable"), np.argsort(rep_names[used_r], kind="stable")
        arms, reps = arm_names[used_a][oa], rep_names[used_r][orr]
        map_a = np.zeros(len(arm_names), np.int64)
        map_a[used_a[oa]] = np.arange(len(oa))
        map_r = np.zeros(len(rep_names), np.int64)
        map_r[used_r[orr]] = np.arange(len(orr))
        pat, st_, ev_p, ev_s = map_a[arm], map_r[rep], map_a[ev_arm], map_r[ev_rep]
    P, S = len(arms), len(reps)
    counts = event_time_counts(st_, pat, lo, hi, ev_s, ev_p, ev_t, P)
    rows = np.bincount(st_ * P + pat, weights=n_rows, minlength=S * P).reshape(S, P)
    viewers = np.bincount(pat, weights=viewer, minlength=P)
    return _Part(point, product, arms, reps, counts, rows, viewers, np.bincount(ev_p, minlength=P))


#: The columns of the visits :func:`rate_table` reads.
_VISIT_COLUMNS = ["run_id", "shopper_id", "arm", "replicate", "point", "arrival_s", "departure_s"]


def _parts_from_rows(shoppers: pd.DataFrame, events: pd.DataFrame, slots: pd.DataFrame) -> list[_Part]:
    """:class:`_Part` of each (point, product) from :func:`purchase_intervals`' rows (any visits)."""
    rows = purchase_intervals(shoppers, events, slots)
    out = []
    for (point, product), g in rows.groupby(["point", "product"], sort=True):
        first = ~g.duplicated(["run_id", "shopper_id"]).to_numpy()
        ev = g.event.to_numpy() == 1
        arm = g.arm.astype(str).to_numpy()
        rep = g.replicate.to_numpy()
        out.append(_part(int(point), str(product), arm, rep, g.start.to_numpy(float), g.stop.to_numpy(float),
                         np.ones(len(g)), first.astype(float), arm[ev], rep[ev], g.stop.to_numpy(float)[ev]))
    return out


def _positions(key_s: np.ndarray, bounds: np.ndarray, run: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``np.searchsorted(key_s, key)`` where ``key`` is found: ``key_s`` are the visits' distinct, sorted (run,
    viewer id) keys, ``bounds`` each run's first visit, ``run`` each key's run (-1: none).

    A run's viewer ids are usually its visits numbered from its first id: the position is then its run's
    first visit plus the id's offset, checked against the key there, and only the other keys (none, as a
    folder's runs write them) are searched (a search per purchase would jump about all visits).
    """
    n = len(key_s)
    pos = np.full(len(key), n, np.int64)
    has = np.flatnonzero((run >= 0) & (run < len(bounds) - 1))
    r = run[has]
    first = bounds[r]
    filled = first < bounds[r + 1]
    first_id = np.where(filled, key_s[np.minimum(first, max(n - 1, 0))] if n else 0, 0) & 0xFFFFFFFF
    guess = first + ((key[has] & 0xFFFFFFFF) - first_id)
    ok = filled & (guess >= first) & (guess < bounds[r + 1])
    ok[ok] = key_s[guess[ok]] == key[has][ok]
    pos[has[ok]] = guess[ok]
    rest = np.ones(len(key), bool)
    rest[has[ok]] = False
    pos[rest] = np.searchsorted(key_s, key[rest])
    return pos


def _runs_in_order(run_id: pd.Series, sid: np.ndarray, step: int = 1 << 20) -> tuple[np.ndarray, np.ndarray] | None:
    """The runs' names and each run's first visit (and the end), where the visits come as a folder gives them:
    a categorical ``run_id`` whose codes do not decrease, and in each run viewer ids that increase, from 0
    and below ``2 ** 32``; else None.

    The runs are then numbered by first appearance, as :func:`pandas.factorize` numbers them, and the (run,
    viewer id) keys of the visits are in sorted order.  Checked a million rows at a time on the categorical's
    codes: no run code or key of eight bytes is made per visit.
    """
    if not isinstance(run_id.dtype, pd.CategoricalDtype) or len(sid) == 0 or sid.dtype.kind not in "iu":
        return None
    codes = run_id.cat.codes.to_numpy()
    counts = np.zeros(len(run_id.cat.categories), np.int64)
    for i in range(0, len(codes), step):
        c, v = codes[i:i + step + 1], sid[i:i + step + 1]  # one row more: the step to the next block
        if c.min() < 0 or bool((c[1:] < c[:-1]).any()) or v.min() < 0 or v.max() >= 2 ** 32:
            return None
        down = np.flatnonzero(v[1:] <= v[:-1])  # where the ids do not increase, a new run starts
        if bool((c[down + 1] == c[down]).any()):
            return None
        counts += np.bincount(codes[i:i + step], minlength=len(counts))
    present = np.flatnonzero(counts)
    bounds = np.zeros(len(present) + 1, np.int64)
    np.cumsum(counts[present], out=bounds[1:])
    return np.asarray(run_id.cat.categories[present]).astype(str), bounds


def _positions_in_runs(sid: np.ndarray, bounds: np.ndarray, run: np.ndarray, b_sid: np.ndarray,
                       step: int = 1 << 20) -> np.ndarray:
    """Each purchase's visit: the position of viewer id ``b_sid`` among its run's visits (``sid``, increasing
    in each run; ``bounds`` each run's first visit), ``len(sid)`` where it has none (``run`` -1: no run).

    As :func:`_positions` on (run, viewer id) keys: a run's first visit plus the id's offset, checked there,
    and the other purchases searched in their run's ids.  A million purchases at a time, so that the
    look-up's arrays (eight bytes a purchase each) follow the block, not the folder.
    """
    n = len(sid)
    pos = np.full(len(run), n, np.int64)
    for i in range(0, len(run), step):
        run_i, sid_i, pos_i = run[i:i + step], b_sid[i:i + step], pos[i:i + step]
        has = np.flatnonzero((run_i >= 0) & (run_i < len(bounds) - 1))
        r = run_i[has]
        first, end = bounds[r], bounds[r + 1]
        filled = first < end
        first_id = np.where(filled, sid[np.minimum(first, max(n - 1, 0))] if n else 0, 0).astype(np.int64)
        guess = first + (sid_i[has] - first_id)
        del first_id
        ok = filled & (guess >= first) & (guess < end)
        del first, end, filled
        ok[ok] = sid[guess[ok]] == sid_i[has][ok]
        pos_i[has[ok]] = guess[ok]
        # the others (those after a gap in their run's ids) searched in their run's ids, a run at a time
        rest = has[~ok]
        rest = rest[np.argsort(run_i[rest], kind="stable")]
        ranked = run_i[rest]
        cuts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1], True]) if len(rest) else np.zeros(0, np.int64)
        for c0, c1 in itertools.pairwise(cuts):
            mine = rest[c0:c1]
            k = int(ranked[c0])
            i0, i1 = int(bounds[k]), int(bounds[k + 1])
            at = i0 + np.searchsorted(sid[i0:i1], sid_i[mine])
            hit = at < i1
            hit[hit] = sid[at[hit]] == sid_i[mine][hit]
            pos_i[mine[hit]] = at[hit]
    return pos


def _codes_by_run(col: pd.Series, ordered: Callable[[np.ndarray], np.ndarray], bounds: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`fomolab.stats._counts.first_seen_small_codes` of ``col`` (rows ``ordered``), and each run's code
    (-1 for a run without visits), where each run's visits (``bounds``) share one value.

    That value is looked up once per run, not hashed per visit (the runs come in order, so their first
    appearances are the visits' ones); otherwise ``(*first_seen_small_codes(col, ordered), None)``.
    """
    categorical = isinstance(col.dtype, pd.CategoricalDtype)
    raw = col.cat.codes.to_numpy() if categorical else col.to_numpy()
    filled = np.flatnonzero(bounds[1:] > bounds[:-1])
    if raw.dtype.kind not in "iu" or not len(filled) or col.isna().any():
        return (*first_seen_small_codes(col, ordered), None)
    values = ordered(raw)
    starts = bounds[filled]
    lo, hi = np.minimum.reduceat(values, starts), np.maximum.reduceat(values, starts)
    if (lo != hi).any():
        return (*first_seen_small_codes(col, ordered), None)
    code, names = pd.factorize(lo)
    names = np.asarray(col.cat.categories)[names] if categorical else np.asarray(names)
    code = code.astype(small_code_type(len(names)))
    of_run = np.full(len(bounds) - 1, -1, np.int64)
    of_run[filled] = code
    return np.repeat(code, bounds[filled + 1] - starts), names, of_run


def _parts(shoppers: pd.DataFrame, events: pd.DataFrame, slots: pd.DataFrame) -> list[_Part]:
    """:class:`_Part` of each (point, product), from sorted searches on the visits (no join of rows).

    The counts of :func:`purchase_intervals`' rows: a viewer is at risk of
    buying a product from ``max(arrival, slot start)`` to ``min(departure,
    slot end)`` (since arrival), its purchases of the product in that span
    are its events.  Visits are matched to purchases by run and viewer id;
    with more than one visit of a viewer in a run (a marketplace's switches),
    the rows themselves are counted.
    """
    vid = shoppers.shopper_id.to_numpy()  # the frame's own ids, in any integer type
    in_order = _runs_in_order(shoppers.run_id, vid)
    key_s: np.ndarray | None = None

    def ordered(x: np.ndarray) -> np.ndarray:
        return x

    if in_order is not None:  # a folder's visits: runs and ids in order, no per-visit key
        run_names, bounds = in_order
    else:
        rc, run_names = pd.factorize(shoppers.run_id, sort=False)
        run_names = np.asarray(run_names).astype(str)
        sid = vid
        if sid.dtype.kind not in "iu" or sid.dtype.itemsize > 4:  # (four-byte ids are or-ed in as they are)
            sid = sid.astype(np.int64, copy=False)
        if len(sid) and (sid.min() < 0 or sid.max() >= 2 ** 32):
            return _parts_from_rows(shoppers[_VISIT_COLUMNS], events, slots)
        # each run's visits, counted before the run codes become the keys: the runs' bounds in key order
        bounds = np.zeros(len(run_names) + 1, np.int64)
        np.cumsum(np.bincount(rc, minlength=len(run_names)), out=bounds[1:])
        key = rc.astype(np.int64, copy=False)  # (run, viewer id) in one int64, built in place: 8 bytes a visit
        del rc
        key <<= 32
        key |= sid
        del sid
        if len(key) < 2 or bool((key[1:] > key[:-1]).all()):  # in order after all (runs not in code order)
            key_s = key
        else:
            order = np.argsort(key, kind="stable")
            key_s = key[order]
            if (np.diff(key_s) == 0).any():
                return _parts_from_rows(shoppers[_VISIT_COLUMNS], events, slots)

            def ordered(x: np.ndarray) -> np.ndarray:
                return x[order]
        del key
    run_at = {str(r): k for k, r in enumerate(run_names)}
    buys = events[(events.kind == "purchase").to_numpy()]
    # runs and products as codes (a categorical's looked up per category), not a string per purchase
    if isinstance(buys.run_id.dtype, pd.CategoricalDtype):
        b_run = _folder.positions(buys.run_id, run_at, -1)
    else:
        b_run = pd.Categorical(buys.run_id.astype(str), categories=run_names).codes.astype(np.int64)
    b_sid = buys.shopper_id.to_numpy().astype(np.int64)
    if key_s is None:
        pos = _positions_in_runs(vid, bounds, b_run, b_sid)
        found = (b_run >= 0) & (pos < len(vid))
        found[found] = vid[pos[found]] == b_sid[found]
    else:
        b_key = (b_run << 32) | np.where(b_run >= 0, b_sid, 0)
        pos = _positions(key_s, bounds, b_run, b_key)
        found = (b_run >= 0) & (pos < len(key_s))
        found[found] = key_s[pos[found]] == b_key[found]
        del b_key
    del key_s, vid  # done with once the purchases are placed
    sold = buys["product"]
    if isinstance(sold.dtype, pd.CategoricalDtype):  # the products' ranks in sorted order: sorted as the text
        prod_names = sorted({str(c) for c in sold.cat.categories} | {"nan"})  # "nan": a missing product, as text
        ranks = {n: k for k, n in enumerate(prod_names)}
        prod_at: dict[str, int] | None = ranks
        b_prod = _folder.positions(sold, ranks, ranks["nan"])[found].astype(small_code_type(len(ranks)))
    else:
        prod_at = None
        b_prod = sold.astype(str).to_numpy()[found]
    del sold
    # the purchases found are kept: their runs and products in one or two bytes, their visits in four
    b_pos = pos[found].astype(np.int32 if len(shoppers) < 2 ** 31 else np.int64)
    b_time = buys.time_s.to_numpy(float)[found]
    b_rc = b_run[found].astype(small_code_type(len(run_names)))
    del buys, b_run, b_sid, pos, found  # (eight bytes a purchase each)
    arr = ordered(shoppers.arrival_s.to_numpy(float))
    dep = ordered(shoppers.departure_s.to_numpy(float))
    # a few levels: 1 or 2 bytes a visit, not 8
    arm_code, arm_names, _ = _codes_by_run(shoppers.arm, ordered, bounds)
    arm_names = np.asarray(arm_names).astype(str)
    rep_code, rep_names, rep_of_run = _codes_by_run(shoppers.replicate, ordered, bounds)
    rep_names = np.asarray(rep_names)
    point = ordered(shoppers.point.to_numpy())
    ob = np.lexsort((b_prod, b_rc))
    b_prod, b_pos, b_time, b_rc = b_prod[ob], b_pos[ob], b_time[ob], b_rc[ob]
    del ob
    # each run's purchases, found once: a scalar searched in the small-integer codes of all purchases would
    # cast the whole array at every slot (a cost per slot that grows with the folder)
    b_bounds = np.searchsorted(b_rc, np.arange(len(run_names) + 1), side="left")
    del b_rc
    sl = slots.assign(run_id=slots.run_id.astype(str), product=slots["product"].astype(str))
    sl = sl[["run_id", "product", "slot_start_s", "slot_end_s"]].drop_duplicates(["run_id", "product"])
    sl = sl[sl.run_id.isin(run_at)]
    todo: dict[tuple[int, str], list[tuple[int, float, float]]] = {}
    points_of: dict[int, np.ndarray] = {}
    for rid, prod, a, b in zip(sl.run_id, sl["product"], sl.slot_start_s.astype(float), sl.slot_end_s.astype(float),
                               strict=True):
        r = run_at[rid]
        if r not in points_of:
            p_r = point[bounds[r]:bounds[r + 1]]
            points_of[r] = p_r[:1] if len(p_r) and (p_r == p_r[0]).all() else np.unique(p_r)
        for pt in points_of[r]:
            todo.setdefault((int(pt), prod), []).append((r, a, b))
    # a run's replicate (-1: visits of several), so that each stratum's runs are counted together
    if rep_of_run is not None:
        run_rep = rep_of_run
    else:
        run_rep = np.full(len(run_names), -1, np.int64)
        filled = np.flatnonzero(bounds[1:] > bounds[:-1])
        lo_r = np.minimum.reduceat(rep_code, bounds[filled]) if len(filled) else np.zeros(0, np.int64)
        hi_r = np.maximum.reduceat(rep_code, bounds[filled]) if len(filled) else np.zeros(0, np.int64)
        run_rep[filled] = np.where(lo_r == hi_r, lo_r, -1)

    def arrays(pt: int, prod: str, slots_of: list[tuple[int, float, float]]) -> dict[str, np.ndarray]:
        """The at-risk intervals and purchases of ``prod`` in these runs (codes into arm_names, rep_names)."""
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("arm", "rep", "lo", "hi", "rows", "ea", "er", "et")}
        for r, a, b in slots_of:
            i0, i1 = int(bounds[r]), int(bounds[r + 1])
            one = len(points_of[r]) == 1
            if one:  # a run's visits are one point's: slices, no copies
                x, y = arr[i0:i1], dep[i0:i1]
            else:
                sel = np.flatnonzero(point[i0:i1] == pt)
                x, y = arr[i0:i1][sel], dep[i0:i1][sel]
            lo = np.maximum(x, a)
            lo -= x
            hi = np.minimum(y, b)
            hi -= x
            on = np.flatnonzero(hi > lo)  # visits at risk: one interval each
            j0, j1 = int(b_bounds[r]), int(b_bounds[r + 1])
            key_p = prod if prod_at is None else b_prod.dtype.type(prod_at.get(prod, -1))
            e0 = j0 + int(np.searchsorted(b_prod[j0:j1], key_p, side="left"))
            e1 = j0 + int(np.searchsorted(b_prod[j0:j1], key_p, side="right"))
            local = b_pos[e0:e1] - i0
            if not one:
                at = np.searchsorted(sel, local)
                ok = at < len(sel)
                ok[ok] = sel[at[ok]] == local[ok]
                local = at[ok]
                e_time = b_time[e0:e1][ok]
            else:
                e_time = b_time[e0:e1]
            t = e_time - x[local]
            inside = (hi[local] > lo[local]) & (t > lo[local]) & (t <= hi[local])
            local, t = local[inside], t[inside]
            pair = np.searchsorted(on, local)
            last = np.full(len(on), -np.inf)
            np.maximum.at(last, pair, t)
            n_ev = np.bincount(pair, minlength=len(on))
            g = on + i0 if one else sel[on] + i0
            ge = local + i0 if one else sel[local] + i0
            cols["arm"].append(arm_code[g])
            cols["rep"].append(rep_code[g])
            cols["lo"].append(lo[on])
            cols["hi"].append(hi[on])
            cols["rows"].append(n_ev + (last < hi[on]))
            cols["ea"].append(arm_code[ge])
            cols["er"].append(rep_code[ge])
            cols["et"].append(t)
        return {k: np.concatenate(v) for k, v in cols.items()}

    out = []
    for (pt, prod), slots_of in sorted(todo.items()):
        part = _chunked_part(pt, prod, slots_of, run_rep, bounds, arrays, arm_names, rep_names)
        if part is not None:
            out.append(part)
    return out


#: About this many visits' intervals are counted at a time in :func:`rate_table` (whole replicates each):
#: its memory follows them, not the folder.
_CHUNK_VISITS = 1_000_000


def _chunked_part(pt: int, prod: str, slots_of: list[tuple[int, float, float]], run_rep: np.ndarray,
                  bounds: np.ndarray, arrays: Callable[..., dict[str, np.ndarray]], arm_names: np.ndarray,
                  rep_names: np.ndarray) -> _Part | None:
    """:func:`_part` of one (point, product), its runs counted a few replicates at a time.

    The counts at the event times of a stratum (replicate) need only its own
    visits, so the runs are taken in groups of whole replicates of about
    ``_CHUNK_VISITS`` visits; each group's counts (on the folder's arm and
    replicate codes) are joined, and then, as :func:`_part` does, the arms and
    replicates that occur are put in sorted order of their names.  Counts are
    integers: the same table as one pass over all runs.
    """
    A, R = len(arm_names), len(rep_names)
    if (run_rep[[r for r, _, _ in slots_of]] < 0).any():  # a run of several replicates: all runs at once
        groups = [slots_of]
    else:
        by_rep = sorted(slots_of, key=lambda s: int(run_rep[s[0]]))
        groups, size, last = [], 0, -1
        for s in by_rep:
            rep = int(run_rep[s[0]])
            if not groups or (size >= _CHUNK_VISITS and rep != last):
                groups.append([])
                size = 0
            groups[-1].append(s)
            size += int(bounds[s[0] + 1] - bounds[s[0]])
            last = rep
    parts, n_rep = [], np.zeros(R, np.int64)
    rows, viewers, events = np.zeros((R, A)), np.zeros(A), np.zeros(A, np.int64)
    for group in groups:
        c = arrays(pt, prod, group)
        if not len(c["lo"]):
            continue
        r0 = int(c["rep"].min())  # the group's strata from 0: its counts loop over its own cells only
        # the exits (a visit's end of the slot, since arrival) follow no order: the default quicksort
        counts = event_time_counts(c["rep"] - r0, c["arm"], c["lo"], c["hi"], c["er"] - r0, c["ea"], c["et"], A)
        parts.append(EventTimeCounts(counts.stratum + r0, counts.time, counts.at_risk, counts.deaths))
        n_rep += np.bincount(c["rep"], minlength=R)
        cell = c["rep"].astype(np.int64) * A + c["arm"]  # (codes of one or two bytes would overflow)
        rows += np.bincount(cell, weights=c["rows"].astype(float), minlength=R * A).reshape(R, A)
        viewers += np.bincount(c["arm"], minlength=A)
        events += np.bincount(c["ea"], minlength=A)
        del c
    if not parts:
        return None
    # the levels that occur, in sorted order of their names (as _part does with codes)
    used_a = np.flatnonzero(viewers > 0)
    used_r = np.flatnonzero(n_rep > 0)
    oa, orr = np.argsort(arm_names[used_a], kind="stable"), np.argsort(rep_names[used_r], kind="stable")
    cols, keep = used_a[oa], used_r[orr]
    map_r = np.zeros(R, np.int64)
    map_r[keep] = np.arange(len(keep))
    stratum = map_r[np.concatenate([p.stratum for p in parts])]
    time = np.concatenate([p.time for p in parts])
    o = np.lexsort((time, stratum))  # (stratum, time) pairs are distinct: one order
    counts = EventTimeCounts(stratum[o], time[o], np.concatenate([p.at_risk for p in parts])[o][:, cols],
                             np.concatenate([p.deaths for p in parts])[o][:, cols])
    return _Part(pt, prod, arm_names[cols], rep_names[keep], counts, rows[keep][:, cols], viewers[cols],
                 events[cols])




def rate_table(shoppers: pd.DataFrame, events: pd.DataFrame, slots: pd.DataFrame, runs: pd.DataFrame,
               tactics: pd.DataFrame | None, order: list[str], control: str, conf_level: float) -> pd.DataFrame:
    """Rate ratios of purchases per product, by arm and by tactic (``Analysis.rates``).

    ``shoppers`` needs the columns ``run_id, shopper_id, arm, replicate,
    point, arrival_s, departure_s`` (others are not read), ``events`` its
    ``purchase`` rows.

    Per point and product: the Andersen–Gill model of the product's purchases
    (:func:`rate_model` on :func:`purchase_intervals`) on the arm indicators
    (``model = "arm"``: each treatment arm against the control), and, where
    the tactics acting on the product differ between arms and are not
    collinear, on tactic indicators (``model = "tactic"``: each tactic's
    multiplier of the rate with the others held fixed).  Fitted within each
    replicate, t interval across replicates.

    The covariates are functions of the arm, so each fit needs only, per
    replicate and purchase time, the viewers of each arm at risk of buying
    the product and buying it then (:mod:`fomolab.stats._counts`): the
    numbers of :func:`rate_model` on the rows, from sorted searches on the
    visits and purchases, without building the rows.
    """
    from fomolab.stats._counts import cox_counts, rows_by_code
    from fomolab.stats.changes import MAX_BATCHES

    parts = _parts(shoppers, events, slots)
    all_reps = np.unique(np.concatenate([p.replicates[p.rows.sum(axis=1) > 0] for p in parts])) if parts \
        else np.zeros(0)
    many = len(all_reps) > MAX_BATCHES
    level = _checks.check_probability(conf_level, "conf_level")
    rows = []
    for part in parts:
        present = set(part.arms[part.viewers > 0])
        designs: list[tuple[str, pd.DataFrame]] = []
        arms = [a for a in order if a in present]
        if control in arms and len(arms) > 1:
            treated = [a for a in arms if a != control]
            designs.append(("arm", pd.DataFrame({a: [int(b == a) for b in arms] for a in treated}, index=arms)))
        td = _tactic_design(runs, tactics, part.product, arms) if tactics is not None and len(tactics) else None
        if td is not None:
            designs.append(("tactic", td))
        code = np.searchsorted(all_reps, part.replicates)
        batch = code % MAX_BATCHES if many else code
        has_rows = part.rows.sum(axis=1) > 0
        # the counts' rows of each batch, in their order: one stable sort, then slices
        by_batch, cuts = rows_by_code(batch[part.counts.stratum], int(batch.max(initial=0)) + 1)
        for model, design in designs:
            cols = [f"x{j}" for j in range(design.shape[1])]
            X = design.reindex(part.arms).to_numpy(float)
            bts = sorted({int(b) for b in batch[has_rows]})
            coefs, problems = [], {}
            for bt in bts:
                in_batch = by_batch[cuts[bt]:cuts[bt + 1]]
                r_p = part.rows[batch == bt].sum(axis=0)
                coef, problem = _coefficients(len(cols), lambda f: f.beta, cox_counts, part.counts.at_risk[in_batch],
                                              part.counts.deaths[in_batch], part.counts.time[in_batch], X, r_p,
                                              cols, event="event")
                if problem:
                    problems[bt] = problem
                coefs.append(coef)
            summ, _ = _across_replicates(bts, coefs, problems, cols, level)
            for c, term in zip(cols, design.columns, strict=True):
                s = summ.loc[c]
                on = (design[term] == 1).reindex(part.arms).fillna(False).to_numpy(bool)
                rows.append(dict(point=int(part.point), product=str(part.product), model=model, term=str(term),
                                 rate_ratio=s.rate_ratio, ci_lower=s.ci_lower, ci_upper=s.ci_upper, p=s.p,
                                 replicates=int(s.replicates), events=int(part.events[on].sum()),
                                 viewers=int(part.viewers[on].sum()), note=s.note))
    out = pd.DataFrame(rows, columns=RATE_COLUMNS)
    return out.astype({"rate_ratio": "float64", "ci_lower": "float64", "ci_upper": "float64", "p": "float64"})
