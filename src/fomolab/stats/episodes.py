"""Episodes: a results folder as counting-process data for a time-varying Cox model.

The picture: a viewer's visit is a strip of stream time, from arrival until the
first purchase or departure.  Tactics switch on and off along the stream (a sale
runs from minute 15 to 20, a timer ticks down, an "only N left" badge appears),
so the strip is cut wherever what the viewer sees changes.  Each piece is an
*episode* ``(start_s, stop_s]`` with the covariates that held during it, and the
last piece of a buyer ends with the event.  This is R's
``Surv(start, stop, event)`` layout, ready for
``fomolab.stats.cox(ep, "stop_s", "event", [...], start="start_s")``.

The time scale is stream time, so the baseline hazard absorbs everything that
happens at the same stream time in every arm (which product is on show, its
base rate); pool the arms (control included) so that a tactic's covariate is
not constant across the viewers at risk at a given stream time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fomolab.stats import _facts, _folder
from fomolab.tactics import KINDS, Covariate, Tactic

if TYPE_CHECKING:
    from fomolab.results import Results

__all__ = ["episodes", "EPISODE_COLUMNS"]

def _columns(covariates: list[Covariate]) -> list[str]:
    """Identifiers, the tactics' covariates, the traits, each covariate times impulsiveness."""
    return ["run_id", "arm", "replicate", "point", "shopper_id", "segment", "boosted", "episode",
            "start_s", "stop_s", "event", *(c.name for c in covariates),
            "impulsiveness", "interest", "price_sensitivity", *(f"{c.short}_x_impulsiveness" for c in covariates)]


def _covariates(used: set[str]) -> list[Covariate]:
    """The covariates of the tactics every table lists (``always_listed``) and of those ``used``."""
    return [c for k, cls in KINDS.items() if cls.always_listed or k in used for c in cls.covariates]


#: The columns of :func:`episodes`, in order, for results whose tactics are those every
#: table lists; another tactic a folder uses adds its covariates after these tactics'.
EPISODE_COLUMNS = _columns(_covariates(set()))

_SHOPPER_COLS = ["run_id", "shopper_id", "segment", "boosted", "impulsiveness", "interest",
                 "price_sensitivity", "arrival_s", "departure_s", "first_purchase_s"]
_EVENT_COLS = ["run_id", "time_s", "kind", "product", "tactic"]


def episodes(
    results: Any,
    *,
    arms: str | list[str] | None = None,
    replicates: int | list[int] | None = None,
    timer_pieces: int = 16,
    social_proof_step_s: float | None = None,
) -> pd.DataFrame:
    """Each viewer's time to first purchase, split at every tactic boundary.

    Parameters
    ----------
    results : fomolab.Results or path
        A results folder.
    arms : str or list of str, optional
        Only these arms (default: all).  Keep the control: a tactic's effect is
        identified by comparing viewers at risk at the same stream time.
    replicates : int or list of int, optional
        Only these replicates (default: all); a way to subsample a big folder
        while keeping the replicate clusters whole.
    timer_pieces : int, default 16
        Each countdown-timer window is cut into this many equal pieces (as the
        engine's envelope); ``timer_signal`` is the timer's signal at the
        episode's midpoint, so the piecewise-constant covariate follows the
        continuous signal within ``1 / timer_pieces`` of its range.
    social_proof_step_s : float, optional
        Where social proof is on, the product's slot is also cut every this
        many seconds (default: half the ticker's ``window_s``).

    Returns
    -------
    pandas.DataFrame
        One row per episode with the columns of ``EPISODE_COLUMNS`` (and, after
        the built-in tactics' covariates, those of any other tactic the
        selected runs use)
        (documented in ``docs/schema.md``, section *analysis*): ``start_s`` and
        ``stop_s`` in stream seconds (``start_s < stop_s``; at risk for
        ``start_s < t <= stop_s``), ``event`` 1 on the last episode of a buyer,
        the covariates and their interactions with impulsiveness.

    Notes
    -----
    A visit is ``(arrival_s, min(first_purchase_s, departure_s)]``; it is cut
    at the run's slot edges and tactic starts and ends (from the ``events``
    table, so a sale that sells its quota ends when it did), at the
    ``timer_pieces`` interior cuts of each timer window, and on the social-proof
    grid.  Covariates, evaluated at the episode's midpoint ``m`` for a product
    on show at ``m`` (with several products, the largest over the products on
    show, so any product's tactic counts):

    * ``sale_active``: 1 inside a lightning sale's window, else 0;
    * ``timer_signal``: the countdown timer's signal ``s(m)`` (linear or
      hyperbolic, as the arm's spec says), 0 outside its window;
    * ``scarcity_shown``: 1 while the "only N left" cue is shown (an
      indicator; the cue's strength, which grows as stock falls, is not
      modelled);
    * ``social_proof_level``: an approximation of the ticker's signal,
      ``min(1, n / saturation)`` with ``n`` the product's purchases in
      ``(start_s - window_s, start_s)`` (counted at the episode's start, not
      updated within it);
    * ``code_active``: 1 for holders of an exclusive code (present at its
      announcement) while it is valid;
    * ``impulsiveness``, ``interest``, ``price_sensitivity``: the viewer's traits;
    * ``*_x_impulsiveness``: each tactic covariate times impulsiveness (the
      model's hazard factor is ``1 + gain * z * s``).

    Each covariate comes from its tactic (``Tactic.episode_covariates``),
    evaluated from the run's stored ``products``, ``tactics`` and ``windows``
    tables, never from the spec.  A first purchase of any product ends the time
    to first purchase.  Visits
    of zero length are dropped.

    Examples
    --------
    >>> from fomolab.stats import cox
    >>> from fomolab.stats._example import example_results
    >>> ep = episodes(example_results())
    >>> ep[["start_s", "stop_s", "event", "sale_active", "timer_signal"]].dtypes.tolist()
    [dtype('float64'), dtype('float64'), dtype('int64'), dtype('int64'), dtype('float64')]
    >>> bool((ep.start_s < ep.stop_s).all())
    True
    >>> fit = cox(ep, "stop_s", "event", ["sale_active"], start="start_s", cluster="replicate")
    >>> bool(fit.summary.loc["sale_active", "hazard_ratio"] > 1)
    True
    """
    res = _folder.as_results(results)
    runs = _folder.select_runs(res, arms, replicates)
    ids = runs.run_id.astype(str).tolist()
    shoppers = res.viewers(_SHOPPER_COLS)
    shoppers = shoppers[shoppers.run_id.astype(str).isin(ids)]
    events = res.table("events", _EVENT_COLS)
    events = events[events.run_id.astype(str).isin(ids) & ~events.kind.isin(["arrive", "leave"])]
    return build_episodes(res, runs, shoppers, events, timer_pieces=timer_pieces,
                          social_proof_step_s=social_proof_step_s)


