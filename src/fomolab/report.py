"""The report: one self-contained HTML page of what the tactics did.

``report(results)`` turns a results folder (an experiment or a sweep) into

```
RESULTS/report/index.html         the page: figures embedded, CSS inline, no script
RESULTS/report/figures/NAME.png   each figure for slides (150 dpi)
RESULTS/report/figures/NAME.svg   and for papers (vector)
```

The page has a title, a methods paragraph written from the spec in the
manifest (stream, lineup, population, arms, replicates, seeds, fomolab
version), the headline table of :func:`fomolab.analysis.analyze` (or the
per-arm summary of :meth:`fomolab.Results.summary` when the analysis is not
available), the figures of :mod:`fomolab.plot` with captions, and the
provenance from the manifest.  It opens offline in any browser and reads at
laptop and phone widths.  The ``report/`` folder is built in a temporary
folder beside it and renamed into place; the run partitions are never touched.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["Report", "report"]


@dataclass
class _Figure:
    name: str
    title: str
    caption: str
    svg: bytes = b""


@dataclass
class Report:
    """A written report: the page and the figure files.

    Attributes
    ----------
    path : pathlib.Path
        ``RESULTS/report/index.html``.
    figures : list of pathlib.Path
        The PNG and SVG files written.
    notes : list of str
        What could not be shown, and why (empty when everything was drawn).
    """

    path: Path
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Report({str(self.path)!r}, {len(self.figures) // 2} figures)"


# ------------------------------------------------------------------- text helpers


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(x: Any, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if v != v:  # NaN
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _minutes(s: float) -> str:
    m = float(s) / 60
    return f"{m:g} min" if m == int(m) else f"{m:.1f} min"


def _pct(x: float) -> str:
    return f"{100 * float(x):g} %"


def methods(manifest: dict[str, Any]) -> str:
    """The methods paragraph (HTML) written from a manifest's spec.

    >>> m = {"spec": {"experiment": {"seed": 3, "replicates": 2, "control": "a"},
    ...      "stream": {"duration_s": 600.0, "arrivals": {"rate_per_s": 1.0}},
    ...      "lineup": {"tea": {"price": 4.0}}, "population": {"segments": {"all": {"share": 1.0}}},
    ...      "arms": {"a": {}}}, "runs": 2, "fomolab_version": "0.1.0"}
    >>> "10 min" in methods(m) and "tea" in methods(m)
    True
    """
    spec = manifest.get("spec", {})
    exp = spec.get("experiment", {})
    stream = spec.get("stream", {})
    arr = stream.get("arrivals", {})
    parts = []
    if "schedule" in arr:
        sched = ", ".join(f"{_num(r['rate_per_s'])}/s from {_minutes(r['start_s'])}" for r in arr["schedule"])
        rate = f"at a scheduled rate ({sched})"
    else:
        rate = f"at {_num(arr.get('rate_per_s'))} per second"
    parts.append(f"Each simulated stream lasts {_minutes(stream.get('duration_s', 0))}; viewers arrive as a "
                 f"Poisson process {rate}.")
    prods = []
    for name, p in spec.get("lineup", {}).items():
        bits = [f"price {_num(p.get('price'))}"]
        bits.append(f"stock {p['stock']}" if p.get("stock") is not None else "unlimited stock")
        if p.get("slot_s"):
            bits.append(f"on show {_minutes(p['slot_s'][0])}–{_minutes(p['slot_s'][1])}")
        tactics = []
        for t, cfg in (p.get("tactics") or {}).items():
            desc = t.replace("_", " ")
            if "start_s" in cfg and "end_s" in cfg:
                desc += f" {_minutes(cfg['start_s'])}–{_minutes(cfg['end_s'])}"
            if "discount" in cfg:
                desc += f", {_pct(cfg['discount'])} off"
            if "threshold" in cfg:
                desc += f" below {cfg['threshold']} units"
            tactics.append(desc)
        if tactics:
            bits.append("tactics: " + "; ".join(tactics))
        prods.append(f"<em>{_esc(name)}</em> ({_esc(', '.join(bits))})")
    parts.append(f"The lineup: {', '.join(prods)}.")
    pop = spec.get("population", {})
    segs = pop.get("segments", {})
    if segs:
        seg = ", ".join(f"{_esc(k)} ({_pct(v.get('share', 0))})" for k, v in segs.items())
        prof = f" (profile <em>{_esc(pop['profile'])}</em>)" if pop.get("profile") else ""
        parts.append(f"Viewers come from the population{prof} with segments {seg}; each draws an "
                     "impulsiveness, an interest, a price sensitivity and a dwell time.")
    control = exp.get("control", manifest.get("control", "control"))
    arms = []
    for a, cfg in spec.get("arms", {}).items():
        label = f"<strong>{_esc(a)}</strong>" + (" (control)" if a == control else "")
        d = cfg.get("description") or ", ".join(cfg.get("tactics", [])) or "no tactic"
        arms.append(f"{label}: {_esc(d.rstrip('.'))}")
    parts.append(f"Arms: {'; '.join(arms)}.")
    sweep = spec.get("sweep")
    if sweep:
        swept = manifest.get("swept") or list(sweep.get("parameters", {}))
        n_points = len(manifest.get("points") or [])
        parts.append(f"A {_esc(sweep.get('design', 'grid'))} sweep over {len(swept)} parameter"
                     f"{'s' * (len(swept) != 1)} ({', '.join(f'<code>{_esc(p)}</code>' for p in swept)}) "
                     f"gives {n_points} points; every arm runs at every point.")
    parts.append(f"Each arm ran {exp.get('replicates', manifest.get('replicates'))} replicates "
                 f"({manifest.get('runs', '?')} runs in all), with seeds derived from the master seed "
                 f"{exp.get('seed', manifest.get('master_seed'))} by NumPy's SeedSequence; the arms of a "
                 "replicate see the same viewers (common random numbers), so effects are estimated paired "
                 "and intervals are clustered by replicate.")
    parts.append(f"Simulated with fomolab {_esc(manifest.get('fomolab_version', '?'))} "
                 "(discrete-event, proportional-hazards shoppers; docs/MODEL.md).")
    return " ".join(parts)


def _table_html(df: pd.DataFrame, caption: str = "", max_rows: int = 40) -> str:
    more = ""
    if len(df) > max_rows:
        more = f"<p class='note'>First {max_rows} of {len(df)} rows; all rows are in the analysis tables.</p>"
        df = df.head(max_rows)
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)

    def cell(v: Any) -> str:
        numeric = bool(re.match(r"^[-+<–]?\s?[0-9.]", str(v))) or str(v) == "–"
        return f"<td class='n'>{_esc(v)}</td>" if numeric else f"<td>{_esc(v)}</td>"

    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in df.itertuples(index=False))
    cap = f"<p class='cap'>{caption}</p>" if caption else ""
    return f"{cap}<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}"


def _ci(est: Any, lo: Any, hi: Any, digits: int = 3) -> str:
    if pd.isna(est):
        return "–"
    if pd.isna(lo) or pd.isna(hi):
        return _num(est, digits)
    return f"{_num(est, digits)} ({_num(lo, digits)}–{_num(hi, digits)})"


def _p(p: Any) -> str:
    if pd.isna(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _headline_table(headline: pd.DataFrame, sweep: bool) -> pd.DataFrame:
    h = headline
    out = pd.DataFrame({"arm": h.arm.astype(str)})
    if sweep and "point" in h:
        out.insert(0, "point", h.point.astype(int))
    out["runs"] = h.runs.map(lambda v: f"{int(v)}")
    out["viewers"] = h.viewers.map(lambda v: f"{v:,.0f}")
    out["conversion"] = h.conversion.map(lambda v: f"{100 * v:.2f} %")
    out["median time to purchase, s (95 % CI)"] = [_ci(a, b, c) for a, b, c in
                                                     zip(h.median_s, h.median_ci_lower, h.median_ci_upper)]
    out["hazard ratio (95 % CI)"] = [_ci(a, b, c) for a, b, c in zip(h.hazard_ratio, h.hr_ci_lower, h.hr_ci_upper)]
    out["p (Holm)"] = h.hr_p_holm.map(_p)
    out["odds ratio (95 % CI)"] = [_ci(a, b, c) for a, b, c in zip(h.odds_ratio, h.or_ci_lower, h.or_ci_upper)]
    out["p (Holm) "] = h.or_p_holm.map(_p)
    if "deadline_share" in h and h.deadline_share.notna().any():
        out["purchases in last 10 % of window (expected)"] = [
            "–" if pd.isna(s) else f"{100 * s:.1f} % ({100 * e:.1f} %)"
            for s, e in zip(h.deadline_share, h.deadline_expected_share)]
    return out


def _summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    s = summary
    return pd.DataFrame({
        "arm": [str(a) for a in s.index], "runs": s.runs.map(lambda v: f"{int(v)}"),
        "viewers per run": s.viewers_per_run.map(lambda v: f"{v:,.1f}"),
        "buyers per run": s.buyers_per_run.map(lambda v: f"{v:,.1f}"),
        "conversion": s.conversion.map(lambda v: f"{100 * v:.2f} %"),
        "median time to purchase (s)": s.median_time_to_purchase_s.map(lambda v: _num(v, 4)),
        "units per run": s.units_per_run.map(lambda v: f"{v:,.1f}"),
        "revenue per run": s.revenue_per_run.map(lambda v: f"{v:,.2f}"),
    })


def _effects_table(effects: pd.DataFrame) -> pd.DataFrame:
    names = {"hazard_ratio": "hazard ratio", "odds_ratio": "odds ratio", "risk_difference": "risk difference",
             "median_shift_s": "median shift (s)"}
    e = effects[effects.estimate.notna()]
    out = pd.DataFrame({
        "arm": e.arm.astype(str), "measure": e.measure.map(lambda m: names.get(m, m)),
        "estimate (95 % CI)": [_ci(a, b, c, 4) for a, b, c in zip(e.estimate, e.ci_lower, e.ci_upper)],
        "p": e.p.map(_p),
    })
    if "p_holm" in e:
        out["p (Holm)"] = e.p_holm.map(_p)
    if "p_bh" in e:
        out["p (BH)"] = e.p_bh.map(_p)
    if "point" in e and e.point.nunique() > 1:
        out.insert(0, "point", e.point.astype(int))
    return out


def _provenance(res) -> str:
    m = res.manifest
    history = m.get("invocations", [])
    last = history[-1] if history else {}
    rows = [
        ("experiment", m.get("experiment")), ("spec file", m.get("source")),
        ("spec hash", m.get("spec_hash")), ("fomolab", ", ".join(res.versions) or m.get("fomolab_version")),
        ("created", m.get("created")), ("master seed", m.get("master_seed")),
        ("runs finished", f"{len(res.runs)} of {m.get('runs')} ({res.completeness.describe()})"),
        ("replicate seeds", f"{len(m.get('seeds', []))} (listed in manifest.json)"),
        ("packages", ", ".join(f"{k} {v}" for k, v in (last.get("packages") or {}).items())),
        ("platform", last.get("platform")),
    ]
    for t in history:
        rows.append((f"invocation {t.get('finished', '')}",
                     f"fomolab {t.get('fomolab_version', '?')} (revision {t.get('revision') or 'not recorded'}): "
                     f"{t.get('runs_computed', 0)} runs computed, {t.get('runs_skipped', 0)} skipped, "
                     f"{t.get('runs_failed', 0)} failed; wall {t.get('wall_s', 0):.1f} s on "
                     f"{t.get('workers', '?')} worker(s)"))
    body = "".join(f"<tr><th scope='row'>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f"<div class='scroll'><table class='prov'><tbody>{body}</tbody></table></div>"


# ------------------------------------------------------------------------ figures


def _figures(res, analysis: Any, effects: pd.DataFrame | None, notes: list[str]
             ) -> list[tuple[_Figure, Callable[[], Any]]]:
    from fomolab import plot

    m = res.manifest
    sweep = bool(m.get("swept"))
    reps = m.get("replicates")
    pooled = " Pooled over all sweep points." if sweep else ""
    control = m.get("control", "control")
    figs: list[tuple[_Figure, Callable[[], Any]]] = []
    if sweep:
        n = len(m["swept"])
        figs.append((_Figure("sweep_metrics", "Metrics across the sweep",
                             "Conversion, revenue per run and median time to purchase against each swept parameter, "
                             "one line per arm: means over runs at each value (over replicates and the other swept "
                             "parameters), with 95 % bands (1.96 standard errors over runs)."),
                     lambda: plot.sweep_metrics(res)))
        if "hhi_viewers" in res.runs.columns:
            figs.append((_Figure("marketplace", "The marketplace: fragmentation and concentration",
                                 "Viewers per stream (distinct viewers who watched it, switchers counted in each "
                                 "stream they watched), concentration of watch time across streams (Herfindahl-"
                                 "Hirschman index: 1/streams when equal, 1 when one stream has everyone) and the "
                                 "top stream's share of watch time, against each swept parameter; means over runs "
                                 "with 95 % bands."),
                         lambda: plot.sweep_metrics(res, metrics=("viewers_per_stream", "hhi_viewers",
                                                                  "top1_share_viewers"))))
        if n >= 2:
            figs.append((_Figure("sweep_heatmap", "Conversion over two swept parameters",
                                 "Mean conversion (% of viewers) over runs in each cell of the first two swept "
                                 "parameters, one panel per arm, on a common colour scale."),
                         lambda: plot.sweep_heatmap(res)))
        if m.get("sweep_design") == "saltelli":
            table = None
            sob = getattr(analysis, "sobol", None)
            need = {"arm", "parameter", "S1", "S1_conf", "ST", "ST_conf"}
            if isinstance(sob, pd.DataFrame) and need <= set(sob.columns):
                table = sob[sob["metric"] == "conversion"] if "metric" in sob.columns else sob
            figs.append((_Figure("sobol", "Sobol indices",
                                 "First-order (S1) and total (ST) Sobol indices of conversion per swept "
                                 "parameter and arm, from the Saltelli design (means over replicates at each "
                                 "point), with 95 % bootstrap intervals."),
                         lambda: plot.sobol_indices(res, table=table)))
    figs.append((_Figure("purchase_rate", "Purchases, viewers and stock over the stream",
                         "Top: purchases per minute of stream time, mean per run with a 95 % band, one line per "
                         "arm; grey areas are the tactic windows (median over the runs that had them). Middle: "
                         "viewers watching at each moment. Bottom (products with a finite stock): units left."
                         + pooled),
                 lambda: plot.purchase_rate(res)))
    figs.append((_Figure("time_to_purchase", "Time to first purchase",
                         "Kaplan–Meier estimate of the share of viewers who have bought, by minutes since "
                         "arrival (departure without buying censors), with 95 % pointwise bands; below, the "
                         f"numbers still at risk at each tick, summed over the {reps} replicates." + pooled),
                 lambda: plot.time_to_purchase(res)))
    if len(plot._arms(res)) > 1:
        src = ("Cox model of time to first purchase and logistic model of buying, each arm against "
               f"<em>{_esc(control)}</em> on the viewers of the two arms")
        figs.append((_Figure("forest", "Effects against the control",
                             f"Hazard ratios (how much faster viewers buy) and odds ratios (how much likelier "
                             f"they buy) with 95 % intervals clustered by replicate. {src}"
                             + (" (pooled over sweep points; Cox stratified by point)." if sweep else ".")),
                     lambda: plot.forest(res, table=effects)))
    figs.append((_Figure("deadline", "Purchases before the deadlines",
                         "Purchases of the product inside each tactic window with a deadline, per minute and "
                         "run, by seconds left to the window's end (the deadline at the right). Arms without the "
                         "tactic are counted over the same stream time as a baseline. A rise towards the right "
                         "is deadline bunching." + pooled),
                 lambda: plot.deadline(res)))
    impact = getattr(analysis, "impact", None)
    if isinstance(impact, pd.DataFrame) and not impact.empty and not sweep:
        figs.append((_Figure("harm", "Consumer impact: who the tactics move, and who regrets",
                             "Each treatment arm against the same viewers in the control (common random numbers: "
                             "the same arrivals, traits and decision randomness in every arm), by quintile of "
                             "impulsiveness. Left: purchases the arm induced (viewers who did not buy in the "
                             "control, and viewers its arrival boost brought); middle: regretted purchases it "
                             "added (the viewer's valuation below the price paid); right: consumer surplus lost "
                             "(valuation minus price, control minus arm; below zero is a gain). Means per "
                             "replicate with 95 % intervals over replicates." + pooled),
                     lambda: plot.harm(res, table=impact)))
    figs.append((_Figure("impulsiveness", "Who responds",
                         "Viewers cut into deciles of impulsiveness (the same cut points for every arm). Left: "
                         "the share who bought; right: median minutes from arrival to first purchase among "
                         "buyers. Means over runs with 95 % intervals." + pooled),
                 lambda: plot.impulsiveness(res)))
    return figs


# ----------------------------------------------------------------------------- page


CSS = """
:root { --fg: #1b1b1b; --muted: #5a5a5a; --line: #d9d9d9; --bg: #ffffff; --accent: #0072B2; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg);
       font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.7rem; line-height: 1.2; margin: 0 0 .3rem; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem; padding-top: .4rem; border-top: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; }
