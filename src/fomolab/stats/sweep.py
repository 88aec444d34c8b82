"""Sweep analysis: metrics over the points of a parameter study.

The picture: the mixing desk again.  For each setting of the knobs (a sweep
point) the replicates give each metric's mean and its confidence interval; a
response surface (a second-order polynomial in the swept parameters) says how
the metrics move as the knobs turn; and for a Saltelli design, Sobol indices
say which knobs matter, alone (first order) and with the others (total).

Metrics are the ``runs`` table's (viewers, buyers, conversion, units sold,
revenue, median time to purchase) and, for every arm but the control, their
paired differences from the control of the same point and replicate
(``conversion_vs_control``, ...): arms of a replicate share viewers (common
random numbers), so the differences are much less noisy than the levels.
"""

from __future__ import annotations

import itertools
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fomolab.errors import ResultsError
from fomolab.stats import _folder

if TYPE_CHECKING:
    from fomolab.results import Results

__all__ = ["METRICS", "POINT_COLUMNS", "SOBOL_COLUMNS", "SURFACE_COLUMNS", "response_surface",
           "sobol_indices", "sweep_points"]

#: Run metrics analysed over a sweep.
METRICS = ["viewers", "buyers", "conversion", "units_sold", "revenue", "median_time_to_purchase_s"]
#: Marketplace measures, analysed too when the runs have them.
MARKET_METRICS = ["viewers_per_stream", "hhi_viewers", "hhi_sales", "gini_viewers", "top1_share_viewers",
                  "top1_share_sales", "switches"]


def _metrics(runs: pd.DataFrame) -> list[str]:
    return METRICS + [m for m in MARKET_METRICS if m in runs.columns and runs[m].notna().any()]
#: Columns of :func:`sweep_points` (followed by one column per swept parameter).
POINT_COLUMNS = ["point", "arm", "metric", "mean", "sd", "n", "ci_lower", "ci_upper"]
#: Columns of :func:`response_surface`.
SURFACE_COLUMNS = ["arm", "metric", "term", "coef", "se", "t", "p", "ci_lower", "ci_upper", "r_squared", "n"]
#: Columns of :func:`sobol_indices`.
SOBOL_COLUMNS = ["arm", "metric", "parameter", "s1", "s1_ci_lower", "s1_ci_upper",
                 "st", "st_ci_lower", "st_ci_upper", "note"]


def sobol_note(s1_lower: float, st: float, st_lower: float) -> str:
    """Say when a Sobol index cannot be told apart from sampling noise.

    >>> sobol_note(0.1, 0.4, 0.2)
    ''
    >>> sobol_note(-0.3, 2.07, -0.5)
    'total index above 1 and its interval includes 0: not distinguishable from noise'
    """
    parts = []
    if st > 1:
        parts.append("total index above 1")
    if st_lower <= 0:
        parts.append("its interval includes 0" if parts else "total index's interval includes 0")
    elif s1_lower <= 0 and not parts:
        return "first-order index's interval includes 0: no effect of its own distinguishable from noise"
    if not parts:
        return ""
    return " and ".join(parts) + ": not distinguishable from noise"


def _swept(res: Results, runs: pd.DataFrame) -> dict[str, str]:
    """``{dotted path: runs column}`` of the swept parameters."""
    from fomolab.sweep import column_name

    paths = list(res.manifest.get("swept") or [])
    out = {}
    for p in paths:
        c = column_name(p)
        if c not in runs.columns:
            raise ResultsError(f"{res.path}: swept parameter {p!r} has no column {c!r} in the runs table")
        out[p] = c
    return out


def run_metrics(res: Results, runs: pd.DataFrame) -> pd.DataFrame:
    """Run-level metrics in long form, with paired differences from the control.

    Returns columns ``point, replicate, arm, metric, value`` plus the swept
    parameter columns.
    """
    control = res.manifest.get("control", "control")
    cols = list(_swept(res, runs).values())
    r = runs.assign(arm=runs.arm.astype(str))
    long = r.melt(id_vars=["point", "replicate", "arm", *cols], value_vars=_metrics(runs), var_name="metric")
    ctrl = long[long.arm == control][["point", "replicate", "metric", "value"]].rename(columns={"value": "_c"})
    diff = long[long.arm != control].merge(ctrl, on=["point", "replicate", "metric"], how="inner")
    diff = diff.assign(value=diff.value - diff._c, metric=diff.metric + "_vs_control").drop(columns="_c")
    return pd.concat([long, diff], ignore_index=True)


