"""Analysis of a results folder: the tables ``fomolab analyze`` prints and writes.

The picture: the statistician's pass over a finished experiment.  From the
``runs``, ``shoppers`` and ``events`` tables it computes

* ``headline``: per arm (and sweep point), viewers, conversion, the
  Kaplan–Meier median time to first purchase with its interval, the hazard and
  odds ratios against the control with intervals clustered by replicate and
  Holm-adjusted p values, and the deadline-bunching share;
* ``arms``: the long table of :func:`fomolab.stats.compare.compare_arms`;
* ``deadline``: :func:`fomolab.stats.compare.deadline_shares`;
* ``points``: each run metric's mean over replicates at each point, with a
  t interval (:func:`fomolab.stats.sweep.sweep_points`);
* ``surface`` (sweeps over numeric parameters): a second-order response
  surface of each metric (:func:`fomolab.stats.sweep.response_surface`);
* ``sobol`` (Saltelli sweeps): first-order and total Sobol indices
  (:func:`fomolab.stats.sweep.sobol_indices`);
* ``pooled`` (sweeps): hazard and odds ratios of each arm against the
  control pooled over the sweep points;
* ``concentration`` (marketplaces): HHI, Gini and top share of watch time
  and sales (:mod:`fomolab.stats.concentration`);
* the tables the figures draw (:mod:`fomolab.figure_data`): ``timeline``,
  ``windows``, ``survival``, ``deadline_curve``, ``impulsiveness`` and, for
  sweeps, ``marginals`` and ``cells``.

Every table is computed here, once; the figures of :mod:`fomolab.plot` and the
report draw these tables and fit nothing themselves.

:meth:`Analysis.write` puts them in ``analysis/`` inside the results folder as
CSV and Markdown, atomically, and never touches the run partitions.  The
columns of every table are in ``docs/schema.md`` (section *analysis*).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Analysis", "HEADLINE_COLUMNS", "analyze"]

#: The columns of ``Analysis.headline``, in order.
HEADLINE_COLUMNS = [
    "point", "arm", "runs", "viewers", "buyers", "conversion",
    "median_s", "median_ci_lower", "median_ci_upper", "median_buyers_s",
    "hazard_ratio", "hr_ci_lower", "hr_ci_upper", "hr_p_holm",
    "odds_ratio", "or_ci_lower", "or_ci_upper", "or_p_holm",
    "deadline_share", "deadline_expected_share", "deadline_p",
]

#: Table names, in the order they are written and printed.
TABLES = ("headline", "arms", "deadline", "points", "surface", "sobol", "impact", "impact_segment", "impact_total",
          "streams",
          "pooled", "concentration", "timeline", "windows", "survival", "deadline_curve", "impulsiveness",
          "marginals", "cells")

#: The columns of ``Analysis.pooled``.
POOLED_COLUMNS = ["arm", "control", "outcome", "measure", "estimate", "ci_lower", "ci_upper", "p", "p_holm",
                  "n", "control_n", "clusters", "method", "note"]


@dataclass
class Analysis:
    """The analysis tables of a results folder.

    Attributes
    ----------
    path : pathlib.Path
        The results folder.
    headline, arms, deadline, points : pandas.DataFrame
        Always present (``deadline`` is empty when no arm has a sale or timer).
    surface, sobol : pandas.DataFrame or None
        ``surface`` for sweeps over numeric parameters, ``sobol`` for
        Saltelli sweeps; None otherwise.
    impact, impact_segment, impact_total : pandas.DataFrame or None
        Consumer impact (:func:`fomolab.attribution.impact`) by impulsiveness
        quintile, by segment and over all viewers: induced and accelerated purchases, seconds
        gained by the seller, regretted purchases, surplus lost, revenue
        gained, with intervals over replicates; None without common random
        numbers or without a treatment arm.
    streams : pandas.DataFrame or None
        Marketplaces: per point, arm and stream, the host and the means over
        replicates (with t intervals) of viewers, share of watch time, units,
        revenue, cost and cost per sale; None without a marketplace.
    pooled : pandas.DataFrame or None
        Sweeps: hazard and odds ratio of each treatment arm against the
        control pooled over the points (Cox stratified by point; errors
        clustered by point and replicate); None for a single point.
    concentration : pandas.DataFrame or None
        Marketplaces: per point and arm, HHI, Gini and top share of watch
        time and of sales, means over replicates with t intervals.
    timeline, windows, survival, deadline_curve, impulsiveness : pandas.DataFrame
        What the figures draw (:mod:`fomolab.figure_data`).
    marginals, cells : pandas.DataFrame or None
        Sweeps: metrics at each value of each swept parameter, and
        conversion over the first two (None otherwise).
    control : str
        The reference arm.
    arm_order : list of str
        The arms, the control first, then in the spec's order.
    conf_level, last : float
        The level of every interval and the final fraction of deadline
        windows given to :func:`analyze`.
    swept : dict of str to str
        Swept parameters' dotted paths and their ``runs`` columns.
    sweep_design : str or None
        The sweep's design (``grid``, ``saltelli``, ...).
    seconds : float
        Wall time of the analysis.

    Examples
    --------
    >>> from fomolab.stats._example import example_results
    >>> a = analyze(example_results(), n_boot=50)
    >>> a.headline.arm.tolist()
    ['control', 'sale_timer']
    >>> float(a.headline.hazard_ratio.iloc[0])
    1.0
    """

    path: Path
    headline: pd.DataFrame
    arms: pd.DataFrame
    deadline: pd.DataFrame
    points: pd.DataFrame
    surface: pd.DataFrame | None = None
    sobol: pd.DataFrame | None = None
    impact: pd.DataFrame | None = None
    impact_segment: pd.DataFrame | None = None
    impact_total: pd.DataFrame | None = None
    streams: pd.DataFrame | None = None
    pooled: pd.DataFrame | None = None
    concentration: pd.DataFrame | None = None
    timeline: pd.DataFrame | None = None
    windows: pd.DataFrame | None = None
    survival: pd.DataFrame | None = None
    deadline_curve: pd.DataFrame | None = None
    impulsiveness: pd.DataFrame | None = None
    marginals: pd.DataFrame | None = None
    cells: pd.DataFrame | None = None
    control: str = "control"
    arm_order: list[str] = field(default_factory=list)
    conf_level: float = 0.95
    last: float = 0.1
    swept: dict[str, str] = field(default_factory=dict)
    sweep_design: str | None = None
    seconds: float = field(default=0.0, repr=False)

    @property
    def sweep(self) -> bool:
        """True when the results are a sweep (swept parameters)."""
        return bool(self.swept)

    def __repr__(self) -> str:
        have = [t for t in TABLES if getattr(self, t) is not None]
        return f"Analysis({str(self.path)!r}: {', '.join(f'{t} ({len(getattr(self, t))} rows)' for t in have)})"

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables present, by name."""
        return {t: getattr(self, t) for t in TABLES if getattr(self, t) is not None}

    def write(self, folder: str | Path | None = None) -> Path:
        """Write every table as ``NAME.csv`` and ``NAME.md`` into ``analysis/``.

        Parameters
        ----------
        folder : path, optional
            Where to write (default: ``analysis/`` inside the results folder).

        Returns
        -------
        pathlib.Path
            The folder written.

        Notes
        -----
        Written by :func:`fomolab.outputs.write_output`: built in a temporary
        folder next to the target, which then replaces the target by a rename,
        so a reader sees the old analysis or the new one, never half of one.
        Nothing else in the results folder is touched; a target that is a
        results folder, contains one, or holds files ``analyze`` did not write
        is refused (:class:`~fomolab.errors.ResultsError`).

        Examples
        --------
        >>> from fomolab.stats._example import example_results
        >>> out = analyze(example_results(), n_boot=50).write()
        >>> sorted(p.name for p in out.glob("*.csv"))  # doctest: +NORMALIZE_WHITESPACE
        ['arms.csv', 'deadline.csv', 'deadline_curve.csv', 'headline.csv', 'impact.csv', 'impact_segment.csv',
         'impact_total.csv', 'impulsiveness.csv', 'points.csv', 'survival.csv', 'timeline.csv', 'windows.csv']
        """
        from fomolab.outputs import write_output

        target = Path(folder) if folder is not None else self.path / "analysis"

        def fill(tmp: Path) -> None:
            for name, df in self.tables().items():
                df.to_csv(tmp / f"{name}.csv", index=False)
                (tmp / f"{name}.md").write_text(_markdown(df, title=_TITLES[name]))

        return write_output(target, "analysis", self.path, fill)


