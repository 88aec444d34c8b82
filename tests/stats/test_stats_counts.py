"""Cox fits on counts at the event times (fomolab.stats._counts) against stats.cox on the rows.

The analysis's rate, proportional-hazards and window tables fit their models
on per-(replicate, arm) counts at risk and events; here the counts' fit,
its warnings and errors, and the window table are checked against
:func:`fomolab.stats.cox` on the rows themselves, with tied times, strata and
delayed entry.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from fomolab.errors import DataError
from fomolab.stats import cox
from fomolab.stats._counts import cox_counts, event_time_counts


def rows(seed: int, n: int = 600, strata: int = 3, patterns: int = 3) -> pd.DataFrame:
    """(start, stop] rows with times rounded to 0.5 (many ties), arms 0..patterns-1, a stratum each."""
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, patterns, n)
    start = np.round(rng.uniform(0, 5, n) * 2) / 2 * (rng.random(n) < 0.6)
    dur = np.round(rng.exponential(6 / (1 + 0.5 * arm), n) * 2) / 2 + 0.5
    return pd.DataFrame({"stratum": rng.integers(0, strata, n), "arm": arm, "start": start, "stop": start + dur,
                         "event": (rng.random(n) < 0.7).astype(int)})


def fit_counts(d: pd.DataFrame, design: np.ndarray, names: list[str], start: bool = True):
    ev = d.event.to_numpy() == 1
    s, p = d.stratum.to_numpy(), d.arm.to_numpy()
    c = event_time_counts(s, p, d.start.to_numpy(float) if start else None, d.stop.to_numpy(float), s[ev], p[ev],
                          d.stop.to_numpy(float)[ev], design.shape[0])
    return cox_counts(c.at_risk, c.deaths, c.time, design, np.bincount(p, minlength=design.shape[0]), names)


@pytest.mark.parametrize("start", [True, False])
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_counts_give_the_cox_fit_of_the_rows(start, ties):
    d = rows(1)
    design = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])  # a tactic design: the second arm adds a tactic
    d["x0"], d["x1"] = design[d.arm, 0], design[d.arm, 1]
    want = cox(d, "stop", "event", ["x0", "x1"], start="start" if start else None, strata="stratum", ties=ties)
    ev = d.event.to_numpy() == 1
    s, p = d.stratum.to_numpy(), d.arm.to_numpy()
    c = event_time_counts(s, p, d.start.to_numpy(float) if start else None, d.stop.to_numpy(float), s[ev], p[ev],
                          d.stop.to_numpy(float)[ev], 3)
    got = cox_counts(c.at_risk, c.deaths, c.time, design, np.bincount(p, minlength=3), ["x0", "x1"], ties=ties)
    assert got.beta == pytest.approx(want.summary.coef.to_numpy(), rel=1e-10)
    assert got.var == pytest.approx(want.naive_vcov.to_numpy(), rel=1e-9)
    assert got.loglik == pytest.approx(want.loglik, rel=1e-11)
    assert got.iterations == want.iterations


def test_counts_at_risk_are_those_entered_and_not_yet_out():
    # one stratum, one pattern: entries 0, 1, 2; exits 3, 3, 5; events at 3 (two) and 5
    c = event_time_counts(np.zeros(3, int), np.zeros(3, int), np.array([0.0, 1.0, 2.0]), np.array([3.0, 3.0, 5.0]),
                          np.zeros(3, int), np.zeros(3, int), np.array([3.0, 3.0, 5.0]), 1)
    assert c.time.tolist() == [3.0, 5.0]
    assert c.at_risk[:, 0].tolist() == [3.0, 1.0] and c.deaths[:, 0].tolist() == [2.0, 1.0]
    # an entry at the event time is not yet at risk ((start, stop] rows)
    c = event_time_counts(np.zeros(2, int), np.zeros(2, int), np.array([0.0, 3.0]), np.array([3.0, 4.0]),
                          np.zeros(1, int), np.zeros(1, int), np.array([3.0]), 1)
    assert c.at_risk[:, 0].tolist() == [1.0]


def test_counts_refuse_and_warn_as_cox_does():
    d = rows(2, n=200, patterns=2)
    d["x"] = d.arm.astype(float)
    # no event in the treated arm: cox warns of a monotone likelihood; the counts give the same words
    d.loc[d.arm == 1, "event"] = 0
    with warnings.catch_warnings(record=True) as want:
        warnings.simplefilter("always")
        cox(d, "stop", "event", "x", start="start", strata="stratum")
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        fit_counts(d, np.array([[0.0], [1.0]]), ["x"])
    assert want and {str(w.message) for w in got} == {str(w.message) for w in want}
    # one arm only: a constant covariate, refused with the same message
    one = d[d.arm == 0]
    with pytest.raises(DataError) as want_exc:
        cox(one, "stop", "event", "x", start="start")
    with pytest.raises(DataError) as got_exc:
        fit_counts(one, np.array([[0.0], [1.0]]), ["x"])
    assert str(got_exc.value) == str(want_exc.value)


def test_window_table_equals_cox_on_each_window_and_replicate():
    from fomolab.stats.changes import across
    from fomolab.stats.ph import window_table

    rng = np.random.default_rng(3)
    n = 1500
    sh = pd.DataFrame({"point": 0, "replicate": np.repeat([0, 1, 2], n // 3),
                       "arm": np.tile(["control", "sale"], n // 2), "arrival_s": np.round(rng.uniform(0, 3000, n))})
    sh["time_s"] = np.round(rng.exponential(np.where(sh.arm == "sale", 500, 800)))
    sh["bought"] = (rng.random(n) < 0.5).astype(int)
    edges = [0.0, 900.0, 1200.0, 3600.0]
    got = window_table(sh, ["control", "sale"], "control", edges)
    for w, (a, b) in enumerate(itertools.pairwise(edges)):
        arr, t = sh.arrival_s.to_numpy(float), sh.time_s.to_numpy(float)
        cut = sh.assign(entry=np.maximum(a - arr, 0.0), exit=np.minimum(b - arr, t),
                        ev=((sh.bought == 1) & (t <= b - arr)).astype(int), treated=(sh.arm == "sale").astype(int))
        cut = cut[cut.exit > cut.entry]
        x = [cox(g, "exit", "ev", "treated", start="entry").summary.coef.iloc[0] for _, g in cut.groupby("replicate")]
        e, lo, hi, p, _ = across(np.array(x), 0.95)
        row = got[got.window == w].iloc[0]
        assert row.hazard_ratio == pytest.approx(np.exp(e), rel=1e-9)
        assert (row.ci_lower, row.ci_upper, row.p) == pytest.approx((np.exp(lo), np.exp(hi), p), rel=1e-7)
        assert row.events == cut.ev[cut.treated == 1].sum() and row.control_events == cut.ev[cut.treated == 0].sum()


def test_rate_table_from_visits_equals_the_table_from_rows(monkeypatch):
    from fomolab.stats import rates

    rng = np.random.default_rng(4)
    rows_ = []
    for rep, arm in itertools.product(range(3), ["control", "sale"]):
        arr = np.sort(rng.uniform(0, 900, 300))
        rows_.append(pd.DataFrame({"run_id": f"{arm}{rep}", "shopper_id": np.arange(300), "arm": arm,
                                   "replicate": rep, "point": 0, "arrival_s": arr,
                                   "departure_s": arr + rng.exponential(300, 300)}))
    visits = pd.concat(rows_, ignore_index=True)
    buys = visits.sample(400, replace=True, random_state=5)
    events = pd.DataFrame({"run_id": buys.run_id.to_numpy(), "kind": "purchase",
                           "shopper_id": buys.shopper_id.to_numpy(),
                           "product": rng.choice(["lip", "serum"], len(buys)),
                           "time_s": buys.arrival_s.to_numpy() + rng.uniform(0, 200, len(buys))})
    events = events.drop_duplicates(["run_id", "shopper_id", "product"])
    slots = pd.DataFrame([(r, p, a, b) for r in visits.run_id.unique() for p, a, b in [("lip", 0.0, 500.0),
                                                                                        ("serum", 500.0, 1200.0)]],
                         columns=["run_id", "product", "slot_start_s", "slot_end_s"])
    runs = visits.drop_duplicates("run_id")[["run_id", "arm"]]
    args = (visits, events, slots, runs, None, ["control", "sale"], "control", 0.95)
    fast = rates.rate_table(*args)
    monkeypatch.setattr(rates, "_parts", rates._parts_from_rows)
    slow = rates.rate_table(*args)
    assert len(fast) == 2 and (fast.events > 0).all()
    pd.testing.assert_frame_equal(fast, slow, rtol=1e-10)


def _many_replicate_visits(reps: int = 25, n: int = 80, arms: tuple[str, ...] = ("control", "sale")
                           ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Visits of ``arms`` over ``reps`` replicates (more than the 20 groups of fits), purchases, slots."""
    rng = np.random.default_rng(8)
    parts = []
    for rep, arm in itertools.product(range(reps), arms):
        arr = np.sort(np.round(rng.uniform(0, 900, n)))
        parts.append(pd.DataFrame({"run_id": f"{arm}{rep}", "shopper_id": np.arange(n), "arm": arm,
                                   "replicate": rep, "point": 0, "arrival_s": arr,
                                   "departure_s": arr + np.round(rng.exponential(300, n)) + 1}))
    visits = pd.concat(parts, ignore_index=True)
    buys = visits.sample(len(visits) // 2, random_state=9)
    events = pd.DataFrame({"run_id": buys.run_id.to_numpy(), "kind": "purchase", "shopper_id": buys.shopper_id,
                           "product": rng.choice(["lip", "serum"], len(buys)),
                           "time_s": buys.arrival_s.to_numpy() + np.round(rng.uniform(0, 200, len(buys)))})
    slots = pd.DataFrame([(r, p, a, b) for r in visits.run_id.unique() for p, a, b in [("lip", 0.0, 500.0),
                                                                                        ("serum", 500.0, 1200.0)]],
                         columns=["run_id", "product", "slot_start_s", "slot_end_s"])
    return visits, events, slots


@pytest.mark.parametrize(("chunk", "arms"), [(1_000_000, 2), (150, 2), (50, 2), (50, 6)])
def test_rate_table_is_that_of_the_rows_for_visits_in_any_order_and_arms_as_categories(monkeypatch, chunk, arms):
    from fomolab.stats import rates

    monkeypatch.setattr(rates, "_CHUNK_VISITS", chunk)  # 150, 50: a replicate's runs (80 visits each) at a time
    names = ("control", "sale", *(f"arm{k}" for k in range(arms - 2)))  # 6 arms x 25 replicates: over 127 cells
    visits, events, slots = _many_replicate_visits(arms=names)
    runs = visits.drop_duplicates("run_id")[["run_id", "arm"]]
    rest = (events, slots, runs, None, list(names), "control", 0.95)
    in_order = rates.rate_table(visits, *rest)  # a folder's order: by run and viewer
    shuffled = visits.sample(frac=1.0, random_state=1)
    coded = shuffled.assign(arm=shuffled.arm.astype("category"), run_id=shuffled.run_id.astype("category"))
    # the analysis' visit frame: four-byte viewer ids, one- or two-byte replicates and points
    compact = coded.astype({"shopper_id": np.int32, "replicate": np.int8, "point": np.int8})
    got = [rates.rate_table(v, *rest) for v in (shuffled, coded, compact)]
    pd.testing.assert_frame_equal(got[2], got[1], check_exact=True)
    monkeypatch.setattr(rates, "_parts", rates._parts_from_rows)
    rows = rates.rate_table(visits, *rest)
    assert (rows.replicates == 20).all() and (rows.events > 50).all()  # 25 replicates in 20 groups of fits
    for table in (in_order, *got):
        pd.testing.assert_frame_equal(table, rows, rtol=1e-10)


def test_window_table_counts_every_replicate_once_with_visits_in_any_order():
    from fomolab.stats.ph import window_table

    visits, _, _ = _many_replicate_visits()
    rng = np.random.default_rng(2)
    sh = visits.assign(time_s=visits.departure_s - visits.arrival_s, bought=(rng.random(len(visits)) < 0.4) * 1)
    sh = pd.concat([sh, sh.assign(point=1, bought=1 - sh.bought)], ignore_index=True)  # two points
    edges = [0.0, 300.0, 700.0, 2000.0]
    shuffled = sh.sample(frac=1.0, random_state=3)
    got = window_table(shuffled, ["control", "sale"], "control", edges)
    pd.testing.assert_frame_equal(got, window_table(sh, ["control", "sale"], "control", edges), rtol=1e-12)
    pd.testing.assert_frame_equal(got, window_table(shuffled.assign(arm=shuffled.arm.astype("category")),
                                                    ["control", "sale"], "control", edges), rtol=1e-12)
    compact = shuffled.astype({"arm": "category", "bought": np.int8, "replicate": np.int8, "point": np.int8,
                               "shopper_id": np.int32})
    pd.testing.assert_frame_equal(window_table(compact, ["control", "sale"], "control", edges),
                                  window_table(shuffled.assign(arm=shuffled.arm.astype("category")),
                                               ["control", "sale"], "control", edges), check_exact=True)
    arr, t = sh.arrival_s.to_numpy(), sh.time_s.to_numpy()
    for (point, w), row in got.set_index(["point", "window"]).iterrows():
        a, b = edges[w], edges[w + 1]
        at = (sh.point == point) & (np.minimum(b - arr, t) > np.maximum(a - arr, 0.0))
        ev = at & (sh.bought == 1) & (t <= b - arr)
        assert row.replicates == 20
        assert (row.events, row.control_events) == (ev[sh.arm == "sale"].sum(), ev[sh.arm == "control"].sum())


def test_rows_by_code_are_the_rows_of_each_code_in_row_order():
    from fomolab.stats._counts import rows_by_code

    codes = np.random.default_rng(6).integers(0, 7, 500)
    codes[codes == 4] = 5  # a code without rows
    order, cuts = rows_by_code(codes, 8)
    for c in range(8):
        assert order[cuts[c]:cuts[c + 1]].tolist() == np.flatnonzero(codes == c).tolist()


def test_first_seen_codes_of_a_categorical_are_those_of_its_text():
    from fomolab.stats._counts import first_seen_codes

    text = pd.Series(np.random.default_rng(7).choice(["sale", "control", "timer"], 300))
    cat = text.astype(pd.CategoricalDtype(["timer", "unused", "sale", "control"]))  # not in first-seen order
    shuffle = np.random.default_rng(8).permutation(300)
    for ordered in (None, lambda x: x[shuffle]):
        want_codes, want_names = pd.factorize((ordered or (lambda x: x))(text.to_numpy()))
        for col in (text, cat):
            codes, names = first_seen_codes(col, ordered)
            assert codes.tolist() == want_codes.tolist() and list(names) == list(want_names)


def test_proportional_hazards_tests_of_one_fit_share_the_pieces_that_do_not_depend_on_the_transform():
    from fomolab.stats._counts import zph_counts

    d = rows(4)
    fit = fit_counts(d, np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), ["a1", "a2"])
    shared: dict = {}
    for g in (fit.time - fit.time.mean(), np.log(fit.time) - 1.0, (fit.time - 3.0) ** 2):
        alone = zph_counts(fit, g)
        kept = zph_counts(fit, g, shared)
        assert "pieces" in shared
        assert all(np.array_equal(a, b) for a, b in zip(alone, kept, strict=True))