def sweep_points(results: Any, *, conf_level: float = 0.95) -> pd.DataFrame:
    """Each metric's mean over replicates at every sweep point, with a t interval.

    Parameters
    ----------
    results : fomolab.Results or path
        A results folder (a sweep, or a single point).
    conf_level : float, default 0.95
        Level of the intervals.

    Returns
    -------
    pandas.DataFrame
        ``point, arm, metric, mean, sd, n, ci_lower, ci_upper`` and one column
        per swept parameter (named as in the ``runs`` table).  The interval is
        ``mean +- t(n-1) sd / sqrt(n)`` over the point's replicates (NaN with
        one replicate).  ``metric`` is a run metric or its paired difference
        from the control (``*_vs_control``).

    Examples
    --------
    >>> from fomolab.stats._example import example_sweep_results
    >>> pts = sweep_points(example_sweep_results())
    >>> row = pts[(pts.arm == "sale_timer") & (pts.metric == "conversion_vs_control")].iloc[0]
    >>> bool(row.ci_lower <= row["mean"] <= row.ci_upper), int(row.n)
    (True, 2)
    """
    from scipy import stats as _st

    from fomolab.stats import _checks

    level = _checks.check_probability(conf_level, "conf_level")
    res = _folder.as_results(results)
    runs = _folder.nonempty_runs(res)
    cols = list(_swept(res, runs).values())
    long = run_metrics(res, runs)
    keys = ["point", "arm", "metric"]
    g = long.groupby(keys, sort=False)["value"]
    out = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "n": g.count()}).reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        half = _st.t.ppf(1 - (1 - level) / 2, out.n - 1) * out.sd / np.sqrt(out.n)
    out["ci_lower"], out["ci_upper"] = out["mean"] - half, out["mean"] + half
    params = long.drop_duplicates("point").set_index("point")[cols]
    out = out.join(params, on="point")
    out["n"] = out["n"].astype("int64")
    order = {a: i for i, a in enumerate(res.manifest.get("arms", []))}
    metrics = _metrics(runs)
    met = {m: i for i, m in enumerate(metrics + [m + "_vs_control" for m in metrics])}
    out = out.sort_values(keys, key=lambda s: s.map(order) if s.name == "arm" else
                          (s.map(met) if s.name == "metric" else s), kind="stable")
    return out[POINT_COLUMNS + cols].reset_index(drop=True)


def response_surface(results: Any, *, conf_level: float = 0.95) -> pd.DataFrame:
    """A second-order response surface of each metric on the swept parameters.

    Parameters
    ----------
    results : fomolab.Results or path
        A results folder with a sweep over numeric parameters.
    conf_level : float, default 0.95
        Level of the coefficient intervals.

    Returns
    -------
    pandas.DataFrame
        One row per arm, metric and term: ``arm, metric, term, coef, se, t, p,
        ci_lower, ci_upper, r_squared, n``.  Terms are ``intercept``, each
        parameter (by its ``runs`` column name), its square (``NAME^2``, only
        for parameters with at least 3 distinct values) and each pairwise
        interaction (``A:B``), in the parameters' own units.

    Notes
    -----
    Ordinary least squares over runs (every replicate of every point), with
    the classical standard errors: runs at different points or replicates
    have independent seeds, and a model-free pure-error check is what
    :func:`sweep_points` gives.  Terms that would make the design matrix rank
    deficient are dropped (interactions first, then squares).  Non-numeric
    parameters are left out.  Without swept parameters the table is empty.

    Examples
    --------
    >>> from fomolab.stats._example import example_sweep_results
    >>> rs = response_surface(example_sweep_results())
    >>> gain = "lineup_lipstick_tactics_lightning_sale_gain"
    >>> row = rs[(rs.arm == "sale_timer") & (rs.metric == "conversion") & (rs.term == gain)].iloc[0]
    >>> bool(row.coef > 0 and row.p < 0.05)
    True
    """
    import statsmodels.api as sm

    from fomolab.stats import _checks

    level = _checks.check_probability(conf_level, "conf_level")
    res = _folder.as_results(results)
    runs = _folder.nonempty_runs(res)
    cols = [c for c in _swept(res, runs).values() if pd.api.types.is_numeric_dtype(runs[c])]
    long = run_metrics(res, runs)
    rows = []
    if not cols:
        return pd.DataFrame(columns=SURFACE_COLUMNS)
    for (arm, metric), g in long.groupby(["arm", "metric"], sort=False):
        g = g.dropna(subset=["value"])
        if len(g) < 2:
            continue
        X, names = _design(g[cols])
        y = g.value.to_numpy(float)
        if len(y) <= X.shape[1] or np.ptp(y) == 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.OLS(y, X).fit()
        ci = fit.conf_int(alpha=1 - level)
        for k, name in enumerate(names):
            rows.append(dict(arm=arm, metric=metric, term=name, coef=fit.params[k], se=fit.bse[k],
                             t=fit.tvalues[k], p=fit.pvalues[k], ci_lower=ci[k, 0], ci_upper=ci[k, 1],
                             r_squared=fit.rsquared, n=len(y)))
    return pd.DataFrame(rows, columns=SURFACE_COLUMNS)


