"""The calibration step as ``fomolab fit`` runs it: read, fit, check, write.

The method is chosen per fit: maximum likelihood (:mod:`fomolab.fit.estimate`)
for visit-level data when the arm's visit-level likelihood is tractable, else
the simulated method of moments (:mod:`fomolab.fit.smm`): for per-minute
(aggregate) data, and for visit-level data of an arm whose likelihood is not
tractable (summarised per minute).  ``estimates.csv`` (``method``) and the
report say which.

``OUT`` receives ``estimates.csv``, ``fitted.toml``, ``checks.csv``,
``check_families.csv``, ``figures/check_*.png`` and ``report.md``, written
in a temporary folder first and moved into place at the end, so a failed
fit writes nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fomolab.errors import ResultsError

__all__ = ["Fit", "fit", "data_form"]

#: Parameter draws written as sweep points of fitted.toml.
DRAWS = 20
#: Simulated datasets of the predictive checks.
SIMULATIONS = 99


@dataclass
class Fit:
    """What :func:`fit` made: the estimates, the checks, and where they were written."""

    result: Any
    checks: Any
    out: Path

    def __repr__(self) -> str:
        return f"Fit({self.result!r}, checks passed={self.checks.passed}, out={str(self.out)!r})"


def fit(spec: str | Path, data: str | Path, arm: str, params: list[str], out: str | Path | None = None, *,
        draws: int = DRAWS, simulations: int = SIMULATIONS, seed: int | None = None,
        smm_simulations: int | None = None) -> Fit:
    """Fit spec parameters to field data, check the fit, and write the outputs.

    Parameters
    ----------
    spec : path
        The stream's design and the starting values.
    data : path
        Folder with ``visits`` and ``purchases``, or with ``minutes`` (per-minute
        viewers and sales), as CSV or Parquet (``docs/schema.md``).
    arm : str
        The arm whose tactics were on in the field.
    params : list of str
        ``PATH`` or ``PATH=LOW:HIGH`` of each parameter to estimate.
    out : path, optional
        Output folder (default ``results/<name>_fit``); it must not hold files yet.
    draws : int
        Parameter draws written as sweep points of ``fitted.toml``.
    simulations : int
        Datasets simulated for the predictive checks.
    seed : int, optional
        Seed of the draws (default: the spec's).
    smm_simulations : int, optional
        Datasets per evaluation of the simulated method of moments
        (default :data:`fomolab.fit.smm.SIMULATIONS`).

    Raises
    ------
    SpecError, DataError
        Bad spec, data or parameters (nothing is written).
    """
    import pandas as pd

    from fomolab.fit.checks import aggregate_checks, predictive_checks
    from fomolab.fit.counterfactual import check_overrides, fitted_spec, to_toml
    from fomolab.fit.data import read_field_data
    from fomolab.fit.estimate import arm_scenario_raw, fit_mle, parse_parameter
    from fomolab.fit.likelihood import untractable
    from fomolab.fit.smm import aggregate_of_visits, fit_smm, read_aggregate_data
    from fomolab.spec import load_experiment, parse_spec

    exp = load_experiment(spec)
    out = Path(out) if out is not None else Path("results") / f"{exp.name}_fit"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ResultsError(f"{out}: already exists and is not empty (fit results are never overwritten; "
                           "give another --out or remove it)")
    parsed = [parse_parameter(p) for p in params]
    raw = arm_scenario_raw(exp, arm)
    sc = exp.arms[arm].scenario
    T = sc.stream.duration_s
    form = data_form(data)
    check_overrides(exp.spec, arm, parsed)
    fd = agg = None
    smm: dict[str, Any] = {} if smm_simulations is None else {"simulations": smm_simulations}
    if form == "aggregate":
        agg = read_aggregate_data(_table(data, "minutes"), duration_s=T)
        why = "the data are viewers and sales per minute (no visit-level likelihood)"
        result = fit_smm(exp.spec, arm, raw, parsed, agg, **smm)
    else:
        fd = read_field_data(data, products=list(sc.lineup), duration_s=T,
                             slots={k: p.slot(T) for k, p in sc.lineup.items()})
        reasons = untractable(sc)
        if reasons:
            why = "the visit-level likelihood is not tractable for this arm: " + "; ".join(reasons)
            visits = pd.DataFrame({"arrival_s": fd.arrival_s, "departure_s": fd.departure_s})
            agg = aggregate_of_visits(visits, pd.DataFrame({"time_s": fd.purchase_time_s}), T, fd.source)
            result = fit_smm(exp.spec, arm, raw, parsed, agg, n_visits=fd.n_visits, **smm)
        else:
            why = "visit-level data and a tractable visit-level likelihood"
            result = fit_mle(raw, parsed, fd, bias_correction=True)
    fitted = fitted_spec(exp.spec, arm, result, draws=draws, seed=exp.seed if seed is None else seed)
    point = {k: v for k, v in fitted.items() if k != "sweep"}
    fitted_exp = parse_spec(point, source=str(out / "fitted.toml"), resolve=False)
    parse_spec(fitted, source=str(out / "fitted.toml"), resolve=False)  # the draws validate too

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if fd is not None:
            visits = pd.DataFrame({"visit_id": fd.visit_id, "arrival_s": fd.arrival_s,
                                   "departure_s": fd.departure_s})
            purchases = pd.DataFrame({"visit_id": fd.visit_id[fd.purchase_visit], "product": fd.purchase_product,
                                      "time_s": fd.purchase_time_s})
            checks = predictive_checks(visits, purchases, fitted_exp, arm, simulations=simulations,
                                       figures=tmp / "figures")
            described = f"{fd.source} ({fd.n_visits} visits, {fd.n_purchases} purchases)"
        else:
            assert agg is not None
            checks = aggregate_checks(agg, fitted_exp, arm, simulations=simulations, figures=tmp / "figures")
            described = f"{agg.source} ({agg.n_minutes} minutes, {int(agg.sales.sum())} sales)"
        result.table.to_csv(tmp / "estimates.csv", index=False)
        checks.table.to_csv(tmp / "checks.csv", index=False)
        checks.families.to_csv(tmp / "check_families.csv", index=False)
        header = (f"# Fitted to {described}, arm {arm!r}, by {result.method};\n# [sweep] holds {draws} draws of "
                  "the estimates from their fitted normal approximation.\n")
        (tmp / "fitted.toml").write_text(header + to_toml(fitted))
        (tmp / "report.md").write_text(_report(exp.name, arm, described, why, result, checks, draws))
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Fit(result, checks, out)


def _table(folder: str | Path, name: str) -> Path:
    folder = Path(folder)
    return next(p for p in (folder / f"{name}.csv", folder / f"{name}.parquet") if p.is_file())


def data_form(folder: str | Path) -> str:
    """``"visits"`` or ``"aggregate"``: which form of field data a folder holds.

    Raises
    ------
    DataError
        If it holds both forms (the fit would be ambiguous).
    """
    from fomolab.errors import DataError

    folder = Path(folder)
    has = {n: any((folder / f"{n}.{ext}").is_file() for ext in ("csv", "parquet"))
           for n in ("visits", "purchases", "minutes")}
    if has["minutes"] and (has["visits"] or has["purchases"]):
        err = DataError(f"{folder}: holds both visit-level tables (visits, purchases) and per-minute data "
                        "(minutes); keep one form, so that what is fitted is unambiguous")
        err.problems = [str(err)]  # type: ignore[attr-defined]
        raise err
    return "aggregate" if has["minutes"] else "visits"


def _method(result: Any, why: str) -> str:
    if result.method == "maximum likelihood":
        return (f"Method: maximum likelihood, because of {why} (latent impulsiveness and interest integrated by "
                f"quadrature); 95 % Wald intervals on the transformed scale from the observed information. "
                f"Log-likelihood {result.loglik:.2f}; {result.seconds:.1f} s.")
    return (f"Method: simulated method of moments, because {why}. Moments: sales and mean viewers present per "
            f"minute; the model's are means over {result.simulations} datasets simulated by the engine from the "
            f"same seeds at every trial value; 95 % Wald intervals on the transformed scale from the sandwich "
            f"with the simulation-noise factor 1 + 1/{result.simulations}. Objective {-result.loglik:.4g} "
            f"after {result.evaluations} evaluations; {result.seconds:.1f} s.")


def _md(df: Any, floatfmt: str = ".4g") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [format(v, floatfmt) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _report(name: str, arm: str, described: str, why: str, result: Any, checks: Any, draws: int) -> str:
    verdict = ("The fitted model reproduces the checked features of the data." if checks.passed else
               "**The fitted model fails at least one check: it is misspecified for these data.**")
    parts = [
        f"# Fit of {name}, arm {arm}", "",
        f"Data: {described}.", "", _method(result, why), "",
        "## Estimates", "", _md(result.table), "",
        *(f"- warning: {m}" for m in result.messages), "",
        f"## Predictive checks ({checks.simulations} datasets simulated from the fitted model)", "", verdict, "",
        _md(checks.families), "", *(f"- warning: {m}" for m in checks.warnings), "",
        *(f"![{f}](figures/check_{f.replace(' ', '_')}.png)" for f in checks.families.family), "",
        _md(checks.table), "",
        "## Counterfactuals", "",
        f"`fitted.toml` is the spec at the estimates; its `[sweep]` holds {draws} draws from the estimates' "
        "fitted normal approximation, so `fomolab run fitted.toml` gives every arm at every draw and the spread "
        "over points carries the parameter uncertainty.", "",
    ]
    return "\n".join(parts)


