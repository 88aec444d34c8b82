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
    got = [rates.rate_table(v, *rest) for v in (shuffled, coded)]
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
