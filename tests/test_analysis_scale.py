"""The analysis' count-based paths give the numbers of the per-row definitions they replace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fomolab import figure_data
from fomolab.analysis import _part_frame, _small_integers, _visit_frame, visit_outcomes
from fomolab.stats import _folder
from fomolab.stats._example import example_results
from fomolab.stats.compare import time_to_purchase
from fomolab.stats.competing import cumulative_incidence, incidence_curves
from fomolab.stats.kaplan_meier import curves_by, kaplan_meier, unique_inverse
from fomolab.stats.recurrent import gap_starts

COLS = ["run_id", "time_s", "kind", "shopper_id", "product", "tactic"]


@pytest.fixture(scope="module")
def res():
    return example_results()


def test_events_except_drops_the_kinds_while_reading(res):
    whole = res.table("events", COLS)
    kept = whole[~whole.kind.isin(["arrive", "leave"])].reset_index(drop=True)
    got = res.events_except(["arrive", "leave"], COLS)
    assert (whole.kind == "arrive").any() and not got.kind.isin(["arrive", "leave"]).any()
    pd.testing.assert_frame_equal(got, kept)


def test_timeline_viewers_from_the_visits_equal_the_arrive_and_leave_events(res):
    runs = _folder.nonempty_runs(res)
    arms = _folder.arm_order(res.manifest, runs.arm.astype(str))
    events = res.events_except(["arrive", "leave"], COLS)
    tl = figure_data.timeline(res, runs, events, arms, 0.95)
    whole = res.table("events", COLS)
    T = float(runs.duration_s.max())
    grid = np.linspace(0.0, T, 361)
    for arm in arms:
        ids = set(runs.run_id[runs.arm.astype(str) == arm].astype(str))
        counts = []
        for rid in ids:
            e = whole[whole.run_id.astype(str) == rid]
            arr, lv = np.sort(e.time_s[e.kind == "arrive"]), np.sort(e.time_s[e.kind == "leave"])
            counts.append(np.searchsorted(arr, grid, "right") - np.searchsorted(lv, grid, "left"))
        got = tl[(tl.arm == arm) & (tl.series == "viewers")]["mean"].to_numpy()
        assert len(got) == len(grid) and got.max() > 0
        np.testing.assert_array_equal(got, np.mean(counts, axis=0))


def test_visit_frame_is_visit_outcomes_of_time_to_purchase(res):
    runs = _folder.nonempty_runs(res)
    cols = ["run_id", "arm", "replicate", "point", "shopper_id", "segment", "impulsiveness", "arrival_s",
            "departure_s", "first_purchase_s"]
    sh = res.viewers(cols)
    end_s = {str(r): float(d) for r, d in zip(runs.run_id, runs.duration_s, strict=True)}
    old = time_to_purchase(sh)
    old = visit_outcomes(old.assign(arm=old.arm.astype(str)), end_s)
    read = {c: sh[c].to_numpy() for c in ("arrival_s", "departure_s", "first_purchase_s", "impulsiveness")}
    got = _visit_frame(sh, end_s)
    assert sh.columns.empty  # each column taken out of the frame read
    assert set(got.outcome) == {"buy", "leave", "censored"}
    # visit_s is left out (the horizon takes it from departure minus arrival); every other column holds
    # the same values, in compact types
    assert "visit_s" not in got.columns
    assert list(got.columns) == list(old.drop(columns="visit_s").columns)
    for c in got.columns:
        a, b = got[c], old[c]
        if isinstance(a.dtype, pd.CategoricalDtype):
            a = a.astype(object) if b.dtype == object else a
        pd.testing.assert_series_equal(a, b, check_dtype=False)
    # the float columns read are shared, not copied
    for col, values in read.items():
        assert np.shares_memory(got[col].to_numpy(), values)


def test_visit_frame_holds_compact_types(res):
    runs = _folder.nonempty_runs(res)
    sh = res.viewers(["run_id", "arm", "replicate", "point", "shopper_id", "segment", "impulsiveness",
                      "arrival_s", "departure_s", "first_purchase_s"])
    end_s = {str(r): float(d) for r, d in zip(runs.run_id, runs.duration_s, strict=True)}
    got = _visit_frame(sh, end_s)
    # arm and outcome as the categoricals the point tables use: _part_frame takes them as they are
    assert got.arm.cat.categories.tolist() == sorted(set(runs.arm.astype(str)))
    assert got.outcome.cat.categories.tolist() == ["buy", "leave", "censored"]
    coded = _part_frame(got)
    assert np.shares_memory(coded.arm.cat.codes.to_numpy(), got.arm.cat.codes.to_numpy())
    assert np.shares_memory(coded.outcome.cat.codes.to_numpy(), got.outcome.cat.codes.to_numpy())
    sizes = {c: got[c].to_numpy().dtype.itemsize if not isinstance(got[c].dtype, pd.CategoricalDtype)
             else got[c].cat.codes.dtype.itemsize for c in got.columns}
    assert {c: sizes[c] for c in ("arm", "outcome", "bought", "replicate", "point")} == dict.fromkeys(
        ("arm", "outcome", "bought", "replicate", "point"), 1)
    assert sizes["shopper_id"] == 4 and got.bought.dtype == np.int8
    assert got.time_s.dtype == np.float64


def test_pooled_contrasts_of_the_compact_frame_are_those_of_the_wide_one(res):
    import warnings

    from fomolab.analysis import _pooled

    runs = _folder.nonempty_runs(res)
    sh = res.viewers(["run_id", "arm", "replicate", "point", "shopper_id", "segment", "impulsiveness",
                      "arrival_s", "departure_s", "first_purchase_s"])
    end_s = {str(r): float(d) for r, d in zip(runs.run_id, runs.duration_s, strict=True)}
    got = _visit_frame(sh, end_s)
    got["point"] = (got.replicate % 2).astype(np.int8)  # two points, of their replicates
    wide = got.astype({"arm": object, "bought": np.int64, "replicate": np.int64, "point": np.int64})
    arms = sorted(set(runs.arm.astype(str)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = _pooled(wide, arms, "control", 0.95)
        pooled = _pooled(got, arms, "control", 0.95)
    assert len(want) == 2 * (len(arms) - 1) and want.estimate.notna().all()
    pd.testing.assert_frame_equal(pooled, want, check_exact=True)


def test_small_integers_widen_only_as_far_as_the_values_need():
    for values, kind in (([0, 127], np.int8), ([-129, 0], np.int16), ([0, 40_000], np.int32),
                         ([0, 2**31], np.int64)):
        got = _small_integers(np.array(values, dtype=np.int64), np.int8)
        assert got.dtype == kind and got.tolist() == values
    assert _small_integers(np.array([0, 5]), np.int32).dtype == np.int32  # never below the smallest asked for
    assert _small_integers(np.array([], dtype=np.int64), np.int8).dtype == np.int8


def _frame(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.round(rng.exponential(100, n), 0)  # ties
    what = rng.choice(["buy", "leave", "censored"], n, p=[0.3, 0.5, 0.2])
    return pd.DataFrame({"t": t, "what": what, "bought": (what == "buy").astype(int),
                         "arm": rng.choice(["b", "a", "c"], n)})


@pytest.mark.parametrize("categorical", [False, True])
def test_curve_arrays_equal_the_long_tables(categorical):
    df = _frame()
    if categorical:  # grouped by integer codes
        df["arm"] = pd.Categorical(df.arm)
    km = kaplan_meier(df, "t", "bought", by="arm")
    arrays = curves_by(df, "t", "bought", by="arm")
    assert list(arrays) == ["a", "b", "c"]
    for g, cur in arrays.items():
        part = km.curve[km.curve.group == g]
        for col in ("time", "survival", "ci_lower", "ci_upper", "at_risk", "std_err"):
            np.testing.assert_array_equal(cur[col], part[col].to_numpy())
    ci = cumulative_incidence(df, "t", "what", by="arm", censored="censored")
    inc = incidence_curves(df, "t", "what", "buy", by="arm", censored="censored")
    for g, cur in inc.items():
        part = ci.curve[(ci.curve.group == g) & (ci.curve.cause == "buy")]
        for col in ("time", "cuminc", "ci_lower", "ci_upper", "at_risk", "std_err"):
            np.testing.assert_array_equal(cur[col], part[col].to_numpy())
    assert incidence_curves(df, "t", "what", "no such cause", by="arm", censored="censored") == {}
    # reduced as they are built: each group's curve handed to reduce once, with its group's name
    seen: list[object] = []
    firsts = curves_by(df, "t", "bought", by="arm", reduce=lambda g, cur: seen.append(g) or cur["survival"][:3])
    assert seen == ["a", "b", "c"]
    for g, cur in arrays.items():
        np.testing.assert_array_equal(firsts[g], cur["survival"][:3])
    ends = incidence_curves(df, "t", "what", "buy", by="arm", censored="censored",
                            reduce=lambda g, cur: (g, cur["cuminc"][-1]))
    assert {g: v for g, (_, v) in ends.items()} == {g: cur["cuminc"][-1] for g, cur in inc.items()}
    assert all(g == name for g, (name, _) in ends.items())


def test_incidence_summary_without_curves_is_the_same():
    df = _frame()
    for at in (0.5, 57.0, 1e6):
        full = cumulative_incidence(df, "t", "what", by="arm", censored="censored", at=at)
        lean = cumulative_incidence(df, "t", "what", by="arm", censored="censored", at=at, curves=False)
        pd.testing.assert_frame_equal(lean.summary, full.summary)
        assert lean.curve.empty and list(lean.curve.columns) == list(full.curve.columns)


def test_buying_by_reads_only_the_times_up_to_tau_with_the_same_numbers():
    from fomolab.analysis import _buying_by_flags

    df = _frame()
    t = df.t.to_numpy()
    buy, ended = (df.what == "buy").to_numpy(), (df.what != "censored").to_numpy()

    def full_grid(tau: float) -> tuple[float, float]:  # the estimate over every distinct time, then read at tau
        ut, inv = np.unique(t, return_inverse=True)
        b = np.bincount(inv, weights=buy.astype(float), minlength=len(ut))
        e = np.bincount(inv, weights=ended.astype(float), minlength=len(ut))
        n = np.bincount(inv, minlength=len(ut)).astype(float)[::-1].cumsum()[::-1]
        before = np.concatenate(([1.0], np.cumprod(1.0 - e / n)[:-1]))
        F = np.cumsum(before * b / n)
        keep = ut <= tau
        if not keep.any():
            return 0.0, 0.0
        return float(F[keep][-1]), float(np.sum(F[keep] * np.diff(np.append(ut[keep], tau))))

    for tau in (0.0, 0.5, 37.0, 100.0, 250.5, 1e6):
        assert _buying_by_flags(t, buy, ended, tau) == full_grid(tau), tau
    ci = cumulative_incidence(df, "t", "what", censored="censored", at=100.0).summary
    assert _buying_by_flags(t, buy, ended, 100.0)[0] == pytest.approx(ci.cuminc[ci.cause == "buy"].iloc[0],
                                                                       rel=1e-12)


def test_sorted_input_gives_the_same_curves():
    df = _frame()
    by_time = df.iloc[np.argsort(df.t.to_numpy(), kind="stable")].reset_index(drop=True)
    a = kaplan_meier(df, "t", "bought", by="arm").curve
    b = kaplan_meier(by_time, "t", "bought", by="arm").curve
    pd.testing.assert_frame_equal(a, b)
    t = by_time.t.to_numpy()
    for x in (t, df.t.to_numpy(), t[:1], t[:0]):
        ut, inv = unique_inverse(x)
        want_u, want_i = np.unique(x, return_inverse=True)
        np.testing.assert_array_equal(ut, want_u)
        np.testing.assert_array_equal(inv, want_i.reshape(-1))


def test_gap_starts_are_each_subjects_previous_time():
    codes = np.array([0, 1, 0, 0, 1, 2])
    stop = np.array([5.0, 3.0, 2.0, 9.0, 7.0, 0.0])
    ev = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    start, empty = gap_starts(codes, stop, ev)
    np.testing.assert_array_equal(start, [2.0, 0.0, 0.0, 5.0, 3.0, 0.0])
    np.testing.assert_array_equal(empty, [False, False, False, False, False, True])
    with pytest.raises(Exception, match="not after its previous row"):
        gap_starts(np.array([0, 0]), np.array([4.0, 4.0]), np.array([1.0, 0.0]))


def test_lineup_of_a_folder_without_product_results_is_none(res, tmp_path):
    import json
    import shutil

    from fomolab import Results

    shutil.copytree(res.path, tmp_path / "old")
    shutil.rmtree(tmp_path / "old" / "product_results")
    for commit in (tmp_path / "old" / "commits").glob("*.json"):  # as a run written before the table
        rec = json.loads(commit.read_text())
        parts = rec["partitions"]
        rec["partitions"] = ([p for p in parts if p != "product_results"] if isinstance(parts, list) else
                             {k: v for k, v in parts.items() if k != "product_results"})
        commit.write_text(json.dumps(rec))
    old = Results(tmp_path / "old")
    runs = _folder.nonempty_runs(old)
    assert figure_data.lineup(old, runs, ["control", "sale_timer"], 0.95, min_products=1) is None
    assert figure_data.lineup(res, _folder.nonempty_runs(res), ["control", "sale_timer"], 0.95,
                              min_products=1) is not None


@pytest.mark.parametrize("shape", ["even", "skewed", "few_large"])
def test_buying_by_cells_gives_each_cells_numbers_bit_for_bit(shape):
    """All cells at once (cells a position at a time, the longest one by one) equal one cell at a time."""
    from fomolab.analysis import _buying_by_cells, _buying_by_flags

    rng = np.random.default_rng({"even": 1, "skewed": 2, "few_large": 3}[shape])
    n, n_cells = {"even": (6000, 120), "skewed": (6000, 40), "few_large": (20000, 3)}[shape]
    cell = (np.minimum(rng.geometric(0.15, n) - 1, n_cells - 1) if shape == "skewed"
            else rng.integers(0, n_cells, n))
    t = np.sort(np.round(rng.exponential(60.0, n), 1))  # ties within and across cells
    what = rng.integers(0, 3, n)
    buy, ended = what == 1, what != 0
    for tau in (0.05, 30.0, 90.0, 1e6):
        F, lost = _buying_by_cells(t, buy, ended, cell, n_cells + 1, tau)  # the last cell has no rows
        assert np.isnan(F[-1]) and np.isnan(lost[-1])
        for c in range(n_cells):
            rows = cell == c
            assert (F[c], lost[c]) == _buying_by_flags(t[rows], buy[rows], ended[rows], tau), (tau, c)
        F_only, none = _buying_by_cells(t, buy, ended, cell, n_cells + 1, tau, lost=False)
        assert np.array_equal(F_only, F, equal_nan=True) and not len(none)
        for chunk in (1, 7, 500):  # stretches of rows of time, each cell's curve carried from one to the next
            F_chunks, _ = _buying_by_cells(t, buy, ended, cell, n_cells + 1, tau, lost=False, chunk=chunk)
            assert np.array_equal(F_chunks, F, equal_nan=True), (tau, chunk)
        u = t <= tau  # the rows up to tau given, those past it counted
        F_u, lost_u = _buying_by_cells(t[u], buy[u], ended[u], cell[u], n_cells + 1, tau,
                                       past=np.bincount(cell[~u], minlength=n_cells + 1))
        assert np.array_equal(F_u, F, equal_nan=True) and np.array_equal(lost_u, lost, equal_nan=True)


def test_one_groups_incidence_and_time_lost_are_the_public_rows():
    from scipy import stats as st

    from fomolab.stats.competing import _at_horizon, _incidence_at, _time_lost, restricted_time_in_state

    df = _frame().sort_values("t", kind="stable")
    code = df.what.map({"censored": 0, "buy": 1, "leave": 2}).to_numpy().astype(np.int8)
    z = float(st.norm.ppf(0.975))
    for at in (0.5, 57.0, 1e6):
        ci = cumulative_incidence(df, "t", "what", by="arm", censored="censored", at=at, curves=False).summary
        rt = restricted_time_in_state(df, "t", "what", by="arm", censored="censored", tau=at).summary
        for arm in ("a", "b", "c"):
            rows = (df.arm == arm).to_numpy()
            for c, cause in enumerate(("buy", "leave")):
                want = ci[(ci.group == arm) & (ci.cause == cause)].iloc[0]
                got = _incidence_at(df.t.to_numpy()[rows], code[rows], c, 2, at, z)
                assert got == (want.cuminc, want.se, want.ci_lower, want.ci_upper, want.at_risk), (at, arm, cause)
                r = rt[(rt.group == arm) & (rt.state == cause)].iloc[0]
                lost, var = _time_lost(df.t.to_numpy()[rows], code[rows], c, 2, at)
                assert (lost, float(np.sqrt(var))) == (r.rmean, r.se), (at, arm, cause)
                # both from one grid: the time lost with the visits followed past `at` censored just after it
                t_a = df.t.to_numpy()[rows]
                past = t_a > at
                censored_after = (np.where(past, np.nextafter(at, np.inf), t_a), np.where(past, 0, code[rows]))
                both = _at_horizon(t_a, code[rows], c, 2, at, z)
                assert both == (got, _time_lost(*censored_after, c, 2, at)), (at, arm, cause)


def test_incidence_of_a_categorical_event_column_is_that_of_its_text():
    """Codes as they are: unused categories are no causes, the causes keep their sorted order."""
    df = _frame()
    cat = df.assign(what=pd.Categorical(df.what, categories=["leave", "never", "censored", "buy"]))
    for by in (None, "arm"):
        want = cumulative_incidence(df, "t", "what", by=by, censored="censored", at=80.0)
        got = cumulative_incidence(cat, "t", "what", by=by, censored="censored", at=80.0)
        pd.testing.assert_frame_equal(got.summary, want.summary)
        pd.testing.assert_frame_equal(got.curve, want.curve)
    assert list(incidence_curves(cat, "t", "what", "buy", censored="censored")["all"]["cuminc"]) == list(
        incidence_curves(df, "t", "what", "buy", censored="censored")["all"]["cuminc"])


def test_part_frame_codes_arms_and_outcomes_as_their_text():
    from fomolab.analysis import _part_frame

    df = _frame(400)
    sh = pd.DataFrame({"arm": pd.Categorical(df.arm, categories=["c", "zz", "b", "a"]), "replicate": 0, "point": 0,
                       "time_s": df.t, "bought": df.bought, "outcome": df.what.to_numpy(dtype=object)})
    part = _part_frame(sh)
    assert list(part.arm.cat.categories) == ["a", "b", "c"]
    assert (part.arm.astype(str) == sh.arm.astype(str)).all()
    assert (part.outcome.astype(str) == sh.outcome).all()
    assert _part_frame(part) is part


@pytest.mark.parametrize("seed", [0, 1])
def test_medians_read_chunk_by_chunk_are_those_of_the_whole_curve(seed):
    """R's median and interval and the analysis' median support, from the curve built a chunk at a time."""
    from fomolab.analysis import _median
    from fomolab.stats.kaplan_meier import _median as km_median
    from fomolab.stats.kaplan_meier import _medians_sorted, _one_curve

    rng = np.random.default_rng(seed)
    z = 1.959963984540054
    reached = 0
    for trial in range(60):
        n = int(rng.integers(1, 1500))
        t = np.sort(np.round(rng.exponential(50.0, n), int(rng.integers(0, 3))))  # ties
        e = (rng.random(n) < rng.choice([0.05, 0.3, 0.6, 1.0])).astype(np.int64)
        if trial % 4 < 2:  # the first half buy: the curve at 0.5 to the end, or over a stretch
            n += n % 2 + 4
            t = np.arange(1.0, n + 1)
            e = (t <= n // 2).astype(np.int64)
            if trial % 4 == 1:
                e[n // 2 + 2:] = 1
        cur = _one_curve(t, e.astype(float), z)
        want = repr((km_median(cur), _median(cur, n)))
        reached += not np.isnan(km_median(cur)[0])
        for chunk in (3, 64, 1 << 16):
            three, entry = _medians_sorted(t, e if chunk > 3 else e.astype(bool), z, chunk=chunk)
            assert repr((three, _median(entry, n))) == want, (trial, chunk)
    assert 10 < reached < 60  # both reached and not reached


def test_code_counts_are_bincounts_of_the_codes_present():
    from fomolab.stats.kaplan_meier import code_counts

    codes = np.random.default_rng(5).integers(-1, 7, 10_001).astype(np.int8)  # -1: missing
    want = np.bincount(codes[codes >= 0].astype(np.int64), minlength=9)
    for chunk in (1, 1000, 1 << 20):
        assert np.array_equal(code_counts(codes, 9, chunk=chunk), want)


@pytest.mark.parametrize("first", [0, -3, 5_000_000])  # (replicates looked up in a table of runs, or sorted)
def test_impulsiveness_table_is_that_of_pivot_tables_of_runs_and_groups(first):
    rng = np.random.default_rng(11)
    n = 4000
    sh = pd.DataFrame({"arm": rng.choice(["control", "sale"], n), "point": rng.integers(0, 2, n),
                       "replicate": rng.integers(0, 9, n) + first, "impulsiveness": rng.random(n),
                       "bought": (rng.random(n) < 0.3).astype(int), "time_s": np.round(rng.exponential(40, n), 0)})
    sh.loc[(sh.replicate == 8 + first) & (sh.arm == "sale"), "bought"] = 0  # a run with no buyer: no median row
    got = figure_data.impulsiveness(sh, ["control", "sale"], 0.95, groups=4)
    run = sh.point * 1_000_003 + sh.replicate
    cuts = np.unique(np.quantile(sh.impulsiveness, [0.25, 0.5, 0.75]))
    group = np.searchsorted(cuts, sh.impulsiveness, "right") + 1
    for arm in ("control", "sale"):
        a = pd.DataFrame({"run": run, "group": group, "bought": sh.bought.astype(float),
                          "ttp": np.where(sh.bought == 1, sh.time_s, np.nan)})[(sh.arm == arm).to_numpy()]
        for measure, col, fn in (("conversion", "bought", "mean"), ("median_time_to_purchase_s", "ttp", "median")):
            vals = a.pivot_table(index="run", columns="group", values=col, aggfunc=fn).reindex(
                columns=[1, 2, 3, 4]).to_numpy(float)
            mean, lo, _, runs = figure_data._band(vals, 0.95)
            mine = got[(got.arm == arm) & (got.measure == measure)]
            assert np.array_equal(mine["mean"].to_numpy(), mean, equal_nan=True), (arm, measure)
            assert np.array_equal(mine.ci_lower.to_numpy(), lo, equal_nan=True)
            assert np.array_equal(mine.runs.to_numpy(), runs)


def _visits(n: int = 4000, seed: int = 5) -> pd.DataFrame:
    """Visits as the point tables read them: times with ties (across and within arms), three outcomes."""
    rng = np.random.default_rng(seed)
    what = rng.choice(["buy", "leave", "censored"], n, p=[0.3, 0.55, 0.15])
    return pd.DataFrame({"arm": pd.Categorical(rng.choice(["b", "a", "c"], n)),
                         "replicate": rng.integers(0, 7, n), "point": np.zeros(n, np.int64),
                         "segment": pd.Categorical(rng.choice(["x", "y"], n)),
                         "impulsiveness": rng.normal(size=n), "time_s": np.round(rng.exponential(90, n), 0),
                         "bought": (what == "buy").astype(int),
                         "outcome": pd.Categorical(what, categories=["buy", "leave", "censored"])})


@pytest.mark.parametrize("threads", [1, 2])
def test_by_time_groups_the_rows_by_arm_each_in_stable_order_of_time(threads):
    from fomolab.analysis import _by_time
    from fomolab.stats.kaplan_meier import group_rows

    g = _visits()
    got = _by_time(g, threads=threads)
    want = np.lexsort((np.arange(len(g)), g.time_s.to_numpy(), g.arm.cat.codes.to_numpy()))
    for c in g.columns:  # the same values (integers in a smaller type where they fit)
        assert list(got[c]) == list(g[c].iloc[want]), c
    assert got.bought.dtype == np.int8 and got.replicate.dtype == np.int8
    assert isinstance(got.index, pd.RangeIndex) and _by_time(got) is got  # in order already: no copy
    # each arm a stretch of rows, in the order a stable sort of the arm's own rows by time gives
    for (arm, rows), (arm0, rows0) in zip(group_rows(got.arm), group_rows(g.arm), strict=True):
        assert arm == arm0 and isinstance(rows, slice) and not isinstance(rows0, slice)
        t0 = g.time_s.to_numpy()[rows0]
        np.testing.assert_array_equal(got.time_s.to_numpy()[rows], t0[np.argsort(t0, kind="stable")])
    # categories not in order of their names, and arms missing on some rows (those rows last)
    g["arm"] = g.arm.cat.reorder_categories(["c", "a", "b"])
    g.loc[::11, "arm"] = np.nan
    got = _by_time(g, threads=threads)
    assert list(got.arm.cat.categories) == ["c", "a", "b"]
    key = g.arm.map({"a": 0, "b": 1, "c": 2}).astype(float).fillna(3).to_numpy()
    want = np.lexsort((np.arange(len(g)), g.time_s.to_numpy(), key))
    for c in g.columns:
        pd.testing.assert_series_equal(got[c], g[c].iloc[want].reset_index(drop=True), check_dtype=False)
    assert got.arm.isna().to_numpy()[-len(g.arm[g.arm.isna()]):].all()


@pytest.mark.parametrize("values", ["distinct", "few_ties", "many_ties", "nan", "signed_zeros", "integers",
                                    "negative", "close", "tiny", "infinite", "large"])
def test_stable_argsort_is_numpys_stable_sort(values):
    from fomolab.stats._counts import stable_argsort

    rng = np.random.default_rng(8)
    n = 5000
    x = rng.exponential(60.0, n)
    if values == "few_ties":  # stretches of two and more equal values, a few percent of the rows
        x[:150] = x[2000:2150]
        x[150:200] = x[2000]
    elif values == "many_ties":
        x = np.round(x, 0)
    elif values == "nan":
        x[::9] = np.nan
    elif values == "signed_zeros":
        x[:100:2], x[1:100:2] = 0.0, -0.0
    elif values == "integers":
        x = rng.integers(0, 400, n)
    elif values == "negative":  # both signs, ties among negatives and signed zeros
        x = rng.normal(0.0, 5.0, n)
        x[:200] = x[1000:1200]
        x[::100] = -0.0
        x[1::100] = 0.0
    elif values == "close":  # values nearer than the bits a position takes from each key: sorted by value
        x[:100] = np.nextafter(x[1000:1100], np.inf)
        x[100:200] = np.nextafter(x[1100:1200], -np.inf)
    elif values == "tiny":  # subnormal and near-zero values
        x = rng.exponential(1.0, n) * 1e-310
    elif values == "infinite":
        x[::100], x[3::100] = np.inf, -np.inf
    elif values == "large":  # more rows than the few bits of a small array's positions
        n = 300_000
        x = rng.exponential(60.0, n)
        x[: n // 50] = x[n // 2: n // 2 + n // 50]
    rng.shuffle(x)
    if values not in ("many_ties", "nan", "integers"):  # sorted as integer keys, not by numpy's stable sort
        xs = np.sort(x)
        assert np.count_nonzero(xs[1:] == xs[:-1]) <= len(x) // 8
    for part in (x, x[:1], x[:2], x[:3], x[:0], x[::-1].copy()):
        got = stable_argsort(part)
        np.testing.assert_array_equal(got, np.argsort(part, kind="stable"))
        assert got.dtype == np.intp


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("arms", [["a", "b", "c"], ["a"]])
def test_by_time_with_drop_frees_each_old_column_as_its_copy_is_made(arms, threads):
    import tracemalloc
    import weakref

    from fomolab.analysis import _by_time

    n = 200_000

    def visits() -> dict[str, object]:
        rng = np.random.default_rng(3)
        cols = {"arm": pd.Categorical(rng.choice(arms, n)), "time_s": np.round(rng.exponential(90, n), 1),
                "replicate": rng.integers(0, 300, n), "point": np.full(n, 2, np.int64)}
        return cols | {f"x{i}": rng.normal(size=n) for i in range(6)}

    want = _by_time(pd.DataFrame(visits(), copy=False))
    tracemalloc.start()  # (before the columns are made: freeing them counts)
    try:
        cols = visits()
        old = [weakref.ref(v) for c, v in cols.items() if c != "arm"]
        g = pd.DataFrame(cols, copy=False)  # (the frame's columns are the arrays themselves)
        del cols
        assert all(r() is not None for r in old)
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        got = _by_time(g, drop=True, threads=threads)
        added = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    pd.testing.assert_frame_equal(got, want)
    assert got.replicate.dtype == np.int16 and got.point.dtype == np.int8 and (got.point == 2).all()
    # the caller still holds g, but not its old columns: g is left empty and every old array is freed
    assert g.shape[1] == 0 and all(r() is None for r in old)
    # never the old and the new columns at once: the peak added is the order and about one column a
    # thread (with two, two arms' sorts at once), not the new frame (its six float columns alone are 48
    # bytes a row)
    assert added < (24 if threads == 1 else 32) * n, added


@pytest.mark.parametrize("grouped", [False, True])
def test_survival_and_incidence_figures_read_each_curve_on_the_grid(grouped):
    from fomolab.analysis import _by_time
    from fomolab.figure_data import _step_at

    g = _visits()
    g = _by_time(g) if grouped else g.iloc[np.argsort(g.time_s.to_numpy(), kind="stable")]
    arms = ["a", "b", "c", "none"]
    surv = figure_data.survival(g, arms, 0.9)
    inc = figure_data.incidence(g, arms, 0.9, 120.0)
    for arm in arms:
        rows = g[g.arm == arm]  # the arm's rows in order of time
        s = surv[surv.arm == arm]
        grid = s.time_s.to_numpy()
        if len(rows):  # the whole curve of the arm, read on the grid
            cur = curves_by(rows, "time_s", "bought", conf_level=0.9)["all"]
            i = np.searchsorted(cur["time"], grid, "right") - 1
            for col, mine in (("survival", s.bought), ("ci_lower", s.ci_upper), ("ci_upper", s.ci_lower)):
                np.testing.assert_array_equal(1 - np.where(i >= 0, cur[col][np.maximum(i, 0)], 1.0), mine)
        else:
            assert (s.bought == 0).all() and (s.at_risk == 0).all()
        np.testing.assert_array_equal(s.at_risk, [(rows.time_s >= x).sum() for x in grid])
        c = inc[inc.arm == arm]
        if not len(rows):
            assert c.empty
            continue
        cur = incidence_curves(rows, "time_s", "outcome", "buy", censored="censored", conf_level=0.9)["all"]
        want = _step_at(cur, c.time_s.to_numpy(), ("cuminc", "ci_lower", "ci_upper"))
        for col, w in zip(("cuminc", "ci_lower", "ci_upper"), want, strict=True):
            np.testing.assert_array_equal(c[col], w)
        assert c.horizon.sum() == 1 and c.time_s[c.horizon].iloc[0] == 120.0


@pytest.mark.parametrize("stretches", [True, False])
def test_text_arms_and_outcomes_coded_as_pandas_codes_them(stretches):
    from fomolab.analysis import _outcome_categorical, _text_categorical

    rng = np.random.default_rng(8)
    names = np.array(["sale", "control", "timer"], dtype=object)
    if stretches:  # rows run by run, a run of one arm
        arm = np.repeat(names[rng.integers(0, 3, 60)], rng.integers(1, 200, 60))
    else:
        arm = names[rng.integers(0, 3, 3000)]
    got = _text_categorical(pd.Series(arm))
    want = pd.Categorical(arm)
    assert list(got.categories) == list(want.categories)
    np.testing.assert_array_equal(got.codes, want.codes)
    what = np.array(["buy", "leave", "censored", "other"], dtype=object)[rng.choice(4, 3000, p=[.3, .5, .15, .05])]
    out = _outcome_categorical(pd.Series(what))
    assert list(out.categories) == ["buy", "leave", "censored"]
    assert list(pd.Series(out).astype(object).fillna("other")) == list(what)  # anything else: missing


def test_text_categorical_of_a_categorical_is_pandas_categorical_of_its_text():
    from fomolab.analysis import _text_categorical
    from fomolab.stats._folder import text_values

    rng = np.random.default_rng(4)
    codes = rng.integers(0, 3, 500).astype(np.int8)
    cases = {"sorted, every name used": pd.Categorical.from_codes(codes, ["a", "b", "c"]),
             "unsorted": pd.Categorical.from_codes(codes, ["c", "a", "b"]),
             "a name unused": pd.Categorical.from_codes(codes, ["a", "b", "c", "d"]),
             "missing rows": pd.Categorical.from_codes(np.where(codes == 2, -1, codes), ["a", "b", "c"]),
             "names not text": pd.Categorical.from_codes(codes, [1, 2, 3]),
             "ordered": pd.Categorical.from_codes(codes, ["a", "b", "c"], ordered=True)}
    for what, cat in cases.items():
        col = pd.Series(cat)
        got = _text_categorical(col)
        want = pd.Categorical(text_values(col))
        assert list(got.categories) == list(want.categories) and not got.ordered, what
        np.testing.assert_array_equal(got.codes, want.codes, err_msg=what)
        # only a categorical that already is its text's takes no new codes
        assert np.shares_memory(got.codes, cat.codes) == (what == "sorted, every name used"), what


def test_quintiles_by_comparisons_are_the_binary_searchs():
    from fomolab.analysis import _points_of, _quintile

    rng = np.random.default_rng(2)
    z = np.round(rng.normal(size=5000), 1)  # values on the edges
    z[:5] = np.nan
    edges = np.quantile(z[5:], [0.2, 0.4, 0.6, 0.8])
    np.testing.assert_array_equal(_quintile(edges, z), np.searchsorted(edges, z, side="right") + 1)
    np.testing.assert_array_equal(_quintile(np.quantile(z, [0.2, 0.4, 0.6, 0.8]), z),
                                  np.searchsorted(np.quantile(z, [0.2, 0.4, 0.6, 0.8]), z, side="right") + 1)
    for at in (np.full(7, 3), np.array([2, 0, 2, 1]), np.array([1, 0, 1]), np.array([], int)):
        np.testing.assert_array_equal(_points_of(at), np.unique(at))