p.lead { color: var(--muted); margin-top: 0; }
p, li { overflow-wrap: anywhere; }
code { font-size: .9em; background: #f3f3f3; padding: 0 .2em; border-radius: 3px; }
figure { margin: 1rem 0 2rem; }
figure img { display: block; width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { font-size: .92rem; color: var(--muted); margin-top: .5rem; }
figcaption strong { color: var(--fg); }
figcaption a { color: var(--accent); }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: .5rem 0 1rem; }
table { border-collapse: collapse; font-size: .88rem; min-width: 100%; }
p.cap { color: var(--muted); font-size: .9rem; margin: .4rem 0 .2rem; }
tbody td:first-child, thead th:first-child { position: sticky; left: 0; background: var(--bg); }
th, td { padding: .35rem .6rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #999; white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.prov th { white-space: nowrap; font-weight: 600; }
table.prov td { overflow-wrap: anywhere; word-break: break-word; }
nav ol { padding-left: 1.2rem; columns: 2; column-gap: 2rem; }
.note { color: var(--muted); font-size: .9rem; }
footer { color: var(--muted); font-size: .85rem; margin-top: 3rem; }
@media (max-width: 600px) {
  body { font-size: 15px; }
  main { padding: 1rem .75rem 2rem; }
  h1 { font-size: 1.35rem; }
  nav ol { columns: 1; }
  table { font-size: .8rem; }
}
"""


def _impact_html(res) -> str:
    """The consumer impact section: each treatment arm against the same viewers in the control."""
    from fomolab.attribution import impact

    tab = impact(res, by="all")
    measures = {"induced_purchases": ("induced purchases", 1), "accelerated_purchases": ("accelerated", 1),
                "seconds_gained_by_seller": ("seconds gained by the seller", 0), "regretted_added":
                ("regretted purchases added", 1), "consumer_surplus_lost": ("consumer surplus lost", 0),
                "seller_revenue_gained": ("seller revenue gained", 0)}
    rows = []
    for arm, g in tab.groupby("arm", sort=False):
        g = g.set_index("measure")
        rows.append({"arm": arm, **{label: _ci(g.loc[m, "mean"], g.loc[m, "ci_lower"], g.loc[m, "ci_upper"], d)
                                    for m, (label, d) in measures.items()}})
    order = {a: k for k, a in enumerate(res.manifest.get("arms", []))}
    df = pd.DataFrame(rows).sort_values("arm", key=lambda c: c.map(order))
    return ("<h2 id='impact'>Consumer impact</h2>"
            "<p>Every arm shows the same viewers (common random numbers), so each treatment arm's viewers can be "
            "compared with themselves in the control: a purchase is <em>induced</em> when the viewer did not buy "
            "in the control (or came only because of an arrival boost), <em>accelerated</em> when they bought "
            "sooner. A purchase is <em>regretted</em> when the viewer's valuation is below the price paid; "
            "surplus is valuation minus price. See <code>docs/MODEL.md</code> for the coupling and the welfare "
            "measures, and their limits.</p>"
            + _table_html(df, "Per replicate, means with 95 % intervals over replicates; surplus and revenue in "
                              "currency units, a negative surplus loss is a gain. By impulsiveness quintile and "
                              "segment: analysis/impact.csv, analysis/impact_segment.csv."))


def _page(res, figs: list[_Figure], headline_html: str, effects_html: str, notes: list[str]) -> str:
    from fomolab import __version__

    m = res.manifest
    name = m.get("experiment", res.path.name)
    desc = m.get("description") or ""
    toc = "".join(f"<li><a href='#{f.name}'>{_esc(f.title)}</a></li>" for f in figs)
    fig_html = []
    for i, f in enumerate(figs, 1):
        data = base64.b64encode(f.svg).decode("ascii")
        fig_html.append(
            f"<figure id='{f.name}'>"
            f"<a href='figures/{f.name}.svg' title='open the figure full size'>"
            f"<img src='data:image/svg+xml;base64,{data}' alt='Figure {i}: {_esc(f.title)}' loading='eager'></a>"
            f"<figcaption><strong>Figure {i}. {_esc(f.title)}.</strong> {f.caption} "
            f"Files: <a href='figures/{f.name}.png'>PNG</a>, <a href='figures/{f.name}.svg'>SVG</a>."
            f"</figcaption></figure>")
    note_html = ""
    if notes:
        note_html = "<h2>Notes</h2><ul>" + "".join(f"<li class='note'>{_esc(n)}</li>" for n in notes) + "</ul>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="fomolab {_esc(__version__)}">
<link rel="icon" href="data:,">
<title>{_esc(name)}: fomolab report</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header>
<h1>{_esc(name)}</h1>
<p class="lead">{_esc(desc)}</p>
</header>
<nav aria-label="Contents"><ol><li><a href="#methods">Methods</a></li><li><a href="#headline">Headline</a></li>{toc}<li><a href="#provenance">Provenance</a></li></ol></nav>
<h2 id="methods">Methods</h2>
<p>{methods(m)}</p>
<h2 id="headline">Headline</h2>
{headline_html}
{effects_html}
<h2>Figures</h2>
{''.join(fig_html)}
{note_html}
<h2 id="provenance">Provenance</h2>
<p class="note">From <code>manifest.json</code> in the results folder; every run can be reproduced from its seed.</p>
{_provenance(res)}
<footer>Made by <code>fomolab report</code> {_esc(__version__)} from <code>{_esc(res.path)}</code>.</footer>
</main>
</body>
</html>
"""


def _analysis(res, notes: list[str]) -> Any:
    try:
        from fomolab.analysis import analyze
    except ImportError:
        notes.append("fomolab.analysis is not available: the headline shows the per-arm summary.")
        return None
    try:
        return analyze(res)
    except Exception as exc:  # noqa: BLE001 - the report still shows the figures and the summary
        notes.append(f"The analysis failed ({type(exc).__name__}: {exc}); the headline shows the per-arm summary.")
        warnings.warn(f"fomolab report: analysis failed: {exc}", RuntimeWarning, stacklevel=3)
        return None


def report(results: Any, *, out: str | Path | None = None) -> Report:
    """Write the report of a results folder: ``report/index.html`` and ``report/figures/``.

    Parameters
    ----------
    results : Results or path
        A results folder (an experiment or a sweep) with finished runs.
    out : path, optional
        Folder to write instead of ``RESULTS/report``.  It is replaced as a
        whole (built beside it, then renamed into place).

    Returns
    -------
    Report
        The page's path, the figure files and any notes.

    Raises
    ------
    fomolab.ResultsError
        Not a results folder, or no finished runs.
    """
    from fomolab import plot

    res = plot._results(results)
    target = Path(out) if out is not None else res.path / "report"
    notes: list[str] = []
    analysis = _analysis(res, notes)
    sweep = bool(res.manifest.get("swept"))
    if analysis is not None and {"arm", "hazard_ratio", "median_s"} <= set(analysis.headline.columns):
        headline_html = _table_html(_headline_table(analysis.headline, sweep),
                                    "Per arm: viewers and conversion pooled over runs; Kaplan–Meier median time "
                                    "from arrival to first purchase; hazard and odds ratios against the control "
                                    "with 95 % intervals clustered by replicate, p values Holm-adjusted over arms"
                                    + (" and points" if sweep else "") + ".")
    else:
        headline_html = _table_html(_summary_table(res.summary()),
                                    "Per arm: means per run; conversion and median pooled over viewers.")
    effects = None
    effects_html = ""
    if len(plot._arms(res)) > 1:
        if sweep:
            effects = plot.effects(res)
            title = "Effects against the control, pooled over sweep points"
        else:
            arms_tab = getattr(analysis, "arms", None)
            if isinstance(arms_tab, pd.DataFrame) and {"measure", "estimate", "ci_lower", "ci_upper"} <= set(
                    arms_tab.columns):
                effects = arms_tab
            else:
                effects = plot._compare_effects(res)
                if effects is None:
                    effects = plot.effects(res)
            title = "Effects against the control"
        effects_html = f"<h3>{title}</h3>" + _table_html(
            _effects_table(effects), "Estimates with 95 % intervals clustered by replicate; p values raw and "
                                     "adjusted for the number of arms (Holm: family-wise; BH: false discovery).")
        effects = effects[effects.measure.isin(["hazard_ratio", "odds_ratio"])]
    impact = getattr(analysis, "impact", None)
    if isinstance(impact, pd.DataFrame) and not impact.empty and not sweep:
        effects_html += _impact_html(res)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a report is for reading
        (tmp / "figures").mkdir()
        figs: list[_Figure] = []
        written: list[Path] = []
        for spec, draw in _figures(res, analysis, effects, notes):
            fig = draw()
            buf = io.BytesIO()
            fig.savefig(buf, format="svg")
            spec.svg = buf.getvalue()
            (tmp / "figures" / f"{spec.name}.svg").write_bytes(spec.svg)
            fig.savefig(tmp / "figures" / f"{spec.name}.png", format="png", dpi=150)
            written += [target / "figures" / f"{spec.name}.png", target / "figures" / f"{spec.name}.svg"]
            figs.append(spec)
        (tmp / "index.html").write_text(_page(res, figs, headline_html, effects_html, notes), encoding="utf-8")
        (tmp / "report.json").write_text(json.dumps({"figures": [f.name for f in figs], "notes": notes}, indent=1))
        old = None
        if target.exists():
            old = target.parent / f".{target.name}-old-{tmp.name.rsplit('-', 1)[-1]}"
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Report(path=target / "index.html", figures=written, notes=notes)