def test_first_seen_small_codes_are_those_codes_in_one_or_two_bytes():
    from fomolab.stats._counts import first_seen_codes, first_seen_small_codes

    rng = np.random.default_rng(9)
    text = pd.Series(rng.choice(["sale", "control", "timer"], 300))
    cat = text.astype(pd.CategoricalDtype(["timer", "unused", "sale", "control"]))  # not in first-seen order
    reps = pd.Series(rng.integers(0, 200, 300))  # 200 levels: two bytes
    gap = pd.Series(np.where(rng.random(300) < 0.1, None, text.to_numpy()), dtype=object)  # missing values: -1
    shuffle = rng.permutation(300)
    for ordered in (None, lambda x: x[shuffle]):
        for col, kind in ((text, np.int8), (cat, np.int8), (reps, np.int16), (gap, np.int8)):
            want_codes, want_names = first_seen_codes(col, ordered)
            codes, names = first_seen_small_codes(col, ordered, step=64)  # a few rows at a time
            assert codes.dtype == kind and codes.tolist() == want_codes.tolist()
            assert list(names) == list(want_names)


def test_rate_table_of_purchases_with_runs_and_products_as_categories_is_that_of_their_text():
    from fomolab.stats import rates

    visits, events, slots = _many_replicate_visits(reps=4)
    runs = visits.drop_duplicates("run_id")[["run_id", "arm"]]
    rest = (slots, runs, None, ["control", "sale"], "control", 0.95)
    text = rates.rate_table(visits, events, *rest)
    assert (text.events > 20).all()
    coded = events.assign(  # categories in no sorted order, with ones no purchase has and a run of no visit
        run_id=pd.Categorical(events.run_id, categories=["elsewhere", *sorted(set(events.run_id), reverse=True)]),
        product=pd.Categorical(events["product"], categories=["serum", "zzz", "lip", "aaa"]))
    pd.testing.assert_frame_equal(rates.rate_table(visits, coded, *rest), text, check_exact=True)
    pd.testing.assert_frame_equal(rates.rate_table(visits.assign(run_id=visits.run_id.astype("category")), coded,
                                                   *rest), text, check_exact=True)


