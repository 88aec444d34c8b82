"""Figures of a results folder: what the tactics did, ready for a paper.

Each function takes a :class:`~fomolab.Results` (or a results folder's path)
and returns a :class:`matplotlib.figure.Figure`; nothing is drawn on a global
pyplot figure, so figures do not pile up in memory and the functions work
without a display (the Agg backend).  All figures share one style: the
Okabe–Ito colour-blind-safe palette with one fixed colour per arm (the
control arm in black), units in every axis label, light grids.

==========================  =====================================================
:func:`purchase_rate`       purchase rate over stream time per arm, tactic windows
                            shaded; concurrent viewers and stock left below
:func:`time_to_purchase`    Kaplan–Meier share who have bought, by time since
                            arrival, with confidence bands and numbers at risk
:func:`forest`              hazard and odds ratios against control, with
                            replicate-clustered confidence intervals
:func:`deadline`            purchases by seconds left to each tactic's deadline
:func:`impulsiveness`       conversion and time to purchase by impulsiveness decile
:func:`sweep_metrics`       each run metric against each swept parameter (sweeps)
:func:`sweep_heatmap`       a metric over two swept parameters (sweeps)
:func:`sobol_indices`       first-order and total Sobol indices (Saltelli designs)
==========================  =====================================================

Averages are over runs (replicates, and sweep points when there are several):
a rate "per run" is what one simulated stream shows on average.

>>> from fomolab import plot
>>> plot.arm_colors(["control", "sale"])
{'control': '#000000', 'sale': '#E69F00'}
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fomolab._optional import require

__all__ = [
    "OKABE_ITO",
    "STYLE",
    "arm_colors",
    "deadline",
    "effects",
    "forest",
    "impulsiveness",
    "purchase_rate",
    "sobol_indices",
    "style",
    "sweep_heatmap",
    "sweep_metrics",
    "time_to_purchase",
]

#: The Okabe–Ito palette (Okabe & Ito 2008), distinguishable with every common
#: colour-vision deficiency.  Black first: the control arm.  Yellow last: it is
#: faint on white.
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")

#: Matplotlib settings shared by every figure.
STYLE: dict[str, Any] = {
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "lines.linewidth": 1.6,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "svg.fonttype": "path",
    "svg.hashsalt": "fomolab",  # identical SVG for identical figures
}

#: Shading of tactic windows.
_WINDOW = {"color": "#999999", "alpha": 0.16, "lw": 0}
_TACTIC_LABEL = {
    "lightning_sale": "sale", "countdown_timer": "timer", "scarcity_cue": "scarcity cue",
    "social_proof": "social proof", "exclusive_code": "code",
}
#: Tactics with a deadline (their window's end), most specific first.
_DEADLINE_TACTICS = ("countdown_timer", "exclusive_code", "lightning_sale")


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Context in which figures get fomolab's style (used by every function here)."""
    mpl = require("matplotlib", "figures and the report")
    from cycler import cycler

    rc = dict(STYLE, **{"axes.prop_cycle": cycler(color=list(OKABE_ITO))})
    with mpl.rc_context(rc):
        yield


def _figure(**kw: Any):
    require("matplotlib", "figures and the report")
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kw)


def arm_colors(arms: Sequence[str]) -> dict[str, str]:
    """One Okabe–Ito colour per arm, in order (the first, the control, in black)."""
    return {str(a): OKABE_ITO[i % len(OKABE_ITO)] for i, a in enumerate(arms)}


#: Line styles per arm (solid for the control): arms whose lines coincide stay
#: visible, and the figures read in grey print.
LINESTYLES = ("-", (0, (5, 1.5)), (0, (3, 1.5, 1, 1.5)), (0, (1, 1.2)), (0, (7, 2, 1, 2, 1, 2)))


def arm_styles(arms: Sequence[str]) -> dict[str, Any]:
    """One line style per arm, in order (the control solid)."""
    return {str(a): LINESTYLES[i % len(LINESTYLES)] for i, a in enumerate(arms)}


# --------------------------------------------------------------------------- data


def _results(results: Any):
    from fomolab.errors import ResultsError
    from fomolab.results import Results

    if isinstance(results, Results):
        res = results
    elif isinstance(results, (str, Path)):
        res = Results(results)
    else:
        raise ResultsError(f"expected a results folder (path or fomolab.Results): got {type(results).__name__}")
    if res.runs.empty:
        raise ResultsError(f"{res.path}: no finished runs to plot "
                           f"(run the experiment first: `fomolab run SPEC --out {res.path}`)")
    return res


def _arms(res) -> list[str]:
    """Arms present in the runs table, control first, then in spec order."""
    present = set(res.runs.arm.astype(str))
    order = [a for a in res.manifest.get("arms", []) if a in present]
    control = res.manifest.get("control")
    if control in order:
        order.remove(control)
        order.insert(0, control)
    return order + sorted(present - set(order))


def _colors(res) -> dict[str, str]:
    return arm_colors(_arms(res))


def _styles(res) -> dict[str, Any]:
    return arm_styles(_arms(res))


def _top_legend(fig, ax) -> None:
    """One legend of the arms for the figure, in a row above the panels.

    Figures with such a legend have no overall title: the caption (in the
    report, or in a paper) says what is shown.
    """
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper left", ncols=min(len(labels), 4), handlelength=2.6)


def _scenarios(res) -> dict[tuple[int, str], Any]:
    """The resolved scenario of each (point, arm)."""
    from fomolab.design import assign_points

    exp = res.experiment
    ids, _ = assign_points(exp, res.manifest.get("points"))
    out: dict[tuple[int, str], Any] = {}
    for pid, p in zip(ids, exp.points):
        for arm, a in p.arms.items():
            out.setdefault((int(pid), arm), a.scenario)
    return out


def _duration_s(res) -> float:
    scen = _scenarios(res)
    return float(max(s.stream.duration_s for s in scen.values()))


