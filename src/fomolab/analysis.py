"""Analysis of a results folder: the tables ``fomolab analyze`` prints and writes.

The picture: the statistician's pass over a finished experiment.  From the
``runs``, ``shoppers`` and ``events`` tables it computes

* ``headline``: per arm (and sweep point), viewers, conversion, the
  Kaplan–Meier median time to first purchase with its interval, the hazard and
  odds ratios against the control estimated within each replicate with t
  intervals across replicates and Holm-adjusted p values, and the
  deadline-bunching share;
* ``changes``: what each arm changes against the control (buyers, purchases,
  revenue, spend per viewer; :mod:`fomolab.stats.changes`), the
  coupling-free primary causal output;
* ``rates``: Andersen–Gill rate ratios of purchases per product, by arm and by
  tactic (:mod:`fomolab.stats.rates`);
* ``ph`` and ``hr_windows``: proportional-hazards tests (R's ``cox.zph``) and
  the hazard ratio by window of stream time (:mod:`fomolab.stats.ph`);
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

import contextlib
import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fomolab.stats._folder import text_values

if TYPE_CHECKING:
    from fomolab._spill import Spill
    from fomolab.results import Alloc

__all__ = ["Analysis", "HEADLINE_COLUMNS", "analyze"]

#: The columns of ``Analysis.headline``, in order.
HEADLINE_COLUMNS = [
    "point", "arm", "runs", "viewers", "buyers", "conversion", "horizon_s",
    "cuminc", "cuminc_ci_lower", "cuminc_ci_upper",
    "cuminc_diff", "cuminc_diff_ci_lower", "cuminc_diff_ci_upper", "cuminc_diff_p",
    "rmst_s", "rmst_ci_lower", "rmst_ci_upper",
    "rmst_diff_s", "rmst_diff_ci_lower", "rmst_diff_ci_upper", "rmst_diff_p",
    "median_s", "median_ci_lower", "median_ci_upper", "median_note", "median_buyers_s",
    "hazard_ratio", "hr_ci_lower", "hr_ci_upper", "hr_p_holm",
    "odds_ratio", "or_ci_lower", "or_ci_upper", "or_p_holm",
    "deadline_share", "deadline_expected_share", "deadline_p", "note",
]

#: Table names, in the order they are written and printed.
TABLES = ("headline", "changes", "for_whom", "rates", "ph", "hr_windows", "arms", "deadline", "points", "surface",
          "sobol", "impact", "impact_segment", "impact_total", "streams", "pooled", "concentration", "episode_model",
          "timeline", "windows", "survival", "incidence", "repeat", "deadline_curve", "impulsiveness", "lineup",
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
    episode_model : pandas.DataFrame or None
        Hazard ratio of a first purchase while each tactic runs, arms pooled,
        from aggregated person-time (:func:`fomolab.episode_model.episode_model`);
        None when no tactic window ran.
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
    for_whom: pd.DataFrame | None = None
    changes: pd.DataFrame | None = None
    rates: pd.DataFrame | None = None
    ph: pd.DataFrame | None = None
    hr_windows: pd.DataFrame | None = None
    impact_segment: pd.DataFrame | None = None
    impact_total: pd.DataFrame | None = None
    streams: pd.DataFrame | None = None
    pooled: pd.DataFrame | None = None
    concentration: pd.DataFrame | None = None
    episode_model: pd.DataFrame | None = None
    timeline: pd.DataFrame | None = None
    windows: pd.DataFrame | None = None
    survival: pd.DataFrame | None = None
    incidence: pd.DataFrame | None = None
    repeat: pd.DataFrame | None = None
    deadline_curve: pd.DataFrame | None = None
    impulsiveness: pd.DataFrame | None = None
    lineup: pd.DataFrame | None = None
    marginals: pd.DataFrame | None = None
    cells: pd.DataFrame | None = None
    control: str = "control"
    arm_order: list[str] = field(default_factory=list)
    conf_level: float = 0.95
    last: float = 0.1
    horizon: float = float("nan")
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

    def _repr_html_(self) -> str:
        """The description and the headline (then the names of the other tables), for Jupyter."""
        from fomolab._terminal import html_view

        rest = [t for t in self.tables() if t != "headline"]
        return html_view(repr(self), [("headline", self.headline),
                                      *([("", "other tables: " + ", ".join(rest))] if rest else [])])

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
        ['arms.csv', 'changes.csv', 'deadline.csv', 'deadline_curve.csv', 'episode_model.csv', 'for_whom.csv',
         'headline.csv', 'hr_windows.csv', 'impact.csv', 'impact_segment.csv', 'impact_total.csv',
         'impulsiveness.csv', 'incidence.csv', 'ph.csv', 'points.csv', 'rates.csv', 'repeat.csv', 'survival.csv',
         'timeline.csv', 'windows.csv']
        """
        from fomolab.outputs import write_output

        target = Path(folder) if folder is not None else self.path / "analysis"

        def fill(tmp: Path) -> None:
            for name, df in self.tables().items():
                df.to_csv(tmp / f"{name}.csv", index=False)
                (tmp / f"{name}.md").write_text(_markdown(df, title=_TITLES[name]))

        return write_output(target, "analysis", self.path, fill)