def test_counts_of_more_cells_than_two_bytes_hold_are_those_of_each_part():
    rng = np.random.default_rng(6)
    S, P = 17_000, 2  # 34,000 (stratum, pattern) cells: eight-byte cell codes
    stratum = np.repeat(np.arange(S), 4)
    pattern = rng.integers(0, P, len(stratum))
    entry = np.round(rng.uniform(0, 5, len(stratum)))
    exit_ = entry + np.round(rng.uniform(1, 10, len(stratum)))
    ev = rng.random(len(stratum)) < 0.5

    def counts(keep: np.ndarray, shift: int):
        st = stratum[keep] - shift
        return event_time_counts(st, pattern[keep], entry[keep], exit_[keep], st[ev[keep]], pattern[keep][ev[keep]],
                                 exit_[keep][ev[keep]], P)

    whole = counts(np.ones(len(stratum), bool), 0)
    low, high = counts(stratum < 8_000, 0), counts(stratum >= 8_000, 8_000)  # two-byte codes each
    assert np.array_equal(whole.stratum, np.concatenate([low.stratum, high.stratum + 8_000]))
    for name in ("time", "at_risk", "deaths"):
        assert np.array_equal(getattr(whole, name), np.concatenate([getattr(low, name), getattr(high, name)]))
    assert whole.at_risk.sum() > 0


