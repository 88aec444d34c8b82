"""Multi-arm contrasts of a results folder: every arm against the control.

The picture: a table for a paper.  For each treatment arm (at each sweep
point) and each outcome, the effect against the control arm with its
confidence interval and p value, and p values adjusted for the number of arms
compared (Holm, which controls the family-wise error, and Benjamini–Hochberg,
which controls the false-discovery rate).

Arms of the same replicate are paired: by common random numbers they show the
same viewers (same ``shopper_id``, arrival and traits) to every arm.  With two
or more replicates every effect is therefore estimated within each replicate
and given a t interval with ``G - 1`` degrees of freedom across the ``G``
replicates (:func:`fomolab.stats.replicate_effects`), the paired analysis that
keeps its 95 % coverage with 3 replicates, where a sandwich clustered by
replicate covers about 75 % (``docs/STATISTICS.md``, *Few replicates*).  With
one replicate the errors are model-based and the table says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fomolab.errors import DataError, StatisticalWarning
from fomolab.stats import _folder
from fomolab.stats._compat import renamed_kwargs
from fomolab.stats._counts import arm_codes_by_run, small_code_type, sorted_small_codes, stable_argsort

if TYPE_CHECKING:
    from fomolab.results import Results

#: An estimate with its interval and p value.
_Estimate = tuple[float, float, float, float]

__all__ = ["COMPARE_COLUMNS", "DEADLINE_COLUMNS", "binary_logit", "compare_arms", "deadline_shares", "p_adjust",
           "time_to_purchase"]

#: The columns of :func:`compare_arms`, in order.
COMPARE_COLUMNS = ["point", "arm", "control", "outcome", "measure", "estimate", "ci_lower", "ci_upper",
                   "p", "p_holm", "p_bh", "n", "control_n", "clusters", "method", "note"]
#: The columns of :func:`deadline_shares`, in order.
DEADLINE_COLUMNS = ["point", "arm", "tactic", "windows", "purchases", "in_last", "share_last",
                    "expected_share", "ratio", "p"]

_PAIRED = "; estimated within each replicate, t interval across replicates (G - 1 df)"
_METHODS = {
    "hazard_ratio": "Cox (Efron) of time from arrival to first purchase on the arm" + _PAIRED,
    "median_shift_s": "difference of Kaplan-Meier medians; percentile CI and p from a bootstrap over replicates",
    "odds_ratio": "logit of bought on the arm (closed form)" + _PAIRED,
    "risk_difference": "difference of conversion rates" + _PAIRED,
}
#: Methods with a single replicate (no spread between replicates to use).
_ONE_REPLICATE = {
    "hazard_ratio": "Cox (Efron) of time from arrival to first purchase on the arm; one replicate: model-based SE",
    "odds_ratio": "logit of bought on the arm (closed form); one replicate: model-based SE",
    "risk_difference": "difference of conversion rates; one replicate: model-based SE",
}


def p_adjust(p: Any, method: str = "holm") -> np.ndarray:
    """Adjust p values for multiple comparisons, as R's ``p.adjust``.

    Parameters
    ----------
    p : array-like of float
        The p values of one family of tests.  NaN values are left out of the
        family and stay NaN.
    method : {"holm", "bh"}
        ``"holm"``: Holm's step-down (family-wise error rate);
        ``"bh"``: Benjamini–Hochberg step-up (false-discovery rate).

    Returns
    -------
    numpy.ndarray
        Adjusted p values, in the order given, capped at 1.

    Examples
    --------
    >>> p_adjust([0.01, 0.04, 0.03], "holm").round(3).tolist()
    [0.03, 0.06, 0.06]
    >>> p_adjust([0.01, 0.04, 0.03], "bh").round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    if method not in ("holm", "bh"):
        raise DataError(f"'method' must be 'holm' or 'bh': got {method!r}")
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = len(q)
    if m == 0:
        return out
    if ((q < 0) | (q > 1)).any():
        raise DataError(f"p values must be in [0, 1]: got {float(q[(q < 0) | (q > 1)][0])!r}")
    o = np.argsort(q, kind="mergesort")
    rank = np.arange(1, m + 1)
    if method == "holm":
        adj = np.maximum.accumulate((m - rank + 1) * q[o])
    else:
        adj = np.minimum.accumulate((m / rank * q[o])[::-1])[::-1]
    res = np.empty(m)
    res[o] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def time_to_purchase(shoppers: pd.DataFrame) -> pd.DataFrame:
    """Shoppers with ``time_s`` (from arrival to first purchase, or to departure) and ``bought``.

    Examples
    --------
    >>> sh = pd.DataFrame({"arrival_s": [10.0, 20.0], "departure_s": [100.0, 50.0],
    ...                    "first_purchase_s": [40.0, float("nan")], "purchases": [1, 0]})
    >>> time_to_purchase(sh)[["time_s", "bought"]].values.tolist()
    [[30.0, 1.0], [30.0, 0.0]]
    """
    fp = shoppers.first_purchase_s.to_numpy(float)
    end = np.where(np.isnan(fp), shoppers.departure_s.to_numpy(float), fp)
    return shoppers.assign(time_s=end - shoppers.arrival_s.to_numpy(float),
                           bought=(~np.isnan(fp)).astype(int))