_TITLES = {
    "headline": "Headline: per arm, against the control (buying before leaving; intervals across replicates)",
    "for_whom": "For whom: the share who buy by the horizon, by segment and impulsiveness quintile, "
                "with a test of equal effects across groups",
    "changes": "What each arm changes against the control: buyers, purchases, revenue and spend per run and per "
               "viewer (coupling-free; paired by replicate, t intervals across replicates)",
    "rates": "Purchases per product: Andersen-Gill rate ratios by arm and by tactic (fitted within each "
             "replicate, t intervals across replicates)",
    "ph": "Proportional hazards: cox.zph score tests of each arm's cause-specific hazard ratio "
          "(Cox stratified by replicate), per arm and global, for each time transform",
    "hr_windows": "Hazard ratio of buying by window of stream time (before, during and after the tactics' "
                  "windows; t intervals across replicates)",
    "arms": "Arms against the control: effects, intervals, p and Holm/BH-adjusted p",
    "deadline": "Deadline bunching: share of purchases in the last part of sale and timer windows",
    "pooled": "Arms against the control pooled over sweep points (Cox stratified by point)",
    "concentration": "Marketplace concentration: HHI, Gini and top share (means over replicates)",
    "episode_model": "Hazard ratio of buying while each tactic runs (arms pooled, stream clock; "
                     "piecewise-exponential Poisson on aggregated person-time)",
    "timeline": "Purchase rate, viewers and stock over stream time (means over runs)",
    "windows": "Tactic windows (median over the runs that had them)",
    "survival": "Kaplan-Meier share who have bought by time since arrival",
    "incidence": "Cumulative incidence of buying by time since arrival (Aalen-Johansen, leaving competes)",
    "repeat": "Mean cumulative number of purchases per viewer by time since arrival",
    "deadline_curve": "Purchases per minute and run by seconds left to each deadline",
    "impulsiveness": "Conversion and time to purchase by impulsiveness group (means over runs)",
    "lineup": "Buyers and revenue of each product of a long lineup, by slot (means over runs)",
    "marginals": "Run metrics at each value of each swept parameter (means over runs)",
    "cells": "Mean conversion over the first two swept parameters",
    "points": "Sweep points: metric means over replicates with t intervals",
    "surface": "Response surface: OLS of each metric on the swept parameters",
    "sobol": "Sobol indices (first order and total) with bootstrap intervals",
    "impact": "Consumer impact by impulsiveness quintile: each treatment arm against the same viewers in the control "
              "('accelerated' and 'seconds gained' are properties of the model's coupling, docs/MODEL.md)",
    "impact_segment": "Consumer impact by segment: each treatment arm against the same viewers in the control "
                      "('accelerated' and 'seconds gained' are properties of the model's coupling, docs/MODEL.md)",
    "impact_total": "Consumer impact over all viewers: each treatment arm against the same viewers in the control "
                    "('accelerated' and 'seconds gained' are properties of the model's coupling, docs/MODEL.md)",
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
            seed: int = 0, last: float = 0.1, horizon: float | None = None, scheduler: Any = None,
            workers: int | None = None, side_process: bool | None = None, spill: bool | str | None = None
            ) -> Analysis:
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
    horizon : float, optional
        Seconds since arrival at which the cumulative incidence of buying is
        read and up to which the restricted mean time to purchase runs
        (default: a typical visit, the median visit length in the control,
        :func:`default_horizon`).
    scheduler : str or distributed.Client, optional
        A Dask scheduler (``tcp://HOST:PORT``) or a connected client: the
        per-point tables (the headline, ``for_whom`` and the within-replicate
        ratios) are computed on its workers, one task per sweep point, each
        reading its point's viewers from the folder (the workers must see it),
        and the consumer-impact tables and the episode model are one task
        each, reading the folder themselves, while this process computes the
        other tables; the tables are identical to the serial analysis.
    workers : int, optional
        Instead of ``scheduler``: a local Dask cluster of this many worker
        processes on loopback, stopped when the analysis ends.
    side_process : bool, optional
        Without a scheduler: whether the consumer-impact tables and the
        episode model are computed in a side process, one after the other,
        each reading the folder itself a part at a time, while this one
        computes the others (the tables are the same).  By default they are
        when the folder holds at least :data:`SIDE_PROCESS_VISITS` visits and
        this process may run on more than one CPU.  Should the side process
        die (killed for memory, say), the tables it had not sent are
        computed here, with a warning.
    spill : bool or str, optional
        Whether the visits' columns are kept in files on disk mapped into
        memory (:mod:`fomolab._spill`) rather than in the process's own
        memory: each step then holds the pages of the columns it reads, and
        the kernel may drop them and read them again from disk when memory
        is short; the tables are the same.  A string is the directory of
        the files (default the system's temporary directory, ``TMPDIR``;
        it should be on a disk, not a ``tmpfs``).  By default they are when
        the folder holds at least :data:`SPILL_VISITS` visits and the
        temporary directory is on a disk.

    Returns
    -------
    Analysis
        The tables; ``.write()`` saves them.

    Raises
    ------
    ResultsError
        Not a results folder, no finished runs, or no finished control run.
    DataError
        ``horizon`` is not a positive number.
    SchedulerError
        No Dask scheduler answers at ``scheduler`` (checked before anything is read).
    MissingExtraError
        ``scheduler`` or ``workers`` given without the ``dask`` extra.

    Notes
    -----
    See :func:`fomolab.stats.compare.compare_arms` for the contrasts: time to
    first purchase runs from arrival, hazard and odds ratios are estimated
    within each replicate (the arms of a replicate show the same viewers by
    common random numbers) with t intervals across the replicates.  The
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
    ['arms', 'changes', 'deadline', 'deadline_curve', 'episode_model', 'for_whom', 'headline', 'hr_windows',
     'impact', 'impact_segment', 'impact_total', 'impulsiveness', 'incidence', 'ph', 'points', 'rates', 'repeat',
     'survival', 'timeline', 'windows']
    """
    from fomolab._side import SideTask
    from fomolab.stats import _folder

    t0 = time.perf_counter()
    if workers is not None or isinstance(scheduler, str):
        with _dask_client(scheduler, workers) as client:
            a = analyze(results, control=control, conf_level=conf_level, n_boot=n_boot, seed=seed, last=last,
                        horizon=horizon, scheduler=client, spill=spill)
        a.seconds = time.perf_counter() - t0
        return a
    client = scheduler
    res = _folder.as_results(results)
    runs = _folder.nonempty_runs(res)
    control = control if control is not None else res.manifest.get("control", "control")
    # the tables that read the folder themselves (consumer impact, the episode model) are tasks that run
    # elsewhere, on the workers or in a side process, while this process computes the others
    side = _side_tasks(res, runs, control, conf_level, client) if client is not None else {}
    kept = _spill_of(spill, runs)
    try:
        with kept if kept is not None else contextlib.nullcontext():
            a = _analyze(res, runs, control, side, client, conf_level=conf_level, n_boot=n_boot, seed=seed,
                         last=last, horizon=horizon, side_process=side_process, spill=kept)
    finally:
        for task in side.values():
            if isinstance(task, SideTask):
                task.cancel()  # nothing left to stop once its result was taken
    a.seconds = time.perf_counter() - t0
    return a


def _analyze(res, runs: pd.DataFrame, control: str, side: dict[str, Any], client: Any, *, conf_level: float,
             n_boot: int, seed: int, last: float, horizon: float | None, side_process: bool | None,
             spill: Spill | None = None) -> Analysis:
    """:func:`analyze`'s tables; the tasks started for some of them are put in ``side`` (the caller stops them).

    With ``spill`` (entered: its thread unmapping the pages read), the visits' columns are kept in it.
    """
    from fomolab import figure_data
    from fomolab.stats import _folder
    from fomolab.stats.compare import compare_tables, deadline_tables
    from fomolab.stats.sweep import _swept, response_surface, sobol_indices, sweep_points

    alloc = spill.empty if spill is not None else None
    # the integer columns read in the types the visit frame keeps them in (never eight bytes a visit)
    shoppers = res.viewers(["run_id", "arm", "replicate", "point", "shopper_id", "segment", "impulsiveness",
                            "arrival_s", "departure_s", "first_purchase_s"],
                           narrow=("replicate", "point", "shopper_id"), spill=spill)
    # every table but the timeline's viewers reads events other than the two rows per visit, and those
    # come from the visits' own arrival and departure times
    events = res.events_except(["arrive", "leave"], ["run_id", "time_s", "kind", "shopper_id", "product", "tactic"])
    if client is None:  # the side process starts once the folder is read: reading decodes on both cores
        side.update(_local_side_tasks(res, runs, control, conf_level, side_process))
    r = runs.assign(arm=runs.arm.astype(str))
    end_s = _stream_end(res, r)
    sh = _visit_frame(shoppers, end_s, alloc)  # the viewers' columns and their outcomes: the one per-viewer frame
    del shoppers
    if "episode_model" in side:
        # the episode model, the one table that reads the first purchases once time_s and bought hold them,
        # reads the folder itself elsewhere (and here too, should its side process die)
        del sh["first_purchase_s"]
    paired: dict[int, pd.DataFrame] = {}  # each point's within-replicate ratios, shared with the headline
    arms = compare_tables(res, runs, sh, control, conf_level=conf_level, n_boot=n_boot, seed=seed, paired=paired)
    deadline = deadline_tables(res, runs, sh, events, last)

    # headline: one row per point and arm
    spec_arms = set(res.manifest.get("arms", []))
    order = [a for a in _folder.arm_order(res.manifest, r.arm, control_first=False) if a in spec_arms]
    if horizon is None:
        horizon = default_horizon(sh, control)
    else:
        from fomolab.errors import DataError

        try:
            horizon = float(horizon)
        except (TypeError, ValueError):
            raise DataError(f"'horizon' must be a positive number of seconds: got {horizon!r}") from None
        if not np.isfinite(horizon) or horizon <= 0:
            raise DataError(f"'horizon' must be a positive number of seconds: got {horizon!r}")
    coded = _part_frame(sh)  # the columns the point tables and curves use, arms as codes (grouped by integers)
    # on Dask the points' tasks run while this process computes the other tables; here they come last, once
    # the visits' other columns are freed
    parts = (_point_parts(res, coded, r, end_s, order, control, horizon, conf_level, client, paired=paired)
             if client is not None else None)
    changes, rates, ph, hr_windows = _effect_tables(res, r, sh, events, order, control, end_s, conf_level)

    points = sweep_points(res, conf_level=conf_level)
    surface = sobol = None
    if res.manifest.get("swept"):
        surface = response_surface(res, conf_level=conf_level)
        if res.manifest.get("sweep_design") == "saltelli":
            sobol = sobol_indices(res, conf_level=conf_level, seed=seed)
    impact = impact_segment = impact_total = None
    done, tabs = _side_result(side, "impact")
    if not done and _has_impact(res, runs):
        from fomolab.attribution import impact_tables

        tabs = impact_tables(res, control, level=conf_level)  # one pairing of viewers, a batch of replicates at a time
    if tabs is not None:
        impact, impact_segment, impact_total = tabs["quintile"], tabs["segment"], tabs["all"]
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
    done, episodes = _side_result(side, "episode_model")
    if not done:
        # the visits already read (without their first purchases: each run's read again)
        episodes = _episode_model(res, conf_level, sh if "first_purchase_s" in sh.columns else None)
    visits = None if "stream" in res._columns("shoppers") else sh  # a marketplace: one row per visit
    figures = dict(timeline=figure_data.timeline(res, runs, events, figure_arms, conf_level, visits=visits),
                   windows=figure_data.windows(events, runs),
                   repeat=figure_data.repeat_purchases(sh, events, figure_arms, conf_level, horizon),
                   deadline_curve=figure_data.deadline_curve(events, runs, figure_arms),
                   lineup=figure_data.lineup(res, runs, figure_arms, conf_level))
    del visits, sh, events  # from here on, only the point tables' columns of the visits (``coded``)
    figures["impulsiveness"] = figure_data.impulsiveness(coded, figure_arms, conf_level)
    from fomolab._side import cpus

    # the side process is done by now: the sort and the point tables use both cores
    threads = min(2, cpus())
    # the curves and the point tables read the rows by time: they share one stable sort, which replaces
    # the rows as read (its columns dropped from the old frame as they are taken)
    coded = _by_time(coded, drop=True, threads=threads, alloc=alloc)
    figures.update(survival=figure_data.survival(coded, figure_arms, conf_level),
                   incidence=figure_data.incidence(coded, figure_arms, conf_level, horizon))
    if client is not None:
        parts = client.gather(parts)
    else:
        parts = _point_parts(res, coded, r, end_s, order, control, horizon, conf_level, paired=paired,
                             threads=threads)
    del coded
    headline, for_whom = _combine_points(parts, deadline, order, control, conf_level)
    return Analysis(path=res.path, headline=headline, arms=arms, deadline=deadline, points=points,
                    episode_model=episodes,
                    surface=surface, sobol=sobol, impact=impact, impact_segment=impact_segment,
                    impact_total=impact_total, streams=streams, pooled=pooled, concentration=concentration,
                    for_whom=for_whom, **figures, changes=changes, rates=rates, ph=ph, hr_windows=hr_windows,
                    marginals=marginals, cells=cells, control=control, arm_order=figure_arms,
                    conf_level=conf_level, last=last, horizon=horizon, swept=swept,
                    sweep_design=res.manifest.get("sweep_design") if swept else None)


#: Visits from which :func:`analyze` keeps the visits' columns in files mapped into memory by default
#: (:mod:`fomolab._spill`): below it the frame of the visits' columns (about 50 bytes a visit) is under
#: half a gigabyte, and writing it to disk is not worth it.
SPILL_VISITS = 10**7


def _spills(spill: bool | str | None, visits: int) -> bool:
    """Whether :func:`analyze`'s ``spill`` keeps the visits' columns of a folder of ``visits`` in files."""
    from fomolab._spill import usable

    if spill is None:
        return visits >= SPILL_VISITS and usable()
    return spill is not False


def _spill_of(spill: bool | str | None, runs: pd.DataFrame) -> Spill | None:
    """The :class:`fomolab._spill.Spill` :func:`analyze`'s ``spill`` asks for (None: the visits in memory)."""
    from fomolab._spill import Spill, usable

    if not _spills(spill, _visits(runs)[0]):
        return None
    directory = spill if isinstance(spill, str) else None
    if spill is not None and not usable(directory):  # (the default checked it already)
        from fomolab.errors import DataError

        raise DataError(f"spill={spill!r}: the visits' columns cannot be kept out of memory there (a directory "
                        "held in memory, tmpfs, or a system without shared memory-mapped files that can be "
                        "unmapped, madvise): give a directory on a disk, or spill=False")
    return Spill(directory)


def _visits(runs: pd.DataFrame) -> tuple[int, int]:
    """The visits of the runs ``runs`` (their viewers) and those of their largest arm."""
    if "viewers" not in runs.columns or not len(runs):
        return 0, 0
    return int(runs.viewers.sum()), int(runs.groupby("arm", observed=True).viewers.sum().max())


def _beside(threads: int, other: Any, here: Any) -> tuple[Any, Any]:
    """``(other(), here())``: with ``threads`` above 1, ``other`` on a second thread while this one runs
    ``here`` (numpy lets go of the interpreter in most of its work); else one after the other."""
    if threads < 2:
        return other(), here()
    with ThreadPoolExecutor(1) as pool:  # (its exit waits for ``other``, should ``here`` fail: nothing left running)
        future = pool.submit(other)
        mine = here()
        return future.result(), mine


#: ``analyze``'s peak resident memory (its side processes' included): :data:`PEAK_FIXED_BYTES`, plus
#: :data:`PEAK_BYTES_PER_VISIT` for each visit of the folder (the one frame of the visits' columns it holds,
#: about 45 bytes a visit; none where it keeps them in files, :data:`SPILL_VISITS`), plus
#: :data:`PEAK_BYTES_PER_ARM_VISIT` for each visit of its largest arm (the arrays
#: a step builds over one arm's visits: the largest, the cumulative-incidence figure's, about 150 bytes a
#: row).  Above the peaks measured at 2 x 10^6 visits in two arms and 10^7 in one (0.74 and 1.97 GB, in memory)
#: and 3.7 x 10^7 in four (1.8 GB, spilled: docs/performance.md) by 2 to 21 percent.
PEAK_FIXED_BYTES = 520 * 2**20
PEAK_BYTES_PER_VISIT = 45
PEAK_BYTES_PER_ARM_VISIT = 150


def peak_memory_estimate(results: Any, spill: bool | str | None = None) -> tuple[int, int]:
    """The folder's visits (its runs' viewers) and about how many bytes ``analyze`` holds at its peak for them.

    From the runs table alone (nothing per visit is read).  ``analyze``
    holds the folder's per-visit columns in memory (unless ``spill``, as
    :func:`analyze`'s, keeps them in files), and its steps build arrays
    over one arm's visits at a time, so its peak grows with the visits and
    with those of the largest arm: :data:`PEAK_BYTES_PER_VISIT` a visit
    held and :data:`PEAK_BYTES_PER_ARM_VISIT` a visit of that arm.
    """
    from fomolab.stats import _folder

    visits, largest = _visits(_folder.as_results(results).runs)
    held = 0 if _spills(spill, visits) else PEAK_BYTES_PER_VISIT * visits
    return visits, PEAK_FIXED_BYTES + held + PEAK_BYTES_PER_ARM_VISIT * largest


#: Columns of :func:`visit_outcomes`' frame that a point's tables (:func:`_point_part`) use.
PART_COLUMNS = ["arm", "replicate", "point", "segment", "impulsiveness", "time_s", "bought", "outcome"]

#: Columns of a sweep point's shoppers that its per-point tables use.
POINT_COLUMNS = ["run_id", "arm", "replicate", "point", "shopper_id", "segment", "impulsiveness", "arrival_s",
                 "departure_s", "first_purchase_s"]


class _dask_client:
    """A context giving a ``distributed.Client``: to ``scheduler`` (probed first) or a local cluster of ``workers``."""

    def __init__(self, scheduler: Any, workers: int | None) -> None:
        from fomolab._optional import require

        if scheduler is not None and workers is not None:
            from fomolab.errors import DataError

            raise DataError("give a Dask scheduler or a number of local workers, not both")
        require("distributed", "analysing on a Dask cluster")
        if isinstance(scheduler, str):
            from fomolab.executor import connect_scheduler

            connect_scheduler(scheduler)  # a wrong address fails here, in seconds, before anything is read
        self.scheduler, self.workers = scheduler, workers
        self._stack: Any = None

    def __enter__(self) -> Any:
        from contextlib import ExitStack

        from distributed import Client, LocalCluster

        self._stack = ExitStack()
        if self.workers is not None:
            cluster = self._stack.enter_context(
                LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                             dashboard_address=None))
            return self._stack.enter_context(Client(cluster))
        return self._stack.enter_context(Client(self.scheduler, timeout="30s"))

    def __exit__(self, *exc: Any) -> None:
        self._stack.__exit__(*exc)