def test_sorted_small_codes_are_the_sorted_codes_in_one_or_two_bytes():
    from fomolab.stats._counts import sorted_codes, sorted_small_codes

    rng = np.random.default_rng(12)
    cases = [
        (rng.integers(0, 150, 500), np.int16),  # replicate numbers: looked up by value
        (rng.integers(-3, 4, 500) * 7 + 1000, np.int8),  # whole numbers away from 0, with gaps
        (rng.integers(0, 2 ** 40, 500, dtype=np.int64), np.int16),  # spread too wide to look up: hashed
        (rng.choice(["b", "a", "c"], 500).astype(object), np.int8),  # text: hashed
        (rng.integers(0, 100, 500).astype(np.uint16), np.int8),
    ]
    for values, kind in cases:
        want_levels, want_codes = sorted_codes(values)
        levels, codes = sorted_small_codes(values, step=64)  # a few rows at a time
        assert codes.dtype == kind and codes.tolist() == want_codes.tolist()
        assert levels.tolist() == want_levels.tolist()
    # replicate numbers 0 .. R - 1 in two bytes are their own codes: no copy of them
    values = rng.permutation(np.arange(500) % 150).astype(np.int16)
    levels, codes = sorted_small_codes(values, step=64)
    assert codes is values and levels.tolist() == list(range(150)) and levels.dtype == np.int16
    for other in (values + 1, np.delete(values, np.flatnonzero(values == 7)), values.astype(np.int32)):
        levels, codes = sorted_small_codes(other, step=64)  # from 1, a number missing, wider: coded
        assert codes is not other and codes.dtype == np.int16
        assert codes.tolist() == sorted_codes(other)[1].tolist() and levels.tolist() == sorted_codes(other)[0].tolist()