def build_episodes(res: Results, runs: pd.DataFrame, shoppers: pd.DataFrame, events: pd.DataFrame, *,
                   timer_pieces: int = 16, social_proof_step_s: float | None = None) -> pd.DataFrame:
    """:func:`episodes` on tables already read (used by :mod:`fomolab.analysis`)."""
    from fomolab.errors import DataError

    if int(timer_pieces) != timer_pieces or timer_pieces < 1:
        raise DataError(f"'timer_pieces' must be a whole number >= 1: got {timer_pieces!r}")
    if social_proof_step_s is not None and not social_proof_step_s > 0:
        raise DataError(f"'social_proof_step_s' must be > 0 seconds: got {social_proof_step_s!r}")
    facts = _facts.run_facts(res, runs, events)
    covariates = _covariates(set(facts.tactics.tactic))
    columns = _columns(covariates)
    win_by_run = dict(iter(facts.windows.groupby("run_id", sort=False)))
    slots = facts.products[["run_id", "slot_start_s", "slot_end_s"]]
    slots_by_run = dict(iter(slots.groupby("run_id", sort=False)))
    buys = events[events.kind == "purchase"]
    buys_by_run = dict(iter(buys.groupby(buys.run_id.astype(str), sort=False, observed=True)))
    options = {"timer_pieces": int(timer_pieces), "social_proof_step_s": social_proof_step_s}
    sh_run = shoppers.run_id.astype(str).to_numpy()
    order = np.argsort(sh_run, kind="stable")
    sh_sorted = sh_run[order]
    parts: list[dict[str, np.ndarray]] = []
    for rid in runs.run_id.astype(str):
        lo, hi = np.searchsorted(sh_sorted, rid, "left"), np.searchsorted(sh_sorted, rid, "right")
        rows = order[lo:hi]
        if len(rows) == 0:
            continue
        part = _run_episodes(shoppers.iloc[rows], facts.lineup(rid), slots_by_run.get(rid), win_by_run.get(rid),
                             buys_by_run.get(rid), options, covariates)
        part["_row"] = rows[part.pop("_idx")]
        part["_run"] = np.full(len(part["_row"]), rid, dtype=object)
        parts.append(part)
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    src = shoppers.iloc[cat["_row"]].reset_index(drop=True)
    meta = runs.set_index(runs.run_id.astype(str))
    run_key = pd.Index(meta.index)
    pos = run_key.get_indexer(cat["_run"])
    out = pd.DataFrame({
        "run_id": src.run_id.astype("category"),
        "arm": pd.Categorical(meta.arm.to_numpy()[pos], categories=runs.arm.cat.categories)
        if hasattr(runs.arm, "cat") else meta.arm.to_numpy()[pos],
        "replicate": meta.replicate.to_numpy()[pos].astype(np.int64),
        "point": meta.point.to_numpy()[pos].astype(np.int64),
        "shopper_id": src.shopper_id.to_numpy().astype(np.int64),
        "segment": src.segment.astype("category"),
        "boosted": src.boosted.to_numpy().astype(bool),
        "episode": cat["episode"].astype(np.int64),
        "start_s": cat["start_s"], "stop_s": cat["stop_s"], "event": cat["event"].astype(np.int64),
        **{c.name: cat[c.name].astype(np.int64) if c.dtype == "int64" else cat[c.name] for c in covariates},
        "impulsiveness": src.impulsiveness.to_numpy(float), "interest": src.interest.to_numpy(float),
        "price_sensitivity": src.price_sensitivity.to_numpy(float),
    })
    z = out["impulsiveness"].to_numpy()
    for c in covariates:
        out[f"{c.short}_x_impulsiveness"] = out[c.name].to_numpy(float) * z
    return out[columns]