_TITLES = {
    "headline": "Headline: per arm, against the control (intervals clustered by replicate)",
    "arms": "Arms against the control: effects, intervals, p and Holm/BH-adjusted p",
    "deadline": "Deadline bunching: share of purchases in the last part of sale and timer windows",
    "pooled": "Arms against the control pooled over sweep points (Cox stratified by point)",
    "concentration": "Marketplace concentration: HHI, Gini and top share (means over replicates)",
    "timeline": "Purchase rate, viewers and stock over stream time (means over runs)",
    "windows": "Tactic windows (median over the runs that had them)",
    "survival": "Kaplan-Meier share who have bought by time since arrival",
    "deadline_curve": "Purchases per minute and run by seconds left to each deadline",
    "impulsiveness": "Conversion and time to purchase by impulsiveness group (means over runs)",
    "marginals": "Run metrics at each value of each swept parameter (means over runs)",
    "cells": "Mean conversion over the first two swept parameters",
    "points": "Sweep points: metric means over replicates with t intervals",
    "surface": "Response surface: OLS of each metric on the swept parameters",
    "sobol": "Sobol indices (first order and total) with bootstrap intervals",
    "impact": "Consumer impact by impulsiveness quintile: each treatment arm against the same viewers in the control",
    "impact_segment": "Consumer impact by segment: each treatment arm against the same viewers in the control",
    "impact_total": "Consumer impact over all viewers: each treatment arm against the same viewers in the control",
    "streams": "Marketplace streams: hosts, audience, sales and cost per sale (means over replicates)",
}