def _design(P: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Intercept, linear, square and interaction columns, keeping full rank."""
    cols = list(P.columns)
    X = [np.ones(len(P))]
    names = ["intercept"]
    for c in cols:
        X.append(P[c].to_numpy(float))
        names.append(c)
    extra = []
    for c in cols:
        if P[c].nunique() >= 3:
            extra.append((f"{c}^2", P[c].to_numpy(float) ** 2))
    for a, b in itertools.combinations(cols, 2):
        extra.append((f"{a}:{b}", P[a].to_numpy(float) * P[b].to_numpy(float)))
    M = np.column_stack(X)
    if np.linalg.matrix_rank(M) < M.shape[1]:  # a constant parameter: keep what is estimable
        keep = [0]
        for k in range(1, M.shape[1]):
            if np.linalg.matrix_rank(M[:, keep + [k]]) == len(keep) + 1:
                keep.append(k)
        M, names = M[:, keep], [names[k] for k in keep]
    for name, col in extra:  # squares before interactions, as listed
        trial = np.column_stack((M, col))
        if np.linalg.matrix_rank(trial) == trial.shape[1]:
            M, names = trial, names + [name]
    return M, names


def sobol_indices(results: Any, *, conf_level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """First-order and total Sobol indices of each metric, for a Saltelli sweep.

    Parameters
    ----------
    results : fomolab.Results or path
        A results folder whose sweep design is ``saltelli``.
    conf_level : float, default 0.95
        Level of the bootstrap intervals.
    n_boot : int, default 1000
        Bootstrap resamples of SALib's estimator.
    seed : int, default 0
        Seed of the bootstrap.

    Returns
    -------
    pandas.DataFrame
        One row per arm, metric and parameter: ``arm, metric, parameter, s1,
        s1_ci_lower, s1_ci_upper, st, st_ci_lower, st_ci_upper, note``.
        ``note`` is empty for an index that stands out of the noise and says
        why otherwise: a total index above 1 (impossible for a share of
        variance: the estimator is dominated by noise) or an interval that
        includes 0.

    Raises
    ------
    ResultsError
        If the design is not Saltelli, or some of its points have no finished run.

    Notes
    -----
    The model output at a point is the metric's mean over the point's
    replicates.  Indices are ``SALib.analyze.sobol.analyze`` with
    ``calc_second_order=False`` (matching :mod:`fomolab.sweep`'s sampling), on
    the points in design order; the intervals are SALib's bootstrap
    ``index +- conf``.  Replicate noise adds variance no parameter explains,
    so indices of a noisy metric sum to less than 1; small negative first-order
    estimates are sampling error around 0.

    Examples
    --------
    >>> from fomolab.stats._example import example_sweep_results
    >>> sob = sobol_indices(example_sweep_results())
    >>> s = sob[(sob.arm == "sale_timer") & (sob.metric == "conversion")].set_index("parameter")
    >>> bool(s.s1.iloc[0] > s.s1.iloc[1])  # the sale's gain matters; a linear timer's kappa does not
    True
    """
    from fomolab._optional import require

    require("SALib", "Sobol indices")
    from SALib.analyze import sobol

    from fomolab.design import assign_points
    from fomolab.stats import _checks

    level = _checks.check_probability(conf_level, "conf_level")
    res = _folder.as_results(results)
    runs = _folder.nonempty_runs(res)
    if res.manifest.get("sweep_design") != "saltelli":
        raise ResultsError(f"{res.path}: Sobol indices need a sweep with design = \"saltelli\" "
                           f"(this folder's design: {res.manifest.get('sweep_design')!r})")
    exp = res.experiment
    problem = exp.sweep.problem()
    ids, _ = assign_points(exp, res.manifest.get("points"))
    long = run_metrics(res, runs)
    means = long.groupby(["arm", "metric", "point"], sort=False)["value"].mean()
    rows = []
    for (arm, metric), m in means.groupby(level=[0, 1], sort=False):
        m = m.droplevel([0, 1])
        Y = m.reindex(ids).to_numpy(float)
        if np.isnan(Y).any():
            missing = int(np.isnan(Y).sum())
            raise ResultsError(f"{res.path}: arm {arm!r} has no {metric} at {missing} of the {len(Y)} design "
                               "rows (unfinished runs): finish the sweep (`fomolab run` resumes) first")
        if np.ptp(Y) == 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            si = sobol.analyze(problem, Y, calc_second_order=False, num_resamples=n_boot,
                               conf_level=level, print_to_console=False, seed=seed)
        for k, name in enumerate(problem["names"]):
            rows.append(dict(arm=arm, metric=metric, parameter=name,
                             s1=si["S1"][k], s1_ci_lower=si["S1"][k] - si["S1_conf"][k],
                             s1_ci_upper=si["S1"][k] + si["S1_conf"][k],
                             st=si["ST"][k], st_ci_lower=si["ST"][k] - si["ST_conf"][k],
                             st_ci_upper=si["ST"][k] + si["ST_conf"][k],
                             note=sobol_note(si["S1"][k] - si["S1_conf"][k], si["ST"][k],
                                             si["ST"][k] - si["ST_conf"][k])))
    return pd.DataFrame(rows, columns=SOBOL_COLUMNS)