def _run_episodes(sh: pd.DataFrame, lineup: list[tuple[str, tuple[float, float], list[Tactic]]],
                  slots: pd.DataFrame | None, win: pd.DataFrame | None, buys: pd.DataFrame | None,
                  options: dict[str, Any], covariates: list[Covariate]) -> dict[str, np.ndarray]:
    """The episodes of one run's visits, as arrays (``_idx`` = row in ``sh``).

    ``lineup`` holds the run's products ``(name, slot, tactics)`` from its
    stored facts; ``slots`` every product's slot (all streams); ``win`` its
    tactic windows as they ran.
    """
    from fomolab.tactics import EpisodeContext

    a = sh.arrival_s.to_numpy(float)
    d = sh.departure_s.to_numpy(float)
    f = sh.first_purchase_s.to_numpy(float)
    bought = ~np.isnan(f)
    e = np.where(bought, np.minimum(f, d), d)
    win = win if win is not None else pd.DataFrame(columns=["product", "tactic", "start_s", "end_s"])
    # the run's cuts: slot and window edges, and the tactics' own (timer pieces, social-proof grid)
    cuts = [win.start_s.to_numpy(float), win.end_s.to_numpy(float)]
    if slots is not None:
        cuts += [slots.slot_start_s.to_numpy(float), slots.slot_end_s.to_numpy(float)]
    for _, slot, tactics in lineup:
        cuts.append(np.asarray(slot, dtype=float))
        for tactic in tactics:
            cuts.extend(tactic.episode_cuts(slot, options))
    cuts_arr = np.unique(np.concatenate(cuts)) if cuts else np.empty(0)
    keep = np.flatnonzero(e > a)
    a, d, e, bought = a[keep], d[keep], e[keep], bought[keep]
    lo = np.searchsorted(cuts_arr, a, side="right")
    hi = np.searchsorted(cuts_arr, e, side="left")
    k = hi - lo + 1
    idx = np.repeat(np.arange(len(a)), k)
    first = np.cumsum(k) - k
    j = np.arange(len(idx)) - np.repeat(first, k)
    ci = lo[idx] + j  # index of the cut that ends piece j (unless it is the last)
    padded = np.concatenate((cuts_arr, [np.inf]))
    last = j == k[idx] - 1
    start = np.where(j == 0, a[idx], padded[np.maximum(ci - 1, 0)])
    stop = np.where(last, e[idx], padded[np.minimum(ci, len(cuts_arr))])
    event = (last & bought[idx]).astype(np.int64)
    mid = 0.5 * (start + stop)
    n = len(idx)
    cov = {c.name: np.zeros(n) for c in covariates}
    arr, dep = sh.arrival_s.to_numpy(float)[keep][idx], sh.departure_s.to_numpy(float)[keep][idx]
    for pname, (sa, sb), tactics in lineup:
        on = (mid >= sa) & (mid < sb)
        if not on.any():
            continue
        pt = None
        if buys is not None:
            pt = np.sort(buys.time_s[buys["product"].astype(str) == pname].to_numpy(float))
        ctx = EpisodeContext(start, stop, mid, on, arr, dep, win[win["product"] == pname], pt, options)
        for tactic in tactics:
            for name, x in tactic.episode_covariates(ctx).items():
                np.maximum(cov[name], x, out=cov[name])
    return {"_idx": keep[idx], "episode": j, "start_s": start, "stop_s": stop, "event": event, **cov}