def _markdown(df: pd.DataFrame, title: str = "") -> str:
    """A GitHub Markdown table, numbers to 4 significant digits."""
    def cell(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            if np.isnan(v):
                return ""
            return f"{v:.4g}"
        if v is None or (v is pd.NA):
            return ""
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = [f"# {title}", ""] if title else []
    cols = list(df.columns)
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def analyze(results: Any, *, control: str | None = None, conf_level: float = 0.95, n_boot: int = 200,
            seed: int = 0, last: float = 0.1) -> Analysis:
    """Analyse a results folder: headline, arm contrasts, deadline effects, sweep tables.

    Parameters
    ----------
    results : fomolab.Results or path
        A results folder.
    control : str, optional
        The reference arm (default: the experiment's control).
    conf_level : float, default 0.95
        Level of every interval.
    n_boot : int, default 200
        Bootstrap resamples of replicates for the median shift (0 skips it).
    seed : int, default 0
        Seed of the bootstraps.
    last : float, default 0.1
        Final fraction of sale and timer windows for the deadline share.

    Returns
    -------
    Analysis
        The tables; ``.write()`` saves them.

    Raises
    ------
    ResultsError
        Not a results folder, no finished runs, or no finished control run.

    Notes
    -----
    See :func:`fomolab.stats.compare.compare_arms` for the contrasts: time to
    first purchase runs from arrival, hazard and odds ratios have errors
    clustered by replicate (the arms of a replicate show the same viewers by
    common random numbers; clustering accounts for that pairing).  The
    headline's median and its interval are the Kaplan–Meier median of the arm
    (R's ``survfit``, viewers treated as independent); with fewer than half of
    the viewers buying within their visit, the median lies in the tail of
    follow-up or is not reached (NaN); ``median_buyers_s``, the median over
    buyers only (as ``fomolab run`` prints), describes the buyers but is not
    an effect measure (who buys changes with the arm).  ``hr_p_holm`` and ``or_p_holm`` are
    Holm-adjusted over the treatment arms (and points).  The deadline share is
    that of the arm's lightning-sale windows (its timer's if it has no sale).

    Examples
    --------
    >>> from fomolab.stats._example import example_results
    >>> a = analyze(example_results(), n_boot=50)
    >>> sorted(a.tables())  # doctest: +NORMALIZE_WHITESPACE
    ['arms', 'deadline', 'deadline_curve', 'headline', 'impact', 'impact_segment', 'impact_total', 'impulsiveness',
     'points', 'survival', 'timeline', 'windows']
    """
    from fomolab import figure_data
    from fomolab.stats import _folder
    from fomolab.stats.compare import compare_tables, deadline_tables, time_to_purchase
    from fomolab.stats.kaplan_meier import kaplan_meier
    from fomolab.stats.sweep import _swept, response_surface, sobol_indices, sweep_points

    t0 = time.perf_counter()
    res = _folder.as_results(results)
    runs = _folder.nonempty_runs(res)
    shoppers = res.viewers(["run_id", "arm", "replicate", "point", "shopper_id", "impulsiveness", "arrival_s",
                            "departure_s", "first_purchase_s"])
    all_events = res.table("events", ["run_id", "time_s", "kind", "shopper_id", "product", "tactic"])
    events = all_events[~all_events.kind.isin(["arrive", "leave"])]
    control = control if control is not None else res.manifest.get("control", "control")
    arms = compare_tables(res, runs, shoppers, control, conf_level=conf_level, n_boot=n_boot, seed=seed)
    deadline = deadline_tables(res, runs, shoppers, events, last)

    # headline: one row per point and arm
    sh = time_to_purchase(shoppers)
    sh = sh.assign(arm=sh.arm.astype(str))
    r = runs.assign(arm=runs.arm.astype(str))
    spec_arms = set(res.manifest.get("arms", []))
    order = [a for a in _folder.arm_order(res.manifest, r.arm, control_first=False) if a in spec_arms]
    rows = []
    for point, g in sh.groupby("point", sort=True):
        km = kaplan_meier(g, "time_s", "bought", by="arm", conf_level=conf_level).summary.set_index("group")
        rp = r[r.point == point]
        for arm in order:
            if arm not in km.index:
                continue
            ra = rp[rp.arm == arm]
            row = dict(point=int(point), arm=arm, runs=len(ra), viewers=int(ra.viewers.sum()),
                       buyers=int(ra.buyers.sum()), conversion=ra.buyers.sum() / max(ra.viewers.sum(), 1),
                       median_s=km.loc[arm, "median"], median_ci_lower=km.loc[arm, "median_ci_lower"],
                       median_ci_upper=km.loc[arm, "median_ci_upper"],
                       median_buyers_s=g.time_s[(g.arm == arm) & (g.bought == 1)].median())
            for measure, pre in (("hazard_ratio", "hr"), ("odds_ratio", "or")):
                name = measure if pre == "hr" else "odds_ratio"
                if arm == control:
                    row.update({name: 1.0, f"{pre}_ci_lower": np.nan, f"{pre}_ci_upper": np.nan,
                                f"{pre}_p_holm": np.nan})
                    continue
                c = arms[(arms.point == point) & (arms.arm == arm) & (arms.measure == measure)]
                if len(c):
                    c = c.iloc[0]
                    row.update({name: c.estimate, f"{pre}_ci_lower": c.ci_lower, f"{pre}_ci_upper": c.ci_upper,
                                f"{pre}_p_holm": c.p_holm})
            d = deadline[(deadline.point == point) & (deadline.arm == arm)]
            if len(d):
                d = d.iloc[0]
                row.update(deadline_share=d.share_last, deadline_expected_share=d.expected_share,
                           deadline_p=d.p)
            rows.append(row)
    headline = pd.DataFrame(rows, columns=HEADLINE_COLUMNS).astype(
        {c: "float64" for c in HEADLINE_COLUMNS if c not in ("point", "arm", "runs", "viewers", "buyers")})

    points = sweep_points(res, conf_level=conf_level)
    surface = sobol = None
    if res.manifest.get("swept"):
        surface = response_surface(res, conf_level=conf_level)
        if res.manifest.get("sweep_design") == "saltelli":
            sobol = sobol_indices(res, conf_level=conf_level, seed=seed)
    impact = impact_segment = impact_total = None
    if res.experiment.common_random_numbers and len(set(runs.arm.astype(str))) > 1:
        from fomolab.attribution import attribute
        from fomolab.attribution import impact as consumer_impact

        labels = attribute(res, control)  # one pairing of viewers for both tables
        impact = consumer_impact(res, control, level=conf_level, labels=labels)
        impact_segment = consumer_impact(res, control, by="segment", level=conf_level, labels=labels)
        impact_total = consumer_impact(res, control, by="all", level=conf_level, labels=labels)
    market = "hhi_viewers" in runs.columns
    streams = _streams(res, conf_level) if market else None

    # what the figures draw, pooled over sweep points
    figure_arms = _folder.arm_order(res.manifest, r.arm)
    swept = _swept(res, runs) if res.manifest.get("swept") else {}
    stream_table = res.streams if market else None
    pooled = _pooled(sh, figure_arms, control, conf_level) if sh.point.nunique() > 1 else None
    concentration = (figure_data.concentration_table(stream_table, runs, figure_arms, conf_level)
                     if stream_table is not None else None)
    marginals = cells = None
    if swept:
        marginals = figure_data.marginals(runs, stream_table, swept, figure_arms, conf_level)
        cells = figure_data.cells(runs, swept, figure_arms) if len(swept) >= 2 else None
    return Analysis(path=res.path, headline=headline, arms=arms, deadline=deadline, points=points,
                    surface=surface, sobol=sobol, impact=impact, impact_segment=impact_segment,
                    impact_total=impact_total, streams=streams, pooled=pooled, concentration=concentration,
                    timeline=figure_data.timeline(res, runs, all_events, figure_arms, conf_level),
                    windows=figure_data.windows(all_events, runs),
                    survival=figure_data.survival(sh, figure_arms, conf_level),
                    deadline_curve=figure_data.deadline_curve(all_events, runs, figure_arms),
                    impulsiveness=figure_data.impulsiveness(sh, figure_arms, conf_level),
                    marginals=marginals, cells=cells, control=control, arm_order=figure_arms,
                    conf_level=conf_level, last=last, swept=swept,
                    sweep_design=res.manifest.get("sweep_design") if swept else None,
                    seconds=time.perf_counter() - t0)


def _pooled(sh: pd.DataFrame, arms: list[str], control: str, conf_level: float) -> pd.DataFrame:
    """Each treatment arm against the control over all sweep points.

    As :func:`fomolab.stats.compare.compare_arms` for one point, on the rows
    of the two arms at every point: a Cox model of time to first purchase
    stratified by point and a logit of buying, with standard errors
    clustered by point and replicate (the arms of a replicate at a point
    share their viewers; points have seeds of their own).
    """
    import warnings

    from fomolab.errors import DataError
    from fomolab.stats.compare import binary_logit, p_adjust
    from fomolab.stats.cox import cox

    methods = {"hazard_ratio": "Cox (Efron) of time from arrival to first purchase on the arm, stratified by "
                               "point, robust SE clustered by point and replicate",
               "odds_ratio": "logit of bought on the arm (closed form), vcovCL clustered by point and replicate"}
    ctrl = sh[sh.arm == control]
    rows = []
    for arm in arms:
        if arm == control:
            continue
        trt = sh[sh.arm == arm]
        if trt.empty or ctrl.empty:
            continue
        sub = pd.concat([ctrl, trt], ignore_index=True)
        sub["treated"] = (sub.arm == arm).astype(int)
        sub["cluster"] = sub.point.to_numpy().astype("int64") * 1_000_003 + sub.replicate.to_numpy().astype("int64")
        clusters = sub.cluster.nunique()
        cl = "cluster" if clusters >= 2 else None
        base = dict(arm=arm, control=control, n=len(trt), control_n=len(ctrl), clusters=clusters)

        def hr(sub=sub, cl=cl):
            f = cox(sub, "time_s", "bought", ["treated"], cluster=cl, strata="point", conf_level=conf_level)
            t = f.summary.loc["treated"]
            return t.hazard_ratio, t.ci_lower, t.ci_upper, t.p

        def odds(sub=sub, cl=cl):
            return binary_logit(sub.bought.to_numpy(float), sub.treated.to_numpy(int),
                                sub.cluster.to_numpy() if cl else None, conf_level)

        for outcome, measure, fn in (("time_to_purchase", "hazard_ratio", hr), ("conversion", "odds_ratio", odds)):
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    est, lo, hi, p = fn()
                note = "; ".join(sorted({str(w.message) for w in caught}))
            except DataError as exc:
                est = lo = hi = p = np.nan
                note = str(exc)
            rows.append({**base, "outcome": outcome, "measure": measure, "estimate": est, "ci_lower": lo,
                         "ci_upper": hi, "p": p, "method": methods[measure], "note": note})
    out = pd.DataFrame(rows, columns=POOLED_COLUMNS)
    for idx in out.groupby("measure", sort=False).groups.values():
        out.loc[idx, "p_holm"] = p_adjust(out.loc[idx, "p"], "holm")
    return out.astype({"estimate": "float64", "ci_lower": "float64", "ci_upper": "float64", "p": "float64",
                       "p_holm": "float64"})


STREAM_MEASURES = ("viewers", "share_viewers", "units_sold", "revenue", "cost", "cost_per_sale")


def _streams(res, conf_level: float) -> pd.DataFrame:
    """Per point, arm and stream: the host and each measure's mean over replicates with a t interval."""
    from fomolab.stats._intervals import t_interval

    s = res.streams.assign(arm=lambda d: d.arm.astype(str), host_kind=lambda d: d.host_kind.astype(str))
    keys = ["point", "arm", "stream", "host_kind", "host_appeal", "host_trust", "cost_per_hour"]
    rows = []
    for key, g in s.groupby(keys, sort=True):
        row = dict(zip(keys, key, strict=False), replicates=len(g))
        for m in STREAM_MEASURES:
            mean, lo, hi = t_interval(g[m].to_numpy(float), conf_level)
            row.update({m: mean, f"{m}_ci_lower": lo, f"{m}_ci_upper": hi})
        rows.append(row)
    return pd.DataFrame(rows)