@pytest.mark.parametrize("order", ["C", "F"])
def test_products_a_block_of_rows_at_a_time_are_the_whole_products_to_the_bit(order):
    from fomolab.stats._counts import _by_rows

    # among them the shapes OpenBLAS multiplies otherwise in blocks (eight columns; one column of b, at
    # 262,147 rows), which are taken whole
    rng = np.random.default_rng(8)
    for P, q, m in itertools.product((1, 2, 4, 8), (1, 2, 3, 9), (1, 2, 5461, 5462, 5463, 30001, 262147)):
        a = rng.integers(0, 50_000, size=(m, P)).astype(float)
        a = np.asfortranarray(a) if order == "F" else a
        b = rng.normal(size=(P, q)) * np.exp(3 * rng.normal(size=(P, 1)))
        got = _by_rows(a, b)
        assert got.shape == (m, q)
        assert np.array_equal(got, a @ b), (P, q, m)


def test_fits_and_tests_on_counts_multiplied_in_blocks_of_rows_are_those_of_whole_products(monkeypatch):
    from fomolab.stats import _counts
    from fomolab.stats._counts import zph_counts

    d = rows(5, n=3000, strata=2, patterns=4)
    design = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    names = ["a1", "a2", "a3"]
    whole = fit_counts(d, design, names)
    g = whole.time - whole.time.mean()
    want = zph_counts(whole, g)
    monkeypatch.setattr(_counts, "_ROW_BLOCK", 40)  # blocks of three rows and of four
    blocks = fit_counts(d, design, names)
    assert len(whole.time) > 100
    assert np.array_equal(blocks.beta, whole.beta) and np.array_equal(blocks.var, whole.var)
    assert blocks.loglik == whole.loglik
    assert all(np.array_equal(a, b) for a, b in zip(zph_counts(blocks, g), want, strict=True))


