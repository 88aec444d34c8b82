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
available), the contrasts the forest plot draws, the figures of
:mod:`fomolab.plot` with captions, and the provenance from the manifest.  It
opens offline in any browser and reads at laptop and phone widths.

The page is rendered from Jinja2 templates (``fomolab/templates/``:
``report.html.j2``, ``methods.html.j2``, ``report.css``); the titles and
captions of figures and tables are data (``captions.toml``), filled with the
analysis' parameters, so a caption's "95 %" or "last 10 %" is the level and
the deadline fraction the analysis used.  Every number on the page and in the
figures comes from the analysis' tables; the report computes no statistic.
The ``report/`` folder is built in a temporary folder beside it and renamed
into place; the run partitions are never touched.
"""

from __future__ import annotations

import base64
import io
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from fomolab import _format as fmt

__all__ = ["Report", "arms_table", "captions", "deadline_test", "methods", "report"]


@dataclass
class _Figure:
    name: str
    title: str
    caption: str
    svg: bytes = b""
    svg_narrow: bytes = b""  # the same figure drawn for phones (fomolab.plot.narrow)


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


# ---------------------------------------------------------------- templates


@cache
def _env():
    from fomolab._optional import require

    require("jinja2", "the report")
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("fomolab", "templates"), autoescape=select_autoescape(["j2", "html"]),
                      undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters.update(num=fmt.fixed, minutes=fmt.minutes, pct=fmt.pct, cell=_cell)
    return env


_INTERVAL = re.compile(r"^(\S+) (\(.+\))$")


def _cell(text: str):
    """A table cell's HTML, the value in ``<span class='v'>``: an estimate and its interval as two
    unbreakable parts with a break allowed between them (``<span class='e'>1.5</span> <span
    class='ci'>(1.2–1.9)</span>``)."""
    from markupsafe import Markup, escape

    m = _INTERVAL.match(str(text))
    if m is None:  # a name may break after its underscores ("honest_<wbr>timer"), not inside a word
        return Markup("<span class='v'>{}</span>").format(Markup(str(escape(text)).replace("_", "_<wbr>")))
    return Markup("<span class='v iv'><span class='e'>{}</span> <span class='ci'>{}</span></span>").format(
        m.group(1), m.group(2))


@cache
def _captions_data() -> dict[str, Any]:
    import tomllib
    from importlib.resources import files

    return tomllib.loads(files("fomolab").joinpath("templates/captions.toml").read_text(encoding="utf-8"))


def captions(**params: Any) -> dict[str, Any]:
    """The titles and captions of ``captions.toml``, filled with ``params``.

    Parameters
    ----------
    **params
        ``level`` ("95 %"), ``last`` ("10 %"), ``horizon`` ("210 s"), ``control``,
        ``replicates``, ``pooled`` and ``sweep`` (see the file's header);
        optionally ``alpha`` ("5 %") and ``deadline_test`` (:func:`deadline_test`,
        default: nothing said).

    Returns
    -------
    dict
        ``{"figures": {id: {"title", "caption"}}, "tables": {...}, "columns": {...}}``
        with markup kept and the values escaped.

    >>> c = captions(level="90 %", last="20 %", horizon="210 s", control="ctl", replicates=3, pooled="",
    ...              sweep=False)
    >>> "90 % pointwise bands" in c["figures"]["time_to_purchase"]["caption"]
    True
    >>> str(c["columns"]["deadline"])
    'purchases in last 20 % of window (expected)'
    """
    from markupsafe import Markup

    env = _env()
    params = {"deadline_test": "", "alpha": "", **params}

    def fill(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        return Markup(env.from_string(str(v)).render(**params))

    return fill(_captions_data())


def _params(res, analysis: Any) -> dict[str, Any]:
    m = res.manifest
    conf_level = getattr(analysis, "conf_level", 0.95)
    last = getattr(analysis, "last", 0.1)
    sweep = bool(m.get("swept"))
    horizon = float(getattr(analysis, "horizon", float("nan")))
    headline = getattr(analysis, "headline", None)
    return dict(level=fmt.level(conf_level), last=fmt.level(last), control=m.get("control", "control"),
                horizon=f"{fmt.fixed(horizon, places=0)} s" if horizon == horizon else "the horizon",
                replicates=m.get("replicates"), pooled=" Pooled over all sweep points." if sweep else "",
                sweep=sweep, alpha=fmt.level(1 - conf_level),
                deadline_test=deadline_test(headline, conf_level, last) if headline is not None else "")


def _names(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def deadline_test(headline: pd.DataFrame, conf_level: float = 0.95, last: float = 0.1) -> str:
    """What the analysis' test of deadline bunching says, in words, for the deadline figure's caption.

    The test (the headline's ``deadline_share``, ``deadline_expected_share``
    and ``deadline_p``: a binomial test of the share of purchases in the last
    ``last`` of each window against the share that exposure predicts) is
    significant at ``1 - conf_level`` or not, arm by arm; an apparent rise in
    the figure that the test does not support is said to be within chance.

    >>> h = pd.DataFrame({"point": [0, 0], "arm": ["sale", "timer"], "deadline_share": [0.104, 0.154],
    ...                   "deadline_expected_share": [0.1, 0.094], "deadline_p": [0.72, 1e-8]})
    >>> text = deadline_test(h)
    >>> "bunching at the 5 % level for timer (15.4 % against 9.4 %, p < 0.001)" in text
    True
    >>> text.endswith("but not for sale (10.4 % against 10.0 %, p = 0.720): there, an apparent rise is within chance.")
    True
    """
    if "deadline_p" not in headline:
        return ""
    h = headline[headline.deadline_p.notna()]
    if h.empty:
        return ""
    alpha = 1 - conf_level
    points = h.point.nunique() if "point" in h else 1
    yes: list[str] = []
    no: list[str] = []
    for arm, g in h.groupby("arm", sort=False):
        sig = g.deadline_p < alpha
        if points > 1:
            (yes if sig.any() else no).append(f"{arm} ({int(sig.sum())} of {len(g)} points)")
            continue
        r = g.iloc[0]
        text = (f"{arm} ({_share(r.deadline_share, 1)} against {_share(r.deadline_expected_share, 1)}, "
                f"p {'< 0.001' if r.deadline_p < 0.001 else '= ' + fmt.p_value(r.deadline_p)})")
        (yes if sig.all() else no).append(text)
    head = (f"The binomial test of the share of purchases in the last {fmt.level(last)} of each window against "
            f"the share expected from exposure")
    at = f"at the {fmt.level(alpha)} level"
    if not yes:
        return (f"{head} finds no significant bunching {at} for {_names(no)}: the apparent rise towards the "
                "deadline is within chance.")
    if not no:
        return f"{head} finds bunching {at} for {_names(yes)}."
    return f"{head} finds bunching {at} for {_names(yes)}, but not for {_names(no)}: there, an apparent rise is " \
           "within chance."


def methods(manifest: dict[str, Any], completeness: Any | None = None) -> str:
    """The methods paragraph (HTML) written from a manifest's spec.

    ``completeness`` (a results folder's :attr:`~fomolab.results.Results.completeness`)
    makes a half-finished folder say so: "5 of 10 replicates finished".

    >>> m = {"spec": {"experiment": {"seed": 3, "replicates": 2, "control": "a"},
    ...      "stream": {"duration_s": 600.0, "arrivals": {"rate_per_s": 1.0}},
    ...      "lineup": {"tea": {"price": 4.0}}, "population": {"segments": {"all": {"share": 1.0}}},
    ...      "arms": {"a": {}}}, "runs": 2, "fomolab_version": "0.1.0"}
    >>> "10 min" in methods(m) and "tea" in methods(m)
    True
    """
    spec = manifest.get("spec", {})
    exp = spec.get("experiment", {})
    configured = _tactic_parameters(spec)
    products = []
    for name, p in spec.get("lineup", {}).items():
        bits = [f"price {fmt.fixed(p.get('price'))}"]
        if p.get("base_rate_per_s") is not None:
            bits.append(f"base purchase rate {fmt.fixed(p['base_rate_per_s'])}/s")
        bits.append(f"stock {p['stock']}" if p.get("stock") is not None else "unlimited stock")
        if p.get("slot_s"):
            bits.append(f"on show {fmt.minutes(p['slot_s'][0])}–{fmt.minutes(p['slot_s'][1])}")
        tactics = []
        for t, cfg in (p.get("tactics") or {}).items():
            params = configured.get(f"{name}.{t}", cfg)
            tactics.append(_tactic_label(t) + " (" + ", ".join(
                f"{k} {_value(v)}" for k, v in params.items() if v is not None) + ")")
        if tactics:
            bits.append("tactics: " + "; ".join(tactics))
        products.append({"name": name, "bits": bits})
    pop = spec.get("population", {})
    control = exp.get("control", manifest.get("control", "control"))
    arms = [{"name": a, "control": a == control} for a in spec.get("arms", {})]
    sweep = spec.get("sweep")
    sweep_ctx = None
    if sweep:
        swept = manifest.get("swept") or list(sweep.get("parameters", {}))
        values = {k: sorted({p.get("values", {}).get(k) for p in manifest.get("points") or []} - {None},
                            key=lambda v: (isinstance(v, str), v)) for k in swept}
        sweep_ctx = {"design": sweep.get("design", "grid"), "swept": swept,
                     "values": {k: (", ".join(_value(v) for v in vs) if len(vs) <= 12
                                    else f"{len(vs)} values from {_value(vs[0])} to {_value(vs[-1])}")
                                for k, vs in values.items()},
                     "points": len(manifest.get("points") or [])}
    stream = spec.get("stream", {})
    html = _env().get_template("methods.html.j2").render(
        duration_s=stream.get("duration_s", 0), schedule=stream.get("arrivals", {}).get("schedule"),
        rate_per_s=stream.get("arrivals", {}).get("rate_per_s"),
        products=products, segments=[(k, v.get("share", 0)) for k, v in pop.get("segments", {}).items()],
        profile=pop.get("profile"), arms=arms, sweep=sweep_ctx, market=_flat(spec.get("market")),
        replicates=exp.get("replicates", manifest.get("replicates")), runs=manifest.get("runs", "?"),
        seed=exp.get("seed", manifest.get("master_seed")), version=manifest.get("fomolab_version", "?"),
        unfinished=None if completeness is None or completeness.complete else completeness.describe())
    return " ".join(html.split())


# ------------------------------------------------------------------- design


def _value(v: Any) -> str:
    """A spec value as written in the methods: numbers fixed-point, booleans and strings as in TOML."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return fmt.fixed(v, 6)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return str(v)


def _flat(table: Any, prefix: str = "") -> str:
    """A spec table as ``key value`` pairs, nested tables dotted: ``streams 1, choice.appeal_weight 1``."""
    if not isinstance(table, dict):
        return ""
    parts = []
    for k, v in table.items():
        if isinstance(v, dict):
            parts.append(_flat(v, f"{prefix}{k}."))
        elif v is not None:
            parts.append(f"{prefix}{k} {_value(v)}")
    return ", ".join(p for p in parts if p)


def _tactic_label(kind: str) -> str:
    from fomolab.figure_data import tactic_label

    return tactic_label(kind)


def _resolved_sets(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each arm's ``set`` overrides with its bases' (the arm's own win), as the spec resolves them."""
    arms = spec.get("arms", {})
    out: dict[str, dict[str, Any]] = {}

    def resolve(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        if name in out:
            return out[name]
        cfg = arms.get(name) or {}
        base = cfg.get("base")
        inherited = resolve(base, (*seen, name)) if isinstance(base, str) and base in arms and base not in seen else {}
        out[name] = {**inherited, **(cfg.get("set") or {})}
        return out[name]

    for name in arms:
        resolve(name)
    return out


def _resolved_arms(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The arms of the spec's first point resolved (tactics on, defaults filled); None if the spec does not parse."""
    try:
        from fomolab.spec.parse import parse_spec

        exp = parse_spec(spec, resolve=False)
    except Exception:  # an older folder's spec: the methods fall back to the spec as written
        return None
    return dict(exp.points[0].arms) if exp.points else None


def _tactic_parameters(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every configured tactic's parameters, defaults included, as an arm that does not override them runs it.

    Keyed ``PRODUCT.KIND``; a parameter every arm with the tactic overrides keeps the lineup's value.
    """
    arms = _resolved_arms(spec)
    if arms is None:
        return {}
    sets = _resolved_sets(spec)
    out: dict[str, dict[str, Any]] = {}
    for product, cfg in spec.get("lineup", {}).items():
        for kind, written in (cfg.get("tactics") or {}).items():
            params: dict[str, Any] = {}
            for name, arm in arms.items():
                t = arm.scenario.lineup[product].tactics
                values = getattr(t, kind, None) if not isinstance(t, dict) else t.get(kind)
                if values is None:
                    continue
                values = values.model_dump() if hasattr(values, "model_dump") else dict(values)
                for k, v in values.items():
                    if f"lineup.{product}.tactics.{kind}.{k}" not in sets.get(name, {}):
                        params.setdefault(k, v)
            for k, v in (written or {}).items():
                params.setdefault(k, v)
            out[f"{product}.{kind}"] = params
    return out


def _override(path: str) -> str:
    """An override's path as the arms table shows it: ``lineup.skincare.tactics.countdown_timer.resets`` ->
    ``skincare countdown_timer.resets``."""
    parts = path.split(".")
    if parts[0] == "lineup" and len(parts) > 2:
        rest = [p for p in parts[2:] if p != "tactics"]
        return f"{parts[1]} " + ".".join(rest)
    return path


def arms_table(manifest: dict[str, Any]) -> pd.DataFrame:
    """The arms as the methods describe them: what each switches on and every parameter it sets.

    Columns ``arm``, ``tactics`` (the tactics on, resolved through ``base``
    and ``remove``), ``parameters set`` (its ``set`` overrides with its
    bases', as ``product tactic.parameter = value``; the other parameters
    are the lineup's, listed in the methods paragraph) and ``description``.
    """
    spec = manifest.get("spec", {})
    control = spec.get("experiment", {}).get("control", manifest.get("control"))
    arms = _resolved_arms(spec) or {}
    sets = _resolved_sets(spec)
    one = len(spec.get("lineup", {})) == 1  # one product: no need to name it

    def tactic(t: str) -> str:
        product, kind = t.split(".", 1)
        return _tactic_label(kind) if one else f"{product} {_tactic_label(kind)}"

    def acts(path: str, on: tuple[str, ...] | None) -> bool:  # an override of a tactic switched off does nothing
        parts = path.split(".")
        return on is None or not (parts[0] == "lineup" and len(parts) > 3 and parts[2] == "tactics"
                                  and f"{parts[1]}.{parts[3]}" not in on)

    rows = []
    for name, cfg in spec.get("arms", {}).items():
        arm = arms.get(name)
        on = arm.tactics if arm is not None else None
        tactics = [tactic(t) for t in on] if on is not None else list(cfg.get("tactics", []))
        over = [f"{_override(k).split(' ', 1)[1] if one and k.startswith('lineup.') else _override(k)} = {_value(v)}"
                for k, v in sets.get(name, {}).items() if acts(k, on)]
        rows.append({"arm": name + (" (control)" if name == control else ""),
                     "tactics": "; ".join(tactics) or "none",
                     "parameters set": "; ".join(over) or "none",
                     "description": (cfg.get("description") or "").rstrip(".")})
    return pd.DataFrame(rows, columns=["arm", "tactics", "parameters set", "description"])


# ------------------------------------------------------------------- tables


_NUMERIC = re.compile(r"^[-+<–\u2212]?\s?[0-9.]")


def _table(df: pd.DataFrame, caption: str = "", title: str = "", max_rows: int = 40) -> dict[str, Any]:
    """A table for the template: columns, rows of ``(text, numeric)`` cells, caption.

    A cell ``"1.5 (1.2–1.9)"`` keeps its estimate and its interval each on
    one line but may break between them, so narrow screens fold wide tables.
    """
    more = len(df) if len(df) > max_rows else 0
    df = df.head(max_rows)
    rows = [[(str(v), bool(_NUMERIC.match(str(v))) or str(v) == fmt.MISSING) for v in row]
            for row in df.itertuples(index=False)]
    return {"columns": [str(c) for c in df.columns], "rows": rows, "caption": caption, "title": title,
            "more": more}


def _cis(est: pd.Series, lo: pd.Series, hi: pd.Series, digits: int = 3) -> list[str]:
    """Estimates with their intervals, row by row (:func:`fomolab._format.estimate`)."""
    return [fmt.estimate(a, b, c, digits) for a, b, c in zip(est, lo, hi, strict=True)]


def _share(v: Any, digits: int = 2) -> str:
    """A fraction as a percentage with ``digits`` decimals: 0.1174 -> '11.74 %'."""
    return fmt.MISSING if pd.isna(v) else f"{fmt.fixed(100 * float(v), places=digits)} %"


def _point_columns(points: pd.Series, manifest: dict[str, Any]) -> pd.DataFrame:
    """The swept parameters' values at each row's point, one column per parameter (named as in the figures)."""
    from fomolab.plot.sweep import param_label

    values = {int(p["point"]): p.get("values", {}) for p in manifest.get("points") or []}
    swept = list(manifest.get("swept") or [])
    cols = {}
    for path in swept:
        cols[param_label(path)] = [fmt.fixed(values.get(int(n), {}).get(path, float("nan")), 4)
                                   if not isinstance(values.get(int(n), {}).get(path), str)
                                   else values[int(n)][path] for n in points]
    if not cols:
        cols["point"] = [str(int(n)) for n in points]
    return pd.DataFrame(cols, index=points.index)


def _headline_table(headline: pd.DataFrame, sweep: bool, cols: dict[str, str],
                    manifest: dict[str, Any] | None = None, part: str = "all") -> pd.DataFrame:
    """The headline for the page: ``part`` "horizon" (buying within the horizon), "visit" (the whole visit:
    conversion, median, hazard and odds ratios, deadline share) or "all"."""
    h = headline
    out = pd.DataFrame({"arm": h.arm.astype(str)})
    if sweep and "point" in h:
        for j, (name, col) in enumerate(_point_columns(h.point, manifest or {}).items()):
            out.insert(j, name, col)
    if part in ("horizon", "all"):
        if part == "all":
            out["runs"] = h.runs.map(lambda v: f"{int(v)}")
        out["viewers"] = h.viewers.map(lambda v: fmt.fixed(v, places=0))
        out[cols["cuminc"]] = _cis(100 * h.cuminc, 100 * h.cuminc_ci_lower, 100 * h.cuminc_ci_upper)
        out[cols["cuminc_diff"]] = _cis(100 * h.cuminc_diff, 100 * h.cuminc_diff_ci_lower,
                                        100 * h.cuminc_diff_ci_upper)
        out["p "] = h.cuminc_diff_p.map(fmt.p_value)
        out[cols["rmst"]] = _cis(h.rmst_s, h.rmst_ci_lower, h.rmst_ci_upper, 4)
        out[cols["rmst_diff"]] = _cis(h.rmst_diff_s, h.rmst_diff_ci_lower, h.rmst_diff_ci_upper)
        out["p  "] = h.rmst_diff_p.map(fmt.p_value)
    if part in ("visit", "all"):
        if part == "visit":
            out["runs"] = h.runs.map(lambda v: f"{int(v)}")
        out["conversion"] = h.conversion.map(_share)
        out[cols["median"]] = [fmt.MISSING if pd.isna(m) else c for m, c in zip(
            h.median_s, _cis(h.median_s, h.median_ci_lower, h.median_ci_upper), strict=True)]
        out[cols["hazard_ratio"]] = _cis(h.hazard_ratio, h.hr_ci_lower, h.hr_ci_upper)
        out["p (Holm)"] = h.hr_p_holm.map(fmt.p_value)
        out[cols["odds_ratio"]] = _cis(h.odds_ratio, h.or_ci_lower, h.or_ci_upper)
        out["p (Holm) "] = h.or_p_holm.map(fmt.p_value)
        if "deadline_share" in h and h.deadline_share.notna().any():
            out[cols["deadline"]] = [
                fmt.MISSING if pd.isna(s) else f"{_share(s, 1)} ({_share(e, 1)})"
                for s, e in zip(h.deadline_share, h.deadline_expected_share, strict=False)]
            if "deadline_p" in h:
                out["p   "] = h.deadline_p.map(fmt.p_value)
    return out


def _summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    s = summary
    return pd.DataFrame({
        "arm": [str(a) for a in s.index], "runs": s.runs.map(lambda v: f"{int(v)}"),
        "viewers per run": s.viewers_per_run.map(lambda v: fmt.fixed(v, places=1)),
        "buyers per run": s.buyers_per_run.map(lambda v: fmt.fixed(v, places=1)),
        "conversion": s.conversion.map(_share),
        "median time to purchase (s)": s.median_time_to_purchase_s.map(lambda v: fmt.fixed(v, 4)),
        "units per run": s.units_per_run.map(lambda v: fmt.fixed(v, places=1)),
        "revenue per run": s.revenue_per_run.map(lambda v: fmt.fixed(v, places=2)),
    })


def _effects_table(effects: pd.DataFrame, cols: dict[str, str], manifest: dict[str, Any] | None = None
                   ) -> pd.DataFrame:
    names = {"hazard_ratio": "hazard ratio", "odds_ratio": "odds ratio", "risk_difference": "risk difference",
             "median_shift_s": "median shift (s)"}
    e = effects[effects.estimate.notna()]
    out = pd.DataFrame({
        "arm": e.arm.astype(str), "measure": e.measure.map(lambda m: names.get(m, m)),
        cols["estimate"]: _cis(e.estimate, e.ci_lower, e.ci_upper, 4),
        "p": e.p.map(fmt.p_value),
    })
    if "p_holm" in e:
        out["p (Holm)"] = e.p_holm.map(fmt.p_value)
    if "p_bh" in e:
        out["p (BH)"] = e.p_bh.map(fmt.p_value)
    if "point" in e and e.point.nunique() > 1:
        for j, (name, col) in enumerate(_point_columns(e.point, manifest or {}).items()):
            out.insert(j, name, col)
    return out


#: Consumer impact measures shown on the page, in two tables: measure -> (column, significant digits).
#: The first are differences of per-replicate totals (coupling-free); the second pair each viewer with
#: themselves in the control, so they are properties of the engine's coupling of the arms.
_IMPACT = {"regretted_added": ("regretted purchases added", 3),
           "consumer_surplus_lost": ("consumer surplus lost", 3),
           "surplus_lost_to_regret_added": ("surplus lost to regret added", 3),
           "seller_revenue_gained": ("seller revenue gained", 3)}
_IMPACT_COUPLED = {"induced_purchases": ("induced purchases", 3), "accelerated_purchases": ("accelerated", 3),
                   "seconds_gained_by_seller": ("seconds gained by the seller", 3)}


def _impact_table(total: pd.DataFrame, arms: list[str], measures: dict[str, tuple[str, int]] = _IMPACT
                  ) -> pd.DataFrame:
    rows = []
    for arm in [a for a in arms if a in set(total.arm.astype(str))]:
        g = total[total.arm.astype(str) == arm].set_index("measure")
        rows.append({"arm": arm, **{label: fmt.estimate(g.loc[m, "mean"], g.loc[m, "ci_lower"], g.loc[m, "ci_upper"],
                                                        d)
                                    for m, (label, d) in measures.items() if m in g.index}})
    return pd.DataFrame(rows)


def _provenance(res) -> list[tuple[str, Any]]:
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
    return rows


# ------------------------------------------------------------------ figures


def _figures(res, analysis: Any, effects: pd.DataFrame | None, notes: list[str]
             ) -> list[tuple[_Figure, Callable[[], Any]]]:
    """The figures to draw, in page order, each with its caption and the call that draws it."""
    from fomolab import plot

    if analysis is None:
        notes.append("No figures: they draw the analysis, which is not available.")
        return []
    cap = captions(**_params(res, analysis))["figures"]
    a = analysis
    todo: list[tuple[str, Callable[[], Any]]] = []
    if a.sweep:
        todo.append(("sweep_metrics", lambda: plot.sweep_metrics(a)))
        if a.marginals is not None and "hhi_viewers" in set(a.marginals.metric):
            todo.append(("marketplace", lambda: plot.sweep_metrics(
                a, metrics=("viewers_per_stream", "hhi_viewers", "top1_share_viewers"))))
        if a.cells is not None and not a.cells.empty:
            todo.append(("sweep_heatmap", lambda: plot.sweep_heatmap(a)))
        if a.sweep_design == "saltelli" and a.sobol is not None:
            todo.append(("sobol", lambda: plot.sobol_indices(a)))
    todo.append(("purchase_rate", lambda: plot.purchase_rate(a)))
    if a.incidence is not None and not a.incidence.empty:
        todo.append(("purchase_incidence", lambda: plot.purchase_incidence(a)))
    todo.append(("time_to_purchase", lambda: plot.time_to_purchase(a)))
    if a.repeat is not None and not a.repeat.empty:
        todo.append(("repeat_purchases", lambda: plot.repeat_purchases(a)))
    if effects is not None and not effects.empty:
        todo.append(("forest", lambda: plot.forest(a, table=effects)))
    todo.append(("deadline", lambda: plot.deadline(a)))
    if a.impact is not None and not a.impact.empty and not a.sweep:
        todo.append(("harm", lambda: plot.harm(a)))
    todo.append(("impulsiveness", lambda: plot.impulsiveness(a)))
    if a.lineup is not None and not a.lineup.empty:
        todo.append(("lineup", lambda: plot.lineup(a)))
    return [(_Figure(name, str(cap[name]["title"]), cap[name]["caption"]), draw) for name, draw in todo]


# --------------------------------------------------------------------- page


def _page(res, figs: list[_Figure], headline_html: Any, effects_html: Any, notes: list[str]) -> str:
    """The page (HTML) from ``report.html.j2``: ``headline_html`` and ``effects_html`` are template tables."""
    from fomolab import __version__

    m = res.manifest
    return _env().get_template("report.html.j2").render(
        version=__version__, name=m.get("experiment", res.path.name), description=m.get("description") or "",
        methods=_markup(methods(m, res.completeness)), arms=_table(arms_table(m), max_rows=200),
        headline=headline_html, effects=effects_html.get("effects"),
        impact=effects_html.get("impact"), sections=effects_html.get("sections", []),
        figures=[{"name": f.name, "title": f.title, "caption": f.caption,
                  "data": base64.b64encode(f.svg).decode("ascii"),
                  "narrow": base64.b64encode(f.svg_narrow).decode("ascii")} for f in figs],
        notes=notes, provenance=_provenance(res), path=str(res.path))


def _markup(html: str):
    from markupsafe import Markup

    return Markup(html)


def _analysis(res, notes: list[str]) -> Any:
    try:
        from fomolab.analysis import analyze
    except ImportError:
        notes.append("fomolab.analysis is not available: the headline shows the per-arm summary.")
        return None
    try:
        return analyze(res)
    except Exception as exc:
        notes.append(f"The analysis failed ({type(exc).__name__}: {exc}); the headline shows the per-arm summary.")
        warnings.warn(f"fomolab report: analysis failed: {exc}", RuntimeWarning, stacklevel=3)
        return None


def report(results: Any, *, out: str | Path | None = None, analysis: Any = None) -> Report:
    """Write the report of a results folder: ``report/index.html`` and ``report/figures/``.

    Parameters
    ----------
    results : Results or path
        A results folder (an experiment or a sweep) with finished runs.
    out : path, optional
        Folder to write instead of ``RESULTS/report``.  It is replaced as a
        whole (built beside it, then renamed into place) if an earlier report
        wrote it; a results folder, a folder containing the results, or a
        non-empty folder ``report`` did not write is refused.
    analysis : fomolab.analysis.Analysis, optional
        The analysis to show (default: :func:`fomolab.analysis.analyze` of
        the folder with its defaults).  Its ``conf_level`` and ``last`` fill
        the captions.

    Returns
    -------
    Report
        The page's path, the figure files and any notes.

    Raises
    ------
    fomolab.ResultsError
        Not a results folder, no finished runs, or a target ``out`` that
        :func:`fomolab.outputs.check_target` refuses (nothing is then written).
    """
    from fomolab.outputs import check_target, write_output
    from fomolab.plot.effects import effects_table
    from fomolab.stats import _folder

    res = _folder.as_results(results)
    _folder.nonempty_runs(res)
    target = check_target(Path(out) if out is not None else res.path / "report", "report", res.path)
    notes: list[str] = []
    if analysis is None:
        analysis = _analysis(res, notes)
    sweep = bool(res.manifest.get("swept"))
    text = captions(**_params(res, analysis))
    cols = text["columns"]
    m = res.manifest
    if analysis is not None:
        tabs = text["tables"]
        headline_html = [
            _table(_headline_table(analysis.headline, sweep, cols, m, "horizon"), tabs["headline"]["caption"],
                   title=tabs["headline_horizon"]["title"]),
            _table(_headline_table(analysis.headline, sweep, cols, m, "visit"), "",
                   title=tabs["headline_visit"]["title"])]
    else:
        headline_html = [_table(_summary_table(res.summary()), text["tables"]["summary"]["caption"])]
    effects = None
    effects_html: dict[str, Any] = {}
    if analysis is not None and len(analysis.arm_order) > 1:
        effects = effects_table(analysis)
        shown = analysis.pooled if analysis.pooled is not None else analysis.arms
        effects_html["effects"] = _table(_effects_table(shown, cols, m), text["tables"]["effects"]["caption"],
                                         title=text["tables"]["effects"]["title"])
    impact_total = getattr(analysis, "impact_total", None)
    if impact_total is not None and not impact_total.empty and not sweep:
        tabs = text["tables"]
        effects_html["impact"] = [
            _table(_impact_table(impact_total, analysis.arm_order), title=tabs["impact"]["title"]),
            _table(_impact_table(impact_total, analysis.arm_order, _IMPACT_COUPLED), tabs["impact"]["caption"],
                   title=tabs["impact_coupled"]["title"])]

    if analysis is not None and len(analysis.arm_order) > 1:
        effects_html["sections"] = effect_sections(analysis, sweep)

    figs: list[_Figure] = []
    written: list[Path] = []

    def fill(tmp: Path) -> None:
        (tmp / "figures").mkdir()
        from fomolab.plot import narrow

        for spec, draw in _figures(res, analysis, effects, notes):
            with narrow():
                buf = io.BytesIO()
                draw().savefig(buf, format="svg")
                spec.svg_narrow = buf.getvalue()
            fig = draw()
            buf = io.BytesIO()
            fig.savefig(buf, format="svg")
            spec.svg = buf.getvalue()
            (tmp / "figures" / f"{spec.name}.svg").write_bytes(spec.svg)
            fig.savefig(tmp / "figures" / f"{spec.name}.png", format="png", dpi=150)
            written.extend([target / "figures" / f"{spec.name}.png", target / "figures" / f"{spec.name}.svg"])
            figs.append(spec)
        (tmp / "index.html").write_text(_page(res, figs, headline_html, effects_html, notes), encoding="utf-8")
        (tmp / "report.json").write_text(json.dumps({"figures": [f.name for f in figs], "notes": notes}, indent=1))

    write_output(target, "report", res.path, fill)
    return Report(path=target / "index.html", figures=written, notes=notes)


# ------------------------------------------------- effect sections of the page


def _pct(level: float) -> str:
    return f"{100 * level:g} %"


def _changes_section(ch: pd.DataFrame, sweep: bool, level: float) -> pd.DataFrame:
    labels = {"buyers": ("buyers per run", 1.0, 4), "purchases": ("purchases per run", 1.0, 4),
              "revenue": ("revenue per run", 1.0, 4), "conversion": ("conversion, pp", 100.0, 3),
              "spend_per_viewer": ("spend per viewer", 1.0, 3)}
    rows = []
    for key, g in ch.groupby(["point", "arm"], sort=False):
        g = g.set_index("measure")
        row = {"point": str(key[0])} if sweep else {}
        row["arm"] = str(key[1])
        for m, (label, k, d) in labels.items():
            if m in g.index:
                row[f"{label} ({_pct(level)} CI)"] = fmt.estimate(k * g.loc[m, "change"], k * g.loc[m, "ci_lower"],
                                                                  k * g.loc[m, "ci_upper"], d)
        rows.append(row)
    return pd.DataFrame(rows)


def _for_whom_section(fw: pd.DataFrame, sweep: bool, level: float) -> pd.DataFrame:
    out = pd.DataFrame({"arm": fw.arm.astype(str), "by": fw.by.astype(str), "group": fw.group.astype(str),
                        "viewers": fw.viewers.map(lambda v: f"{int(v):,}"),
                        "control, %": (100 * fw.cuminc_control).map(lambda v: fmt.num(v, 3)),
                        "arm, %": (100 * fw.cuminc).map(lambda v: fmt.num(v, 3)),
                        f"difference, pp ({_pct(level)} CI)": _cis(100 * fw.cuminc_diff, 100 * fw.cuminc_diff_ci_lower,
                                                                   100 * fw.cuminc_diff_ci_upper),
                        "p": fw.cuminc_diff_p.map(fmt.p_value),
                        "equal effects across groups, p": fw.interaction_p.map(fmt.p_value)})
    if sweep:
        out.insert(0, "point", fw.point.astype(int).astype(str))
    return out


def _rates_section(rt: pd.DataFrame, sweep: bool, level: float) -> pd.DataFrame:
    out = pd.DataFrame({"product": rt["product"].astype(str), "model": rt.model.astype(str),
                        "arm or tactic": rt.term.astype(str),
                        f"rate ratio ({_pct(level)} CI)": _cis(rt.rate_ratio, rt.ci_lower, rt.ci_upper, 4),
                        "p": rt.p.map(fmt.p_value), "purchases": rt.events.map(lambda v: f"{int(v):,}")})
    if sweep:
        out.insert(0, "point", rt.point.astype(int).astype(str))
    return out


def _ph_section(ph: pd.DataFrame, sweep: bool) -> pd.DataFrame:
    ph = ph[ph["transform"] == "km"]
    out = pd.DataFrame({"time scale": ph.time_scale.map({"since_arrival": "time since arrival",
                                                         "stream": "stream clock"}),
                        "arm": ph.term.astype(str), "hazard ratio": ph.hazard_ratio.map(lambda v: fmt.num(v, 4)),
                        "chi-square": ph.chisq.map(lambda v: fmt.num(v, 4)), "df": ph.df.map(str),
                        "p": ph.p.map(fmt.p_value),
                        "proportional": ph.proportional.map(lambda v: "yes" if v else "no")})
    if sweep:
        out.insert(0, "point", ph.point.astype(int).astype(str))
    return out


def _windows_section(hw: pd.DataFrame, sweep: bool, level: float) -> pd.DataFrame:
    out = pd.DataFrame({"arm": hw.arm.astype(str),
                        "stream time": [f"{a:,.0f}–{b:,.0f} s" for a, b in zip(hw.start_s, hw.end_s, strict=True)],
                        f"hazard ratio ({_pct(level)} CI)": _cis(hw.hazard_ratio, hw.ci_lower, hw.ci_upper, 4),
                        "p": hw.p.map(fmt.p_value), "first purchases": hw.events.map(lambda v: f"{int(v):,}"),
                        "in the control": hw.control_events.map(lambda v: f"{int(v):,}")})
    if sweep:
        out.insert(0, "point", hw.point.astype(int).astype(str))
    return out


def effect_sections(analysis: Any, sweep: bool) -> list[dict[str, Any]]:
    """The page's sections on what each arm changes, for whom, per product and over the stream.

    Each is ``{"id", "title", "intro", "table"}`` built from the analysis
    tables ``changes``, ``for_whom``, ``rates``, ``ph`` and ``hr_windows``
    (``hr_windows`` only where a test on the stream clock rejects
    proportional hazards); nothing is computed here.
    """
    level = float(getattr(analysis, "conf_level", 0.95))
    per = (f"estimated within each replicate (the arms of a replicate show the same viewers) with {_pct(level)} "
           "t intervals over the replicates")
    out: list[dict[str, Any]] = []

    def add(ident: str, title: str, intro: str, df: pd.DataFrame | None) -> None:
        if df is not None and len(df):
            out.append({"id": ident, "title": title, "intro": intro, "table": _table(df)})

    ch = getattr(analysis, "changes", None)
    if ch is not None and len(ch):
        add("changes", "What each arm changes",
            f"Each treatment arm against the control: the change in buyers, purchases and revenue per run, in "
            f"conversion and in spend per viewer, {per}. These compare the two arms' outcomes as a whole, so they "
            "do not depend on how the model couples a viewer's outcomes across arms; the change in conversion is "
            "the net share of viewers induced to buy. Per-viewer labels such as <em>accelerated</em> and "
            "<em>seconds gained by the seller</em> (consumer impact) do depend on it: they are properties of the "
            "model's coupling (docs/MODEL.md). All measures: analysis/changes.csv.",
            _changes_section(ch, sweep, level))
    fw = getattr(analysis, "for_whom", None)
    if fw is not None and len(fw):
        h = float(fw.horizon_s.iloc[0])
        add("for_whom", "For whom",
            f"The share who buy within {h:,.0f} s of arriving, by segment and by impulsiveness quintile (Q1 least "
            f"impulsive), in the control and in the arm; the difference is {per}. The last column tests whether "
            "the effect is the same in every group of the grouping (repeated-measures F test over replicates).",
            _for_whom_section(fw, sweep, level))
    rt = getattr(analysis, "rates", None)
    if rt is not None and len(rt):
        add("rates", "Purchases per product",
            "Every purchase counts, not only the first: an Andersen–Gill model of each product's purchases while it "
            "is on show, by arm (each against the control) and, where the arms' tactics allow, by tactic (each "
            f"tactic's multiplier with the others held fixed); {per}.", _rates_section(rt, sweep, level))
    ph = getattr(analysis, "ph", None)
    if ph is not None and len(ph) and ph.p.notna().any():
        add("ph", "Is the hazard ratio constant?",
            "Score tests of proportional hazards (R's cox.zph, Kaplan–Meier time transform; analysis/ph.csv has the "
            "others) for each arm's cause-specific hazard ratio, on the time since arrival and on the stream's "
            "clock. With every viewer of every replicate the test detects small departures: read it with the "
            "hazard ratios by window below.", _ph_section(ph, sweep))
        hw = getattr(analysis, "hr_windows", None)
        failed = ph[(ph.time_scale == "stream") & ~ph.proportional.astype(bool)]
        if hw is not None and len(hw) and len(failed):
            add("hr_windows", "Hazard ratio over the stream",
                "Proportional hazards fail on the stream's clock, so one hazard ratio averages unlike effects. "
                f"Here each arm's hazard ratio of buying in each window of stream time between the tactics' window "
                f"edges, {per}.", _windows_section(hw, sweep, level))
    return out