def _has_impact(res, runs: pd.DataFrame) -> bool:
    """Whether the folder has consumer-impact tables (common random numbers and several arms)."""
    return bool(res.common_random_numbers) and len(set(runs.arm.astype(str))) > 1


def _side_tasks(res, runs: pd.DataFrame, control: str, conf_level: float, client: Any) -> dict[str, Any]:
    """The consumer-impact tables and the episode model as Dask tasks, each reading the folder at its path.

    Each task opens the folder as ``res`` does (the same replicates) and
    returns what the serial analysis computes, with the warnings it raised
    (:func:`_task_result` raises them again here).
    """
    return {name: client.submit(_warned, *job, key=f"fomolab-analyze-{name.replace('_', '-')}", pure=False)
            for name, job in _side_jobs(res, runs, control, conf_level).items()}


def _side_jobs(res, runs: pd.DataFrame, control: str, conf_level: float) -> dict[str, tuple[Any, ...]]:
    """The tables that read the folder themselves, each as ``(function, *arguments)``: the consumer-impact
    tables where the folder has them, and the episode model (in the order :func:`_analyze` takes them)."""
    path, reps = str(res.path), res.replicates
    jobs: dict[str, tuple[Any, ...]] = {}
    if _has_impact(res, runs):
        jobs["impact"] = (_impact_task, path, reps, control, conf_level)
    jobs["episode_model"] = (_episode_task, path, reps, conf_level)
    return jobs


#: Visits from which :func:`analyze` computes the consumer-impact tables and the episode model in a side
#: process by default. It costs about 170 MB for its interpreter and 70 MB for its part of the folder;
#: below this size the analysis takes under a minute and the memory is not worth the seconds won.
SIDE_PROCESS_VISITS = 10**7


def _local_side_tasks(res, runs: pd.DataFrame, control: str, conf_level: float, wanted: bool | None
                      ) -> dict[str, Any]:
    """The consumer-impact tables and the episode model, one after the other in one side process
    (:func:`fomolab._side.side_tasks`), where ``wanted``.

    ``wanted=None``: where the folder holds at least :data:`SIDE_PROCESS_VISITS`
    visits (from the runs table) and this process may use a second CPU.
    Both read the folder a part at a time (the impact tables a batch of
    replicates, the episode model a run), so their memory does not grow with
    it.
    """
    from fomolab._side import cpus, side_tasks

    if wanted is None:
        visits = int(runs.viewers.sum()) if "viewers" in runs.columns else 0
        wanted = visits >= SIDE_PROCESS_VISITS and cpus() > 1
    if not wanted:
        return {}
    return side_tasks({name: (_warned, *job) for name, job in _side_jobs(res, runs, control, conf_level).items()})


def _side_result(side: dict[str, Any], name: str) -> tuple[bool, Any]:
    """``(True, result)`` of the side task ``name``, its warnings raised again here; ``(False, None)`` without one.

    A side process that died gives ``(False, None)`` too, with a warning: the
    caller then computes the table itself.
    """
    if name not in side:
        return False, None
    from fomolab._side import SideProcessDied

    try:
        return True, _task_result(side[name])
    except SideProcessDied as e:
        import warnings

        warnings.warn(f"{e}: the {name} tables are computed in this process instead", RuntimeWarning,
                      stacklevel=3)
        return False, None


def _impact_task(path: str, replicates: int | None, control: str, conf_level: float) -> dict[str, pd.DataFrame]:
    """:func:`fomolab.attribution.impact_tables` of the folder at ``path`` (on a Dask worker or a side process)."""
    from fomolab.attribution import impact_tables
    from fomolab.results import Results

    return impact_tables(Results(path, replicates=replicates), control, level=conf_level)


def _episode_task(path: str, replicates: int | None, conf_level: float) -> pd.DataFrame | None:
    """:func:`_episode_model` of the folder at ``path``, its visits read there (on a Dask worker)."""
    from fomolab.results import Results

    return _episode_model(Results(path, replicates=replicates), conf_level)


def _warned(fn: Any, *args: Any) -> tuple[Any, list[tuple[str, type[Warning]]]]:
    """``fn(*args)`` and the warnings it raised (a worker's warnings do not reach the client by themselves)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args)
    return out, [(str(w.message), w.category) for w in caught]


def _task_result(future: Any) -> Any:
    """A :func:`_warned` task's result, its warnings raised again in this process."""
    import warnings

    out, caught = future.result()
    for message, category in caught:
        warnings.warn(message, category, stacklevel=2)
    return out


def _point_parts(res, sh: pd.DataFrame, runs: pd.DataFrame, end_s: dict[str, float], order: list[str],
                 control: str, horizon: float, conf_level: float, client: Any = None,
                 paired: dict[int, pd.DataFrame] | None = None, threads: int = 1) -> list[Any]:
    """Each sweep point's tables (:func:`_point_part`), in point order: here, or one Dask task per point.

    On a Dask ``client`` each task gets the folder's path, its point's run ids
    and runs rows (small) and reads its own viewers (:func:`_point_task`);
    the futures are returned, for ``client.gather``.  ``paired``: the points'
    paired analyses already computed by
    :func:`fomolab.stats.compare.compare_tables` (its ``paired`` argument),
    used for the headline's ratios instead of computing them again.
    ``threads``: as :func:`_point_part`'s, here.
    """
    points = _points_of(sh.point.to_numpy())  # (sorted; one comparison pass where the rows are of one point)
    known = paired or {}
    if client is None:
        slim = _part_frame(sh)
        if len(points) == 1:
            return [_point_part(slim, runs[runs.point == points[0]], order, control, horizon, conf_level,
                                known.get(int(points[0])), threads)]
        at = sh.point.to_numpy()
        return [_point_part(slim[at == p], runs[runs.point == p], order, control, horizon,
                            conf_level, known.get(int(p)), threads) for p in points]
    futures = []
    for p in points:
        rp = runs[runs.point == p]
        ids = [str(i) for i in rp.run_id]
        futures.append(client.submit(_point_task, str(res.path), ids, rp, {i: end_s[i] for i in ids}, order,
                                     control, horizon, conf_level, known.get(int(p)),
                                     key=f"fomolab-analyze-point-{int(p)}", pure=False))
    return futures


def _point_task(path: str, run_ids: list[str], runs: pd.DataFrame, end_s: dict[str, float], order: list[str],
                control: str, horizon: float, conf_level: float, paired: pd.DataFrame | None = None
                ) -> dict[str, Any]:
    """:func:`_point_part` of one sweep point, its viewers read from the folder at ``path`` (on a Dask worker)."""
    from fomolab.results import Results
    from fomolab.stats.compare import time_to_purchase

    sh = time_to_purchase(Results(path).viewers(POINT_COLUMNS, run_ids=run_ids))
    sh = visit_outcomes(sh.assign(arm=sh.arm.astype(str)), end_s)
    return _point_part(_part_frame(sh), runs, order, control, horizon, conf_level, paired)