def _run_info(res) -> pd.DataFrame:
    runs = res.runs
    return pd.DataFrame({"run_id": runs.run_id.astype(str), "arm": runs.arm.astype(str),
                         "point": runs.point.to_numpy(), "replicate": runs.replicate.to_numpy()})


def _events(res, kinds: Sequence[str]) -> pd.DataFrame:
    ev = res.table("events", ["run_id", "time_s", "kind", "product", "tactic"])
    ev = ev[ev.kind.isin(kinds)]
    out = pd.DataFrame({"run_id": ev.run_id.astype(str).to_numpy(), "time_s": ev.time_s.to_numpy(),
                        "kind": ev.kind.astype(str).to_numpy(), "product": ev["product"].astype(object).to_numpy(),
                        "tactic": ev.tactic.astype(object).to_numpy()})
    return out.merge(_run_info(res), on="run_id", how="inner")


def _windows(res) -> pd.DataFrame:
    """Each run's tactic windows: ``run_id, arm, point, product, tactic, start_s, end_s``."""
    ev = _events(res, ["tactic_start", "tactic_end"]).sort_values("time_s", kind="stable")
    ev["is_start"] = ev.kind == "tactic_start"
    ev["k"] = ev.groupby(["run_id", "product", "tactic", "is_start"], sort=False).cumcount()
    keys = ["run_id", "arm", "point", "product", "tactic", "k"]
    starts = ev[ev.is_start][keys + ["time_s"]].rename(columns={"time_s": "start_s"})
    ends = ev[~ev.is_start][keys + ["time_s"]].rename(columns={"time_s": "end_s"})
    out = starts.merge(ends, on=keys, how="inner").drop(columns="k")
    return out[out.end_s > out.start_s].reset_index(drop=True)


