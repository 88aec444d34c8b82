"""Is an arm's hazard ratio constant, and if not, how does it change over the stream?

The picture: a five-minute lightning sale multiplies the purchase hazard while
it runs and not before or after, so the sale arm's cause-specific hazard
ratio against the control is large from minute 15 to 20 and near 1 elsewhere.
A single Cox hazard ratio is then an average whose weights depend on who is
still watching, and the proportional-hazards assumption behind it fails.

Two tables answer the two questions:

* :func:`ph_table`: the cause-specific Cox model of time to the first
  purchase (departure ends follow-up) on one indicator per treatment arm,
  stratified by replicate (each replicate its own baseline), on the time since
  arrival and on the stream's clock, tested with the scaled Schoenfeld
  residual score test of R's ``cox.zph`` (:func:`fomolab.stats.cox_zph`), per
  arm and globally, for each of R's time transforms;
* :func:`window_table`: the hazard ratio of each arm against the control
  within each window of *stream* time cut at the tactics' window edges (before,
  during and after the sale), from Cox fits with delayed entry on the time since
  arrival, within each replicate, with a t interval across replicates (the
  few-replicate method of :mod:`fomolab.stats.replicates`).

The score test has the power of every viewer of every replicate: with hundreds
of thousands of viewers it detects departures from proportionality too small
to matter, so read its p value with the window table's effect sizes.  Its p
value treats viewers as independent, which common random numbers do not make
them across arms; it is a diagnostic, not an effect estimate.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd

from fomolab.errors import DataError

__all__ = ["PH_COLUMNS", "SCALES", "WINDOW_COLUMNS", "ph_table", "window_edges", "window_table"]

#: The columns of ``Analysis.ph``.
PH_COLUMNS = ["point", "time_scale", "transform", "term", "hazard_ratio", "chisq", "df", "p", "proportional", "note"]
#: The columns of ``Analysis.hr_windows``.
WINDOW_COLUMNS = ["point", "arm", "window", "start_s", "end_s", "hazard_ratio", "ci_lower", "ci_upper", "p",
                  "replicates", "events", "control_events", "note"]


#: Most viewers of a point :func:`ph_table` tests at once (the first replicates up to this many).
PH_MAX_ROWS = 2_000_000

#: The time scales of :func:`ph_table`: (stop column, start column) of the Cox fit tested.
SCALES = {"since_arrival": ("time_s", None), "stream": ("stream_out", "stream_in")}


def ph_table(sh: pd.DataFrame, order: list[str], control: str, conf_level: float = 0.95,
             transforms: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Tests of proportional hazards of each arm's cause-specific hazard ratio (``Analysis.ph``).

    ``sh`` has ``point, replicate, arm, arrival_s, time_s, bought`` (time
    from arrival to the first purchase or the end of the visit).  Per point
    and time scale: one Cox model on 0/1 indicators of the treatment arms
    (Efron ties, strata by replicate), then :func:`fomolab.stats.cox_zph`
    with each transform; rows per arm and ``GLOBAL``.  ``proportional`` is
    False where ``p < 1 - conf_level``.

    Two time scales (``time_scale``): ``since_arrival``, the scale of the
    headline's hazard ratio (time from arrival), and ``stream``, the stream's
    clock (each viewer entering at arrival, Cox with delayed entry): a tactic
    acting at stream times, such as a five-minute sale, makes the hazard ratio
    change with the stream's clock, which viewers arriving at random times
    spread evenly over the time since arrival, where the test cannot see it.
    """
    from fomolab.stats.cox import cox
    from fomolab.stats.zph import TRANSFORMS, cox_zph

    transforms = TRANSFORMS if transforms is None else transforms
    alpha = 1 - conf_level
    rows = []
    for point, g in sh.groupby("point", sort=True):
        arms = [a for a in order if a != control and (g.arm == a).any()]
        if not arms or not (g.arm == control).any():
            continue
        capped = ""
        if len(g) > PH_MAX_ROWS:
            size = g.groupby("replicate", sort=True).size()
            keep = size.index[size.cumsum().to_numpy() <= PH_MAX_ROWS]
            keep = keep if len(keep) else size.index[:1]
            g = g[g.replicate.isin(keep)]
            capped = (f"tested on the first {len(keep):,} of {len(size):,} replicates ({len(g):,} viewers): the "
                      "test has ample power with them")
        d = g.assign(**{f"x{j}": (g.arm == a).astype(int).to_numpy() for j, a in enumerate(arms)},
                     stream_in=g.arrival_s.to_numpy(float),
                     stream_out=g.arrival_s.to_numpy(float) + g.time_s.to_numpy(float))
        cols = [f"x{j}" for j in range(len(arms))]
        for scale, (stop, start) in SCALES.items():
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    fit = cox(d, stop, "bought", cols, start=start, strata="replicate", conf_level=conf_level)
                warn = "; ".join([*sorted({str(w.message) for w in caught}), *([capped] if capped else [])])
            except DataError as exc:
                rows.append(dict(point=int(point), time_scale=scale, transform="", term="GLOBAL", note=str(exc)))
                continue
            hr = dict(zip(cols, fit.summary.hazard_ratio.to_numpy(float), strict=True))
            for tr in transforms:
                try:
                    z = cox_zph(fit, transform=tr).summary
                except DataError as exc:
                    rows.append(dict(point=int(point), time_scale=scale, transform=tr, term="GLOBAL",
                                     note=str(exc)))
                    continue
                for key, s in z.iterrows():
                    term = "GLOBAL" if key == "GLOBAL" else arms[cols.index(str(key))]
                    rows.append(dict(point=int(point), time_scale=scale, transform=tr, term=term,
                                     hazard_ratio=hr.get(str(key), np.nan), chisq=float(s.chisq), df=int(s.df),
                                     p=float(s.p), proportional=bool(s.p >= alpha), note=warn))
    out = pd.DataFrame(rows, columns=PH_COLUMNS)
    return out.astype({"hazard_ratio": "float64", "chisq": "float64", "p": "float64"})