def _part_frame(sh: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``sh`` a point's tables use, ``arm`` and ``outcome`` as categoricals (grouped by codes)."""
    if (isinstance(sh.arm.dtype, pd.CategoricalDtype) and isinstance(sh.outcome.dtype, pd.CategoricalDtype)
            and list(sh.columns) == [c for c in PART_COLUMNS if c in sh.columns]):
        return sh  # already one
    # the other columns are those of sh (views, not copies; a categorical ``segment`` stays one): only the
    # arm's and the outcome's codes are new
    out = {c: (_text_categorical(sh.arm) if c == "arm" else
               _outcome_categorical(sh.outcome) if c == "outcome" else
               sh[c].array if isinstance(sh[c].dtype, pd.CategoricalDtype) else sh[c].to_numpy())
           for c in PART_COLUMNS if c in sh.columns}
    return pd.DataFrame(out, copy=False)


def _text_categorical(col: pd.Series) -> pd.Categorical:
    """``pandas.Categorical(text_values(col))``: a categorical's codes mapped to its names' sorted text
    (no array of names per row, no hashing of the rows)."""
    from fomolab.stats._counts import small_code_type
    from fomolab.stats.kaplan_meier import code_counts

    if not isinstance(col.dtype, pd.CategoricalDtype):
        values = text_values(col)
        if len(values) > 1:
            # rows come run by run, and a run is of one arm: hash only the first row of each stretch of
            # equal names (a comparison of neighbours, not a hash, per row)
            change = np.empty(len(values), dtype=bool)
            change[0] = True
            np.not_equal(values[1:], values[:-1], out=change[1:])
            starts = np.flatnonzero(change)
            del change
            if 8 * len(starts) < len(values):
                firsts = pd.Categorical(values[starts])
                return pd.Categorical.from_codes(np.repeat(firsts.codes, np.diff(np.append(starts, len(values)))),
                                                 dtype=firsts.dtype)
        return pd.Categorical(values)
    codes = col.cat.codes.to_numpy()
    names = [str(c) for c in col.cat.categories] + ["nan"]  # code -1 (missing): "nan", as text_values
    missing = bool((codes < 0).any())
    used = np.flatnonzero(code_counts(codes, len(names) - 1))
    text = sorted({names[k] for k in used} | ({"nan"} if missing else set()))
    at = {v: i for i, v in enumerate(text)}
    kind = small_code_type(len(text))
    cats = col.cat.categories
    if not missing and cats.dtype == object and list(cats) == text and codes.dtype == kind and not col.cat.ordered:
        return col.array  # already one (the visit frame's arm): its own codes, nothing built
    lut = np.array([at.get(v, -1) for v in names], dtype=kind)
    return pd.Categorical.from_codes(lut[codes], categories=text)  # (lut[-1]: a missing code's "nan")


def _outcome_categorical(outcome: pd.Series) -> pd.Categorical:
    """:func:`visit_outcomes`' ``outcome`` as a categorical of ``buy``, ``leave``, ``censored`` (a byte a row)."""
    if isinstance(outcome.dtype, pd.CategoricalDtype):
        return outcome.array
    o = outcome.to_numpy()
    code = np.full(len(o), -1, np.int8)  # (anything else: missing)
    code[o == BUY] = 0
    code[o == LEAVE] = 1
    rest = np.flatnonzero(code < 0)  # (few: the last value compared on these rows alone)
    code[rest[o[rest] == CENSORED]] = 2
    return pd.Categorical.from_codes(code, categories=[BUY, LEAVE, CENSORED])


def _is(col: pd.Series, value: str) -> np.ndarray:
    """Rows where a text column (object or categorical) equals ``value``: by code for a categorical."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = col.cat.categories
        return (col.cat.codes.to_numpy() == cats.get_loc(value)) if value in cats else np.zeros(len(col), bool)
    return (col.to_numpy() == value)


def _point_part(g: pd.DataFrame, rp: pd.DataFrame, order: list[str], control: str, horizon: float,
                conf_level: float, known: pd.DataFrame | None = None, threads: int = 1) -> dict[str, Any]:
    """One sweep point's share of the headline: its timing, ``for_whom`` and ratio rows (p not yet adjusted).

    ``g`` is the point's :func:`visit_outcomes` frame, ``rp`` its runs,
    ``known`` its paired analysis if already computed (:func:`_paired_ratios`).
    ``threads`` above 1: ``for_whom`` is computed on a second thread while
    this one computes the timing rows (the same tables; ``for_whom`` reads
    the rows a stretch at a time, so little memory is added).
    """
    paired = _paired_ratios(g, order, control, conf_level, adjust=False,
                            known=None if known is None or not len(g) else {int(g.point.iloc[0]): known})
    g = _by_time(g)  # every curve below then reads sorted times
    medians: dict[str, tuple[Any, ...]] = {}  # the Kaplan-Meier medians by arm: the timing rows fill it
    for_whom, timing = _beside(
        threads if len(order) > 1 and len(g) else 1,
        lambda: for_whom_table(g, order, control, horizon, conf_level) if len(order) > 1 else None,
        lambda: _timing_rows(g, int(g.point.iloc[0]), order, control, horizon, conf_level, across_replicates,
                             medians) if len(g) else [])
    rows = []
    if len(g):
        point = int(g.point.iloc[0])
        tmi = _timing_frame(timing).set_index(["point", "arm"])
        bought = g.bought.to_numpy()
        time_s = g.time_s.to_numpy()
        rows_of = dict(_arm_rows(g))
        for arm in order:
            if arm not in medians:
                continue
            _, med_lo, med_hi = medians[arm][0]
            ra = rp[rp.arm.astype(str) == arm]
            tm = tmi.loc[(point, arm)]
            shown = not np.isnan(tm.median_s)
            row = dict(point=point, arm=arm, runs=len(ra), viewers=int(ra.viewers.sum()),
                       buyers=int(ra.buyers.sum()), conversion=ra.buyers.sum() / max(ra.viewers.sum(), 1),
                       median_s=tm.median_s,
                       median_ci_lower=med_lo if shown else np.nan,
                       median_ci_upper=med_hi if shown else np.nan,
                       median_buyers_s=pd.Series(time_s[rows_of[arm]][bought[rows_of[arm]] == 1]).median())
            row.update({c: tm[c] for c in TIMING_COLUMNS if c in HEADLINE_COLUMNS and c not in row
                        and c not in ("point", "arm")})
            rows.append(row)
    return dict(rows=rows, for_whom=for_whom, paired=paired)


def _by_time(g: pd.DataFrame, drop: bool = False, threads: int = 1, alloc: Alloc | None = None) -> pd.DataFrame:
    """``g``'s rows grouped by arm (names sorted), each arm's rows in order of ``time_s`` (stable: rows of
    one time keep their order); index 0..n-1.

    Every curve and point table reads an arm's rows in order of time: each
    arm is then one stretch of rows, read as views
    (:func:`fomolab.stats.kaplan_meier.group_rows`), and so is each arm of
    a sweep point's rows.  An arm's rows are in the order of a stable sort
    of the arm's own rows by time (that of a stable sort of all the rows by
    time, too), so its numbers are those of either.  The order comes from
    one stable sort of each arm's times (:func:`_time_order`), and each
    column is a numpy take in 4-byte positions (not a pandas take of the
    frame; a categorical arm is each arm's code written out over its
    stretch).  Rows already in that order are returned without a copy.

    With ``drop``, each column is removed from ``g`` once its copy in the
    new order is made, so the old and the new columns are never all held
    at once (``g`` is left without columns: for a caller that rebinds it).

    ``threads`` above 1: the arms' sorts and the columns' takes run on that
    many threads (numpy lets go of the interpreter while it sorts and
    gathers), each thread's arrays beside the others'; the same order and
    the same columns.  ``alloc``: where the columns in the new order are
    allocated (:func:`_taken`).
    """
    t = g.time_s.to_numpy()
    key = _arm_key(g.arm) if "arm" in g.columns else None
    if key is None:  # one arm
        ordered = len(t) < 2 or bool(np.all(t[1:] >= t[:-1]))  # (times are never NaN)
    else:
        ordered = (bool(np.all(key[1:] >= key[:-1]))
                   and bool(np.all((t[1:] >= t[:-1]) | (key[1:] != key[:-1]))))
    if ordered:
        if isinstance(g.index, pd.RangeIndex) and g.index.start == 0 and g.index.step == 1:
            return g
        out = g.copy(deep=False)
        out.index = pd.RangeIndex(len(g))  # (reset_index would copy every column once more)
        return out
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    try:
        o = _time_order(t, key, pool)
        # a categorical arm in the new order is each arm's code written out over its stretch (no take)
        arm = (_grouped_codes(g.arm, key) if key is not None and isinstance(g.arm.dtype, pd.CategoricalDtype)
               else None)
        del t, key  # (no reference to the old columns but the frame's: each is freed as it is dropped)
        names = list(g.columns)
        run = pool.map if pool is not None else map
        step = max(1, threads)
        taken: dict[str, Any] = {}
        for i in range(0, len(names), step):  # a column a thread at a time, each old one dropped once copied
            part = [c for c in names[i:i + step] if not (c == "arm" and arm is not None)]
            taken.update(zip(part, run(lambda c: _taken(g[c], o, alloc), part), strict=True))
            if drop:
                for c in names[i:i + step]:
                    del g[c]
        cols = {c: arm if c == "arm" and arm is not None else taken.pop(c) for c in names}
    finally:
        if pool is not None:
            pool.shutdown()
    return pd.DataFrame(cols, copy=False)


def _grouped_codes(arm: pd.Series, key: np.ndarray) -> pd.Categorical:
    """A categorical ``arm`` in the order of its :func:`_arm_key` ``key`` (as :func:`_time_order` puts the
    rows): the key ``k`` is the ``k``-th name in sorted order (the last, a missing code), so each key's
    stretch of rows holds one code, written out with its count of rows."""
    from fomolab.stats.kaplan_meier import code_counts

    names = np.array([str(v) for v in arm.cat.categories], dtype=object)
    code_of = np.append(np.argsort(names, kind="stable"), -1).astype(arm.cat.codes.dtype)
    counts = code_counts(key, len(names) + 1)
    return pd.Categorical.from_codes(np.repeat(code_of, counts), dtype=arm.dtype, validate=False)


def _time_order(t: np.ndarray, key: np.ndarray | None, pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """The row positions of a stable sort by ``key`` (small integers; None: one key), then by ``t``.

    Positions are 4-byte integers below 2^31 rows.  Each key's rows (in row
    order) are sorted by their own times, one stable sort each: the same
    order as a stable sort of all the times followed by a stable sort of
    their keys, without a second permutation of all the rows.  ``pool``:
    the keys' sorts run on its threads.
    """
    from fomolab.stats._counts import stable_argsort
    from fomolab.stats.kaplan_meier import code_counts

    small = np.int32 if len(t) < 2 ** 31 else np.int64
    if key is None:
        return stable_argsort(t).astype(small, copy=False)
    o = np.empty(len(t), small)
    counts = code_counts(key, int(key.max()) + 1)
    at = np.concatenate(([0], np.cumsum(counts)))

    def one(k: int) -> None:
        rows = np.flatnonzero(key == k)
        o[at[k]:at[k + 1]] = rows[stable_argsort(t[rows])]

    keys = [k for k in range(len(counts)) if counts[k]]
    list(pool.map(one, keys) if pool is not None else map(one, keys))  # (each fills its stretch of o)
    return o


def _taken(col: pd.Series, o: np.ndarray, alloc: Alloc | None = None) -> Any:
    """``col``'s values at the positions ``o`` (a permutation of its rows).

    The take of a long column in random order is a cache miss a row: a
    column of one value is written out instead, and integers (replicates,
    points, flags) are taken in the smallest type that holds them (one or
    two bytes a row, not eight; the same values).  A categorical's codes are
    taken as they are (a pandas take would first turn 4-byte positions
    into 8-byte ones).  ``alloc``: where the numbers and codes taken are
    allocated (:data:`fomolab.results.Alloc`; default ``numpy.empty``).
    """
    from fomolab.stats._counts import small_int_type

    def take(v: np.ndarray) -> np.ndarray:
        # (mode="clip": o holds positions of v, and a take into ``out`` in the default mode goes through a buffer)
        return v[o] if alloc is None else np.take(v, o, out=alloc(len(o), v.dtype), mode="clip")

    if isinstance(col.dtype, pd.CategoricalDtype):
        return pd.Categorical.from_codes(take(col.cat.codes.to_numpy()), dtype=col.dtype, validate=False)
    if isinstance(col.dtype, pd.api.extensions.ExtensionDtype):
        return col.array.take(o)
    v = col.to_numpy()
    if v.dtype.kind in "iu" and len(v):
        lo, hi = int(v.min()), int(v.max())
        small = small_int_type(lo, hi) or v.dtype
        if lo == hi:
            out = (alloc or np.empty)(len(o), small)
            out.fill(lo)
            return out
        v = v.astype(small, copy=False)
    return take(v)


def _arm_key(arm: pd.Series) -> np.ndarray | None:
    """Each row's arm as its rank among the arms' names (a categorical's missing code last); None: one arm."""
    if isinstance(arm.dtype, pd.CategoricalDtype):
        names = np.array([str(v) for v in arm.cat.categories], dtype=object)
        if len(names) < 2:
            return None
        from fomolab.stats._counts import small_code_type

        rank = np.empty(len(names) + 1, small_code_type(len(names) + 1))
        rank[np.argsort(names, kind="stable")] = np.arange(len(names))
        rank[-1] = len(names)  # (code -1)
        return rank[arm.cat.codes.to_numpy()]
    levels, inv = _sorted_codes(arm.astype(str))
    return inv if len(levels) > 1 else None


def _combine_points(parts: list[dict[str, Any]], deadline: pd.DataFrame, order: list[str], control: str,
                    conf_level: float) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The headline and ``for_whom`` from the points' parts: ratios Holm-adjusted over points, deadline shares."""
    paired = _adjust_ratios([p["paired"] for p in parts])
    rows = []
    for part in parts:
        for row in part["rows"]:
            point, arm = row["point"], row["arm"]
            for measure, pre in (("hazard_ratio", "hr"), ("odds_ratio", "or")):
                if arm == control:
                    row.update({measure: 1.0, f"{pre}_ci_lower": np.nan, f"{pre}_ci_upper": np.nan,
                                f"{pre}_p_holm": np.nan})
                    continue
                if (point, arm, measure) in paired.index:
                    c = paired.loc[(point, arm, measure)]
                    row.update({measure: c.estimate, f"{pre}_ci_lower": c.ci_lower, f"{pre}_ci_upper": c.ci_upper,
                                f"{pre}_p_holm": c.p_holm})
            d = deadline[(deadline.point == point) & (deadline.arm == arm)]
            if len(d):
                d = d.iloc[0]
                row.update(deadline_share=d.share_last, deadline_expected_share=d.expected_share,
                           deadline_p=d.p)
            rows.append(row)
    text = ("arm", "median_note", "note")
    headline = pd.DataFrame(rows, columns=HEADLINE_COLUMNS).astype(
        {c: "float64" for c in HEADLINE_COLUMNS if c not in ("point", "runs", "viewers", "buyers") + text})
    for c in text[1:]:
        headline[c] = headline[c].fillna("").astype(object)
    for_whom = None
    if len(order) > 1:
        fw = [p["for_whom"] for p in parts]
        full = [f for f in fw if len(f)]
        for_whom = (pd.concat(full, ignore_index=True) if full else fw[0] if fw
                    else pd.DataFrame(columns=FOR_WHOM_COLUMNS))
    return headline, for_whom


def _paired_ratios(sh: pd.DataFrame, order: list[str], control: str, conf_level: float,
                   adjust: bool = True, known: dict[int, pd.DataFrame] | None = None) -> pd.DataFrame | None:
    """Hazard and odds ratios of each arm against the control, estimated within each replicate.

    :func:`fomolab.stats.replicate_effects` per point (t interval across
    replicates on the log scale), with Holm-adjusted p over arms and points
    per measure; indexed by ``(point, arm, measure)``.  With ``adjust`` False:
    the unadjusted rows of ``sh``'s points, for :func:`_adjust_ratios`.
    ``known``: points' ``replicate_effects`` summaries already computed on
    (at least) the same arms with these measures and ``conf_level``
    (:func:`fomolab.stats.compare.compare_tables`' ``paired``); a point's rows
    are taken from it when it holds every arm of ``order`` the point has.
    """
    import warnings

    from fomolab.errors import DataError
    from fomolab.stats.replicates import replicate_effects

    parts = []
    arm_all = sh.arm
    if isinstance(arm_all.dtype, pd.CategoricalDtype):  # names as text, rows as codes (no text per row)
        arm_all = arm_all.cat.rename_categories([str(c) for c in arm_all.cat.categories])
    else:
        arm_all = arm_all.astype(str)
    at = sh.point.to_numpy()
    points = _points_of(at)
    for point in points:
        rows = np.flatnonzero(at == point) if len(points) > 1 else None
        arm = arm_all if rows is None else arm_all.iloc[rows]
        if isinstance(arm.dtype, pd.CategoricalDtype):  # the arms present, from counts of the codes
            from fomolab.stats.kaplan_meier import code_counts

            names = arm.cat.categories
            present = {str(names[k]) for k in np.flatnonzero(code_counts(arm.cat.codes.to_numpy(), len(names)))}
            present &= set(order)
        else:
            present = {str(a) for a in pd.unique(arm[arm.isin(order).to_numpy()])}
        if len(present) < 2 or control not in present:
            continue
        s = (known or {}).get(int(point))
        if s is not None and present - {control} <= set(s.group):
            # an arm's estimates use only its and the control's rows: those of a call on more arms
            mine = s[s.group.isin(order) & s.measure.isin(["hazard_ratio", "odds_ratio"])]
            parts.append(mine.reset_index(drop=True).assign(point=int(point)))
            continue
        keep = arm.isin(order).to_numpy()
        take = np.arange(len(sh)) if rows is None else rows
        take = take if keep.all() else take[keep]
        g = pd.DataFrame({"point": at[take], "arm": arm_all.iloc[take].to_numpy(),
                          "replicate": sh.replicate.to_numpy()[take], "time_s": sh.time_s.to_numpy()[take],
                          "bought": sh.bought.to_numpy()[take]})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fx = replicate_effects(g, "time_s", "bought", "arm", control=control, replicate="replicate",
                                       measures=["hazard_ratio", "odds_ratio"], conf_level=conf_level)
        except DataError:
            continue
        parts.append(fx.summary.assign(point=int(point)))
    return _adjust_ratios(parts) if adjust else pd.concat(parts, ignore_index=True) if parts else None


def _points_of(at: np.ndarray) -> np.ndarray:
    """``np.unique(at)``: one comparison pass where every row holds the same point (one point's rows)."""
    if len(at) and at[0] == at[-1] and bool(np.all(at == at[0])):
        return at[:1].copy()
    return np.unique(at)


def _adjust_ratios(parts: list[pd.DataFrame | None]) -> pd.DataFrame:
    """The points' ratio rows, in point order, Holm-adjusted per measure; indexed by ``(point, arm, measure)``."""
    from fomolab.stats.compare import p_adjust

    parts = [p for p in parts if p is not None]
    cols = ["point", "arm", "measure", "estimate", "ci_lower", "ci_upper", "p", "p_holm"]
    if not parts:
        return pd.DataFrame(columns=cols).set_index(["point", "arm", "measure"])
    out = pd.concat(parts, ignore_index=True).rename(columns={"group": "arm"})
    out["p_holm"] = np.nan
    for idx in out.groupby("measure", sort=False).groups.values():
        out.loc[idx, "p_holm"] = p_adjust(out.loc[idx, "p"], "holm")
    return out[cols].set_index(["point", "arm", "measure"])


def _effect_tables(res, runs: pd.DataFrame, sh: pd.DataFrame, events: pd.DataFrame, order: list[str], control: str,
                   end_s: dict[str, float], conf_level: float) -> tuple[pd.DataFrame | None, ...]:
    """``changes``, ``rates``, ``ph`` and ``hr_windows`` (None without a treatment arm)."""
    if len(order) < 2 or control not in order:
        return None, None, None, None
    from fomolab import figure_data
    from fomolab.stats._counts import arm_codes_by_run
    from fomolab.stats._facts import run_facts
    from fomolab.stats.changes import change_table
    from fomolab.stats.ph import ph_table, window_edges, window_table
    from fomolab.stats.rates import rate_table

    facts = run_facts(res, runs, events)  # the events' purchase and tactic rows: arrive/leave rows are not needed
    # the columns the three tables read, the arms coded once (as text, each table would hash a string per row);
    # the other columns are the frame's own, not copies
    cols = ["run_id", "shopper_id", "replicate", "point", "arrival_s", "departure_s", "time_s", "bought"]
    arm = sh.arm
    if not isinstance(arm.dtype, pd.CategoricalDtype):  # coded here once, not hashed in each table
        # from each visit's run (its code and the run's arm), else one hash of the text per row
        coded = arm_codes_by_run(sh, runs)
        code, names = coded if coded is not None else pd.factorize(arm.to_numpy())
        arm = pd.Series(pd.Categorical.from_codes(code, names), index=sh.index)
    visits = pd.DataFrame({**{c: sh[c] for c in cols}, "arm": arm}, copy=False)
    rates = rate_table(visits, events, facts.products, runs, facts.tactics, order, control, conf_level)
    edges = window_edges(figure_data.windows(events, runs), max(end_s.values()))
    return (change_table(runs, order, control, conf_level), rates, ph_table(visits, order, control, conf_level),
            window_table(visits, order, control, edges, conf_level))


def _episode_model(res, conf_level: float, visits: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """The episode model's table, or None when no tactic window ran (a marketplace: None).

    ``visits``: the per-visit frame already read (``run_id``, ``arrival_s``, ``departure_s``,
    ``first_purchase_s``), instead of reading each run's visits again.
    """
    from fomolab.episode_model import episode_model
    from fomolab.stats._facts import read

    if "stream" in res._columns("shoppers") or read(res, "windows").empty:
        return None
    return episode_model(res, conf_level=conf_level, visits=visits)


def _stream_end(res, runs: pd.DataFrame) -> dict[str, float]:
    """Each run's stream end (s), a stored fact."""
    from fomolab.stats._facts import stream_ends

    return stream_ends(res, runs)


def _outcomes(sh: pd.DataFrame, end_s: dict[str, float] | float) -> np.ndarray:
    """``visit_outcomes``' outcomes with the stream's end per row (three shared strings, not one per row)."""
    return np.array([BUY, LEAVE, CENSORED], dtype=object)[_outcome_code(sh, end_s)]


def _outcome_code(sh: pd.DataFrame, end_s: dict[str, float] | float) -> np.ndarray:
    """Each visit's outcome as a byte: 0 buy, 1 leave, 2 censored (the stream's end per row)."""
    if isinstance(end_s, dict):
        run = sh.run_id
        if isinstance(run.dtype, pd.CategoricalDtype):  # one look-up per run, not per row
            ends = np.array([end_s.get(str(c), np.nan) for c in run.cat.categories] + [np.nan], float)
            end = ends[run.cat.codes.to_numpy()]
        else:
            end = run.astype(str).map(end_s).to_numpy(float)
    else:
        end = np.full(len(sh), float(end_s))
    end -= 1e-9
    # one byte per row (not three arrays of eight)
    code = np.ones(len(sh), dtype=np.int8)
    code[sh.departure_s.to_numpy(float) >= end] = 2
    del end
    code[sh.bought.to_numpy() == 1] = 0
    return code


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
    sh = sh[["arm", "point", "replicate", "time_s", "bought"]]  # the columns the models read: views
    at_ctrl = np.flatnonzero(_is(sh.arm, control))
    rows = []
    for arm in arms:
        if arm == control:
            continue
        at_trt = np.flatnonzero(_is(sh.arm, arm))
        if not len(at_trt) or not len(at_ctrl):
            continue
        # the control's rows, then the arm's, each in the frame's order: one copy of the pair's rows
        sub = sh.take(np.concatenate([at_ctrl, at_trt])).reset_index(drop=True)
        sub["treated"] = (sub.arm == arm).astype(int)
        sub["cluster"] = sub.point.to_numpy().astype("int64") * 1_000_003 + sub.replicate.to_numpy().astype("int64")
        clusters = sub.cluster.nunique()
        cl = "cluster" if clusters >= 2 else None
        base = dict(arm=arm, control=control, n=len(at_trt), control_n=len(at_ctrl), clusters=clusters)

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


# ------------------------------------------------------------ competing risks

#: Cause codes of a visit's outcome in the competing-risks frame.
BUY, LEAVE, CENSORED = "buy", "leave", "censored"

#: A Kaplan–Meier median is shown only with at least this share of the arm's
#: viewers (and at least ``MEDIAN_MIN_AT_RISK`` of them) still at risk at it.
MEDIAN_MIN_SHARE = 0.05
MEDIAN_MIN_AT_RISK = 20


def visit_outcomes(sh: pd.DataFrame, stream_end_s: dict[str, float] | float) -> pd.DataFrame:
    """Shoppers (with ``time_s`` and ``bought``) with ``outcome``: what ended the wait for a purchase.

    ``"buy"`` (a first purchase), ``"leave"`` (the viewer left without buying:
    the competing event) or ``"censored"`` (still watching, without a
    purchase, when the stream ended), and ``visit_s``, the visit's length.
    """
    visit = sh.departure_s.to_numpy(float) - sh.arrival_s.to_numpy(float)
    return sh.assign(outcome=_outcomes(sh, stream_end_s), visit_s=visit)


def _visit_frame(shoppers: pd.DataFrame, end_s: dict[str, float], alloc: Alloc | None = None) -> pd.DataFrame:
    """``visit_outcomes(time_to_purchase(shoppers))`` without ``visit_s``, in compact types.

    The same values as that frame, held in fewer bytes: ``arm`` and
    ``outcome`` are the categoricals :func:`_part_frame` uses
    (:func:`_text_categorical`, :func:`_outcome_categorical`; a byte a row),
    ``bought`` is one byte, ``replicate`` and ``point`` the smallest signed
    integer type that holds them and ``shopper_id`` four bytes where it
    fits.  The float and other categorical columns are those of
    ``shoppers`` themselves (not copies).  ``visit_s`` is not kept:
    :func:`default_horizon` takes it from the departure and arrival times.

    ``shoppers`` is emptied: each of its columns is taken out of it as the
    frame takes it (the wide integer ones once cast), so a column cast is
    freed at once and building the frame needs no more memory than it holds.
    Readers that sum ``bought`` or build keys of ``replicate``, ``point``
    or ``shopper_id`` widen them first.  ``alloc``: where the new columns
    (``time_s``, ``bought``, the outcome's codes) are allocated
    (:data:`fomolab.results.Alloc`; default ``numpy.empty``).
    """
    from fomolab.results import cast_into

    alloc = alloc if alloc is not None else np.empty
    cols: dict[str, Any] = {}
    for c in list(shoppers.columns):
        col = shoppers.pop(c)  # the frame's reference goes: a wide column cast below is freed once cast
        if c == "arm":
            cols[c] = _text_categorical(col)
        elif c in ("replicate", "point", "shopper_id") and col.dtype.kind in "iu":
            cols[c] = _small_integers(col.to_numpy(), np.int8 if c != "shopper_id" else np.int32, alloc)
        else:
            cols[c] = col
        del col
    fp = cols["first_purchase_s"].to_numpy(float)
    arrival, departure = cols["arrival_s"].to_numpy(float), cols["departure_s"].to_numpy(float)
    bought = ~np.isnan(fp)
    time_s = alloc(len(fp), np.float64)  # where(isnan(fp), departure, fp), written in place
    np.copyto(time_s, departure)
    np.copyto(time_s, fp, where=bought)
    time_s -= arrival  # in place: the same numbers as (where(...) - arrival), one array fewer
    cols["time_s"] = time_s
    cols["bought"] = cast_into(bought, alloc, np.int8)  # 0 or 1: readers widen it to sum it
    del bought
    outcome = cast_into(_outcome_code(pd.DataFrame({c: cols[c] for c in ("run_id", "departure_s", "bought")},
                                                   copy=False), end_s), alloc)
    cols["outcome"] = pd.Categorical.from_codes(outcome, categories=[BUY, LEAVE, CENSORED], validate=False)
    return pd.DataFrame(cols, copy=False)  # the columns of shoppers, shared


def _small_integers(values: np.ndarray, smallest: type[np.signedinteger[Any]], alloc: Alloc | None = None
                    ) -> np.ndarray:
    """``values`` (whole numbers) in the smallest signed integer type, from ``smallest`` up, that holds them
    (a copy cast allocated by ``alloc``, default ``numpy.empty``)."""
    from fomolab.results import cast_into
    from fomolab.stats._counts import small_int_type

    lo, hi = (int(values.min()), int(values.max())) if len(values) else (0, 0)
    t = small_int_type(lo, hi, smallest)
    if t is None or values.dtype == t:  # (a column read in that type already: itself)
        return values
    return cast_into(values, alloc or np.empty, t)


def default_horizon(sh: pd.DataFrame, control: str) -> float:
    """A typical visit: the median visit length of the control's viewers (all viewers without a control).

    ``sh`` has ``visit_s`` or ``arrival_s`` and ``departure_s``.
    """
    def visit(rows: np.ndarray | slice) -> np.ndarray:
        if "visit_s" in sh.columns:
            return sh.visit_s.to_numpy()[rows]
        return sh.departure_s.to_numpy(float)[rows] - sh.arrival_s.to_numpy(float)[rows]

    c = visit(_is(sh.arm, control))
    v = c if len(c) else visit(slice(None))
    h = float(np.median(v)) if len(v) else float("nan")
    return h if h > 0 else float(sh.time_s.max()) if len(sh) else float("nan")


def across_replicates(values: np.ndarray, conf_level: float) -> tuple[float, float, float, float, str]:
    """The mean of per-replicate effects with a t interval and test on G - 1 df.

    The one place that turns effects estimated within each replicate (the arms
    of a replicate share their viewers by common random numbers, so each
    replicate gives one paired contrast) into an estimate, an interval and a
    p value (:func:`fomolab.stats.replicates.t_across`).  Returns
    ``(estimate, ci_lower, ci_upper, p, note)``; with one replicate the
    interval and p are NaN and the note says why.
    """
    from fomolab.stats.replicates import t_across

    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    g = len(x)
    if g == 0:
        return np.nan, np.nan, np.nan, np.nan, "no replicate with both arms"
    r = t_across(x, conf_level=conf_level)
    est, lo, hi, p = (float(r[k]) for k in ("estimate", "ci_lower", "ci_upper", "p"))
    if g == 1:
        note = "one replicate: no interval (needs 2 or more)"
    elif not float(r["se"]) > 0:
        note = "the same effect in every replicate: no interval"
    else:
        note = "2 replicates: a t interval on 1 df, very wide" if g == 2 else ""
    return est, lo, hi, p, note


#: The columns of ``Analysis.timing``.
TIMING_COLUMNS = [
    "point", "arm", "replicates", "horizon_s",
    "cuminc", "cuminc_ci_lower", "cuminc_ci_upper", "at_risk_horizon",
    "cuminc_diff", "cuminc_diff_ci_lower", "cuminc_diff_ci_upper", "cuminc_diff_p",
    "rmst_s", "rmst_ci_lower", "rmst_ci_upper",
    "rmst_diff_s", "rmst_diff_ci_lower", "rmst_diff_ci_upper", "rmst_diff_p",
    "rmtl_buy_s", "median_s", "median_at_risk", "median_note", "note",
]


def _buying_by(t: np.ndarray, outcome: np.ndarray, tau: float) -> tuple[float, float]:
    """Aalen–Johansen ``F_buy(tau)`` and ``int_0^tau F_buy``, point estimates only (no variance).

    The same numbers as :func:`fomolab.stats.cumulative_incidence` and
    :func:`fomolab.stats.restricted_time_in_state`, from counts per distinct
    time in O(n log n); for the many small per-replicate and per-group fits.
    """
    return _buying_by_flags(t, outcome == BUY, outcome != CENSORED, tau)


def _buying_by_flags(t: np.ndarray, buy: np.ndarray, ended: np.ndarray, tau: float) -> tuple[float, float]:
    """:func:`_buying_by` from the flags ``buy`` (the visit ended with a purchase) and ``ended`` (not censored)."""
    from fomolab.stats.kaplan_meier import unique_inverse

    if not len(t):
        return np.nan, np.nan
    # only the times up to tau are read: a visit that lasts past it counts in the number at risk alone (the
    # counts are whole numbers, exact in floating point, so the numbers are those of the full grid)
    upto = t <= tau
    if not upto.any():
        return 0.0, 0.0
    past = len(t) - int(np.count_nonzero(upto))
    ut, inv = unique_inverse(t[upto])
    m = len(ut)
    buy = np.bincount(inv[buy[upto]], minlength=m).astype(float)
    ended = np.bincount(inv[ended[upto]], minlength=m).astype(float)
    total = np.bincount(inv, minlength=m).astype(float)
    del inv
    n = total[::-1].cumsum()[::-1] + past
    surv = np.cumprod(1.0 - ended / n)
    before = np.concatenate(([1.0], surv[:-1]))
    F = np.cumsum(before * buy / n)
    widths = np.diff(np.append(ut, tau))
    return float(F[-1]), float(np.sum(F * widths))


#: Rows of time :func:`_buying_by_cells` reads at once when only the incidences are asked for.
CELL_CHUNK_ROWS = 1 << 16


def _buying_by_cells(t: np.ndarray, buy: np.ndarray, ended: np.ndarray, cell: np.ndarray, n_cells: int,
                     tau: float, lost: bool = True, past: np.ndarray | None = None, chunk: int = CELL_CHUNK_ROWS
                     ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_buying_by_flags` of every cell at once: ``F_buy(tau)`` and ``int_0^tau F_buy`` per cell.

    ``t`` is sorted (rows of one cell keep their order of time), ``cell`` each
    row's cell in ``0..n_cells-1``.  Cells without rows get NaN; with ``lost``
    False the second array is empty.  The counts
    per cell and distinct time come from one stable sort of the rows by cell;
    the products and sums along each cell's times run over all cells at once,
    one step per position along the cells (short cells), or cell by cell where
    one cell is longer than the number of cells (few large cells), in the order
    of the single-cell formulas, so the numbers are bit for bit those of
    :func:`_buying_by_flags` on each cell's rows.  Nothing has more entries than
    the rows.  ``past``, if given: each cell's number of rows followed past
    ``tau``, the rows given being only those up to it (to filter an arm's rows
    once for several groupings).

    With ``lost`` False the rows are read ``chunk`` rows of time at a time
    (cut where the time changes), each cell's curve carried from one stretch
    to the next in the same order of operations, so the numbers are the same:
    the arrays put in order of cell are then a stretch's, small enough to stay
    in the processor's cache (putting all of a large arm's rows in order of
    many cells reads them in random order, a cache miss a row).
    """
    rows = np.bincount(cell, minlength=n_cells)
    upto = slice(None)
    if past is None:  # (t sorted: the rows up to tau are its first ones, read as views)
        upto = slice(0, int(np.searchsorted(t, tau, "right")))
    else:
        rows += past
    F_out = np.where(rows > 0, 0.0, np.nan)  # a cell with no time up to tau: (0, 0)
    L_out = F_out.copy() if lost else np.empty(0)
    c = cell[upto]
    if not len(c):
        return F_out, L_out
    tt, b, e = t[upto], buy[upto], ended[upto]
    del upto
    bounds = np.array([0, len(c)])
    if not lost and len(c) > chunk:
        change = np.flatnonzero(tt[1:] != tt[:-1]) + 1  # where the time changes: the places to cut at
        if len(change):
            at = np.searchsorted(change, np.arange(chunk, len(c), chunk))
            cuts = np.where(at < len(change), change[np.minimum(at, len(change) - 1)], len(c))
            bounds = np.unique(np.concatenate(([0], cuts, [len(c)])))
            del at, cuts
        del change
    # each cell's curve just before a stretch (survival and F_buy) and its rows read before it
    S, F, done = np.ones(n_cells), np.zeros(n_cells), np.zeros(n_cells, np.int64)
    seen = np.zeros(n_cells, dtype=bool)
    for a, z in itertools.pairwise(bounds):
        t_sorted, starts, Fseg, m = _cells_on(tt[a:z], b[a:z], e[a:z], c[a:z], n_cells, rows, S, F, done)
        seen |= m > 0
    F_out[seen] = F[seen]
    if lost:  # (one stretch: all the rows, in order of cell)
        first_seg = np.concatenate(([0], np.cumsum(m)[:-1]))
        last = first_seg + m - 1
        has = m > 0
        t_seg = t_sorted[starts]
        width = np.empty(len(starts))
        np.subtract(t_seg[1:], t_seg[:-1], out=width[:-1])
        width[last[has]] = tau - t_seg[last[has]]
        area = Fseg * width
        for cc in np.flatnonzero(has):
            L_out[cc] = float(np.sum(area[first_seg[cc]:first_seg[cc] + m[cc]]))
    return F_out, L_out


def _cells_on(t: np.ndarray, buy: np.ndarray, ended: np.ndarray, cell: np.ndarray, n_cells: int,
              rows: np.ndarray, S: np.ndarray, F: np.ndarray, done: np.ndarray
              ) -> tuple[np.ndarray, ...]:
    """One stretch of :func:`_buying_by_cells`' rows (in order of time, none past tau): each cell's curve
    carried on from ``S`` (its survival just before the stretch), ``F`` (its ``F_buy``) and ``done`` (its
    rows before the stretch), which are updated in place.

    The counts per cell and distinct time come from one stable sort of the
    rows by cell; the products and sums along each cell's times run over all
    cells at once, one step per position along the cells (short cells), or
    cell by cell where one cell is longer than the number of cells (few
    large cells), each in the order of the single-cell formulas (a product
    or a sum started from 1 or 0 is the same as one started from the first
    term).  Returns the rows' times in order of cell, each segment's first
    row, ``F_buy`` after each segment and each cell's number of segments.
    """
    o = np.argsort(cell.astype(np.uint16) if n_cells <= 1 << 16 else cell, kind="stable")
    c = cell[o]
    tt = t[o]
    new = np.empty(len(c), dtype=bool)  # a new (cell, distinct time) segment
    new[0] = True
    np.not_equal(tt[1:], tt[:-1], out=new[1:])
    new[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(new)
    del new
    seg_cell = c[starts]
    ends = np.append(starts[1:], len(c))
    n_buy, n_end = (_segment_counts(flags[o], starts, ends) for flags in (buy, ended))
    del o, ends
    m = np.bincount(seg_cell, minlength=n_cells)  # distinct times of each cell in the stretch
    first_seg = np.concatenate(([0], np.cumsum(m)[:-1]))
    first_row = starts[first_seg[seg_cell]]
    # at risk: the cell's rows not ended before (in earlier stretches or earlier in this one)
    n = (rows[seg_cell] - done[seg_cell] - (starts - first_row)).astype(float)
    done += np.bincount(c, minlength=n_cells)
    del first_row, c
    factor = 1.0 - n_end / n
    Fseg = np.empty(len(starts))
    # cells by their number of times, longest first: the longest one by one, the others a position at a time
    by_len = np.argsort(-m, kind="stable")
    ms = m[by_len]
    cost = np.arange(n_cells + 1) + np.append(ms, 0)
    k_long = int(np.argmin(cost))
    for cc in by_len[:k_long]:
        sl = slice(first_seg[cc], first_seg[cc] + m[cc])
        surv = np.cumprod(np.concatenate(([S[cc]], factor[sl])))  # (the curve just before each time, then after)
        Fseg[sl] = np.cumsum(np.concatenate(([F[cc]], surv[:-1] * n_buy[sl] / n[sl])))[1:]
        S[cc] = surv[-1]
    short = by_len[k_long:]
    short = short[m[short] > 0]
    if len(short):
        ms = m[short]
        active = np.searchsorted(-ms, -np.arange(int(ms[0])), side="left")  # cells with more than j times
        off = np.concatenate(([0], np.cumsum(active)))
        rank = np.full(n_cells, -1, np.int64)
        rank[short] = np.arange(len(short))
        seg = np.flatnonzero(rank[seg_cell] >= 0) if k_long else np.arange(len(starts))
        sc = seg_cell[seg]
        where = off[seg - first_seg[sc]] + rank[sc]  # position-major: position j of the cells, then the next
        del sc
        f_pm, b_pm, n_pm = (np.empty(off[-1]) for _ in range(3))
        f_pm[where], b_pm[where], n_pm[where] = factor[seg], n_buy[seg], n[seg]
        F_pm = np.empty(off[-1])
        S_pm = S[short]  # each cell's curve just before its j-th time
        prev = F[short]
        S_end = np.empty(len(short))
        for j, a in enumerate(active):
            a = int(a)
            sl = slice(off[j], off[j] + a)
            term = S_pm[:a] * b_pm[sl]
            term /= n_pm[sl]
            cur = F_pm[sl]
            np.add(prev[:a], term, out=cur)
            prev = cur
            S_pm = S_pm[:a] * f_pm[sl]
            after = int(active[j + 1]) if j + 1 < len(active) else 0
            S_end[after:a] = S_pm[after:a]  # the cells whose last time this is
        Fseg[seg] = F_pm[where]
        S[short] = S_end
        del f_pm, b_pm, n_pm, F_pm, where, seg
    has = m > 0
    F[has] = Fseg[(first_seg + m - 1)[has]]
    return tt, starts, Fseg, m


def _segment_counts(flags: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """How many of ``flags`` are set in each segment ``starts[i]:ends[i]``, as floats (whole numbers, exact)."""
    run = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    return (run[ends] - run[starts]).astype(float)


def _value_codes(values: np.ndarray) -> tuple[np.ndarray, Any]:
    """The sorted distinct values of ``values`` and a function giving the positions among them of
    ``values[rows]``: by a table of counts for small non-negative integers (replicates), with no sort of
    the rows and no array of codes for all of them; :func:`numpy.unique` otherwise."""
    v = np.asarray(values)
    if v.dtype.kind in "iu" and len(v) and int(v.min()) >= 0 and int(v.max()) < max(4 * len(v), 1 << 20):
        present = np.flatnonzero(np.bincount(v))
        lut = np.full(int(present[-1]) + 1, -1, np.int64 if len(present) >= 1 << 31 else np.int32)
        lut[present] = np.arange(len(present))
        return present.astype(v.dtype), lambda rows: lut[v[rows]]
    levels, inv = np.unique(v, return_inverse=True)
    inv = inv.reshape(-1)
    return levels, lambda rows: inv[rows]


def _arm_rows(g: pd.DataFrame) -> list[tuple[str, slice | np.ndarray]]:
    """Each arm of ``g`` (sorted by name) with its rows, in row order: a slice where the rows come grouped by
    arm (:func:`_by_time`), else their positions (:func:`fomolab.stats.kaplan_meier.group_rows`)."""
    from fomolab.stats.kaplan_meier import group_rows

    return group_rows(g.arm)


def _outcome_codes(outcome: pd.Series, rows: slice | np.ndarray | None = None) -> np.ndarray:
    """Each visit's cause (0 censored, 1 buy, 2 leave; the causes in sorted order), one byte per row."""
    if isinstance(outcome.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in outcome.cat.categories]
        lut = np.array([{BUY: 1, LEAVE: 2}.get(c, 0) for c in cats] + [0], np.int8)
        codes = outcome.cat.codes.to_numpy()
        return lut[codes if rows is None else codes[rows]]
    o = outcome.to_numpy()
    if rows is not None:
        o = o[rows]
    code = (o == BUY).astype(np.int8)
    code[o == LEAVE] = 2
    return code


def _cells(*keys: Any) -> tuple[list[tuple[Any, ...]], list[np.ndarray]]:
    """The distinct combinations of ``keys`` (sorted) and each one's row positions (in row order).

    A key is an array of values, or ``(levels, codes)`` as :func:`_sorted_codes` returns them (to code a
    column once for several calls).
    """
    codes, levels = [], []
    for k in keys:
        lv, inv = k if isinstance(k, tuple) else _sorted_codes(k)
        levels.append(lv)
        codes.append(inv)
    key = np.zeros(len(codes[0]), np.int64)
    for c, lv in zip(codes, levels, strict=True):
        key = key * len(lv) + c
    # numpy's stable sort of integers of 16 bits or less is a radix sort, O(rows): much faster than of int64
    cells = int(np.prod([len(lv) for lv in levels]))
    if cells <= 1 << 16:
        key = key.astype(np.uint16)
    o = np.argsort(key, kind="stable")
    key = key[o]
    del codes
    # the cells' first rows in the sorted keys (what np.unique(key, return_index=True) gives, without its sort)
    first = np.ones(len(key), dtype=bool)
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    present = key[starts].astype(np.int64)
    del key, first
    bounds = np.append(starts, len(o))
    names = []
    for k in present:
        parts = []
        rest = int(k)
        for lv in reversed(levels):
            rest, r = divmod(rest, len(lv))
            parts.append(lv[r])
        names.append(tuple(reversed(parts)))
    return names, [o[bounds[i]:bounds[i + 1]] for i in range(len(present))]


def _sorted_codes(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct values (as :func:`numpy.unique`) and each row's position among them.

    Values are hashed (:func:`pandas.factorize`), and only the distinct ones
    sorted: much faster than sorting every row of a text column.  A
    categorical's values are its categories' text.
    """
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        cats = np.array([""] + [str(c) for c in values.cat.categories], dtype=object)  # "": missing (code -1)
        shifted = values.cat.codes.to_numpy().astype(np.int64) + 1
        used = np.flatnonzero(np.bincount(shifted, minlength=len(cats)))
        text = cats[used]
        o = np.argsort(text, kind="stable")
        rank = np.full(len(cats), -1, np.int64)
        rank[used[o]] = np.arange(len(o))
        return text[o], rank[shifted]
    codes, uniq = pd.factorize(np.asarray(values), sort=True)
    return np.asarray(uniq), codes.astype(np.int64)


def _per_replicate(g: pd.DataFrame, horizon: float) -> pd.DataFrame:
    """Per replicate and arm: cumulative incidence of buying at the horizon and time lost to buying."""
    frames = []
    reps, rep_code = _value_codes(g.replicate.to_numpy())
    for arm, (F, lost) in _by_replicate(g, horizon, rep_code, len(reps)).items():
        has = ~np.isnan(F)
        frames.append(pd.DataFrame({"replicate": reps[has], "arm": arm, "cuminc": F[has], "lost": lost[has]}))
    if not frames:
        return pd.DataFrame(columns=["replicate", "arm", "cuminc", "lost"])
    out = pd.concat(frames, ignore_index=True)
    return out.iloc[np.lexsort((out.arm.to_numpy(), out.replicate.to_numpy()))].reset_index(drop=True)


def _by_replicate(g: pd.DataFrame, horizon: float, rep_code: Any, n_reps: int
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per arm of ``g`` (sorted by time): ``F_buy(horizon)`` and the time lost to buying up to it in each
    replicate (``rep_code(rows)``: the rows' replicates as ``0..n_reps-1``; NaN where the arm has none)."""
    t = g.time_s.to_numpy(float)
    out = {}
    for arm, rows in _arm_rows(g):
        code = _outcome_codes(g.outcome, rows)
        out[arm] = _buying_by_cells(t[rows], code == 1, code != 0, rep_code(rows), n_reps, horizon)
    return out


def _timing_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=TIMING_COLUMNS)
    ints = ("point", "replicates", "at_risk_horizon")
    return out.astype({c: "float64" for c in TIMING_COLUMNS if c not in ("arm", "median_note", "note") + ints}
                      | {"median_note": "object", "note": "object"})


def timing_table(sh: pd.DataFrame, order: list[str], control: str, horizon: float, conf_level: float,
                 interval=across_replicates) -> pd.DataFrame:
    """Purchase timing per point and arm in the competing-risks frame (``Analysis.timing``).

    ``sh`` is :func:`visit_outcomes`' frame.  Per point and arm: the
    cumulative incidence of buying by ``horizon`` seconds after arrival
    (Aalen–Johansen, leaving competes) with its pointwise interval, the
    restricted mean time to purchase up to ``horizon`` (``horizon`` minus the
    restricted mean time lost to buying), their differences against the
    control (paired within each replicate, ``interval`` across replicates),
    and the Kaplan–Meier median where it is reached with enough viewers at risk.
    """
    rows: list[dict[str, Any]] = []
    for point, g in sh.groupby("point", sort=True):
        if not g.empty:
            rows += _timing_rows(g, int(point), order, control, horizon, conf_level, interval)
    return _timing_frame(rows)


def _timing_rows(g: pd.DataFrame, point: int, order: list[str], control: str, horizon: float, conf_level: float,
                 interval=across_replicates, km: dict[str, tuple[Any, ...]] | None = None
                 ) -> list[dict[str, Any]]:
    """:func:`timing_table`'s rows of one point's frame ``g``; ``km``, if given, a dict that each arm's
    Kaplan–Meier medians are put in: ``(median, lower, upper)`` of
    :func:`fomolab.stats.kaplan_meier._median`, then :func:`_median`'s row values."""
    from scipy import stats as st

    from fomolab.errors import DataError
    from fomolab.stats import _checks
    from fomolab.stats.competing import _at_horizon
    from fomolab.stats.kaplan_meier import _medians_sorted, row_count

    level = _checks.check_probability(conf_level, "conf_level")
    z = float(st.norm.ppf(0.5 + level / 2))  # (as cumulative_incidence and restricted_time_in_state)
    z_km = float(st.norm.ppf(1.0 - (1.0 - level) / 2.0))  # (as kaplan_meier)
    g = _by_time(g)  # (no copy when sorted already)
    t = g.time_s.to_numpy(float)
    bought = g.bought.to_numpy()
    arm_rows = _arm_rows(g)
    codes = {arm: _outcome_codes(g.outcome, idx) for arm, idx in arm_rows}
    if not any((c > 0).any() for c in codes.values()):
        raise DataError(f"column 'outcome' holds only the censoring value {CENSORED!r}: no events")
    with_buy = any((c == 1).any() for c in codes.values())
    # read at the horizon, a visit followed past it counts only as at risk up to it: censored just after
    # the horizon, it gives the same estimates and intervals there, and the grids (one entry per distinct
    # time) stop at the horizon instead of running over every visit's own time.  Per arm, on the arm's rows
    # (in order of time): the cumulative incidence of buying at the horizon with its interval, the time
    # lost to buying up to it, and the Kaplan-Meier curve's medians, read from the curve as it is built
    ci: dict[str, tuple[float, float, float, float, int]] = {}
    rt: dict[str, tuple[float, float]] = {}
    medians: dict[str, tuple[Any, ...]] = {}
    for arm, idx in arm_rows:
        ta, code = t[idx], codes.pop(arm)
        if with_buy:  # (one grid of the times up to the horizon for both)
            ci[arm], rt[arm] = _at_horizon(ta, code, 0, 2, horizon, z)
        del code
        km_three, km_entry = _medians_sorted(ta, bought[idx], z_km)  # (a chunk of the curve at a time)
        del ta
        medians[arm] = (km_three, _median(km_entry, row_count(idx)))
    if km is not None:
        km.update(medians)
    per = _per_replicate(g, horizon)
    base = per[per.arm == control].set_index("replicate")
    replicates = per.groupby("arm").size()
    rows = []
    for arm in order:
        if arm not in ci:
            continue
        cuminc, _, c_lo, c_hi, at_risk = ci[arm]
        rmean, var = rt[arm]
        se = float(np.sqrt(var))
        r_lo, r_hi = rmean - z * se, rmean + z * se
        row = dict(point=int(point), arm=arm, replicates=int(replicates[arm]), horizon_s=horizon,
                   cuminc=cuminc, cuminc_ci_lower=c_lo, cuminc_ci_upper=c_hi,
                   at_risk_horizon=int(at_risk), rmst_s=horizon - rmean,
                   rmst_ci_lower=horizon - r_hi, rmst_ci_upper=horizon - r_lo,
                   rmtl_buy_s=rmean, note="")
        if arm != control and len(base):
            mine = per[per.arm == arm].set_index("replicate")
            both = mine.index.intersection(base.index)
            d_ci = (mine.cuminc[both] - base.cuminc[both]).to_numpy()
            d_rm = -(mine.lost[both] - base.lost[both]).to_numpy()
            e1, l1, h1, p1, n1 = interval(d_ci, conf_level)
            e2, l2, h2, p2, _ = interval(d_rm, conf_level)
            row.update(cuminc_diff=e1, cuminc_diff_ci_lower=l1, cuminc_diff_ci_upper=h1, cuminc_diff_p=p1,
                       rmst_diff_s=e2, rmst_diff_ci_lower=l2, rmst_diff_ci_upper=h2, rmst_diff_p=p2,
                       note=n1)
        row.update(medians[arm][1])
        rows.append(row)
    return rows


def _median(curve: pd.DataFrame | dict[str, np.ndarray], n: int) -> dict[str, Any]:
    """The Kaplan–Meier median where it is reached with enough viewers at risk, else NaN and why."""
    need = max(MEDIAN_MIN_AT_RISK, int(np.ceil(MEDIAN_MIN_SHARE * n)))
    s = np.asarray(curve["survival"], float)
    hit = np.flatnonzero(s <= 0.5)
    if not len(hit):
        low = float(s.min()) if len(s) else 1.0
        return dict(median_s=np.nan, median_at_risk=np.nan,
                    median_note=f"not reached: by the end of follow-up {1 - low:.1%} have bought "
                                f"(Kaplan-Meier, departures censored)")
    j = int(hit[0])
    at_risk = int(np.asarray(curve["at_risk"])[j])
    if at_risk < need:
        return dict(median_s=np.nan, median_at_risk=float(at_risk),
                    median_note=f"not shown: only {at_risk:,} of {n:,} viewers still at risk at the median "
                                f"(needs {need:,})")
    return dict(median_s=float(np.asarray(curve["time"])[j]), median_at_risk=float(at_risk), median_note="")


#: The columns of ``Analysis.for_whom``.
FOR_WHOM_COLUMNS = ["point", "arm", "by", "group", "viewers", "replicates", "horizon_s", "cuminc_control",
                    "cuminc", "cuminc_diff", "cuminc_diff_ci_lower", "cuminc_diff_ci_upper", "cuminc_diff_p",
                    "interaction_f", "interaction_df1", "interaction_df2", "interaction_p", "note"]


def _groups_of(sh: pd.DataFrame, by: str) -> pd.Series:
    """Viewers' groups: ``"segment"``, or ``"impulsiveness"`` quintiles cut at the quantiles of all viewers."""
    if by == "segment":
        return sh.segment.astype(str)
    edges = np.quantile(sh.impulsiveness.to_numpy(float), [0.2, 0.4, 0.6, 0.8])
    q = np.searchsorted(edges, sh.impulsiveness.to_numpy(float), side="right") + 1
    return pd.Series([f"Q{int(i)}" for i in q], index=sh.index)


def _group_codes(sh: pd.DataFrame, by: str) -> tuple[list[str], np.ndarray]:
    """:func:`_groups_of` as its sorted levels and each viewer's position among them."""
    if by == "segment":
        seg = sh.segment if isinstance(sh.segment.dtype, pd.CategoricalDtype) else sh.segment.astype(str)
        levels, inv = _sorted_codes(seg)
        return [str(v) for v in levels], inv
    edges = np.quantile(sh.impulsiveness.to_numpy(float), [0.2, 0.4, 0.6, 0.8])
    q = np.searchsorted(edges, sh.impulsiveness.to_numpy(float), side="right") + 1
    present, inv = _sorted_codes(q)
    return [f"Q{int(i)}" for i in present], inv


def _level_codes(sh: pd.DataFrame, by: str, arm_rows: list[tuple[str, slice | np.ndarray]]
                 ) -> tuple[list[str], dict[str, np.ndarray]]:
    """:func:`_group_codes` as its levels and, per arm of ``arm_rows``, its rows' positions among them
    (no array of all the rows' codes)."""
    from fomolab.stats._counts import small_code_type
    from fomolab.stats.kaplan_meier import code_counts

    if by == "segment":
        seg = sh.segment
        if not isinstance(seg.dtype, pd.CategoricalDtype):
            levels, inv = _group_codes(sh, by)
            return levels, {arm: inv[rows] for arm, rows in arm_rows}
        # the categories that occur as text ("" for a missing one, code -1), sorted
        cats = np.array([""] + [str(c) for c in seg.cat.categories], dtype=object)
        shifted = {arm: seg.cat.codes.to_numpy()[rows].astype(np.int32) + 1 for arm, rows in arm_rows}
        counts = sum((code_counts(v, len(cats)) for v in shifted.values()),
                     np.zeros(len(cats), np.int64))
        used = np.flatnonzero(counts)
        text = cats[used]
        o = np.argsort(text, kind="stable")
        rank = np.full(len(cats), -1, small_code_type(len(cats)))  # (a byte a row)
        rank[used[o]] = np.arange(len(o))
        return [str(v) for v in text[o]], {arm: rank[v] for arm, v in shifted.items()}
    z = sh.impulsiveness.to_numpy(float)
    edges = np.quantile(z, [0.2, 0.4, 0.6, 0.8])
    q = {arm: _quintile(edges, z[rows]) for arm, rows in arm_rows}
    present = np.flatnonzero(sum((code_counts(v, 6) for v in q.values()), np.zeros(6, np.int64)))
    rank = np.full(6, -1, np.int8)
    rank[present] = np.arange(len(present))
    return [f"Q{int(i)}" for i in present], {arm: rank[v] for arm, v in q.items()}


def _quintile(edges: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``np.searchsorted(edges, z, side="right") + 1`` for the four sorted ``edges``, in one byte a row: the
    edges at or below each value counted, a comparison pass per edge (no binary search per row)."""
    if np.isnan(edges).any():
        return np.searchsorted(edges, z, side="right") + 1
    out = np.ones(len(z), np.int8)
    for e in edges:
        out += ~(z < e)  # (NaN past every edge, where searchsorted sorts it)
    return out


def interaction_test(d: np.ndarray) -> tuple[float, float, float, float]:
    """Do the per-group effects differ?  Repeated-measures F test on a replicates x groups array of effects.

    Each replicate is a block (its groups share the replicate's random
    numbers): ``F = MS_groups / MS_residual`` with ``(k - 1, (k - 1)(G - 1))``
    degrees of freedom for ``k`` groups and ``G`` replicates.  Returns
    ``(F, df1, df2, p)``; NaN with fewer than 2 replicates or groups.
    """
    from scipy import stats as st

    d = np.asarray(d, float)
    d = d[np.isfinite(d).all(axis=1)] if d.ndim == 2 else d
    if d.ndim != 2 or d.shape[0] < 2 or d.shape[1] < 2:
        return np.nan, np.nan, np.nan, np.nan
    G, k = d.shape
    grand = d.mean()
    ss_g = G * ((d.mean(axis=0) - grand) ** 2).sum()
    resid = d - d.mean(axis=0, keepdims=True) - d.mean(axis=1, keepdims=True) + grand
    ss_e = (resid ** 2).sum()
    df1, df2 = k - 1, (k - 1) * (G - 1)
    if ss_e <= 0:
        return np.nan, float(df1), float(df2), np.nan
    f = (ss_g / df1) / (ss_e / df2)
    return float(f), float(df1), float(df2), float(st.f.sf(f, df1, df2))


def for_whom_table(sh: pd.DataFrame, order: list[str], control: str, horizon: float, conf_level: float,
                   interval=across_replicates) -> pd.DataFrame:
    """Effects by segment and by impulsiveness quintile, with a test of whether they differ (``Analysis.for_whom``).

    Per point, treatment arm and group: the share who buy within ``horizon``
    in the arm and in the control, their difference estimated within each
    replicate with ``interval`` across replicates, and per arm and grouping
    a repeated-measures F test (:func:`interaction_test`) of equal effects
    across the groups (the interaction of the arm with the grouping).
    """
    rows = []
    at = sh.point.to_numpy()
    points = _points_of(at)
    for point in points:
        gp = _by_time(sh if len(points) == 1 else sh[at == point])  # one point (as from _point_part): no copy
        t = gp.time_s.to_numpy(float)
        arm_rows = _arm_rows(gp)
        reps, rep_code = _value_codes(gp.replicate.to_numpy())  # coded once for every grouping
        # per arm, its rows up to the horizon (the rows past it count only as at risk): the arm's rows are
        # in order of time, so those are its first ones (views, not copies)
        upto_rows, flags = {}, {}
        for arm, idx in arm_rows:
            ta = t[idx]
            u = int(np.searchsorted(ta, horizon, "right"))
            upto_rows[arm] = u
            code = _outcome_codes(gp.outcome, idx)[:u]
            flags[arm] = (ta[:u], code == 1, code != 0)
            del code, ta
        for by in ("segment", "impulsiveness"):
            levels, lev_code = _level_codes(gp, by, arm_rows)
            if by == "segment" and len(levels) < 2:
                continue
            n_lev = len(levels)
            per = {}  # per arm: the share who buy by the horizon, replicates x groups (NaN: no viewers)
            pooled = {}  # per arm: that share in each group over the replicates, and its viewers
            for arm, idx in arm_rows:
                (ta, buy, ended), u = flags[arm], upto_rows[arm]
                lev_a, rep_a = lev_code[arm], rep_code(idx).astype(np.int64)
                n_cells = len(reps) * n_lev
                cell = rep_a * n_lev + lev_a
                past = np.bincount(cell[u:], minlength=n_cells)
                per[arm] = _buying_by_cells(ta, buy, ended, cell[:u], n_cells, horizon, lost=False,
                                            past=past)[0].reshape(len(reps), n_lev)
                del cell, rep_a
                past = np.bincount(lev_a[u:], minlength=n_lev)
                pooled[arm] = (_buying_by_cells(ta, buy, ended, lev_a[:u], n_lev, horizon, lost=False,
                                                past=past)[0], np.bincount(lev_a, minlength=n_lev))
                del lev_a, past
            for arm in order:
                if arm == control or arm not in per or control not in per:
                    continue
                diffs = per[arm] - per[control]  # NaN where either arm has no viewers of a replicate and group
                if np.isnan(diffs).all():
                    continue
                f, df1, df2, pf = interaction_test(diffs)
                for j, lev in enumerate(levels):
                    shares = {x: pooled[x][0][j] for x in (arm, control)}
                    est, lo, hi, p, note = interval(diffs[:, j], conf_level)
                    rows.append(dict(point=int(point), arm=arm, by=by, group=lev,
                                     viewers=int(pooled[arm][1][j]),
                                     replicates=int(np.isfinite(diffs[:, j]).sum()), horizon_s=horizon,
                                     cuminc_control=float(shares[control]),
                                     cuminc=float(shares[arm]), cuminc_diff=est,
                                     cuminc_diff_ci_lower=lo, cuminc_diff_ci_upper=hi, cuminc_diff_p=p,
                                     interaction_f=f, interaction_df1=df1, interaction_df2=df2,
                                     interaction_p=pf, note=note))
    out = pd.DataFrame(rows, columns=FOR_WHOM_COLUMNS)
    ints = ("point", "viewers", "replicates")
    return out.astype({c: "float64" for c in FOR_WHOM_COLUMNS if c not in ("arm", "by", "group", "note") + ints})
