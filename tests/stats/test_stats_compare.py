"""compare_arms, p_adjust, binary_logit and deadline_shares on results folders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from fomolab import run
from fomolab.errors import DataError, ResultsError
from fomolab.stats import compare_arms, conversion, cox, deadline_shares, p_adjust, risk_difference
from fomolab.stats.compare import COMPARE_COLUMNS, DEADLINE_COLUMNS, binary_logit, time_to_purchase

from helpers import experiment, make_spec


def three_arm_spec():
    return make_spec(
        experiment={"name": "three", "seed": 44, "replicates": 6},
        lineup={"item": {"price": 10.0, "base_rate_per_s": 1 / 900, "tactics": {
            "lightning_sale": {"start_s": 400.0, "end_s": 800.0, "discount": 0.2, "gain": 2.0},
            "countdown_timer": {"gain": 2.0}}}},
        arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]},
              "sale_timer": {"tactics": ["item.*"]}},
    )


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    return run(experiment(three_arm_spec()), tmp_path_factory.mktemp("cmp") / "three", workers=1)


@pytest.fixture(scope="module")
def table(res):
    return compare_arms(res, n_boot=100)


def test_columns_rows_and_adjustments(table):
    assert list(table.columns) == COMPARE_COLUMNS
    assert table[["arm", "measure"]].values.tolist() == [
        [a, m] for a in ("sale", "sale_timer")
        for m in ("hazard_ratio", "median_shift_s", "odds_ratio", "risk_difference")]
    assert (table.control == "control").all() and (table.clusters == 6).all()
    for _, g in table.groupby("measure"):
        p = g.p.to_numpy()
        ok = ~np.isnan(p)
        assert g.p_holm.to_numpy()[ok] == pytest.approx(multipletests(p[ok], method="holm")[1])
        assert g.p_bh.to_numpy()[ok] == pytest.approx(multipletests(p[ok], method="fdr_bh")[1])
    hr = table[table.measure == "hazard_ratio"]
    assert (hr.estimate > 1).all() and (hr.ci_lower < hr.estimate).all() and (hr.estimate < hr.ci_upper).all()


def test_effects_are_the_paired_analysis_across_replicates(res, table):
    from fomolab.stats import replicate_effects

    sh = time_to_purchase(res.shoppers)
    sub = sh[sh.arm.isin(["control", "sale"])].assign(arm=lambda d: d.arm.astype(str))
    row = table[(table.arm == "sale")].set_index("measure")
    fx = replicate_effects(sub, "time_s", "bought", "arm", control="control", replicate="replicate",
                           measures=["hazard_ratio", "odds_ratio", "risk_difference"]).summary.set_index("measure")
    for m in ("hazard_ratio", "odds_ratio", "risk_difference"):
        assert row.loc[m, ["estimate", "ci_lower", "ci_upper", "p"]].to_numpy(float) == pytest.approx(
            fx.loc[m, ["estimate", "ci_lower", "ci_upper", "p"]].to_numpy(float), rel=1e-12)
        assert "t interval across replicates (G - 1 df)" in row.loc[m, "method"]
    # the estimate within each replicate is the Cox fit of that replicate's two arms (R's coxph numbers)
    sub["treated"] = (sub.arm == "sale").astype(int)
    logs = [np.log(cox(g, "time_s", "bought", "treated").summary.loc["treated", "hazard_ratio"])
            for _, g in sub.groupby("replicate")]
    assert row.loc["hazard_ratio", "estimate"] == pytest.approx(np.exp(np.mean(logs)), rel=1e-8)


def test_one_replicate_gives_model_based_errors_and_says_so(res):
    from fomolab.stats.compare import compare_tables

    one = res.runs[res.runs.replicate == 0]
    sh = res.viewers(["arm", "replicate", "point", "shopper_id", "arrival_s", "departure_s", "first_purchase_s"])
    t = compare_tables(res, one, sh[sh.replicate == 0], n_boot=0).set_index(["arm", "measure"])
    r = t.loc[("sale", "hazard_ratio")]
    sub = time_to_purchase(sh[(sh.replicate == 0) & sh.arm.isin(["control", "sale"])])
    sub = sub.assign(treated=(sub.arm.astype(str) == "sale").astype(int))
    fit = cox(sub, "time_s", "bought", "treated").summary.loc["treated"]
    assert (r.estimate, r.ci_upper) == pytest.approx((fit.hazard_ratio, fit.ci_upper))
    assert "one replicate: model-based SE" in r.method
    conv = conversion(sub, "bought", "treated").summary.loc["treated"]
    assert t.loc[("sale", "odds_ratio"), "ci_lower"] == pytest.approx(conv.ci_lower, rel=1e-7)
    rd = risk_difference(sub.assign(arm=sub.arm.astype(str)), "bought", "arm", control="control").summary.iloc[0]
    assert t.loc[("sale", "risk_difference"), "estimate"] == pytest.approx(rd.risk_difference)


def test_binary_logit_matches_conversion_without_cluster():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2, 3000)
    y = (rng.random(3000) < np.where(x == 1, 0.2, 0.1)).astype(int)
    df = pd.DataFrame({"y": y, "x": x})
    s = conversion(df, "y", "x").summary.loc["x"]
    assert binary_logit(y, x, None) == pytest.approx((s.odds_ratio, s.ci_lower, s.ci_upper, s.p), rel=1e-7)
    with pytest.raises(DataError, match="separation"):
        binary_logit(np.r_[np.zeros(5), np.ones(5)], np.r_[np.zeros(5), np.ones(5)].astype(int), None)


def test_median_shift_bootstrap_is_seeded(res, table):
    again = compare_arms(res, n_boot=100)
    pd.testing.assert_frame_equal(table, again)
    other = compare_arms(res, n_boot=100, seed=1)
    m = other.measure == "median_shift_s"
    assert (other[m].estimate.to_numpy() == table[m].estimate.to_numpy()).all()


@pytest.mark.parametrize("seed", range(5))
def test_p_adjust_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    p = rng.random(12) ** 3
    p[[2, 7]] = np.nan
    ok = ~np.isnan(p)
    for ours, theirs in (("holm", "holm"), ("bh", "fdr_bh")):
        adj = p_adjust(p, ours)
        assert np.isnan(adj[~ok]).all()
        assert adj[ok] == pytest.approx(multipletests(p[ok], method=theirs)[1])


def test_p_adjust_rejects_bad_input():
    with pytest.raises(DataError, match="'holm' or 'bh'"):
        p_adjust([0.1], "bonferroni")
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        p_adjust([0.1, 1.5])


def test_unknown_control_is_a_results_error(res):
    with pytest.raises(ResultsError, match="control arm 'nope'"):
        compare_arms(res, control="nope", n_boot=0)


def test_deadline_shares(res):
    d = deadline_shares(res)
    assert list(d.columns) == DEADLINE_COLUMNS
    assert d[["arm", "tactic"]].values.tolist() == [
        ["sale", "lightning_sale"], ["sale_timer", "lightning_sale"], ["sale_timer", "countdown_timer"]]
    assert (d.windows == 6).all()
    assert ((d.expected_share > 0.05) & (d.expected_share < 0.15)).all()
    # a linear timer pushes purchases toward the deadline; the sale alone does not
    st = d.set_index(["arm", "tactic"])
    assert st.loc[("sale_timer", "lightning_sale"), "ratio"] > st.loc[("sale", "lightning_sale"), "ratio"]


def test_deadline_shares_of_visits_in_any_order_are_those_of_the_folders_order(res):
    from fomolab.stats import _folder
    from fomolab.stats.compare import deadline_tables

    runs = _folder.nonempty_runs(res)
    shoppers = res.viewers(["run_id", "shopper_id", "arrival_s", "departure_s"])
    events = res.table("events", ["run_id", "time_s", "kind", "shopper_id", "product", "tactic"])
    events = events[~events.kind.isin(["arrive", "leave"])]
    want = deadline_tables(res, runs, shoppers, events)
    assert (want.purchases > 20).all()
    for order in (shoppers.sort_values(["run_id", "arrival_s"], ascending=[True, False]), shoppers.sample(frac=1.0,
                                                                                           random_state=2)):
        pd.testing.assert_frame_equal(deadline_tables(res, runs, order, events), want, rtol=1e-12)


def test_deadline_expected_share_is_the_exposure_ratio(res):
    # Independent of the code under test: each sale window's viewer-seconds at risk (present and
    # not yet bought; one product) in its last 10 % over those in the whole window, pooled over
    # windows with the windows' purchases as weights, as the table's pooled row defines it.
    ev = res.table("events", ["run_id", "time_s", "kind", "tactic"])
    sh = res.viewers(["run_id", "arrival_s", "departure_s", "first_purchase_s"])
    runs = res.runs[res.runs.arm.astype(str) == "sale"]
    weights, shares = [], []
    for rid in runs.run_id.astype(str):
        e = ev[ev.run_id.astype(str) == rid]
        sale = e[e.tactic.astype(str) == "lightning_sale"]
        ws = float(sale.time_s[sale.kind == "tactic_start"].iloc[0])
        we = float(sale.time_s[sale.kind == "tactic_end"].iloc[0])
        cut = we - 0.1 * (we - ws)
        s = sh[sh.run_id.astype(str) == rid]
        a = s.arrival_s.to_numpy(float)
        end = np.fmin(s.departure_s.to_numpy(float), s.first_purchase_s.to_numpy(float))
        whole = np.clip(np.minimum(end, we) - np.maximum(a, ws), 0, None).sum()
        final = np.clip(np.minimum(end, we) - np.maximum(a, cut), 0, None).sum()
        buys = e.time_s[(e.kind == "purchase") & (e.time_s >= ws) & (e.time_s <= we)]
        weights.append(len(buys))
        shares.append(final / whole)
    want = float(np.dot(weights, shares) / np.sum(weights))
    assert abs(want - 0.1) > 1e-4  # exposure does differ from the window fraction here
    got = deadline_shares(res).set_index(["arm", "tactic"]).loc[("sale", "lightning_sale")]
    assert got.expected_share == pytest.approx(want, rel=1e-9)
    assert got.purchases == sum(weights)


def _resampled_km_median(t: np.ndarray, e: np.ndarray, times: np.ndarray) -> float:
    """The Kaplan–Meier median of rows written out one by one (the first time the curve is <= 1/2)."""
    s = 1.0
    for u in times:
        n, d = (t >= u).sum(), ((t == u) & e).sum()
        s *= 1.0 - (d / n if n else 0.0)
        if s <= 0.5:
            return float(u)
    return float("nan")


@pytest.mark.parametrize("cells", [None, 7])
@pytest.mark.parametrize("ties", [True, False])
def test_bootstrap_medians_are_those_of_the_resampled_rows(monkeypatch, cells, ties):
    from fomolab.stats import compare

    if cells:  # a few event times, and a few rows' times, at a time: the same medians
        monkeypatch.setattr(compare, "_BOOT_CELLS", cells)
        monkeypatch.setattr(compare, "_TIME_ROWS", cells)
    rng = np.random.default_rng(8)
    parts = []
    whole = np.ceil if ties else (lambda x: x)  # whole seconds tie; times of full precision do not
    for rep in range(5):
        for arm, scale in (("control", 300.0), ("sale", 200.0)):
            n = int(rng.integers(20, 40))
            buy, leave = whole(rng.exponential(scale, n)), whole(rng.exponential(250.0, n))
            parts.append(pd.DataFrame({"arm": arm, "replicate": rep, "time_s": np.minimum(buy, leave),
                                       "bought": (buy <= leave).astype(int)}))
    grp = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=1)
    got = compare._boot_medians(grp, ["control", "sale"], 30, 5, 0.95)
    draws = np.random.default_rng(5)
    for b in range(30):
        counts = np.bincount(draws.integers(0, 5, 5), minlength=5)
        for arm in ("control", "sale"):
            mine = grp[grp.arm == arm]
            times = np.unique(mine.time_s[mine.bought == 1])
            rows = pd.concat([mine[mine.replicate == r] for r, k in enumerate(counts) for _ in range(k)])
            want = _resampled_km_median(rows.time_s.to_numpy(), rows.bought.to_numpy() == 1, times)
            assert np.array_equal(got[arm][b], want, equal_nan=True), (b, arm)
    assert np.isfinite(got["control"]).all() and len(set(got["control"])) > 3


def test_the_arms_table_shares_its_paired_estimates_with_the_headline(res, table):
    from fomolab.analysis import _paired_ratios
    from fomolab.stats import _folder
    from fomolab.stats.compare import compare_tables

    runs = _folder.nonempty_runs(res)
    shoppers = res.viewers(["arm", "replicate", "point", "shopper_id", "arrival_s", "departure_s",
                            "first_purchase_s"])
    paired: dict = {}
    shared = compare_tables(res, runs, shoppers, n_boot=100, paired=paired)
    assert shared.equals(table)  # handing the estimates out changes nothing in the table
    assert sorted(paired) == sorted(set(shoppers.point)) and set(paired[0].group) == {"sale", "sale_timer"}
    sh = time_to_purchase(shoppers).assign(arm=lambda d: d.arm.astype(str))
    order = ["control", "sale", "sale_timer"]
    alone = _paired_ratios(sh, order, "control", 0.95)
    assert _paired_ratios(sh, order, "control", 0.95, known=paired).equals(alone)
    # each arm's rows of the shared summary are those of its pair with the control alone
    for arm in ("sale", "sale_timer"):
        row = table[table.arm == arm].set_index("measure")
        mine = paired[0][paired[0].group == arm].set_index("measure")
        for m in ("hazard_ratio", "odds_ratio", "risk_difference"):
            assert row.loc[m, "estimate"] == mine.loc[m, "estimate"]
def test_deadline_counts_are_each_windows_purchases_with_runs_and_products_coded_or_as_text(res):
    from fomolab.stats import _facts, _folder
    from fomolab.stats.compare import deadline_tables

    runs = _folder.nonempty_runs(res)
    sh = res.viewers(["run_id", "shopper_id", "arrival_s", "departure_s", "first_purchase_s"])
    ev = res.events_except(["arrive", "leave"], ["run_id", "time_s", "kind", "shopper_id", "product", "tactic"])
    coded = deadline_tables(res, runs, sh, ev)
    text = deadline_tables(res, runs, sh.assign(run_id=sh.run_id.astype(str)),
                           ev.assign(run_id=ev.run_id.astype(str), product=ev["product"].astype(str)))
    pd.testing.assert_frame_equal(coded, text, check_exact=True)
    shuffled = deadline_tables(res, runs, sh.sample(frac=1.0, random_state=2), ev)  # visits not run by run
    pd.testing.assert_frame_equal(coded, shuffled, rtol=1e-12)  # the same exposures, summed in another order
    # independent of the code under test: each window's purchases of its run and product, and those in its last 10 %
    arm = dict(zip(runs.run_id.astype(str), runs.arm.astype(str), strict=True))
    win = _facts.stored_windows(res, ev)
    buys = ev[ev.kind == "purchase"]
    b_run, b_prod, t = buys.run_id.astype(str).to_numpy(), buys["product"].astype(str).to_numpy(), buys.time_s
    for row in coded.itertuples():
        mine = win[(win.tactic == row.tactic) & (win.run_id.map(arm) == row.arm)]
        n = k = 0
        for w in mine.itertuples():
            m = (b_run == w.run_id) & (b_prod == w.product) & (t >= w.start_s) & (t <= w.end_s)
            n += int(m.sum())
            k += int((m & (t >= w.end_s - 0.1 * (w.end_s - w.start_s))).sum())
        assert (row.windows, row.purchases, row.in_last) == (len(mine), n, k)
    assert coded.in_last.sum() > 0


def test_median_shift_is_the_difference_of_the_arms_kaplan_meier_medians(res, table):
    from fomolab.stats import kaplan_meier

    sh = time_to_purchase(res.shoppers).assign(arm=lambda d: d.arm.astype(str))
    med = kaplan_meier(sh, "time_s", "bought", by="arm").summary.set_index("group")["median"]
    for arm in ("sale", "sale_timer"):
        got = table[(table.arm == arm) & (table.measure == "median_shift_s")].estimate.iloc[0]
        assert got == med[arm] - med["control"]  # the same curves, bit for bit


def test_median_shift_of_refused_rows_says_what_the_curves_of_the_pair_say(res):
    from fomolab.stats import _folder
    from fomolab.stats.compare import compare_tables
    from fomolab.stats.kaplan_meier import curves_by

    runs = _folder.nonempty_runs(res)
    sh = time_to_purchase(res.viewers(["arm", "replicate", "point", "shopper_id", "arrival_s", "departure_s",
                                       "first_purchase_s"])).assign(arm=lambda d: d.arm.astype(str))
    sale = np.flatnonzero(sh.arm.to_numpy() == "sale")
    sh.loc[sale[3], "time_s"] = -1.0  # a time the curves refuse
    got = compare_tables(res, runs, sh, n_boot=0).set_index(["arm", "measure"])
    pair = pd.concat([sh[sh.arm == "control"], sh[sh.arm == "sale"]], ignore_index=True)
    with pytest.raises(DataError) as exc:
        curves_by(pair, "time_s", "bought", by="arm")
    assert got.loc[("sale", "median_shift_s"), "note"] == str(exc.value)
    assert np.isnan(got.loc[("sale", "median_shift_s"), "estimate"])
    assert np.isfinite(got.loc[("sale_timer", "median_shift_s"), "estimate"])  # its rows are not refused


@pytest.mark.parametrize("seed", range(24))
def test_an_arms_median_from_its_sorted_rows_is_that_of_its_curve(seed):
    from fomolab.stats.compare import _median_at_risk, _sorted_median_at_risk
    from fomolab.stats.kaplan_meier import _one_curve

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400)) if seed else 4
    # whole seconds: many ties; a curve that reaches exactly 0.5 (a flat at the median) with four rows
    t = np.ceil(rng.exponential(60.0, n)) if seed else np.array([1.0, 2.0, 3.0, 4.0])
    # most buy (a median reached early), about half (late, or a flat at 0.5), few (not reached)
    e = (rng.random(n) < (0.8, 0.5, 0.3)[seed % 3]).astype(int) if seed else np.array([1, 1, 0, 0])
    o = np.argsort(t, kind="stable")
    want = _median_at_risk(_one_curve(t.astype(float), e.astype(float), 1.96, "log"))
    got = _sorted_median_at_risk(t[o], e[o])
    assert np.array_equal(np.array(got, float), np.array(want, float), equal_nan=True)
    assert isinstance(got[1], int) and got[2] == n


def test_the_arms_coded_by_their_runs_are_those_of_their_text(res, table):
    from fomolab.stats import _folder
    from fomolab.stats._counts import arm_codes_by_run
    from fomolab.stats.compare import compare_tables

    runs = _folder.nonempty_runs(res)
    sh = res.viewers(["run_id", "arm", "replicate", "point", "shopper_id", "arrival_s", "departure_s",
                      "first_purchase_s"])
    for rows in (sh, sh.sample(frac=1.0, random_state=3)):
        code, names = arm_codes_by_run(rows, runs)
        want_code, want_names = pd.factorize(rows.arm.astype(str).to_numpy())
        assert np.array_equal(code, want_code) and list(names) == list(want_names) and code.itemsize == 1
    assert arm_codes_by_run(sh.assign(run_id=sh.run_id.astype(str)), runs) is None  # not coded: hashed
    assert arm_codes_by_run(sh, runs[runs.arm.astype(str) != "sale"]) is None  # a run not in runs
    # the table of the visits with their runs (arms by run codes) is that of the visits without
    assert compare_tables(res, runs, sh, n_boot=100).equals(table)


def test_the_contrasts_leave_the_visits_they_read_as_they_were(res):
    from fomolab.stats import _folder
    from fomolab.stats.compare import compare_tables

    # the contrasts read the visits' columns as they are (no copies): they must not write into them
    runs = _folder.nonempty_runs(res)
    visits = time_to_purchase(res.viewers(["run_id", "arm", "replicate", "point", "shopper_id", "arrival_s",
                                           "departure_s", "first_purchase_s"]))
    for bought in (visits.bought, visits.bought.astype(float)):
        sh = visits.assign(bought=bought)
        before = sh.copy(deep=True)
        compare_tables(res, runs, sh, n_boot=20)
        pd.testing.assert_frame_equal(sh, before, check_exact=True)


def test_the_contrasts_of_the_compact_visit_frame_are_those_of_the_visits_as_read(res, table):
    from fomolab.analysis import _stream_end, _visit_frame
    from fomolab.stats import _folder
    from fomolab.stats.compare import _slim_times, compare_tables

    runs = _folder.nonempty_runs(res)
    sh = _visit_frame(res.viewers(["run_id", "arm", "replicate", "point", "shopper_id", "arrival_s",
                                   "departure_s", "first_purchase_s"]),
                      _stream_end(res, runs.assign(arm=runs.arm.astype(str))))
    assert sh.bought.dtype == np.int8 and isinstance(sh.arm.dtype, pd.CategoricalDtype)
    # the arms kept as the frame's categorical (its codes, no text per row)
    slim = _slim_times(sh)
    assert isinstance(slim.arm.dtype, pd.CategoricalDtype)
    assert np.shares_memory(slim.arm.cat.codes.to_numpy(), sh.arm.cat.codes.to_numpy())
    assert compare_tables(res, runs, sh, n_boot=100).equals(table)
    # one replicate: the model-based contrasts read the pair's rows (arms, one-byte events) themselves
    one = sh[sh.replicate.to_numpy() == sh.replicate.iloc[0]].reset_index(drop=True)
    want = compare_tables(res, runs, one.assign(arm=one.arm.astype(str), bought=one.bought.astype(np.int64)),
                          n_boot=50)
    assert compare_tables(res, runs, one, n_boot=50).equals(want)


@pytest.mark.parametrize("stretch", [None, 5])
def test_each_arms_rows_come_by_time_in_four_bytes(monkeypatch, stretch):
    from fomolab.stats import compare

    if stretch:  # a few rows searched at a time: the same rows
        monkeypatch.setattr(compare, "_POSITION_ROWS", stretch)
    rng = np.random.default_rng(3)
    arm_of = rng.integers(-1, 3, 200).astype(np.int8)  # -1: a row of no arm compared
    t = np.ceil(rng.exponential(20.0, 200))  # ties
    names = np.array(["control", "sale", "sale_timer", "other"], dtype=object)
    for arms, codes in (([0, 1, 2], arm_of), (["control", "sale", "sale_timer"], names[arm_of])):
        got = compare._sorted_rows(codes, t, arms)
        assert list(got) == arms
        for k, a in enumerate(arms):
            assert got[a].dtype == np.int32
            assert np.array_equal(np.sort(got[a]), np.flatnonzero(arm_of == k))
            assert (np.diff(t[got[a]]) >= 0).all()


def test_the_contrasts_of_visits_in_small_types_are_those_of_wide_ones(res, table):
    from fomolab.stats import _folder
    from fomolab.stats.compare import compare_tables

    # the visit frame may hold bought in one byte and the replicates and points in fewer than eight
    runs = _folder.nonempty_runs(res)
    visits = time_to_purchase(res.viewers(["run_id", "arm", "replicate", "point", "shopper_id", "arrival_s",
                                           "departure_s", "first_purchase_s"]))
    small = visits.assign(bought=visits.bought.astype(np.int8), replicate=visits.replicate.astype(np.int8),
                          point=visits.point.astype(np.int32))
    before = small.copy(deep=True)
    pd.testing.assert_frame_equal(compare_tables(res, runs, small, n_boot=100), table, check_exact=True)
    pd.testing.assert_frame_equal(small, before, check_exact=True)  # replicates read as their own codes, unchanged


def test_an_arm_is_identical_to_the_control_only_with_the_same_viewers_and_outcomes():
    from fomolab.stats.compare import _identical

    rng = np.random.default_rng(5)
    n = 40
    ctrl = pd.DataFrame({"replicate": rng.integers(0, 3, n).astype(np.int16), "shopper_id": rng.integers(0, 15, n),
                         "time_s": np.ceil(rng.exponential(50.0, n)), "bought": (rng.random(n) < 0.4).astype(np.int8)})
    # the same rows in another order (a viewer's repeated rows, in the same order), after the control's
    rows = pd.concat([ctrl, ctrl.sort_values(["replicate", "shopper_id"], kind="stable")], ignore_index=True)
    at_ctrl, at_trt = np.arange(n)[::-1].astype(np.int32), np.arange(n, 2 * n).astype(np.int32)
    assert _identical(rows, at_ctrl, at_trt)
    assert not _identical(rows, at_ctrl, at_trt[1:])  # a row fewer
    other = rows.copy()
    other.loc[n + 3, "time_s"] += 1.0  # one viewer's time
    assert not _identical(other, at_ctrl, at_trt)
    other = rows.copy()
    buyer, not_buyer = n + int(np.flatnonzero(rows.bought[n:] == 1)[0]), n + int(np.flatnonzero(rows.bought[n:] == 0)[0])
    other.loc[[buyer, not_buyer], "bought"] = np.array([0, 1], np.int8)  # as many buyers, not the same ones
    assert not _identical(other, at_ctrl, at_trt)
    other = rows.copy()
    other.loc[n + 5, "shopper_id"] = 99  # another viewer
    assert not _identical(other, at_ctrl, at_trt)


@pytest.mark.parametrize("step", [1, 4, 1 << 20])
def test_times_read_by_time_a_stretch_at_a_time_are_those_of_the_sorted_rows(step):
    from fomolab.stats.compare import _ByTime, _median_of_events, _sorted_median_at_risk

    rng = np.random.default_rng(step)
    for n in (1, 2, 37, 200):
        t = np.ceil(rng.exponential(30.0, 3 * n))  # ties; the rows of another arm between
        o = np.flatnonzero(rng.random(3 * n) < 0.4)
        o = o[np.argsort(t[o], kind="stable")].astype(np.int32)
        if not len(o):
            continue
        sorted_t = t[o]
        tb = _ByTime(t, o, step)
        # times below, at, between and beyond the rows' times, sorted
        x = np.sort(np.concatenate((sorted_t, sorted_t + 0.5, [-1.0, 0.0, sorted_t[-1] + 10.0])))
        assert np.array_equal(tb.below(x), np.searchsorted(sorted_t, x, "left"))
        assert tb.last() == sorted_t[-1] and len(tb) == len(o)
        assert np.array_equal(tb.below(x[::3], check=True), np.searchsorted(sorted_t, x[::3], "left")) and tb.valid
        assert tb.below(x[::3]) is tb.below(x[::3].copy())  # the checked search's answer, kept
        e = (rng.random(len(o)) < 0.5).astype(np.int8)
        got = _median_of_events(len(tb), tb.at(np.flatnonzero(e)), tb.last(), tb.below)
        assert np.array_equal(np.array(got, float), np.array(_sorted_median_at_risk(sorted_t, e), float),
                              equal_nan=True)
    for wrong in (np.inf, -1.0, np.nan):  # a time the curves refuse, in the last stretch: found by the check
        bad = t.copy()
        bad[o[-1]] = wrong
        tb = _ByTime(bad, o, step)
        tb.below(np.zeros(0))
        assert tb.valid
        tb.below(np.zeros(0), check=True)
        assert not tb.valid