def compare_arms(
    results: Any,
    control: str | None = None,
    *,
    conf_level: float = 0.95,
    n_boot: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Every arm against the control: effects, intervals, raw and adjusted p values.

    Parameters
    ----------
    results : fomolab.Results or path
        A results folder.
    control : str, optional
        The reference arm (default: the experiment's ``control``).
    conf_level : float, default 0.95
        Level of the confidence intervals.
    n_boot : int, default 200
        Bootstrap resamples (of replicates) for the median shift; 0 skips it.
    seed : int, default 0
        Seed of the bootstrap, so results are reproducible.

    Returns
    -------
    pandas.DataFrame
        One row per sweep point, treatment arm and measure, with the columns
        of ``COMPARE_COLUMNS`` (``docs/schema.md``, *analysis/arms*):

        ========================  ===============  =================================
        outcome                   measure          effect
        ========================  ===============  =================================
        ``time_to_purchase``      ``hazard_ratio``  Cox hazard ratio of the arm
        ``time_to_purchase``      ``median_shift_s`` KM median of the arm minus the control's
        ``conversion``            ``odds_ratio``    logit odds ratio of buying
        ``conversion``            ``risk_difference`` conversion of the arm minus the control's
        ========================  ===============  =================================

    Notes
    -----
    Time to first purchase runs from the viewer's arrival to the first
    purchase of any product, censored at departure.  Each arm is compared
    with the control on the rows of those two arms (of the same point).
    Hazard ratios, odds ratios and risk differences are estimated within
    each replicate and combined by a t interval with ``G - 1`` degrees of
    freedom across the ``G`` replicates (:func:`~fomolab.stats.replicate_effects`;
    ratios on the log scale): the arms of a replicate show the same viewers
    (common random numbers), so each replicate gives one paired estimate, and
    this interval keeps its coverage with 3 replicates where a sandwich
    clustered by replicate does not; with a single replicate the errors are
    model-based (:func:`~fomolab.stats.cox`, :func:`~fomolab.stats.conversion`,
    :func:`~fomolab.stats.risk_difference`).  The median shift's interval and p
    value come from a paired bootstrap: replicates are resampled with
    replacement (seeded), the same draw for both arms, and the Kaplan–Meier
    medians recomputed; the interval is the percentile interval, ``p`` twice
    the smaller tail share of shifts at or beyond 0 (resolution ``1/n_boot``).
    A median the curve does not reach is NaN (resamples where it is not
    reached are left out; with more than 5 % of them, the interval is NaN).
    ``p_holm`` and ``p_bh`` adjust ``p`` within each measure, over all
    treatment arms and points.  A fit that fails (e.g. no buyer in an arm)
    gives NaN and says why in ``note``.

    Examples
    --------
    >>> from fomolab.stats._example import example_results
    >>> tab = compare_arms(example_results(), n_boot=50)
    >>> tab[["arm", "measure"]].values.tolist()  # doctest: +NORMALIZE_WHITESPACE
    [['sale_timer', 'hazard_ratio'], ['sale_timer', 'median_shift_s'],
     ['sale_timer', 'odds_ratio'], ['sale_timer', 'risk_difference']]
    >>> bool(tab.set_index("measure").loc["hazard_ratio", "estimate"] > 1)
    True
    """
    res = _folder.as_results(results)
    runs = _folder.nonempty_runs(res)
    shoppers = res.viewers(["arm", "replicate", "point", "shopper_id", "arrival_s", "departure_s", "first_purchase_s"])
    return compare_tables(res, runs, shoppers, control, conf_level=conf_level, n_boot=n_boot, seed=seed)


def compare_tables(res: Results, runs: pd.DataFrame, shoppers: pd.DataFrame, control: str | None = None, *,
                   conf_level: float = 0.95, n_boot: int = 200, seed: int = 0,
                   paired: dict[int, pd.DataFrame] | None = None) -> pd.DataFrame:
    """:func:`compare_arms` on tables already read (used by :mod:`fomolab.analysis`).

    With a dict ``paired``, each point's paired analysis of every arm against
    the control (:func:`fomolab.stats.replicate_effects`' ``summary`` of the
    hazard ratio, odds ratio and risk difference, one call per point) is left
    in it by point, for the headline's ratios (they are the same estimates).
    """
    from fomolab.errors import ResultsError
    from fomolab.stats import _checks

    level = _checks.check_probability(conf_level, "conf_level")
    if int(n_boot) != n_boot or n_boot < 0:
        raise DataError(f"'n_boot' must be a whole number >= 0: got {n_boot!r}")
    control = control if control is not None else res.manifest.get("control", "control")
    arms = [a for a in res.manifest.get("arms", []) if a in set(runs.arm.astype(str))]
    if control not in arms:
        raise ResultsError(f"{res.path}: control arm {control!r} has no finished runs "
                           f"(arms: {', '.join(arms) or 'none'})")
    # the arms as integer codes, from each visit's run where it can (else the text hashed once)
    coded = arm_codes_by_run(shoppers, runs)
    sh = _slim_times(shoppers)
    rows = []
    points = _sorted_values(sh.point.to_numpy())
    for point in points:
        at_point = None if len(points) == 1 else sh.point.to_numpy() == point
        grp = sh if at_point is None else sh[at_point]
        # the spec's arms 0 .. len(arms) - 1, any other -1: a byte or two a row
        code, names = coded if coded is not None else pd.factorize(grp.arm.to_numpy())
        if coded is not None and at_point is not None:
            code = code[at_point]
        arm_of = pd.Index(arms).get_indexer(names).astype(small_code_type(len(arms)))[code]
        del code
        if at_point is None:
            coded = None  # the only point's codes, now in arm_of: no second byte a row kept
        # each arm's rows by time, sorted once: the bootstrap's medians and each arm's Kaplan–Meier curve read them
        by_time = _sorted_rows(arm_of, grp.time_s.to_numpy(float), list(range(len(arms))))
        by_time = {a: by_time[k] for k, a in enumerate(arms)}
        # the replicates as codes 0 .. R - 1 in sorted order, a byte or two a row (hashed once, not per arm)
        rep_code = sorted_small_codes(grp.replicate.to_numpy())
        # each arm's replicates: which of the R it holds
        holds = {a: _code_counts(rep_code[1][o], len(rep_code[0])) > 0 for a, o in by_time.items()}
        curves = _ArmCurves(grp, by_time, level)
        # the bootstrap hands each arm's rows by time to its curve too (one gather of them)
        boots = _boot_medians(grp, arms, int(n_boot), seed, level, by_time, rep_code, curves) if n_boot else {}
        # the rows of the spec's arms: where that is every row (as usual), no mask of them is kept
        keep = None if not len(arm_of) or int(arm_of.min()) >= 0 else arm_of >= 0
        joint = _PointPairs(grp, keep, arms, control, level, arm_of, by_time, rep_code)
        if paired is not None and (summary := joint.summary()) is not None:
            paired[int(point)] = summary
        at_ctrl = by_time[control]
        for arm in arms:
            if arm == control:
                continue
            at_trt = by_time[arm]
            if not len(at_trt) or not len(at_ctrl):
                continue
            pair = _Pair(grp, at_ctrl, at_trt)
            reps = int((holds[control] | holds[arm]).sum())  # the pair's replicates
            cl = "replicate" if reps >= 2 else None
            base = dict(point=int(point), arm=arm, control=control, n=len(at_trt), control_n=len(at_ctrl),
                        clusters=reps if cl else np.nan)
            if _identical(grp, at_ctrl, at_trt):
                rows += [{**base, **r} for r in _identical_rows()]
                continue
            rows += [{**base, **r} for r in _contrasts(pair, arm, control, cl, level, boots, joint, curves)]
            del pair
    out = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
    for idx in out.groupby("measure", sort=False).groups.values():
        out.loc[idx, "p_holm"] = p_adjust(out.loc[idx, "p"], "holm")
        out.loc[idx, "p_bh"] = p_adjust(out.loc[idx, "p"], "bh")
    out["clusters"] = out["clusters"].astype("Int64")
    return out.astype({"point": "int64", "n": "int64", "control_n": "int64",
                       "estimate": "float64", "ci_lower": "float64", "ci_upper": "float64",
                       "p": "float64", "p_holm": "float64", "p_bh": "float64"})


_NULL = {"hazard_ratio": 1.0, "median_shift_s": 0.0, "odds_ratio": 1.0, "risk_difference": 0.0}


def _sorted_values(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)``: one comparison per row where every row holds the same value (one sweep point),
    else the few values hashed and sorted (no sort of every row)."""
    if len(values) and bool((values == values[0]).all()):
        return values[:1].copy()
    return np.sort(pd.unique(values))


def _slim_times(shoppers: pd.DataFrame) -> pd.DataFrame:
    """:func:`time_to_purchase` of ``shoppers`` with only the columns the contrasts use (``arm`` as text,
    or a categorical of text).

    A frame that already holds ``time_s`` and ``bought`` (the analysis' visit
    frame) lends its columns: nothing per visit is copied.  An ``arm`` that is
    a categorical of text is kept as one (its codes: no text per row).
    """
    if "time_s" in shoppers.columns and "bought" in shoppers.columns:
        time_s, bought = shoppers.time_s.to_numpy(), shoppers.bought.to_numpy()
    else:
        fp = shoppers.first_purchase_s.to_numpy(float)
        time_s = np.where(np.isnan(fp), shoppers.departure_s.to_numpy(float), fp) - shoppers.arrival_s.to_numpy(float)
        bought = (~np.isnan(fp)).astype(int)
    arm = shoppers.arm.to_numpy() if shoppers.arm.dtype == object else \
        shoppers.arm.array if _text_names(shoppers.arm) else _folder.text_values(shoppers.arm)
    cols = {"arm": arm, "replicate": shoppers.replicate.to_numpy(), "point": shoppers.point.to_numpy(),
            "shopper_id": shoppers.shopper_id.to_numpy(), "time_s": time_s, "bought": bought}
    # the columns as Series, the text as objects: a frame of arrays infers the type of the text column,
    # passing over every value
    return pd.DataFrame({k: pd.Series(v, dtype=v.dtype, copy=False) for k, v in cols.items()}, copy=False)


def _text_names(col: pd.Series) -> bool:
    """Whether ``col`` is a categorical whose names are text: its values are then those of its text."""
    return isinstance(col.dtype, pd.CategoricalDtype) and col.cat.categories.dtype == object and \
        all(isinstance(c, str) for c in col.cat.categories)


def _identical(grp: pd.DataFrame, at_ctrl: np.ndarray, at_trt: np.ndarray) -> bool:
    """True when an arm's viewers and outcomes (rows ``at_trt`` of ``grp``) are the control's (rows
    ``at_ctrl``), viewer by viewer (as identical arms are under common random numbers).

    Each arm's rows, in the frame's order, are sorted by replicate and viewer (a stable sort: a viewer's
    repeated rows keep their order) and compared a column at a time: no frame of the two arms' rows.
    """
    # the same viewers and outcomes need the same number of rows and of buyers: only then compare rows
    if len(at_ctrl) != len(at_trt):
        return False
    bought = grp.bought.to_numpy()
    if int(bought[at_ctrl].sum(dtype=np.int64)) != int(bought[at_trt].sum(dtype=np.int64)):
        return False
    rep, sid = grp.replicate.to_numpy(), grp.shopper_id.to_numpy()
    order = []
    for at in (at_ctrl, at_trt):
        at = np.sort(at)
        order.append(at[np.lexsort((sid[at], rep[at]))])
    return all(bool(np.array_equal(v[order[0]], v[order[1]]))
               for v in (rep, sid, grp.time_s.to_numpy(), bought))


def _identical_rows() -> list[dict[str, Any]]:
    note = ("identical to the control, viewer by viewer (common random numbers with the same settings): "
            "the effect is exactly null and there is nothing to test")
    return [dict(outcome="time_to_purchase" if m in ("hazard_ratio", "median_shift_s") else "conversion",
                 measure=m, estimate=v, ci_lower=v, ci_upper=v, p=np.nan, method=_METHODS[m], note=note)
            for m, v in _NULL.items()]


class _Pair:
    """The rows of an arm and the control (control first, with ``treated``), copied only when first asked for.

    With two or more replicates the contrasts come from the point's joint
    paired analysis and each arm's own curve, and the pair's frame is never built.
    """

    def __init__(self, grp: pd.DataFrame, at_ctrl: np.ndarray, at_trt: np.ndarray):
        self.grp, self.at_ctrl, self.at_trt = grp, at_ctrl, at_trt
        self._sub: pd.DataFrame | None = None

    def __call__(self) -> pd.DataFrame:
        if self._sub is None:
            # each arm's rows in the frame's order (the positions may come sorted by time)
            sub = self.grp.take(np.concatenate([np.sort(self.at_ctrl), np.sort(self.at_trt)])).reset_index(drop=True)
            sub["treated"] = np.repeat([0, 1], [len(self.at_ctrl), len(self.at_trt)])
            self._sub = sub
        return self._sub


class _ArmCurves:
    """Each arm's Kaplan–Meier median at a point, from its curve built once from its rows sorted by time.

    The numbers are those of :func:`~fomolab.stats.kaplan_meier.curves_by` on
    any frame holding the arm's rows: a curve depends only on the arm's own
    times and events (sums of whole counts per distinct time, then one
    product in time order).  Only the median, the rows at risk there and the
    arm's rows are kept, not the curve.  For rows ``curves_by`` would refuse,
    :meth:`get` answers None and the caller falls back to ``curves_by`` on
    the pair, which raises its own message.
    """

    def __init__(self, grp: pd.DataFrame, by_time: dict[str, np.ndarray], level: float):
        self.by_time, self.level = by_time, level
        self.t, self.e = grp.time_s.to_numpy(), grp.bought.to_numpy()
        self._got: dict[str, tuple[float, int, int] | None] = {}

    def get(self, arm: str) -> tuple[float, int, int] | None:
        """``(median, rows at risk at the median, rows)`` of ``arm`` (None when its rows would be refused)."""
        if arm not in self._got:
            o = self.by_time[arm]
            self.take(arm, _ByTime(self.t, o), self.e[o])
        return self._got[arm]

    def take(self, arm: str, t: _ByTime, e: np.ndarray) -> None:
        """Keep the median of ``arm`` from its times ``t`` and events ``e`` by time (its rows of ``by_time``)."""
        # the rows curves_by accepts (finite times >= 0, events 0 or 1): otherwise it says what is wrong
        ok = len(t) > 0 and t.t.dtype.kind in "iuf" and e.dtype.kind in "biuf" and bool(((e == 0) | (e == 1)).all())
        got = None
        if ok:
            searches = []

            def below(x: np.ndarray) -> np.ndarray:
                searches.append(x)  # the first search reads every row's time: it checks them too
                return t.below(x, check=len(searches) == 1)

            with np.errstate(all="ignore"):  # a refused row's median is not kept
                got = _median_of_events(len(t), t.at(np.flatnonzero(e)), t.last(), below)
            ok = t.valid
        self._got[arm] = got if ok else None


class _ByTime:
    """A column ``t`` read at row positions ``o`` sorted by it, without a copy of those rows' values.

    The contrasts need of an arm's times by time only its events' times and, for a few sorted times,
    how many of its rows come before each: a stretch of rows is read at a time.
    """

    def __init__(self, t: np.ndarray, o: np.ndarray, step: int | None = None):
        self.t, self.o, self.step = t, o, step or _TIME_ROWS
        #: Whether every time is finite and not negative, once a search with ``check`` has read them all.
        self.valid = True
        self._checked: tuple[np.ndarray, np.ndarray] | None = None  # that search's values and answer

    def __len__(self) -> int:
        return len(self.o)

    def at(self, pos: np.ndarray) -> np.ndarray:
        """The times of the sorted rows ``pos`` (as floats)."""
        return np.asarray(self.t[self.o[pos]], dtype=float)

    def last(self) -> float:
        """The largest time."""
        return float(self.t[self.o[-1]])

    def below(self, x: np.ndarray, check: bool = False) -> np.ndarray:
        """``np.searchsorted(t[o], x, "left")`` for sorted ``x``: each value's rows with a smaller time.

        A value's rows below are those of the stretches before the first stretch whose last time reaches
        it, and that stretch's rows below it (found there); a value beyond every time has all rows below.
        With ``check``, every stretch is read and :attr:`valid` says whether its times are finite and not
        negative; the answer is kept for a later search of the same values (the same reading twice).
        """
        x = np.asarray(x, dtype=float)
        if self._checked is not None and np.array_equal(self._checked[0], x):
            return self._checked[1]
        n = len(self.o)
        out = np.full(len(x), n, np.int64)
        starts = np.arange(0, n, self.step)
        ends = self.t[self.o[np.minimum(starts + self.step, n) - 1]]  # each stretch's last time
        first = np.searchsorted(ends, x, "left")  # the stretch of each value (sorted values: rising)
        cuts = np.searchsorted(first, np.arange(len(starts) + 1), "left")
        for k, lo in enumerate(starts):
            i, j = int(cuts[k]), int(cuts[k + 1])
            if i < j or check:
                part = self.t[self.o[lo:lo + self.step]]
                if check and self.valid:
                    self.valid = bool(np.isfinite(part).all()) and bool((part >= 0).all())
                if i < j:
                    out[i:j] = lo + np.searchsorted(part, x[i:j], "left")
        if check:
            self._checked = (x, out)
        return out


#: Rows of :class:`_ByTime` read at a time.
_TIME_ROWS = 1 << 20


def _sorted_median_at_risk(t: np.ndarray, e: np.ndarray) -> tuple[float, int, int]:
    """:func:`_median_at_risk` of the Kaplan–Meier curve of rows sorted by time ``t`` (events ``e``, 0 or 1)."""
    return _median_of_events(len(t), t[np.flatnonzero(e)], float(t[-1]), lambda x: np.searchsorted(t, x, "left"))


def _median_of_events(n: int, te: np.ndarray, last: float, below: Callable[[np.ndarray], np.ndarray]
                      ) -> tuple[float, int, int]:
    """:func:`_median_at_risk` of the Kaplan–Meier curve of ``n`` rows from their events' times ``te`` (sorted),
    their largest time ``last`` and ``below(x)``: each sorted time's rows with a smaller time.

    The arithmetic of :func:`~fomolab.stats.kaplan_meier.curves_by` (bit for bit: the events and rows at
    risk at each distinct time are whole counts, then the same product in time order), without the
    curve's standard errors and bands, which the median does not read.  Only the distinct event times
    are visited: at a time with no event the curve's factor is exactly 1 (the product does not change)
    and its level repeats the one before, which the median's search drops; so no array per row is made.
    """
    from fomolab.stats.kaplan_meier import _TOL, _findq

    new = np.empty(len(te), dtype=bool)
    new[:1] = True
    np.not_equal(te[1:], te[:-1], out=new[1:])
    first = np.flatnonzero(new)  # each distinct event time's first event
    del new
    time = te[first]
    d = np.diff(np.append(first, len(te))).astype(float)  # its events: whole counts, as their sum gives them
    del te, first
    # the rows at risk there: those not before it (the first row at each distinct time: the rows before have left)
    at_risk = float(n) - below(time)
    surv = 1.0 - d / at_risk
    del d
    np.cumprod(surv, out=surv)
    # R's findq on the curve from the first level within twice its tolerance of 0.5 on: the levels (1 - S)
    # only rise, so those before it change neither where the line meets the curve nor which x each later
    # level keeps (the first of its times)
    cdf = 1.0 - surv
    del surv
    c = int(np.searchsorted(cdf, 0.5 - 2.0 * _TOL, side="left"))
    med = _findq(time[c:], cdf[c:], 0.5, last) if c < len(cdf) else float("nan")
    left = 0
    if not np.isnan(med):
        # the rows at risk at the first distinct time at or after the median (the last time, past them all)
        at = int(below(np.array([med]))[0])
        left = n - int(below(np.array([last]))[0] if at >= n else at)
    return med, left, n


def _median_at_risk(cur: dict[str, np.ndarray]) -> tuple[float, int, int]:
    """A curve's median, its rows at risk at the median (0 if not reached) and its rows."""
    from fomolab.stats.kaplan_meier import _median as km_median

    med = km_median(cur)[0]
    left = 0
    if not np.isnan(med):
        left = int(cur["at_risk"][np.searchsorted(cur["time"], med, "left").clip(0, len(cur["time"]) - 1)])
    return med, left, int(cur["at_risk"][0])  # a curve starts with all its rows at risk


#: Measures of the paired analysis across replicates in the arms table.
_PAIRED_MEASURES = ["hazard_ratio", "odds_ratio", "risk_difference"]


class _PointPairs:
    """One point's paired analysis of every arm against the control, computed once when first asked for.

    An arm's per-replicate estimates use only its and the control's rows of
    each replicate, in their order, so one :func:`replicate_effects` call on
    all the arms gives each arm the summary rows a call on the arm and the
    control alone would.  If that call is refused (a :class:`DataError`),
    :meth:`rows` falls back to the pair's own call, which may still succeed.
    """

    def __init__(self, grp: pd.DataFrame, keep: np.ndarray | None, arms: list[str], control: str, level: float,
                 arm_of: np.ndarray | None = None, by_time: dict[str, np.ndarray] | None = None,
                 rep_code: tuple[np.ndarray, np.ndarray] | None = None):
        """``keep``: which rows of ``grp`` are of ``arms`` (None: all of them); ``arm_of``: each row's position
        in ``arms`` (-1: none), when known (the call then reads the arms by these codes, not their text);
        ``by_time``: each arm's row positions sorted by time, when known (the fits then merge sorted runs, each
        arm's cells made in turn); ``rep_code``: the replicates in sorted order and each row's position among
        them, when known (not hashed again)."""
        self.grp, self.keep, self.arms, self.control, self.level = grp, keep, arms, control, level
        self.arm_of, self.by_time, self.rep_code = arm_of, by_time, rep_code
        self._summary: pd.DataFrame | None = None
        self._failed = False

    def summary(self) -> pd.DataFrame | None:
        """The summary of all the point's arms (None when the joint call is refused)."""
        from fomolab.stats.replicates import _effects

        if self._summary is None and not self._failed:
            g = self.grp if self.keep is None or self.keep.all() else self.grp[self.keep]
            # each arm's row positions by time, where they are the positions of g's rows
            by_time = self.by_time if g is self.grp else None
            rep_code = self.rep_code if g is self.grp else None
            if self.arm_of is not None:  # the same rows, the arms as a categorical of their codes
                arm = pd.Categorical.from_codes(self.arm_of if g is self.grp else self.arm_of[self.keep],
                                                pd.Index(self.arms, dtype=object))
                g = pd.DataFrame({"time_s": g.time_s.to_numpy(), "bought": g.bought.to_numpy(),
                                  "arm": arm, "replicate": g.replicate.to_numpy()}, index=g.index, copy=False)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fx = _effects(g, "time_s", "bought", "arm", control=self.control, replicate="replicate",
                                  measures=_PAIRED_MEASURES, conf_level=self.level, by_time=by_time,
                                  rep_code=rep_code)
                self._summary = fx.summary
            except DataError:
                self._failed = True
            self.grp = self.keep = self.arm_of = self.by_time = self.rep_code = None  # rows no longer needed
        return self._summary

    def rows(self, pair: Callable[[], pd.DataFrame], arm: str) -> dict[str, dict[str, Any]]:
        """``{measure: summary row}`` of ``arm``: from the joint call, else from the pair ``pair()`` alone."""
        from fomolab.stats.replicates import replicate_effects

        s = self.summary()
        if s is None or not (s.group == arm).any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = replicate_effects(pair(), "time_s", "bought", "arm", control=self.control, replicate="replicate",
                                      measures=_PAIRED_MEASURES, conf_level=self.level).summary
        out: dict[str, dict[str, Any]] = s[s.group == arm].set_index("measure").to_dict("index")
        return out


def _contrasts(pair: Callable[[], pd.DataFrame], arm: str, control: str, cl: str | None, level: float,
               boots: dict[str, np.ndarray], joint: _PointPairs | None = None,
               arm_curves: _ArmCurves | None = None) -> list[dict[str, Any]]:
    """The four contrasts of ``arm`` against ``control``; ``pair()`` gives the two arms' rows (control first)."""
    from fomolab.stats.conversion import risk_difference
    from fomolab.stats.cox import cox
    from fomolab.stats.kaplan_meier import curves_by

    out: list[dict[str, Any]] = []

    def row(outcome: str, measure: str, est: float = np.nan, lo: float = np.nan, hi: float = np.nan,
            p: float = np.nan, note: str = "") -> None:
        method = _METHODS[measure] if cl or measure == "median_shift_s" else _ONE_REPLICATE[measure]
        out.append(dict(outcome=outcome, measure=measure, estimate=est, ci_lower=lo, ci_upper=hi, p=p,
                        method=method, note=note))

    paired: dict[str, Any] = {}

    def across(measure: str) -> _Estimate:
        """The paired analysis of ``measure`` (all three computed once, their warnings kept per measure)."""
        if not paired:
            if joint is None:
                sub = pair()
                joint_or_own = _PointPairs(sub, np.isin(sub.arm.to_numpy(), [control, arm]), [control, arm],
                                           control, level)
            else:
                joint_or_own = joint
            paired.update(joint_or_own.rows(pair, arm))
        s = paired[measure]
        if s["note"]:
            warnings.warn(s["note"], StatisticalWarning, stacklevel=2)
        return s["estimate"], s["ci_lower"], s["ci_upper"], s["p"]

    def attempt(outcome: str, measure: str, fn: Callable[[], _Estimate]) -> None:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                vals = fn()
            note = "; ".join(sorted({str(w.message) for w in caught}))
            row(outcome, measure, *vals, note=note)
        except DataError as exc:
            row(outcome, measure, note=str(exc))

    def hr() -> _Estimate:
        if cl:
            return across("hazard_ratio")
        s = cox(pair(), "time_s", "bought", ["treated"], cluster=cl, conf_level=level).summary.loc["treated"]
        return s.hazard_ratio, s.ci_lower, s.ci_upper, s.p

    def median_shift() -> _Estimate:
        of: dict[str, tuple[float, int, int]] = {}
        for g in (control, arm):
            if arm_curves is not None and (got := arm_curves.get(g)) is not None:
                of[g] = got
        if len(of) < 2:
            curves = curves_by(pair(), "time_s", "bought", by="arm", conf_level=level)  # arrays, no long table
            of = {g: _median_at_risk(curves[g]) for g in (control, arm)}
        est = float(of[arm][0] - of[control][0])
        for g in (control, arm):
            med, left, n_g = of[g]
            if np.isnan(med):
                continue
            if left < max(100, 0.01 * n_g):
                warnings.warn(f"the Kaplan-Meier median of arm {g!r} ({med:.0f} s) lies in the tail of follow-up, "
                              f"with {left} of {n_g} viewers still at risk: it is unstable (fewer "
                              "than half of the viewers buy within a typical visit)", StatisticalWarning,
                              stacklevel=2)
        b = boots.get(arm)
        if b is None:
            return est, np.nan, np.nan, np.nan
        diff = b - boots[control]
        good = diff[np.isfinite(diff)]
        if len(good) == 0 or len(good) < 0.95 * len(diff):
            warnings.warn(f"a median is not reached in {1 - len(good) / len(diff):.0%} of the bootstrap "
                          "resamples: no interval", StatisticalWarning, stacklevel=2)
            return est, np.nan, np.nan, np.nan
        lo, hi = np.quantile(good, [(1 - level) / 2, 1 - (1 - level) / 2])
        p = min(1.0, 2.0 * min(np.mean(good <= 0), np.mean(good >= 0)))
        return est, lo, hi, p

    def odds() -> _Estimate:
        if cl:
            return across("odds_ratio")
        sub = pair()
        return binary_logit(sub.bought.to_numpy(float), sub.treated.to_numpy(int),
                            sub.replicate.to_numpy() if cl else None, level)

    def rd() -> _Estimate:
        if cl:
            return across("risk_difference")
        s = risk_difference(pair(), "bought", "arm", control=control, cluster=cl, conf_level=level).summary.iloc[0]
        return s.risk_difference, s.ci_lower, s.ci_upper, s.p

    attempt("time_to_purchase", "hazard_ratio", hr)
    attempt("time_to_purchase", "median_shift_s", median_shift)
    attempt("conversion", "odds_ratio", odds)
    attempt("conversion", "risk_difference", rd)
    return out


def _boot_medians(grp: pd.DataFrame, arms: list[str], n_boot: int, seed: int, level: float,
                  by_time: dict[str, np.ndarray] | None = None,
                  rep_code: tuple[np.ndarray, np.ndarray] | None = None,
                  curves: _ArmCurves | None = None) -> dict[str, np.ndarray]:
    """Kaplan–Meier medians of each arm over bootstrap resamples of replicates.

    The same resample of replicates is used for every arm (paired).  The curve
    only moves at the arm's event times ``t_j``, and a resample that draws
    replicate ``r`` ``w_r`` times has ``d_j = sum_r w_r D[r, j]`` events and
    ``n_j = sum_r w_r (n_r - C[r, <= j])`` at risk there, with ``D[r, j]`` the
    replicate's events at ``t_j`` and ``C[r, p]`` its rows whose last event
    time at or before their own time is ``t_{p-1}`` (they leave the risk set
    after it).  Both are sparse (at most one entry per row), so a block of
    event times costs the rows in it, whatever the number of replicates; the
    curves are built from the first event time on and stop once every
    resample's median is reached.  Sums of whole counts are exact, so the
    curves are those of the resampled rows.  Not reached: NaN.

    Only the curves' values at the end of each block are multiplied out for
    every resample (a product down the block's rows, row after row: the
    same products, in the same order, as a running product's last row); a
    resample's values at each time of a block are taken only in the block
    where its curve reaches one half.  Where no event time ties (each holds
    one event), a resample's events there are its weight of that event's
    replicate, looked up.

    ``by_time``: each arm's row positions in ``grp`` sorted by time (stable),
    when the caller has them; otherwise they are sorted here.  ``rep_code``:
    the replicates in sorted order and each row's position among them
    (:func:`~fomolab.stats._counts.sorted_small_codes` of ``grp.replicate``), when the caller has them.
    ``curves``: given each arm's times and events by time, as they are read here (:meth:`_ArmCurves.take`).
    """

    # the replicates in sorted order, each row's as its rank among them
    reps, rank = rep_code if rep_code is not None else sorted_small_codes(grp.replicate.to_numpy())
    R = len(reps)
    rng = np.random.default_rng(seed)
    W = np.stack([np.bincount(rng.integers(0, R, R), minlength=R) for _ in range(n_boot)]).astype(float)
    # each distinct resample once (with one replicate, all of them are the same)
    W, which = np.unique(W, axis=0, return_inverse=True)
    which = which.reshape(-1)
    WT = np.ascontiguousarray(W.T)
    t_all, e_all = grp.time_s.to_numpy(float), grp.bought.to_numpy()
    if by_time is None:
        by_time = _sorted_rows(grp.arm.to_numpy(), t_all, arms)
    out = {}
    for a in arms:
        o = by_time.get(a)
        if o is None or not len(o):
            continue
        # the arm's rows by time (the previous arm's let go first: one arm's rows at a time), their times read
        # where needed (the events', and where the rows reach each event time)
        t = _ByTime(t_all, o)
        e = rc = None
        e, rc = e_all[o], rank[o]
        if curves is not None:
            curves.take(a, t, e)
        ev = np.flatnonzero(e > 0)  # the events, by time
        del e
        te = t.at(ev)
        et = te[np.concatenate(([True], te[1:] != te[:-1]))] if len(te) else te  # distinct event times, sorted
        K = len(et)
        if K == 0:
            out[a] = np.full(n_boot, np.nan)
            continue
        # the rows at risk as whole numbers (their sums in any order exact, the running sum of integers faster
        # than of floats): four bytes where every resample's rows fit (R draws of a replicate at most)
        per_rep = _code_counts(rc, R)
        kind = np.int32 if int(per_rep.max()) * R < 2 ** 31 else np.int64
        # event times down the rows, resamples across the columns: the running sums and products below run
        # down contiguous rows, all resamples at once
        # C[p, r]: rows of replicate r at risk at t_0 .. t_{p-1} only; D[j, r]: its events at t_j
        # the rows come by time, so their row numbers p are sorted and the matrices are laid out directly
        # (a row's entries in the rows' order, repeats of a replicate summed by the products: whole counts)
        # row p of C holds the rows whose time is in [t_{p-1}, t_p): where the rows reach each event time;
        # its rows lo .. hi - 1 are built for each block of event times (no array of every row's entry)
        c_ptr = np.concatenate(([0], t.below(et)))
        rc_ev = rc[ev]  # each event's replicate, by time
        # one event at each event time: d_j is the resample's weight of that event's replicate (as D @ W.T gives
        # it: 1 x w + 0), a row of W.T looked up
        D = None if len(rc_ev) == K else _by_sorted_rows(np.ones(len(rc_ev)), np.searchsorted(et, te), rc_ev, (K, R))
        del ev, te
        WTk: np.ndarray = WT.astype(kind)
        total: np.ndarray = np.asarray(per_rep.astype(kind) @ WTk)  # each resample's rows
        med = np.full(len(W), np.nan)
        surv: np.ndarray = np.ones(len(W))  # each resample's curve just before the block
        gone = np.zeros(len(W), kind)  # rows gone before the block's first event time
        step = max(1, _BOOT_CELLS // len(W))  # event times at a time: bounded memory at any number of times
        for lo in range(0, K, step):
            hi = min(K, lo + step)
            d = np.take(WT, rc_ev[lo:hi], axis=0) if D is None else D[lo:hi] @ WT  # whole counts: exact
            # at risk at t_j: total less the rows gone before it (C[0..j]), a running sum carried between blocks
            i, j = int(c_ptr[lo]), int(c_ptr[hi])
            n = _csr(np.ones(j - i, kind), rc[i:j], c_ptr[lo:hi + 1] - i, (hi - lo, R)) @ WTk
            n[0] += gone
            np.cumsum(n, axis=0, out=n)
            gone = n[-1].copy()
            np.subtract(total, n, out=n)
            # s = 1 - d / n, in place in d (no one at risk: no events either, d = 0 and the factor 1)
            s = d
            np.divide(d, n, out=s, where=n > 0)
            np.subtract(1.0, s, out=s)
            del n
            # the carried value times the first factor, so the product runs in the same order as over all times
            # at once (surv * f_0 * f_1 ...)
            s[0] *= surv
            # each curve's value at the block's last time: a product down the rows multiplies row after row
            # (no reordering: numpy reorders only sums, pairwise), the same numbers as a running product's last row
            surv = np.multiply.reduce(s, axis=0)
            # a curve only falls (each factor is in [0, 1]): it reaches 0.5 in the block if its last value does;
            # only those curves' values at each time of the block are needed
            new = np.isnan(med) & (surv <= 0.5)
            if new.any():
                med[new] = et[lo + (np.cumprod(s[:, new], axis=0) <= 0.5).argmax(axis=0)]
            if not np.isnan(med).any():
                break
        out[a] = med[which]
    return out


def _code_counts(codes: np.ndarray, n: int, step: int = 1 << 20) -> np.ndarray:
    """``np.bincount(codes, minlength=n)``, a stretch of rows at a time (bincount reads small codes as
    eight-byte integers: a copy of the stretch, not of every row)."""
    out = np.zeros(n, np.int64)
    for i in range(0, len(codes), step):
        out += np.bincount(codes[i:i + step], minlength=n)
    return out


def _by_sorted_rows(values: np.ndarray, row: np.ndarray, col: np.ndarray, shape: tuple[int, int]) -> Any:
    """A CSR matrix of entries ``values`` at ``(row, col)``, ``row`` sorted (repeated entries are kept)."""
    return _csr(values, col, np.searchsorted(row, np.arange(shape[0] + 1)), shape)


def _csr(values: np.ndarray, col: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]) -> Any:
    """A CSR matrix of entries ``values`` in columns ``col``, row ``r``'s from ``indptr[r]`` to ``indptr[r + 1]``."""
    from scipy import sparse

    return sparse.csr_matrix((values, col.astype(np.int32, copy=False), indptr), shape=shape)


def _sorted_rows(arm_of: np.ndarray, t: np.ndarray, arms: list[Any]) -> dict[Any, np.ndarray]:
    """Each arm's row positions, sorted by ``t`` (4 bytes a row where they fit).

    Rows of tied times come in row order (:func:`~fomolab.stats._counts.stable_argsort`, faster than
    numpy's quicksort of the positions); every reader of these rows counts the rows and events at each
    distinct time, whole numbers whose sums are the same in any order.  One arm at a time: its positions
    (found a stretch of rows at a time, in 4 bytes), its times and their order are the only arrays per row
    made besides the result.
    """
    out = {}
    kind = np.int32 if len(t) < 2 ** 31 else np.int64
    step = _POSITION_ROWS

    def positions(a: Any, size: int) -> np.ndarray:
        at: np.ndarray = np.empty(size, kind)
        k = 0
        for i in range(0, len(arm_of), step):
            part = np.flatnonzero(arm_of[i:i + step] == a)
            np.add(part, i, out=at[k:k + len(part)], casting="unsafe")  # positions below len(t): they fit
            k += len(part)
        return at

    for a in arms:
        size = sum(int(np.count_nonzero(arm_of[i:i + step] == a)) for i in range(0, len(arm_of), step))
        times = t[positions(a, size)]
        # the positions are found again after the sort rather than held while the times are sorted
        o = stable_argsort(times)
        del times
        out[a] = positions(a, size)[o]
        del o
    return out


#: Rows of :func:`_sorted_rows`' search for an arm's rows at a time.
_POSITION_ROWS = 1 << 20


#: Cells (resamples x event times) of :func:`_boot_medians`' working arrays at a time.
_BOOT_CELLS = 250_000


@renamed_kwargs({"level": "conf_level"})
def binary_logit(y: np.ndarray, x: np.ndarray, cluster: np.ndarray | None, conf_level: float = 0.95
                 ) -> tuple[float, float, float, float]:
    """Odds ratio of a logit of ``y`` on a 0/1 ``x`` (with intercept), closed form.

    The same numbers as :func:`~fomolab.stats.conversion` (R's ``glm`` and
    ``sandwich::vcovCL``) for this model, from counts: the fitted
    probabilities are the two groups' rates, and the cluster-robust meat is
    built from per-cluster sums of ``y - p``.  Returns ``(odds_ratio,
    ci_lower, ci_upper, p)``.

    Examples
    --------
    >>> y = np.array([1, 0, 0, 0, 1, 1, 0, 0])
    >>> x = np.array([0, 0, 0, 0, 1, 1, 1, 0])
    >>> [round(float(v), 3) for v in binary_logit(y, x, None)[:1]]
    [8.0]
    >>> [round(float(v), 2) for v in binary_logit(y, x, None, conf_level=0.9)[1:3]]
    [0.52, 122.38]
    """
    from scipy import stats as _st

    from fomolab.stats.conversion import cluster_vcov

    y, x = np.asarray(y, float), np.asarray(x, int)
    n1, n0 = int(x.sum()), int((1 - x).sum())
    p1, p0 = float(y[x == 1].mean()), float(y[x == 0].mean())
    for p, what in ((p0, "control"), (p1, "treatment")):
        if p in (0.0, 1.0):
            raise DataError(f"every viewer of the {what} arm {'buys' if p else 'does not buy'}: the odds "
                            "ratio is infinite or zero (separation); compare conversion rates instead")
    w0, w1 = p0 * (1 - p0), p1 * (1 - p1)
    info = np.array([[n0 * w0 + n1 * w1, n1 * w1], [n1 * w1, n1 * w1]])
    bread = np.linalg.inv(info)
    beta = np.log(p1 / (1 - p1)) - np.log(p0 / (1 - p0))
    if cluster is None:
        var = bread[1, 1]
    else:
        r = y - np.where(x == 1, p1, p0)
        var = cluster_vcov(np.column_stack((r, r * x)), bread, cluster)[1, 1]
    se = float(np.sqrt(var))
    q = float(_st.norm.ppf(1 - (1 - conf_level) / 2))
    return (float(np.exp(beta)), float(np.exp(beta - q * se)), float(np.exp(beta + q * se)),
            float(2 * _st.norm.sf(abs(beta / se))))


def deadline_shares(results: Any, last: float = 0.1) -> pd.DataFrame:
    """Deadline bunching in each arm's sale and timer windows.

    Parameters
    ----------
    results : fomolab.Results or path
        A results folder.
    last : float, default 0.1
        Final fraction of each window examined.

    Returns
    -------
    pandas.DataFrame
        One row per sweep point, arm and tactic with a deadline
        (``Tactic.deadline_shares``: ``lightning_sale``, ``countdown_timer``): ``point, arm, tactic,
        windows, purchases, in_last, share_last, expected_share, ratio, p``
        (``docs/schema.md``, *analysis/deadline*).

    Notes
    -----
    The windows are each run's stored tactic windows (a sale with a quota
    ends when it sold out).  The purchases
    are those of the window's product in the same run.  The expected share
    under no bunching is from exposure: the viewer-seconds at risk (present,
    not yet bought that product) in the final fraction over those in the
    whole window, so arrivals and departures during the window do not pass
    for bunching.  The row pools the arm's windows
    (:func:`~fomolab.stats.deadline_effect`'s ``total`` row); ``p`` is its
    two-sided test.

    Examples
    --------
    >>> from fomolab.stats._example import example_results
    >>> tab = deadline_shares(example_results())
    >>> print(tab[["arm", "tactic"]].to_string(index=False))
           arm          tactic
    sale_timer  lightning_sale
    sale_timer countdown_timer
    >>> bool(tab.share_last.iloc[0] > tab.expected_share.iloc[0])
    True
    """
    res = _folder.as_results(results)
    runs = _folder.nonempty_runs(res)
    shoppers = res.viewers(["run_id", "shopper_id", "arrival_s", "departure_s"])
    events = res.table("events", ["run_id", "time_s", "kind", "shopper_id", "product", "tactic"])
    events = events[~events.kind.isin(["arrive", "leave"])]
    return deadline_tables(res, runs, shoppers, events, last)


def _codes_of(values: pd.Series, names: list[str]) -> np.ndarray:
    """Each value's position in ``names`` as text (-1 if absent)."""
    return _folder.positions(values, {n: k for k, n in enumerate(names)}, -1)


def deadline_tables(res: Results, runs: pd.DataFrame, shoppers: pd.DataFrame, events: pd.DataFrame,
                    last: float = 0.1) -> pd.DataFrame:
    """:func:`deadline_shares` on tables already read (used by :mod:`fomolab.analysis`)."""
    from fomolab.stats import _checks, _facts
    from fomolab.stats.deadline import _pooled, _window_counts
    from fomolab.tactics import KINDS

    frac = _checks.check_probability(last, "last")
    with_deadline = [k for k, cls in KINDS.items() if cls.deadline_shares]
    win = _facts.stored_windows(res, events)
    win = win[win.tactic.isin(with_deadline)]
    meta = runs.assign(run_id=runs.run_id.astype(str), arm=runs.arm.astype(str)).set_index("run_id")
    win = win[win.run_id.isin(meta.index)].reset_index(drop=True)
    if win.empty:
        return pd.DataFrame(columns=DEADLINE_COLUMNS)
    # runs and products as integer codes (the visits' runs, then the windows' and purchases' products):
    # the purchases sorted once by (run, product), each window's found by binary search, no per-row strings
    if isinstance(shoppers.run_id.dtype, pd.CategoricalDtype):
        codes, names = shoppers.run_id.cat.codes.to_numpy(), [str(c) for c in shoppers.run_id.cat.categories]
    else:
        codes, names = pd.factorize(shoppers.run_id.astype(str).to_numpy())
        names = [str(c) for c in names]
    buys = events[(events.kind == "purchase").to_numpy()]
    b_run = _codes_of(buys.run_id, names)
    sold = buys["product"]
    sold = sold.cat.categories if isinstance(sold.dtype, pd.CategoricalDtype) else pd.unique(sold.astype(str))
    products = list(dict.fromkeys([*win["product"], *(str(p) for p in sold)]))
    b_key = b_run * len(products) + _codes_of(buys["product"], products)
    w_run = _codes_of(win.run_id, names)
    w_key = w_run * len(products) + _codes_of(win["product"], products)
    by_key = np.argsort(b_key, kind="stable")  # each (run, product)'s purchases in the table's order
    key_s = b_key[by_key]
    b_sid = buys.shopper_id.to_numpy(dtype="int64", na_value=-1)[by_key]
    b_time = buys.time_s.to_numpy(float)[by_key]
    # exposure: viewer-seconds at risk for the window's product, in the window and its final fraction,
    # one run's visits at a time (arrays, in the table's order; a folder's visits come run by run: no sort)
    in_order = len(codes) < 2 or bool((codes[1:] >= codes[:-1]).all())
    o = None if in_order else np.argsort(codes, kind="stable")
    cuts = np.searchsorted(codes if o is None else codes[o], np.arange(len(names) + 1))
    s_a, s_d = shoppers.arrival_s.to_numpy(float), shoppers.departure_s.to_numpy(float)
    s_id = shoppers.shopper_id.to_numpy()
    lo_b, hi_b = np.searchsorted(key_s, w_key, side="left"), np.searchsorted(key_s, w_key, side="right")
    e_all, e_last = np.full(len(win), np.nan), np.full(len(win), np.nan)
    w_start, w_end = win.start_s.to_numpy(float), win.end_s.to_numpy(float)
    for k in np.unique(w_run[w_run >= 0]):
        mine = slice(cuts[k], cuts[k + 1]) if o is None else o[cuts[k]:cuts[k + 1]]
        a, d0, ids = s_a[mine], s_d[mine], s_id[mine]
        if not len(ids):
            continue
        # a run's ids come in order: searched as they are (the sort's order would be the rows' own)
        by_id = None if bool((ids[1:] >= ids[:-1]).all()) else np.argsort(ids, kind="stable")
        gap = np.empty(len(ids))
        for i in np.flatnonzero(w_run == k):
            ws, we, i0, i1, d = w_start[i], w_end[i], lo_b[i], hi_b[i], d0
            if i1 > i0:
                bid, btime = b_sid[i0:i1], b_time[i0:i1]
                # each visit's (first) purchase time of the product, NaN without one
                pos = np.minimum(np.searchsorted(ids, bid, sorter=by_id), len(ids) - 1)
                pos = pos if by_id is None else by_id[pos]
                hit = ids[pos] == bid
                bt = np.full(len(ids), np.nan)
                np.fmin.at(bt, pos[hit], btime[hit])
                d = np.where(np.isnan(bt), d, np.minimum(d, bt))
            cut = we - frac * (we - ws)
            # the visit's seconds in the window and in its last part, the sums of the same values as one
            # array each: written into one buffer
            out = np.minimum(d, we)
            np.subtract(out, np.maximum(a, ws, out=gap), out=gap)
            e_all[i] = np.clip(gap, 0, None, out=gap).sum()
            np.subtract(out, np.maximum(a, cut, out=gap), out=gap)
            e_last[i] = np.clip(gap, 0, None, out=gap).sum()
    win = win.assign(exposure_all=e_all, exposure_last=e_last, arm=meta.arm.reindex(win.run_id).to_numpy(),
                     point=meta.point.reindex(win.run_id).to_numpy(), _key=w_key, _run=w_run)
    win = win[win.exposure_all > 0].reset_index(drop=True)
    # each window's purchases and those in its final fraction, counted once for all windows
    n_win, k_win = _window_counts(b_time, win.start_s.to_numpy(float), win.end_s.to_numpy(float), frac,
                                  [key_s], [win._key.to_numpy()])
    win = win.assign(purchases=n_win, in_last=k_win,
                     expected_share=win.exposure_last.to_numpy() / win.exposure_all.to_numpy())
    buying = set(win.run_id[np.isin(win._run.to_numpy(), b_run)])  # the runs that sold anything
    rows = []
    for (point, arm, tactic), w in win.groupby(["point", "arm", "tactic"], sort=False):
        if buying.isdisjoint(w.run_id):  # none of its runs sold anything
            continue
        n, k, e, share, ratio, p = _pooled(w.purchases, w.in_last, w.expected_share, "two-sided")
        rows.append(dict(point=int(point), arm=arm, tactic=tactic, windows=len(w), purchases=n, in_last=k,
                         share_last=share, expected_share=e, ratio=ratio, p=p))
    out = pd.DataFrame(rows, columns=DEADLINE_COLUMNS)
    order = {a: i for i, a in enumerate(res.manifest.get("arms", []))}
    tact = {k: i for i, k in enumerate(with_deadline)}
    out = out.sort_values(["point", "arm", "tactic"], key=lambda s: s.map(order) if s.name == "arm" else
                          (s.map(tact) if s.name == "tactic" else s), kind="stable")
    return out.reset_index(drop=True)