def test_runs_in_order_are_found_a_block_at_a_time_and_refused_otherwise():
    from fomolab.stats.rates import _runs_in_order

    run = pd.Series(pd.Categorical(["a"] * 5 + ["c"] * 4 + ["d"] * 3, categories=["a", "b", "c", "d"]))
    sid = np.r_[0:5, 3:7, 0:3].astype(np.int32)
    for step in (1, 2, 4, 5, 100):  # blocks ending on, before and after a run's first visit
        names, bounds = _runs_in_order(run, sid, step=step)
        assert list(names) == ["a", "c", "d"] and bounds.tolist() == [0, 5, 9, 12]
        for bad_sid in (np.r_[0:5, 3:6, 5, 0:3], np.r_[0, 1, 3, 2, 4, 3:7, 0:3], np.r_[-1, 1:5, 3:7, 0:3]):
            assert _runs_in_order(run, bad_sid, step=step) is None  # a repeated id, one going back, one below 0
        back = pd.Series(pd.Categorical(["a"] * 5 + ["d"] * 4 + ["c"] * 3, categories=["a", "b", "c", "d"]))
        assert _runs_in_order(back, sid, step=step) is None  # runs not in the order of their codes
    assert _runs_in_order(run.astype(str), sid) is None
    assert _runs_in_order(run, sid.astype(np.int64) + 2 ** 32) is None


