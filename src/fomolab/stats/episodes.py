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

from typing import Any

import numpy as np
import pandas as pd

from fomolab.stats import _folder

__all__ = ["episodes", "EPISODE_COLUMNS"]

#: The columns of :func:`episodes`, in order.
EPISODE_COLUMNS = [
    "run_id", "arm", "replicate", "point", "shopper_id", "segment", "boosted", "episode",
    "start_s", "stop_s", "event",
    "sale_active", "timer_signal", "scarcity_shown", "social_proof_level", "code_active",
    "impulsiveness", "interest", "price_sensitivity",
    "sale_x_impulsiveness", "timer_x_impulsiveness", "scarcity_x_impulsiveness",
    "social_proof_x_impulsiveness", "code_x_impulsiveness",
]

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
        One row per episode with the columns of ``EPISODE_COLUMNS``
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

    A first purchase of any product ends the time to first purchase.  Visits
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


def build_episodes(res, runs: pd.DataFrame, shoppers: pd.DataFrame, events: pd.DataFrame, *,
                   timer_pieces: int = 16, social_proof_step_s: float | None = None) -> pd.DataFrame:
    """:func:`episodes` on tables already read (used by :mod:`fomolab.analysis`)."""
    from fomolab.errors import DataError

    if int(timer_pieces) != timer_pieces or timer_pieces < 1:
        raise DataError(f"'timer_pieces' must be a whole number >= 1: got {timer_pieces!r}")
    if social_proof_step_s is not None and not social_proof_step_s > 0:
        raise DataError(f"'social_proof_step_s' must be > 0 seconds: got {social_proof_step_s!r}")
    scen = _folder.run_scenarios(res, runs)
    win = _folder.windows(events)
    win_by_run = {k: g for k, g in win.groupby("run_id", sort=False)}
    buys = events[events.kind == "purchase"]
    buys_by_run = {k: g for k, g in buys.groupby(buys.run_id.astype(str), sort=False, observed=True)}
    sh_run = shoppers.run_id.astype(str).to_numpy()
    order = np.argsort(sh_run, kind="stable")
    sh_sorted = sh_run[order]
    parts: list[dict[str, np.ndarray]] = []
    for rid in runs.run_id.astype(str):
        lo, hi = np.searchsorted(sh_sorted, rid, "left"), np.searchsorted(sh_sorted, rid, "right")
        rows = order[lo:hi]
        if len(rows) == 0:
            continue
        part = _run_episodes(shoppers.iloc[rows], scen[rid], win_by_run.get(rid), buys_by_run.get(rid),
                             int(timer_pieces), social_proof_step_s)
        part["_row"] = rows[part.pop("_idx")]
        part["_run"] = np.full(len(part["_row"]), rid, dtype=object)
        parts.append(part)
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in EPISODE_COLUMNS})
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
        "sale_active": cat["sale_active"].astype(np.int64), "timer_signal": cat["timer_signal"],
        "scarcity_shown": cat["scarcity_shown"].astype(np.int64),
        "social_proof_level": cat["social_proof_level"], "code_active": cat["code_active"].astype(np.int64),
        "impulsiveness": src.impulsiveness.to_numpy(float), "interest": src.interest.to_numpy(float),
        "price_sensitivity": src.price_sensitivity.to_numpy(float),
    })
    z = out["impulsiveness"].to_numpy()
    for cov, name in (("sale_active", "sale"), ("timer_signal", "timer"), ("scarcity_shown", "scarcity"),
                      ("social_proof_level", "social_proof"), ("code_active", "code")):
        out[f"{name}_x_impulsiveness"] = out[cov].to_numpy(float) * z
    return out[EPISODE_COLUMNS]


def _run_episodes(sh: pd.DataFrame, scenario, win: pd.DataFrame | None, buys: pd.DataFrame | None,
                  timer_pieces: int, sp_step: float | None) -> dict[str, np.ndarray]:
    """The episodes of one run's visits, as arrays (``_idx`` = row in ``sh``)."""
    a = sh.arrival_s.to_numpy(float)
    d = sh.departure_s.to_numpy(float)
    f = sh.first_purchase_s.to_numpy(float)
    bought = ~np.isnan(f)
    e = np.where(bought, np.minimum(f, d), d)
    T = scenario.stream.duration_s
    win = win if win is not None else pd.DataFrame(columns=["product", "tactic", "start_s", "end_s"])
    # the run's cuts: window edges, timer pieces, social-proof grid
    cuts = [win.start_s.to_numpy(float), win.end_s.to_numpy(float)]
    slots: dict[str, tuple[float, float]] = {}
    for pname, prod in scenario.lineup.items():
        slots[pname] = prod.slot(T)
        cuts.append(np.asarray(slots[pname], dtype=float))
        timer = prod.tactics.countdown_timer
        if timer is not None:
            ta, tb = timer.window()
            cuts.append(np.linspace(ta, tb, timer_pieces + 1))
        sp = prod.tactics.social_proof
        if sp is not None:
            step = sp_step if sp_step is not None else sp.window_s / 2.0
            cuts.append(np.arange(slots[pname][0], slots[pname][1], step))
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
    sale = np.zeros(n)
    timer_s = np.zeros(n)
    scarce = np.zeros(n)
    social = np.zeros(n)
    code = np.zeros(n)
    for pname, prod in scenario.lineup.items():
        sa, sb = slots[pname]
        on = (mid >= sa) & (mid < sb)
        if not on.any():
            continue
        w = win[win["product"] == pname]
        for kind, target in (("lightning_sale", sale), ("scarcity_cue", scarce)):
            for ws, we in zip(w.start_s[w.tactic == kind], w.end_s[w.tactic == kind]):
                np.maximum(target, (on & (mid >= ws) & (mid < we)).astype(float), out=target)
        tac = prod.tactics
        if tac.countdown_timer is not None:
            np.maximum(timer_s, np.where(on, tac.countdown_timer.signal(mid), 0.0), out=timer_s)
        if tac.exclusive_code is not None:
            hold = tac.exclusive_code.holders(sh.arrival_s.to_numpy(float)[keep],
                                              sh.departure_s.to_numpy(float)[keep])[idx]
            s = tac.exclusive_code.signal(mid) * hold
            np.maximum(code, np.where(on, s, 0.0), out=code)
        if tac.social_proof is not None and buys is not None:
            sp = tac.social_proof
            pt = np.sort(buys.time_s[buys["product"].astype(str) == pname].to_numpy(float))
            cnt = np.searchsorted(pt, start, "left") - np.searchsorted(pt, start - sp.window_s, "right")
            np.maximum(social, np.where(on, np.minimum(1.0, cnt / sp.saturation), 0.0), out=social)
    return {"_idx": keep[idx], "episode": j, "start_s": start, "stop_s": stop, "event": event,
            "sale_active": sale, "timer_signal": timer_s, "scarcity_shown": scarce,
            "social_proof_level": social, "code_active": code}