def _nice_step(span: float, target: int) -> float:
    """A round step (1, 2, 2.5, 5 x 10^k) giving about ``target`` steps over ``span``."""
    raw = span / max(target, 1)
    mag = 10 ** np.floor(np.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return float(m * mag)
    return float(10 * mag)  # pragma: no cover


def _compact(n: float) -> str:
    """12345 -> '12.3k'."""
    n = float(n)
    if abs(n) >= 1e6:
        return f"{n / 1e6:.3g}M"
    if abs(n) >= 1e4:
        return f"{n / 1e3:.3g}k"
    return f"{n:,.0f}"


def _mean_band(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and a normal 95 % band (mean +- 1.96 standard errors) along ``axis``."""
    m = np.nanmean(values, axis=axis)
    n = np.sum(~np.isnan(values), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.nanstd(values, axis=axis, ddof=1) / np.sqrt(n) if values.shape[axis] > 1 else np.zeros_like(m)
    se = np.where(np.isfinite(se), se, 0.0)
    return m, m - 1.96 * se, m + 1.96 * se


def _nanmean_rows(a: np.ndarray) -> np.ndarray:
    """Column means ignoring NaN, NaN (without a warning) where a column is all NaN."""
    ok = ~np.isnan(a)
    n = ok.sum(axis=0)
    s = np.where(ok, a, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


# ------------------------------------------------------------------ 1. purchase rate


def _shade_windows(axes, wins: pd.DataFrame, scale: float, label_ax=None) -> None:
    """Shade each distinct tactic window (median over runs) on every axis."""
    if wins.empty:
        return
    med = (wins.groupby(["product", "tactic"], sort=False)
           .agg(start_s=("start_s", "median"), end_s=("end_s", "median"), n=("start_s", "size")).reset_index())
    med["key"] = list(zip(med.start_s.round(0), med.end_s.round(0)))
    for (start, end), grp in med.groupby("key", sort=False):
        names = " + ".join(dict.fromkeys(_TACTIC_LABEL.get(t, t) for t in grp.tactic))
        for ax in axes:
            ax.axvspan(start / scale, end / scale, **_WINDOW)
        if label_ax is not None:
            label_ax.annotate(names, xy=((start + end) / 2 / scale, 1.0), xycoords=("data", "axes fraction"),
                              xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                              fontsize=7.5, color="#555555")


def purchase_rate(results: Any, *, bin_s: float | None = None, band: bool = True):
    """Purchase rate over stream time per arm, with viewers and stock below.

    Parameters
    ----------
    results : Results or path
    bin_s : float, optional
        Width of the time bins in seconds (default: about 60 bins over the stream).
    band : bool, default True
        Draw a 95 % band (mean +- 1.96 standard errors over runs) around each line.

    Returns
    -------
    matplotlib.figure.Figure
        Panels, top to bottom: purchases per minute (per run), concurrent viewers
        (per run), and, when a product has a finite stock, units left of each
        such product (per run).  Tactic windows are shaded (the median window
        over the runs that had it) and labelled above the top panel.
    """
    res = _results(results)
    info = _run_info(res)
    arms, colors, ls = _arms(res), _colors(res), _styles(res)
    T = _duration_s(res)
    scen = _scenarios(res)
    stocked = sorted({p for s in scen.values() for p, prod in s.lineup.items() if prod.stock is not None})
    if bin_s is None:
        bin_s = _nice_step(T, 60)
    edges = np.arange(0.0, T + bin_s * 0.5, bin_s)
    if edges[-1] < T:
        edges = np.append(edges, T)
    mids = (edges[:-1] + edges[1:]) / 2
    width_min = np.diff(edges) / 60.0
    grid = np.linspace(0.0, T, 361)
    ev = _events(res, ["arrive", "leave", "purchase"])
    wins = _windows(res)
    run_ids = {a: info.run_id[info.arm == a].tolist() for a in arms}
    by_run = dict(tuple(ev.groupby("run_id", sort=False)))
    empty = ev.iloc[:0]

    with style():
        fig = _figure(figsize=(7.2, 6.2 if stocked else 4.8))
        ratios = [1.6, 1.0] + [1.0] * bool(stocked)
        axes = fig.subplots(len(ratios), 1, sharex=True, height_ratios=ratios)
        ax_rate, ax_view = axes[0], axes[1]
        ax_stock = axes[2] if stocked else None
        for arm in arms:
            rates, viewers, stock = [], [], {p: [] for p in stocked}
            for rid in run_ids[arm]:
                e = by_run.get(rid, empty)
                t, kind, prod = e.time_s.to_numpy(), e.kind.to_numpy(), e["product"].to_numpy()
                buy = kind == "purchase"
                rates.append(np.histogram(t[buy], bins=edges)[0] / width_min)
                arr = np.sort(t[kind == "arrive"])
                lv = np.sort(t[kind == "leave"])
                viewers.append(np.searchsorted(arr, grid, "right") - np.searchsorted(lv, grid, "left"))
                pt = int(info.point[info.run_id == rid].iloc[0])
                for p in stocked:
                    s0 = scen[(pt, arm)].lineup[p].stock
                    if s0 is None:
                        continue
                    bought = np.sort(t[buy & (prod == p)])
                    stock[p].append(s0 - np.searchsorted(bought, grid, "right"))
            c = colors[arm]
            m, lo, hi = _mean_band(np.asarray(rates, float))
            ax_rate.plot(mids / 60, m, color=c, ls=ls[arm], label=arm)
            if band and len(rates) > 1:
                ax_rate.fill_between(mids / 60, lo, hi, color=c, alpha=0.15, lw=0)
            ax_view.plot(grid / 60, np.mean(viewers, axis=0), color=c, ls=ls[arm], label=arm)
            for j, p in enumerate(stocked):
                if stock[p]:
                    ax_stock.plot(grid / 60, np.mean(stock[p], axis=0), color=c, ls=ls[arm],
                                  lw=1.6 if j == 0 else 0.9, label=arm if len(stocked) == 1 else f"{arm}: {p}")
        _shade_windows(axes, wins, 60.0, label_ax=ax_rate)
        ax_rate.set_ylabel("Purchase rate\n(purchases/min per run)")
        ax_rate.set_ylim(bottom=0)
        _top_legend(fig, ax_rate)
        ax_view.set_ylabel("Concurrent viewers\n(viewers per run)")
        ax_view.set_ylim(bottom=0)
        if ax_stock is not None:
            ax_stock.set_ylabel(f"{stocked[0].capitalize()} stock left\n(units per run)" if len(stocked) == 1
                                else "Stock left (thin: 2nd+\nproduct; units per run)")
            ax_stock.set_ylim(bottom=0)
        axes[-1].set_xlabel("Stream time (min)")
        axes[-1].set_xlim(0, T / 60)
    return fig


# ------------------------------------------------------------ 2. time to purchase


def _shopper_durations(res) -> pd.DataFrame:
    sh = res.viewers(["run_id", "arm", "replicate", "point", "impulsiveness",
                                "arrival_s", "departure_s", "first_purchase_s"])
    bought = sh.first_purchase_s.notna().to_numpy()
    end = np.where(bought, sh.first_purchase_s.to_numpy(), sh.departure_s.to_numpy())
    return pd.DataFrame({
        "arm": sh.arm.astype(str).to_numpy(), "replicate": sh.replicate.to_numpy(),
        "point": sh.point.to_numpy(), "cluster": (sh.point.to_numpy() * 1_000_003 + sh.replicate.to_numpy()),
        "impulsiveness": sh.impulsiveness.to_numpy(),
        "duration_s": np.maximum(end - sh.arrival_s.to_numpy(), 0.0), "bought": bought.astype(int),
    })


def time_to_purchase(results: Any, *, conf_level: float = 0.95, max_min: float | None = None):
    """Kaplan–Meier share of viewers who have bought, by time since arrival.

    A viewer is followed from arrival to the first purchase (an event) or to
    departure without buying (censored).  The curve is ``1 - S(t)``, the share
    who have bought within ``t`` minutes of arriving, with its pointwise
    confidence band (Greenwood variance, log intervals, as R's ``survfit``).
    Below the curves, the numbers at risk (viewers still watching and not yet
    buying, pooled over runs) at each tick.

    Parameters
    ----------
    results : Results or path
    conf_level : float, default 0.95
    max_min : float, optional
        Right end of the time axis in minutes (default: where 99 % of the
        visits have ended).
    """
    from fomolab.stats import kaplan_meier

    res = _results(results)
    arms, colors, ls = _arms(res), _colors(res), _styles(res)
    d = _shopper_durations(res)
    km = kaplan_meier(d, "duration_s", "bought", by="arm", conf_level=conf_level)
    if max_min is None:
        q = float(np.quantile(d.duration_s, 0.99)) / 60
        max_min = float(np.ceil(q / _nice_step(q, 6)) * _nice_step(q, 6))
    step = _nice_step(max_min, 6)
    ticks = np.arange(0.0, max_min + step * 0.01, step)
    grid = np.linspace(0.0, max_min * 60, 400)
    with style():
        fig = _figure(figsize=(7.2, 4.2 + 0.17 * len(arms)))
        ax, ax_risk = fig.subplots(2, 1, sharex=True, height_ratios=[4.0, 0.3 + 0.2 * len(arms)])
        top = 0.0
        for arm in arms:
            cur = km.curve[km.curve.group.astype(str) == arm].sort_values("time")
            t = cur.time.to_numpy()
            i = np.searchsorted(t, grid, "right") - 1
            ok = i >= 0

            def at(col: str, i=i, ok=ok, cur=cur) -> np.ndarray:
                v = cur[col].to_numpy()
                return np.where(ok, v[np.maximum(i, 0)], 1.0)

            s, lo, hi = at("survival"), at("ci_lower"), at("ci_upper")
            c = colors[arm]
            ax.step(grid / 60, 100 * (1 - s), where="post", color=c, ls=ls[arm], label=arm)
            ax.fill_between(grid / 60, 100 * (1 - hi), 100 * (1 - lo), step="post", color=c, alpha=0.18, lw=0)
            top = max(top, float(np.nanmax(100 * (1 - lo))))
        ax.set_xlim(0, max_min)
        ax.set_ylim(0, top * 1.08 if top > 0 else 1)
        ax.set_ylabel("Viewers who have bought (%)")
        ax.set_title(f"Time to first purchase (Kaplan–Meier, {conf_level:.0%} bands)")
        _top_legend(fig, ax)
        ax.tick_params(labelbottom=True)
        ax.set_xlabel("Time since arrival (min)")
        ax.set_xticks(ticks)
        # numbers at risk: duration >= t (R's convention), pooled over runs
        ax_risk.set_ylim(-0.5, len(arms) - 0.5)
        ax_risk.invert_yaxis()
        ax_risk.set_yticks(range(len(arms)), arms)
        for tick, arm in zip(ax_risk.get_yticklabels(), arms):
            tick.set_color(colors[arm])
        for j, arm in enumerate(arms):
            dur = np.sort(d.duration_s.to_numpy()[d.arm.to_numpy() == arm])
            for x in ticks:
                n = len(dur) - np.searchsorted(dur, x * 60, "left")
                ax_risk.text(x, j, _compact(n), ha="center", va="center", fontsize=7.5, color=colors[arm],
                             gid="at-risk")
        ax_risk.set_title("Number at risk (all runs)", fontsize=8.5, fontweight="normal")
        ax_risk.grid(False)
        ax_risk.tick_params(axis="both", length=0)
        ax_risk.tick_params(axis="y", pad=16)
        ax_risk.tick_params(axis="x", labelbottom=False)
        for side in ("left", "bottom"):
            ax_risk.spines[side].set_visible(False)
    return fig


# ----------------------------------------------------------------------- 3. forest


def _compare_effects(res) -> pd.DataFrame | None:
    """Hazard and odds ratios from :func:`fomolab.stats.compare.compare_arms`, when available."""
    try:
        from fomolab.stats.compare import compare_arms
    except ImportError:  # pragma: no cover - older checkouts
        return None
    tab = compare_arms(res, n_boot=0)
    return tab[tab.measure.isin(["hazard_ratio", "odds_ratio"])].reset_index(drop=True)


def effects(results: Any, *, conf_level: float = 0.95) -> pd.DataFrame:
    """Hazard ratio (time to first purchase) and odds ratio (conversion) of each
    treatment arm against the control, with replicate-clustered intervals.

    Fits a Cox model of time from arrival to first purchase (departure
    censors) and a logistic model of buying, each with one indicator per
    treatment arm, on the shoppers table; standard errors are cluster-robust
    with one cluster per replicate (per sweep point and replicate in a sweep),
    since the arms of a replicate share their viewers.  In a sweep the Cox
    model is stratified by point.

    Returns
    -------
    pandas.DataFrame
        ``arm, measure ("hazard_ratio" or "odds_ratio"), estimate, ci_lower,
        ci_upper, p``.
    """
    from fomolab.stats import conversion, cox

    res = _results(results)
    arms = _arms(res)
    control = res.manifest.get("control", arms[0])
    treat = [a for a in arms if a != control]
    cols = ["arm", "measure", "estimate", "ci_lower", "ci_upper", "p"]
    if not treat or control not in arms:
        return pd.DataFrame(columns=cols)
    d = _shopper_durations(res)
    names = [f"arm_{i}" for i in range(len(treat))]
    for name, a in zip(names, treat):
        d[name] = (d.arm == a).astype(float)
    sweep = d.point.nunique() > 1
    hr = cox(d, "duration_s", "bought", names, cluster="cluster", strata="point" if sweep else None,
             conf_level=conf_level).summary
    orr = conversion(d, "bought", names, cluster="cluster", conf_level=conf_level).summary
    rows = []
    for name, a in zip(names, treat):
        rows.append({"arm": a, "measure": "hazard_ratio", "estimate": hr.loc[name, "hazard_ratio"],
                     "ci_lower": hr.loc[name, "ci_lower"], "ci_upper": hr.loc[name, "ci_upper"],
                     "p": hr.loc[name, "p"]})
    for name, a in zip(names, treat):
        rows.append({"arm": a, "measure": "odds_ratio", "estimate": orr.loc[name, "odds_ratio"],
                     "ci_lower": orr.loc[name, "ci_lower"], "ci_upper": orr.loc[name, "ci_upper"],
                     "p": orr.loc[name, "p"]})
    return pd.DataFrame(rows, columns=cols)


def forest(results: Any, *, table: pd.DataFrame | None = None, conf_level: float = 0.95):
    """Forest plot of hazard ratios and odds ratios against the control arm.

    Parameters
    ----------
    results : Results or path
    table : pandas.DataFrame, optional
        Effects with columns ``arm, measure, estimate, ci_lower, ci_upper``
        (``measure`` ``hazard_ratio`` or ``odds_ratio``; other rows are
        ignored), e.g. ``fomolab.stats.compare.compare_arms(results)``.
        Default: that comparison for an experiment with one point, and
        :func:`effects` (pooled over points) for a sweep.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, hazard ratio (how much faster viewers buy) and odds ratio
        (how much likelier they buy), on log scales with a line at 1; each
        treatment arm a point with its interval, and the numbers on the right.
    """
    res = _results(results)
    colors = _colors(res)
    control = res.manifest.get("control")
    if table is None and res.runs.point.nunique() == 1 and conf_level == 0.95:
        table = _compare_effects(res)
    if table is None:
        table = effects(res, conf_level=conf_level)
    if "point" in table.columns and table.point.nunique() > 1:
        raise ValueError("forest: the table has several sweep points; pass one point's rows "
                         "(or none, for effects pooled over points)")
    table = table.assign(arm=table.arm.astype(str))
    treat = [a for a in _arms(res) if a in set(table.arm.astype(str))]
    with style():
        fig = _figure(figsize=(7.2, 1.5 + 0.42 * max(len(treat), 1)))
        axes = fig.subplots(1, 2, sharey=True)
        for ax, measure, title in zip(axes, ("hazard_ratio", "odds_ratio"),
                                      ("Hazard ratio of purchase\n(× control, log scale)",
                                       "Odds ratio of buying\n(× control, log scale)")):
            sub = table[table.measure == measure].set_index("arm")
            ax.axvline(1.0, color="#777777", lw=0.9, ls="--")
            labels = []
            for j, arm in enumerate(treat):
                if arm not in sub.index:
                    labels.append("")
                    continue
                r = sub.loc[arm]
                ax.plot([r.ci_lower, r.ci_upper], [j, j], color=colors.get(arm, "#000000"), lw=2.0,
                        solid_capstyle="butt")
                ax.plot([r.estimate], [j], "o", color=colors.get(arm, "#000000"), ms=6, mec="white", mew=0.8)
                labels.append(f"{r.estimate:.2f} ({r.ci_lower:.2f}–{r.ci_upper:.2f})")
            ax.set_xscale("log")
            lo = min(1.0, float(sub.ci_lower.min()) if len(sub) else 1.0)
            hi = max(1.0, float(sub.ci_upper.max()) if len(sub) else 1.0)
            pad = (np.log(hi) - np.log(lo)) * 0.12 + 0.02
            ax.set_xlim(lo * np.exp(-pad), hi * np.exp(pad))
            ax.set_xlabel(title)
            ax.grid(axis="y", visible=False)
            ax.set_ylim(len(treat) - 0.5, -0.5)
            sec = ax.secondary_yaxis("right")
            sec.set_yticks(range(len(treat)), labels, fontsize=7.5)
            sec.tick_params(length=0)
            sec.spines["right"].set_visible(False)
            _ratio_ticks(ax, lo * np.exp(-pad), hi * np.exp(pad))
        axes[0].set_yticks(range(len(treat)), treat)
        for tick in axes[0].get_yticklabels():
            tick.set_color(colors.get(tick.get_text(), "#000000"))
        fig.suptitle(f"Effects against {control or 'control'} ({conf_level:.0%} intervals, "
                     f"clustered by replicate)", x=0.01, ha="left", fontweight="bold", fontsize=10)
    return fig


def _ratio_ticks(ax, lo: float, hi: float) -> None:
    """Readable ticks on a log-scaled ratio axis: evenly spaced round values
    over a narrow range (1 to 1.3), powers and halves over a wide one."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    if hi / lo < 4:
        step = _nice_step(hi - lo, 4)
        ticks = np.arange(np.ceil(lo / step) * step, hi + step * 1e-9, step)
        ticks = ticks[ticks > 0]
    else:
        dec = np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
        ticks = np.array([m * 10 ** d for d in dec for m in (1, 2, 5)])
        ticks = ticks[(ticks >= lo) & (ticks <= hi)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:.3g}"))


# --------------------------------------------------------------------- 4. deadline


def _deadline_windows(res) -> pd.DataFrame:
    """Deadline windows per run: ``run_id, arm, point, product, label, start_s, end_s``.

    Windows are grouped by (point, product, start, end) rounded to a second;
    a run without the window (the control arm) gets the window of its point,
    so that its purchases show what happens at the same stream time without
    the tactic.
    """
    w = _windows(res)
    w = w[w.tactic.isin(_DEADLINE_TACTICS)]
    if w.empty:
        return w.assign(label=pd.Series(dtype=object))
    med = (w.groupby(["point", "product", "tactic"], sort=False)
           .agg(start_s=("start_s", "median"), end_s=("end_s", "median")).reset_index())
    med["key"] = list(zip(med["product"], med.start_s.round(0), med.end_s.round(0)))
    label = med.groupby("key", sort=False).tactic.agg(
        lambda t: " + ".join(_TACTIC_LABEL.get(x, x) for x in sorted(set(t), key=_DEADLINE_TACTICS.index)))
    med["label"] = [f"{k[0]}: {label[k]} ends" for k in med.key]
    windows = med.drop_duplicates("key")[["point", "product", "label", "start_s", "end_s"]]
    info = _run_info(res)
    out = info.merge(windows, on="point", how="inner")
    # a run's own window where it had one (a sale whose quota sold out ends early)
    own = (w.sort_values("tactic", key=lambda s: s.map(_DEADLINE_TACTICS.index))
           .drop_duplicates(["run_id", "product"]).set_index(["run_id", "product"]))
    key = list(zip(out.run_id, out["product"]))
    has = np.array([k in own.index for k in key])
    if has.any():
        idx = pd.MultiIndex.from_tuples([k for k, h in zip(key, has) if h])
        out.loc[has, "end_s"] = own.loc[idx, "end_s"].to_numpy()
    return out


def deadline(results: Any, *, bins: int = 20):
    """Purchases by the seconds left to each tactic's deadline.

    For every window with a deadline (a countdown timer, an exclusive code or a
    lightning sale), purchases of its product inside the window are counted by
    ``end - time`` (seconds left), per run and per second, for every arm; arms
    without the tactic are counted over the same stream time, as the baseline.
    A rise towards 0 seconds left is deadline bunching.  One panel per distinct
    window (product, start, end).

    Returns
    -------
    matplotlib.figure.Figure
        Step histograms, one line per arm, with time running left to right
        (the deadline at the right edge).
    """
    res = _results(results)
    arms, colors, ls = _arms(res), _colors(res), _styles(res)
    wins = _deadline_windows(res)
    labels = list(dict.fromkeys(wins.label)) if not wins.empty else []
    with style():
        fig = _figure(figsize=(7.2, 3.2 * max(1, (len(labels) + 1) // 2) if len(labels) > 1 else 3.4))
        if not labels:
            ax = fig.subplots()
            ax.text(0.5, 0.5, "No tactic with a deadline in these results", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_axis_off()
            return fig
        ncol = 1 if len(labels) == 1 else 2
        axes = np.atleast_1d(fig.subplots((len(labels) + ncol - 1) // ncol, ncol, squeeze=False)).ravel()
        buys = _events(res, ["purchase"])
        for ax, label in zip(axes, labels):
            w = wins[wins.label == label]
            length = float((w.end_s - w.start_s).median())
            edges = np.linspace(0.0, length, bins + 1)
            m = buys.merge(w[["run_id", "product", "start_s", "end_s"]], on=["run_id", "product"], how="inner")
            m = m[(m.time_s >= m.start_s) & (m.time_s <= m.end_s)]
            left = (m.end_s - m.time_s).to_numpy()
            for arm in arms:
                n_runs = int((w.arm == arm).sum())
                if n_runs == 0:
                    continue
                counts = np.histogram(left[m.arm.to_numpy() == arm], bins=edges)[0]
                rate = counts / n_runs / np.diff(edges) * 60.0
                ax.stairs(rate, edges, color=colors[arm], ls=ls[arm], lw=1.6, label=arm, baseline=None)
            ax.set_xlim(length, 0)
            ax.set_ylim(bottom=0)
            ax.set_xlabel("Time left to the deadline (s)")
            ax.set_ylabel("Purchases/min per run")
            ax.set_title(label, fontsize=9)
        for ax in axes[len(labels):]:
            ax.set_axis_off()
        _top_legend(fig, axes[0])
    return fig


# ---------------------------------------------------------------- 5. impulsiveness


def impulsiveness(results: Any, *, groups: int = 10):
    """Conversion and time to purchase by impulsiveness decile, per arm.

    Viewers are cut into ``groups`` equal-count groups of impulsiveness ``z``
    (pooled over arms, so every arm has the same cut points).  Left: the share
    who bought; right: the median minutes from arrival to first purchase among
    those who bought.  Points are means over runs of each run's value, with
    95 % intervals (1.96 standard errors over runs).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, one line per arm in each.
    """
    res = _results(results)
    arms, colors, ls = _arms(res), _colors(res), _styles(res)
    d = _shopper_durations(res)
    d["run"] = d.point * 1_000_003 + d.replicate
    cuts = np.unique(np.quantile(d.impulsiveness, np.linspace(0, 1, groups + 1)[1:-1]))
    d["decile"] = np.searchsorted(cuts, d.impulsiveness.to_numpy(), "right") + 1
    k = len(cuts) + 1
    x = np.arange(1, k + 1)
    d["ttp_min"] = np.where(d.bought == 1, d.duration_s / 60.0, np.nan)
    with style():
        fig = _figure(figsize=(7.2, 3.4))
        ax_c, ax_t = fig.subplots(1, 2)
        n = len(arms)
        for j, arm in enumerate(arms):
            a = d[d.arm == arm]
            conv = a.pivot_table(index="run", columns="decile", values="bought", aggfunc="mean", observed=True)
            conv = conv.reindex(columns=x).to_numpy(float) * 100
            ttp = a.pivot_table(index="run", columns="decile", values="ttp_min", aggfunc="median", observed=True)
            ttp = ttp.reindex(columns=x).to_numpy(float)
            dx = (j - (n - 1) / 2) * 0.08  # dodge the arms a little
            for ax, vals in ((ax_c, conv), (ax_t, ttp)):
                m = _nanmean_rows(vals)
                ok = ~np.isnan(vals)
                cnt = ok.sum(axis=0)
                dev = np.where(ok, vals - m, 0.0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    se = np.sqrt((dev ** 2).sum(axis=0) / np.maximum(cnt - 1, 1)) / np.sqrt(np.maximum(cnt, 1))
                se = np.where(cnt > 1, se, 0.0)
                ax.errorbar(x + dx, m, yerr=1.96 * se, color=colors[arm], ls=ls[arm], marker="o", ms=3.5, lw=1.4,
                            elinewidth=0.9, capsize=0, label=arm)
        ax_c.set_ylabel("Viewers who bought (%)")
        ax_t.set_ylabel("Median time to purchase (min)")
        ax_c.set_ylim(bottom=0)
        ax_t.set_ylim(bottom=0)
        for ax in (ax_c, ax_t):
            ax.set_xlabel(f"Impulsiveness {'decile' if k == 10 else 'group'} (1 = least impulsive)")
            ax.set_xticks(x)
        ax_c.set_title("Who buys")
        ax_t.set_title("How fast buyers buy")
        _top_legend(fig, ax_c)
    return fig


def harm(results: Any, *, table: pd.DataFrame | None = None, point: int | None = None):
    """Consumer impact by impulsiveness quintile: who the tactics move, and who regrets.

    Quintiles run from Q1 (least impulsive) to Q5.  Each treatment arm's viewers against the same viewers in the control
    (:func:`fomolab.attribution.impact`, common random numbers).  Left:
    purchases the arm induced; middle: regretted purchases it added (negative
    surplus); right: consumer surplus lost (negative is a gain).  Means per
    replicate with 95 % intervals over replicates.

    For a sweep, give the ``point`` to show.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels, one line per treatment arm.
    """
    from fomolab.attribution import impact

    res = _results(results)
    tab = table if table is not None else impact(res)
    if point is not None:
        tab = tab[tab.point == point]
    elif tab.point.nunique() > 1:
        raise ValueError(f"the results have {tab.point.nunique()} sweep points: give point=")
    arms = [a for a in _arms(res) if a in set(tab.arm)]
    colors, ls = _colors(res), _styles(res)
    groups = sorted(set(tab.group))
    x = np.arange(1, len(groups) + 1)
    panels = (("induced_purchases", "Induced purchases per replicate (units)", "Purchases induced"),
              ("regretted_added", "Regretted purchases added (units)", "Regret added"),
              ("consumer_surplus_lost", "Consumer surplus lost (currency)", "Surplus lost"))
    with style():
        fig = _figure(figsize=(9.6, 3.4))
        axes = fig.subplots(1, 3)
        n = len(arms)
        for j, arm in enumerate(arms):
            dx = (j - (n - 1) / 2) * 0.06
            for ax, (measure, _, _) in zip(axes, panels):
                t = tab[(tab.arm == arm) & (tab.measure == measure)].set_index("group").reindex(groups)
                m = t["mean"].to_numpy(float)
                err = np.vstack([m - t.ci_lower.to_numpy(float), t.ci_upper.to_numpy(float) - m])
                ax.errorbar(x + dx, m, yerr=np.nan_to_num(err), color=colors[arm], ls=ls[arm], marker="o", ms=3.5,
                            lw=1.4, elinewidth=0.9, capsize=0, label=arm)
        for ax, (_, ylabel, title) in zip(axes, panels):
            ax.axhline(0, color="0.6", lw=0.8)
            ax.set_xticks(x, groups)
            ax.set_xlabel("Impulsiveness quintile")
            ax.set_ylabel(ylabel)
            ax.set_title(title)
        _top_legend(fig, axes[0])
    return fig


# ------------------------------------------------------------------------ 6. sweeps


#: Run metrics shown for sweeps: column -> axis label with unit.
METRICS = {
    "conversion": "Conversion (% of viewers)",
    "revenue": "Revenue per run (currency)",
    "units_sold": "Units sold per run (units)",
    "median_time_to_purchase_s": "Median time to purchase (s)",
    "viewers_per_stream": "Viewers per stream (viewers)",
    "hhi_viewers": "Concentration of watch time (HHI, 0-1)",
    "top1_share_viewers": "Top stream's share of watch time (0-1)",
}
_PERCENT = {"conversion"}


def param_label(path: str) -> str:
    """A short axis label for a swept parameter's dotted path.

    >>> param_label("lineup.lipstick.tactics.lightning_sale.discount")
    'lipstick sale discount'
    >>> param_label("stream.duration_s")
    'stream duration (s)'
    """
    parts = [p for p in path.split(".") if p not in ("lineup", "tactics", "segments", "population", "arrivals")]
    unit = ""
    if parts and parts[-1].endswith("_s"):
        parts[-1] = parts[-1][:-2]
        unit = " (s)"
    words = [_TACTIC_LABEL.get(p, p).replace("_", " ") for p in parts]
    return " ".join(words) + unit


def _sweep_runs(res) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    from fomolab.errors import ResultsError
    from fomolab.sweep import column_name

    swept = list(res.manifest.get("swept") or [])
    if not swept:
        raise ResultsError(f"{res.path}: not a sweep (no swept parameters in manifest.json); "
                           "sweep figures need a spec with a [sweep] table")
    runs = res.runs.copy()
    cols = {p: column_name(p) for p in swept}
    runs["arm"] = runs.arm.astype(str)
    runs["conversion"] = runs.conversion * 100.0
    return runs, swept, cols


def _binned(values: pd.Series, max_levels: int = 12, bins: int = 8) -> tuple[pd.Series, bool]:
    """The values themselves when there are few levels, else equal-count bins (at their means)."""
    v = pd.to_numeric(values, errors="coerce")
    if v.nunique() <= max_levels:
        return v, False
    codes = pd.qcut(v, bins, labels=False, duplicates="drop")
    return v.groupby(codes).transform("mean"), True


def sweep_metrics(results: Any, *, metrics: Sequence[str] = ("conversion", "revenue", "median_time_to_purchase_s")):
    """Each run metric against each swept parameter, one line per arm.

    Each point is the mean over runs at that parameter value (over replicates
    and over the other swept parameters), with a 95 % band (1.96 standard
    errors over runs).  Sampled designs with many distinct values are cut into
    8 equal-count bins, plotted at the bins' mean values.

    Returns
    -------
    matplotlib.figure.Figure
        A grid of panels: one row per metric, one column per swept parameter.
    """
    res = _results(results)
    runs, swept, cols = _sweep_runs(res)
    arms, colors, styles = _arms(res), _colors(res), _styles(res)
    metrics = [m for m in metrics if m in runs.columns]
    with style():
        fig = _figure(figsize=(min(3.1 * len(swept) + 0.8, 10.0), 2.3 * len(metrics) + 0.5))
        axes = fig.subplots(len(metrics), len(swept), squeeze=False, sharex="col")
        for i, metric in enumerate(metrics):
            for j, path in enumerate(swept):
                ax = axes[i, j]
                xval, binned = _binned(runs[cols[path]])
                for arm in arms:
                    sel = (runs.arm == arm).to_numpy()
                    g = runs.loc[sel, metric].groupby(xval[sel].to_numpy())
                    m = g.mean()
                    se = (g.std(ddof=1) / np.sqrt(g.count())).fillna(0.0)
                    ax.plot(m.index, m.to_numpy(), marker="o", ms=3, color=colors[arm], ls=styles[arm], label=arm)
                    ax.fill_between(m.index, m - 1.96 * se, m + 1.96 * se, color=colors[arm], alpha=0.15, lw=0)
                if i == len(metrics) - 1:
                    ax.set_xlabel(param_label(path) + (" (binned)" if binned else ""))
                if j == 0:
                    ax.set_ylabel(METRICS.get(metric, metric))
        _top_legend(fig, axes[0, 0])
    return fig


def sweep_heatmap(results: Any, *, metric: str = "conversion", params: Sequence[str] | None = None):
    """A metric over two swept parameters, one heatmap per arm.

    Cells hold the mean over runs (replicates and any other swept parameters);
    sampled designs are cut into 6 equal-count bins per parameter.  All panels
    share one colour scale (viridis, readable in grey and by colour-blind
    readers), with the value written in each cell when there are few cells.
    """
    from fomolab.errors import ResultsError

    res = _results(results)
    runs, swept, cols = _sweep_runs(res)
    arms = _arms(res)
    params = list(params or swept[:2])
    if len(params) != 2:
        raise ResultsError(f"{res.path}: a heatmap needs two swept parameters; this sweep has {len(swept)}")
    xs, ys = (_binned(runs[cols[p]], bins=6)[0].round(10) for p in params)
    runs = runs.assign(_x=xs.to_numpy(), _y=ys.to_numpy())
    tables = {a: runs[runs.arm == a].pivot_table(index="_y", columns="_x", values=metric, aggfunc="mean")
              for a in arms}
    vmin = min(float(np.nanmin(t.to_numpy())) for t in tables.values())
    vmax = max(float(np.nanmax(t.to_numpy())) for t in tables.values())
    with style():
        ncol = min(len(arms), 3)
        nrow = (len(arms) + ncol - 1) // ncol
        fig = _figure(figsize=(min(2.9 * ncol + 1.2, 10.0), 2.6 * nrow + 0.6))
        axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
        im = None
        for ax, arm in zip(axes, arms):
            t = tables[arm]
            im = ax.imshow(t.to_numpy(), origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
            ax.set_xticks(range(t.shape[1]), [f"{v:.3g}" for v in t.columns])
            ax.set_yticks(range(t.shape[0]), [f"{v:.3g}" for v in t.index])
            ax.grid(False)
            if t.size <= 36:
                mid = (vmin + vmax) / 2
                for (r, c), v in np.ndenumerate(t.to_numpy()):
                    if np.isfinite(v):
                        ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=7.5,
                                color="black" if v > mid else "white")
            ax.set_title(arm, color=_colors(res)[arm], fontsize=9)
            ax.set_xlabel(param_label(params[0]))
            ax.set_ylabel(param_label(params[1]))
        for ax in axes[len(arms):]:
            ax.set_axis_off()
        fig.colorbar(im, ax=list(axes[:len(arms)]), label=METRICS.get(metric, metric), shrink=0.9)
        fig.suptitle(f"{METRICS.get(metric, metric).split(' (')[0]} over two swept parameters (mean over runs)",
                     x=0.01, ha="left", fontweight="bold", fontsize=10.5)
    return fig


def _sobol_table(res, metric: str) -> pd.DataFrame:
    """First-order and total Sobol indices of a metric per arm (SALib), from a Saltelli design."""
    require("SALib", "Sobol indices")
    from SALib.analyze import sobol as salib_sobol

    from fomolab.design import assign_points
    from fomolab.errors import ResultsError

    exp = res.experiment
    if res.manifest.get("sweep_design") != "saltelli" or exp.sweep is None:
        raise ResultsError(f"{res.path}: Sobol indices need a saltelli sweep design "
                           f"(this one: {res.manifest.get('sweep_design')!r})")
    ids, _ = assign_points(exp, res.manifest.get("points"))
    problem = exp.sweep.problem()
    runs = res.runs
    rows = []
    for arm in _arms(res):
        means = runs[runs.arm.astype(str) == arm].groupby("point")[metric].mean()
        y = np.array([means.get(i, np.nan) for i in ids], float)
        if np.isnan(y).any():
            raise ResultsError(f"{res.path}: arm {arm!r} misses runs of some sweep points; finish the sweep "
                               "(run the same command again) before computing Sobol indices")
        si = salib_sobol.analyze(problem, y, calc_second_order=False, seed=exp.seed, print_to_console=False)
        for k, name in enumerate(problem["names"]):
            rows.append({"arm": arm, "parameter": name, "S1": si["S1"][k], "S1_conf": si["S1_conf"][k],
                         "ST": si["ST"][k], "ST_conf": si["ST_conf"][k]})
    return pd.DataFrame(rows)


def sobol_indices(results: Any, *, metric: str = "conversion", table: pd.DataFrame | None = None):
    """Sobol sensitivity indices of a metric, as bars per swept parameter.

    Needs a Saltelli design.  First-order (S1: the share of the metric's
    variance due to the parameter alone) and total (ST: including its
    interactions) indices per arm, from the per-point mean over replicates,
    with SALib's 95 % bootstrap intervals.

    Parameters
    ----------
    table : pandas.DataFrame, optional
        Precomputed indices with columns ``arm, parameter, S1, S1_conf, ST,
        ST_conf``; computed with SALib when not given.
    """
    res = _results(results)
    if table is None:
        table = _sobol_table(res, metric)
    arms, colors = _arms(res), _colors(res)
    arms = [a for a in arms if a in set(table.arm.astype(str))]
    params = list(dict.fromkeys(table.parameter))
    with style():
        fig = _figure(figsize=(7.2, 1.4 + 0.55 * len(params) * max(1, len(arms)) ** 0.5))
        axes = fig.subplots(1, 2, sharey=True)
        h = 0.8 / max(len(arms), 1)
        y = np.arange(len(params))
        for ax, idx, title in zip(axes, ("S1", "ST"), ("First-order index S1", "Total index ST")):
            for j, arm in enumerate(arms):
                t = table[table.arm.astype(str) == arm].set_index("parameter").reindex(params)
                ax.barh(y + (j - (len(arms) - 1) / 2) * h, t[idx].to_numpy(), height=h * 0.9,
                        xerr=t[f"{idx}_conf"].to_numpy(), color=colors[arm], label=arm,
                        error_kw={"elinewidth": 0.8, "ecolor": "#444444"})
            ax.axvline(0, color="#777777", lw=0.8)
            ax.set_xlabel(f"{title} (share of variance)")
            ax.grid(axis="y", visible=False)
        axes[0].set_yticks(y, [param_label(p) for p in params])
        axes[0].invert_yaxis()
        axes[1].legend(title="arm", loc="lower right")
        fig.suptitle(f"Sobol indices of {METRICS.get(metric, metric).split(' (')[0].lower()}", x=0.01,
                     ha="left", fontweight="bold", fontsize=10.5)
    return fig
