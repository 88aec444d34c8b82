"""Andersen–Gill rate models of purchases per product (fomolab.stats.rates).

The single fit is :func:`fomolab.stats.cox` on ``(start, stop]`` rows (itself
checked against R's printed ``coxph`` output in test_stats_cox.py); here it is
compared with an independent implementation, statsmodels' ``PHReg`` with
delayed entry and clustered errors (Breslow ties and distinct times, where
the two conventions agree), and the per-replicate combination is checked by
hand.
The Andersen–Gill fit of R's ``bladder2`` with ``cluster = id`` and the
stratified Wei–Lin–Weissfeld fit of ``bladder`` are checked against R's
printed ``coxph`` output (source BLADDER in r_output.py).  Data:
``bladder2.csv`` and ``bladder.csv`` are R's ``survival::bladder2`` (178 rows)
and ``survival::bladder`` (340 rows) from therneau/survival data/cancer.rda at
commit a2533a92, values unchanged.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from fomolab.errors import DataError
from fomolab.stats.rates import _tactic_design, purchase_intervals, rate_model

from r_output import close_to_printed as _close

DATA = pathlib.Path(__file__).parent / "data"


def recurrent(seed: int, n: int = 400, beta: float = np.log(1.8), rate: float = 0.2, follow: float = 10.0,
              replicates: int = 1) -> pd.DataFrame:
    """Poisson processes of rate ``rate * exp(beta x)`` times a gamma frailty per subject, cut into (start, stop]
    rows at each event."""
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(replicates):
        for i in range(n):
            x = i % 2
            frailty = rng.gamma(2.0, 0.5)  # subjects differ: events of one subject are correlated
            end = rng.uniform(0.5, 1.0) * follow
            t, last = 0.0, 0.0
            while True:
                t += rng.exponential(1 / (rate * frailty * np.exp(beta * x)))
                if t > end:
                    break
                rows.append((rep, rep * n + i, last, t, 1, x))
                last = t
            rows.append((rep, rep * n + i, last, end, 0, x))
    return pd.DataFrame(rows, columns=["replicate", "id", "start", "stop", "event", "x"])


def test_andersen_gill_bladder2_cluster_matches_r():
    # R, source BLADDER:
    #   fita <- coxph(Surv(start, stop, event) ~ rx + size + number, cluster=id, bladder2, ties='breslow')
    #   summary(fita)                       n= 178, number of events= 112
    #              coef exp(coef) se(coef) robust se      z Pr(>|z|)
    #   rx     -0.45979   0.63142  0.19996   0.25801 -1.782  0.07474
    #   size   -0.04256   0.95833  0.06903   0.07555 -0.563  0.57317
    #   number  0.17164   1.18726  0.04733   0.06131  2.799  0.00512
    #          exp(coef) exp(-coef) lower .95 upper .95
    #   rx        0.6314     1.5837    0.3808     1.047
    #   size      0.9583     1.0435    0.8264     1.111
    #   number    1.1873     0.8423    1.0528     1.339
    d = pd.read_csv(DATA / "bladder2.csv")
    assert len(d) == 178 and d.event.sum() == 112
    covs = ["rx", "size", "number"]
    fit = rate_model(d, "stop", "event", covs, start="start", cluster="id", ties="breslow").summary
    naive = rate_model(d, "stop", "event", covs, start="start", ties="breslow").summary
    want = {
        "rx": ("-0.45979", "0.63142", "0.19996", "0.25801", "-1.782", "0.07474", "0.3808", "1.047"),
        "size": ("-0.04256", "0.95833", "0.06903", "0.07555", "-0.563", "0.57317", "0.8264", "1.111"),
        "number": ("0.17164", "1.18726", "0.04733", "0.06131", "2.799", "0.00512", "1.0528", "1.339"),
    }
    for term, (coef, rr, se, robust, z, p, lo, hi) in want.items():
        row = fit.loc[term]
        _close(row.coef, coef)
        _close(row.rate_ratio, rr)
        _close(naive.loc[term].se, se)
        _close(row.se, robust)
        _close(row.t, z)
        _close(row.p, p)
        _close(row.ci_lower, lo)
        _close(row.ci_upper, hi)


def test_stratified_cluster_fit_bladder_wlw_matches_r():
    # R, source BLADDER (Wei, Lin and Weissfeld's marginal model: a stratum per recurrence):
    #   wfit <- coxph(Surv(stop, event) ~ (rx + size + number)* strata(enum),
    #                 cluster=id, bladder, ties='breslow')
    #                                 coef exp(coef) se(coef) robust se      z       p
    #   rx                        -0.51762   0.59594  0.31576   0.30750 -1.683 0.09231
    #   size                       0.06789   1.07025  0.10125   0.08529  0.796 0.42602
    #   number                     0.23599   1.26617  0.07608   0.07208  3.274 0.00106
    #   rx:strata(enum)enum=2     -0.10182   0.90319  0.50427   0.32654 -0.312 0.75518
    #   rx:strata(enum)enum=3     -0.18226   0.83339  0.55790   0.39162 -0.465 0.64165
    #   rx:strata(enum)enum=4     -0.13317   0.87531  0.65813   0.49680 -0.268 0.78865
    #   size:strata(enum)enum=2   -0.14401   0.86588  0.16800   0.11190 -1.287 0.19812
    #   size:strata(enum)enum=3   -0.27920   0.75639  0.20862   0.15115 -1.847 0.06472
    #   size:strata(enum)enum=4   -0.27106   0.76257  0.25146   0.18563 -1.460 0.14422
    #   number:strata(enum)enum=2 -0.09843   0.90625  0.11931   0.11439 -0.861 0.38951
    #   number:strata(enum)enum=3 -0.06616   0.93598  0.12983   0.11672 -0.567 0.57083
    #   number:strata(enum)enum=4  0.09280   1.09724  0.14657   0.11754  0.790 0.42982
    #   n= 340, number of events= 112
    d = pd.read_csv(DATA / "bladder.csv")
    assert len(d) == 340 and d.event.sum() == 112
    inter = [f"{v}:{k}" for v in ("rx", "size", "number") for k in (2, 3, 4)]
    d = d.assign(zero=0, **{f"{v}:{k}": d[v] * (d.enum == k) for v in ("rx", "size", "number") for k in (2, 3, 4)})
    covs = ["rx", "size", "number", *inter]
    fit = rate_model(d, "stop", "event", covs, start="zero", strata="enum", cluster="id", ties="breslow").summary
    naive = rate_model(d, "stop", "event", covs, start="zero", strata="enum", ties="breslow").summary
    printed = """
    -0.51762 0.59594 0.31576 0.30750 -1.683 0.09231
    0.06789 1.07025 0.10125 0.08529 0.796 0.42602
    0.23599 1.26617 0.07608 0.07208 3.274 0.00106
    -0.10182 0.90319 0.50427 0.32654 -0.312 0.75518
    -0.18226 0.83339 0.55790 0.39162 -0.465 0.64165
    -0.13317 0.87531 0.65813 0.49680 -0.268 0.78865
    -0.14401 0.86588 0.16800 0.11190 -1.287 0.19812
    -0.27920 0.75639 0.20862 0.15115 -1.847 0.06472
    -0.27106 0.76257 0.25146 0.18563 -1.460 0.14422
    -0.09843 0.90625 0.11931 0.11439 -0.861 0.38951
    -0.06616 0.93598 0.12983 0.11672 -0.567 0.57083
    0.09280 1.09724 0.14657 0.11754 0.790 0.42982
    """.strip().splitlines()
    for term, line in zip(covs, printed, strict=True):
        coef, rr, se, robust, z, p = line.split()
        row = fit.loc[term]
        _close(row.coef, coef)
        _close(row.rate_ratio, rr)
        _close(naive.loc[term].se, se)
        _close(row.se, robust)
        _close(row.t, z)
        _close(row.p, p)


def test_single_fit_matches_lifelines_and_the_grouped_jackknife():
    from lifelines import CoxPHFitter

    d = recurrent(1, n=200)
    ours = rate_model(d, "stop", "event", "x", start="start", cluster="id").summary.loc["x"]
    naive = rate_model(d, "stop", "event", "x", start="start").summary.loc["x"]
    ll = CoxPHFitter().fit(d[["start", "stop", "event", "x"]], "stop", "event", entry_col="start")
    # lifelines (Efron ties, delayed entry): the same partial likelihood, to its convergence tolerance
    assert ours.coef == pytest.approx(ll.params_["x"], abs=1e-5)
    assert naive.se == pytest.approx(ll.standard_errors_["x"], rel=1e-5)
    # R's cluster(id) sandwich is the infinitesimal jackknife of the subjects; the grouped jackknife, by
    # refitting without each subject, is within a few per cent of it for 200 subjects (lifelines' own
    # cluster_col errors ignore the delayed entry: they come out below the naive ones, so they are not used)
    from fomolab.stats.cox import cox

    b = np.array([cox(d[d.id != i], "stop", "event", "x", start="start").summary.coef["x"] for i in d.id.unique()])
    n = len(b)
    jack = np.sqrt((n - 1) / n * ((b - b.mean()) ** 2).sum())
    assert ours.se == pytest.approx(jack, rel=0.03)
    assert ours.se > 1.15 * naive.se  # the frailty makes a subject's events correlated


def test_robust_errors_are_wider_than_naive_when_events_cluster_in_subjects():
    from fomolab.stats.cox import cox

    d = recurrent(2)
    fit = cox(d, "stop", "event", "x", start="start", cluster="id").summary.loc["x"]
    assert fit.se > 1.2 * fit.naive_se  # the gamma frailty makes a subject's events correlated


def test_planted_rate_ratio_is_recovered():
    d = recurrent(3, n=2000)
    s = rate_model(d, "stop", "event", "x", start="start", cluster="id").summary.loc["x"]
    assert s.ci_lower < 1.8 < s.ci_upper
    assert s.rate_ratio == pytest.approx(1.8, abs=4 * 1.8 * s.se)


def test_per_replicate_fits_combine_by_a_t_interval():
    from fomolab.stats.cox import cox

    d = recurrent(4, n=300, replicates=4)
    fit = rate_model(d, "stop", "event", "x", start="start", replicate="replicate")
    b = np.array([cox(g, "stop", "event", "x", start="start").summary.coef["x"] for _, g in d.groupby("replicate")])
    s = fit.summary.loc["x"]
    half = st.t.ppf(0.975, 3) * b.std(ddof=1) / 2
    assert s.coef == pytest.approx(b.mean(), rel=1e-12) and s.df == 3 and s.replicates == 4
    assert (s.ci_lower, s.ci_upper) == pytest.approx((np.exp(b.mean() - half), np.exp(b.mean() + half)), rel=1e-12)
    assert fit.per_replicate.coef.to_numpy() == pytest.approx(b, rel=1e-12)
    assert "t across 4 replicates" in repr(fit)


def test_a_replicate_without_an_estimate_gives_nan_and_names_it():
    d = recurrent(5, n=100, replicates=3)
    d.loc[(d.replicate == 1) & (d.x == 1), "event"] = 0  # no event in one arm of replicate 1
    s = rate_model(d, "stop", "event", "x", start="start", replicate="replicate").summary.loc["x"]
    assert np.isnan(s.rate_ratio) and "replicate(s) 1 give no estimate" in s.note


def test_one_replicate_has_no_interval():
    d = recurrent(6, n=200)
    s = rate_model(d, "stop", "event", "x", start="start", replicate="replicate").summary.loc["x"]
    assert np.isfinite(s.rate_ratio) and np.isnan(s.ci_lower) and "one replicate" in s.note


def test_bad_columns_are_refused():
    with pytest.raises(DataError, match="nope"):
        rate_model(recurrent(7, n=20), "stop", "event", "nope", start="start")


def test_purchase_intervals_cut_each_product_slot_at_its_purchases():
    shoppers = pd.DataFrame({"run_id": ["r", "r"], "shopper_id": [0, 1], "arm": "a", "arrival_s": [100.0, 700.0],
                             "departure_s": [500.0, 800.0]})
    events = pd.DataFrame({"run_id": "r", "time_s": [150.0, 250.0, 120.0, 450.0], "kind": "purchase",
                           "shopper_id": [0, 0, 1, 0], "product": ["lip", "lip", "lip", "serum"]})
    slots = pd.DataFrame({"run_id": "r", "product": ["lip", "serum"], "slot_start_s": [0.0, 300.0],
                          "slot_end_s": [300.0, 1000.0]})
    got = purchase_intervals(shoppers, events, slots)
    rows = [tuple(r) for r in got[["shopper_id", "product", "start", "stop", "event"]].itertuples(index=False)]
    # viewer 0: lipstick on show from arrival to 200 s after it, bought at 50 s and 150 s; serum from 200 s
    # to departure (400 s), bought at 350 s; viewer 1 arrives after the lipstick's slot: serum only
    assert rows == [(0, "lip", 0.0, 50.0, 1), (0, "lip", 50.0, 150.0, 1), (0, "lip", 150.0, 200.0, 0),
                    (0, "serum", 200.0, 350.0, 1), (0, "serum", 350.0, 400.0, 0), (1, "serum", 0.0, 100.0, 0)]
    assert set(got.columns) >= {"run_id", "arm", "shopper_id", "product", "start", "stop", "event"}


def test_tactic_design_needs_tactics_that_vary_and_are_not_collinear():
    runs = pd.DataFrame({"run_id": ["c", "s", "st"], "arm": ["control", "sale", "sale_timer"]})
    tac = pd.DataFrame({"run_id": ["s", "st", "st"], "product": "lip",
                        "tactic": ["lightning_sale", "lightning_sale", "countdown_timer"]})
    m = _tactic_design(runs, tac, "lip", ["control", "sale", "sale_timer"])
    assert m.to_dict() == {"countdown_timer": {"control": 0, "sale": 0, "sale_timer": 1},
                           "lightning_sale": {"control": 0, "sale": 1, "sale_timer": 1}}
    # both tactics only ever together: their effects cannot be told apart
    assert _tactic_design(runs[runs.arm != "sale"], tac, "lip", ["control", "sale_timer"]) is None
    assert _tactic_design(runs, tac, "serum", ["control", "sale", "sale_timer"]) is None


def test_purchases_are_placed_at_the_visit_of_their_key_whatever_the_viewer_ids():
    from fomolab.stats.rates import _positions

    # runs 0..3: ids numbered from 0, from 7, with gaps, and no visits; keys (run << 32 | id), sorted
    ids = [np.arange(5), np.arange(7, 11), np.array([2, 4, 5, 9])]
    key_s = np.concatenate([(r << 32) | v for r, v in enumerate(ids)]).astype(np.int64)
    bounds = np.array([0, 5, 9, 13, 13])
    run = np.array([0, 0, 1, 1, 2, 2, 2, 3, -1, 0, 1, 2])
    sid = np.array([4, 0, 7, 10, 4, 9, 3, 1, 0, 9, 6, 40])
    key = (run.astype(np.int64) << 32) | np.where(run >= 0, sid, 0)
    pos = _positions(key_s, bounds, run, key)
    want = np.searchsorted(key_s, key)
    hit = (run >= 0) & (want < len(key_s))
    hit[hit] = key_s[want[hit]] == key[hit]
    # found: ids from 0, from 7, after a gap (id 4 is not the run's third visit); not found: an id in a
    # gap, a run without visits, no run, ids past the run's
    assert hit.tolist() == [True] * 6 + [False] * 6
    assert pos[hit].tolist() == want[hit].tolist() == [4, 0, 5, 8, 10, 12]
    miss = ~hit
    assert not ((pos[miss] < len(key_s)) & (key_s[np.minimum(pos[miss], len(key_s) - 1)] == key[miss])).any()


def test_codes_looked_up_per_run_are_the_first_seen_codes_of_the_visits():
    from fomolab.stats._counts import first_seen_small_codes
    from fomolab.stats.rates import _codes_by_run

    bounds = np.array([0, 3, 3, 7, 9])  # the second run has no visits
    reps = pd.Series([5, 5, 5, 2, 2, 2, 2, 5, 5])
    arms = pd.Series(pd.Categorical(["t", "t", "t", "c", "c", "c", "c", "t", "t"], categories=["c", "t", "x"]))
    for col, runs in ((reps, [0, -1, 1, 0]), (arms, [0, -1, 1, 0])):
        codes, names, of_run = _codes_by_run(col, lambda x: x, bounds)
        want_codes, want_names = first_seen_small_codes(col)
        assert codes.dtype == want_codes.dtype and codes.tolist() == want_codes.tolist()
        assert list(names) == list(want_names) and of_run.tolist() == runs
    mixed = pd.Series([5, 5, 6, 2, 2, 2, 2, 5, 5])  # a run of two replicates: every visit looked up
    codes, names, of_run = _codes_by_run(mixed, lambda x: x, bounds)
    assert of_run is None and codes.tolist() == first_seen_small_codes(mixed)[0].tolist()