def test_rate_table_of_a_folders_visits_is_that_of_the_visits_keyed_by_text():
    from fomolab.stats import rates

    visits, events, slots = _many_replicate_visits(reps=4)
    # ids with gaps in one run (searched, not offset from its first id), purchases of ids without a visit
    gaps = visits.run_id == "sale2"
    visits.loc[gaps, "shopper_id"] = visits.shopper_id[gaps] * 3 + 5
    ev_gaps = events.run_id == "sale2"
    events.loc[ev_gaps, "shopper_id"] = events.shopper_id[ev_gaps] * 3 + 5
    events = pd.concat([events, events.head(30).assign(shopper_id=10_000)], ignore_index=True)
    # a product on show that nobody buys, its name sorted after the others
    slots = pd.concat([slots, slots[slots["product"] == "serum"].assign(product="zest")], ignore_index=True)
    runs = visits.drop_duplicates("run_id")[["run_id", "arm"]]
    rest = (slots, runs, None, ["control", "sale"], "control", 0.95)
    text = rates.rate_table(visits, events, *rest)  # the runs keyed by text, one run after another
    bought = text["product"] != "zest"
    assert (text.events[bought] > 20).all() and (text.events[~bought] == 0).all() and (~bought).sum() == 1
    folder = visits.assign(run_id=pd.Categorical(visits.run_id, categories=list(dict.fromkeys(visits.run_id))),
                           shopper_id=visits.shopper_id.astype(np.int32))
    assert rates._runs_in_order(folder.run_id, folder.shopper_id.to_numpy()) is not None
    coded = events.assign(product=events["product"].astype("category"))  # all runs of a product at once
    for ev in (events, coded):
        pd.testing.assert_frame_equal(rates.rate_table(folder, ev, *rest), text, check_exact=True)
    pd.testing.assert_frame_equal(rates.rate_table(visits, coded, *rest), text, check_exact=True)


def test_positions_in_runs_are_those_of_the_run_and_id_keys():
    from fomolab.stats.rates import _positions, _positions_in_runs

    rng = np.random.default_rng(3)
    sid = np.r_[0:50, 7:40, 5:200:3, 0:0, 2:30].astype(np.int32)  # ids from 0, from 7, with gaps, a run of none
    bounds = np.cumsum([0, 50, 33, 65, 0, 28])
    run = rng.integers(-1, 5, 400)
    b_sid = rng.integers(0, 120, 400)
    pos = _positions_in_runs(sid, bounds, run, b_sid)
    key_s = (np.repeat(np.arange(5), np.diff(bounds)).astype(np.int64) << 32) | sid
    want = _positions(key_s, bounds, run, (run.astype(np.int64) << 32) | np.where(run >= 0, b_sid, 0))
    found = (run >= 0) & (want < len(sid))
    found[found] = key_s[want[found]] == ((run[found].astype(np.int64) << 32) | b_sid[found])
    assert 60 < found.sum() < 300
    assert pos[found].tolist() == want[found].tolist()
    assert (pos[~found] == len(sid)).all()