def window_edges(windows: pd.DataFrame | None, stream_end_s: float) -> list[float]:
    """Stream-time edges: 0, every tactic window's start and end, and the stream's end."""
    edges = {0.0, float(stream_end_s)}
    if windows is not None and len(windows):
        edges |= {float(v) for v in np.concatenate([windows.start_s.to_numpy(float), windows.end_s.to_numpy(float)])
                  if 0 < v < stream_end_s}
    return sorted(edges)


def _in_window(g: pd.DataFrame, a: float, b: float) -> pd.DataFrame:
    """Follow-up rows of time to the first purchase restricted to stream times ``(a, b]``."""
    arr = g.arrival_s.to_numpy(float)
    t = g.time_s.to_numpy(float)
    entry = np.maximum(a - arr, 0.0)
    exit_ = np.minimum(b - arr, t)
    keep = exit_ > entry
    ev = (g.bought.to_numpy() == 1) & (t <= b - arr)
    return g.assign(entry=entry, exit=exit_, ev=ev.astype(int))[keep]


def window_table(sh: pd.DataFrame, order: list[str], control: str, edges: list[float],
                 conf_level: float = 0.95) -> pd.DataFrame:
    """Each arm's hazard ratio against the control by window of stream time (``Analysis.hr_windows``).

    ``sh`` has ``point, replicate, arm, arrival_s, time_s, bought``.  A
    viewer is at risk in window ``(a, b]`` of stream time from ``max(a,
    arrival)`` to ``min(b, first purchase or departure)``; within each
    replicate and window a Cox model (delayed entry on the time since
    arrival, Efron ties) of the arm indicator on the arm's and the control's
    rows gives a log hazard ratio, and the replicates a t interval with
    ``G - 1`` degrees of freedom (:func:`fomolab.stats.changes.across`).
    """
    from fomolab.stats.changes import MAX_BATCHES, across, batches
    from fomolab.stats.cox import cox

    rows = []
    for point, gp in sh.groupby("point", sort=True):
        gp = gp.assign(batch=batches(gp.replicate.to_numpy()))
        many = gp.replicate.nunique() > MAX_BATCHES
        for w, (a, b) in enumerate(itertools.pairwise(edges)):
            cut = _in_window(gp, a, b)
            for arm in order:
                if arm == control:
                    continue
                sub = cut[cut.arm.isin([arm, control])]
                if sub.empty or not (sub.arm == arm).any():
                    continue
                sub = sub.assign(treated=(sub.arm == arm).astype(int).to_numpy())
                est, problems = [], []
                for rep, gr in sub.groupby("batch", sort=True):
                    try:
                        with warnings.catch_warnings(record=True) as caught:
                            warnings.simplefilter("always")
                            f = cox(gr, "exit", "ev", "treated", start="entry",
                                    strata="replicate" if many else None, conf_level=conf_level)
                        b_ = float(f.summary.coef.iloc[0])
                        if caught or not np.isfinite(b_):
                            msgs = "; ".join(sorted({str(x.message) for x in caught}))
                            problems.append(f"{'replicates group' if many else 'replicate'} {rep}: {msgs}")
                            b_ = np.nan
                    except DataError as exc:
                        problems.append(f"{'replicates group' if many else 'replicate'} {rep}: {exc}")
                        b_ = np.nan
                    est.append(b_)
                x = np.asarray(est, float)
                if np.isnan(x).any():
                    e = lo = hi = p = np.nan
                    note = ("no estimate in every replicate (leaving some out would bias the rest): "
                            + problems[0])[:300]
                else:
                    e, lo, hi, p, note = across(x, conf_level)
                rows.append(dict(point=int(point), arm=arm, window=w, start_s=a, end_s=b,
                                 hazard_ratio=np.exp(e), ci_lower=np.exp(lo), ci_upper=np.exp(hi), p=p,
                                 replicates=len(x), events=int(sub.ev[sub.treated == 1].sum()),
                                 control_events=int(sub.ev[sub.treated == 0].sum()), note=note))
    out = pd.DataFrame(rows, columns=WINDOW_COLUMNS)
    return out.astype(dict.fromkeys(("start_s", "end_s", "hazard_ratio", "ci_lower", "ci_upper", "p"), "float64"))
