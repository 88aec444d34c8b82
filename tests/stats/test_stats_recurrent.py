"""Tests of nelson_aalen and mean_cumulative_function.

The Nelson–Aalen influence values are R's (tests/book1.Rout.save of
therneau/survival, commit a2533a92: ``survfit(Surv(time, status) ~ 1, test1,
id = 1:7, influence = TRUE)`` checked there against exact fractions).  No R
transcript prints a mean cumulative function of recurrent events, so that is
checked against a brute-force infinitesimal jackknife (numerical derivatives
with respect to each subject's case weight) and the estimate against a direct
count; the Nelson–Aalen estimate also against lifelines.  R's printed
Fleming–Harrington curve of ``lung`` (source CANCER_A2 in r_output.py),
``exp(-cumhaz)`` of the same ``sum d_j / n_j``, checks the estimate of
:func:`mean_cumulative_function` on one row per subject with its counts
(its standard error is Tsiatis' model-based one, not the robust one here).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import NelsonAalenFitter
from lifelines.datasets import load_lung

from fomolab.errors import DataError
from fomolab.stats import mean_cumulative_function, nelson_aalen

from r_output import close_to_printed as _close

# R: test1 of tests/book1.Rout.save without its row whose status is NA
TEST1 = pd.DataFrame({"time": [9, 1, 1, 6, 6, 8], "status": [1, 1, 0, 1, 1, 0]})


def test_nelson_aalen_influence_matches_r_book1():
    # R, tests/book1.Rout.save: influence.chaz at times 1 and 6 (and 8, 9 equal to 6)
    # inf1 <- matrix(c(10, rep(-2,5), 10, -2, 7,7, -11, -11)/72, ncol=2)
    inf1 = np.array([[10, -2, -2, -2, -2, -2], [10, -2, 7, 7, -11, -11]]) / 72
    want = np.sqrt((inf1 ** 2).sum(axis=1))
    na = nelson_aalen(TEST1, "time", "status")
    cur = na.curve.set_index("time")
    assert cur.loc[1.0, "mcf"] == pytest.approx(1 / 6)
    assert cur.loc[6.0, "mcf"] == pytest.approx(1 / 6 + 2 / 4)
    assert cur.loc[9.0, "mcf"] == pytest.approx(1 / 6 + 2 / 4 + 1)
    np.testing.assert_allclose(cur.loc[[1.0, 6.0, 9.0], "std_err"], want[[0, 1, 1]], rtol=1e-12)


def test_mcf_one_row_per_subject_is_r_fleming_harrington_lung():
    # R, source CANCER_A2:
    #   temp <- survfit(Surv(time, status)~1, lung, type='fleming',
    #                   conf.int=.9, conf.type='log-log', error='tsiatis')
    #   summary(temp, times=30 *1:5)
    #    time n.risk n.event survival std.err lower 90% CI upper 90% CI
    #      30    219      10    0.956  0.0135        0.928        0.974
    #      60    213       7    0.926  0.0173        0.891        0.950
    #      90    201      10    0.882  0.0213        0.842        0.913
    #     120    189      10    0.838  0.0244        0.793        0.874
    #     150    179      10    0.794  0.0268        0.745        0.834
    lung = load_lung().reset_index(names="id")  # status recoded 1/2 -> 0/1 by lifelines
    cur = mean_cumulative_function(lung, "time", "status", id="id").curve
    before = 0
    for t, n_risk, n_event, surv in [(30, 219, 10, "0.956"), (60, 213, 7, "0.926"), (90, 201, 10, "0.882"),
                                      (120, 189, 10, "0.838"), (150, 179, 10, "0.794")]:
        upto = cur[cur["time"] <= t]
        _close(float(np.exp(-upto["mcf"].iloc[-1])), surv)
        assert upto["events"].sum() - before == n_event
        before = upto["events"].sum()
        assert cur[cur["time"] >= t]["at_risk"].iloc[0] == n_risk


def test_nelson_aalen_matches_lifelines_by_group():
    lung = load_lung()
    na = nelson_aalen(lung, "time", "status", by="sex")
    for sex in (1, 2):
        sub = lung[lung["sex"] == sex]
        lf = NelsonAalenFitter(nelson_aalen_smoothing=False).fit(sub["time"], sub["status"])
        cur = na.curve[na.curve["group"] == sex].set_index("time")["mcf"]
        np.testing.assert_allclose(cur, lf.cumulative_hazard_.loc[cur.index].iloc[:, 0], rtol=1e-12)


def _recurrent(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        t, end = 0.0, float(np.round(rng.uniform(5, 20), 1))
        while True:
            t = float(np.round(t + rng.exponential(4) + 0.1, 1))
            if t >= end:
                rows.append((i, end, 0, i % 2))
                break
            rows.append((i, t, 1, i % 2))
    return pd.DataFrame(rows, columns=["id", "t", "e", "arm"])


def _brute(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    d = df.sort_values(["id", "t"]).reset_index(drop=True)
    s = d.groupby("id")["t"].shift(1).fillna(0.0).to_numpy()
    t, e, ids = d["t"].to_numpy(), d["e"].to_numpy(), d["id"].to_numpy()
    et = np.unique(t[e > 0])

    def mcf(w):
        return np.cumsum([(w * ((t == u) & (e > 0))).sum() / (w * ((s < u) & (t >= u))).sum()
                          for u in et])

    h = 1e-6
    infl = []
    for i in np.unique(ids):
        up, dn = np.ones(len(t)), np.ones(len(t))
        up[ids == i] += h
        dn[ids == i] -= h
        infl.append((mcf(up) - mcf(dn)) / (2 * h))
    return mcf(np.ones(len(t))), np.sqrt((np.array(infl) ** 2).sum(axis=0))


def test_mcf_is_nelson_aalen_with_lawless_nadeau_errors():
    df = _recurrent(0, 30)
    assert df.groupby("id")["e"].sum().max() >= 2  # reaches repeat events
    res = mean_cumulative_function(df, "t", "e", id="id")
    est, se = _brute(df)
    np.testing.assert_allclose(res.curve["mcf"], est, rtol=1e-12)
    np.testing.assert_allclose(res.curve["std_err"], se, rtol=1e-6)
    # grouping by subject matters: per-row errors differ
    rowwise = df.sort_values(["id", "t"]).assign(s=lambda x: x.groupby("id")["t"].shift(1).fillna(0))
    naive = nelson_aalen(rowwise, "t", "e", start="s")
    assert not np.allclose(naive.curve["std_err"], res.curve["std_err"], rtol=1e-3)
    by_id = nelson_aalen(rowwise, "t", "e", start="s", id="id")
    np.testing.assert_allclose(by_id.curve["std_err"], res.curve["std_err"], rtol=1e-12)


def test_mcf_per_group_and_summary():
    df = _recurrent(1, 40)
    res = mean_cumulative_function(df, "t", "e", by="arm", id="id", at=10)
    assert list(res.summary["group"]) == [0, 1]
    for arm in (0, 1):
        sub = df[df["arm"] == arm]
        one = mean_cumulative_function(sub, "t", "e", id="id", at=10).summary.iloc[0]
        row = res.summary.set_index("group").loc[arm]
        assert row["mcf"] == pytest.approx(one["mcf"]) and row["se"] == pytest.approx(one["se"])
        assert row["ci_lower"] < row["mcf"] < row["ci_upper"]
        assert row["subjects"] == sub["id"].nunique()


def test_mcf_bad_input():
    df = pd.DataFrame({"id": [1, 1], "t": [3, 3], "e": [1, 0]})
    with pytest.raises(DataError, match="not after its previous row"):
        mean_cumulative_function(df, "t", "e", id="id")
    over = pd.DataFrame({"id": [1, 1], "s": [0, 2], "t": [3, 5], "e": [1, 0]})
    with pytest.raises(DataError, match="overlap"):
        nelson_aalen(over, "t", "e", start="s", id="id")
    with pytest.raises(DataError, match="conf_type"):
        nelson_aalen(TEST1, "time", "status", conf_type="log-log")


def test_mcf_leaves_out_visits_of_no_length():
    df = pd.DataFrame({"id": [1, 1, 2, 3], "t": [2, 5, 0, 4], "e": [1, 0, 0, 1]})
    res = mean_cumulative_function(df, "t", "e", id="id")
    # at t=2 viewers 1 and 3 are at risk (viewer 2 left at 0); at t=4 the same two
    np.testing.assert_allclose(res.curve["mcf"], [1 / 2, 1 / 2 + 1 / 2])
    assert res.summary["subjects"].iloc[0] == 2
    with pytest.raises(DataError, match="not after its previous row"):
        mean_cumulative_function(df.assign(e=[1, 0, 1, 1]), "t", "e", id="id")


def _visits(seed: int, n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Visits' lengths (some of none, ties on a coarse clock) and their purchase times, repeats included."""
    rng = np.random.default_rng(seed)
    ends = np.round(rng.uniform(0, 20, n), 1)
    ends[rng.random(n) < 0.1] = 0.0
    buys = []
    for end in ends:
        t = np.unique(np.round(rng.uniform(0, end, rng.poisson(1.2)), 1)) if end > 0 else np.zeros(0)
        buys.append(t[(t > 0) & (t < end)])
    return ends, buys


@pytest.mark.parametrize("seed", range(6))
def test_follow_up_curve_from_counts_is_the_curve_of_the_gap_rows(seed):
    from fomolab.stats.recurrent import follow_up_curve, gap_starts, mcf_curve

    ends, buys = _visits(seed, 80)
    assert max(len(b) for b in buys) >= 3
    sub = np.concatenate([np.full(len(b), i) for i, b in enumerate(buys)])
    t = np.concatenate(buys)
    # the per-row definition: a row per purchase and per visit's end, each from the subject's previous row
    code = np.concatenate([sub, np.arange(len(ends))])
    stop = np.concatenate([t, ends])
    ev = np.concatenate([np.ones(len(t)), np.zeros(len(ends))])
    start, empty = gap_starts(code, stop, ev)
    want = mcf_curve(start[~empty], stop[~empty], ev[~empty], code[~empty], 1.96)
    first = np.concatenate(([True], sub[1:] != sub[:-1]))
    got = follow_up_curve(np.sort(ends), t, first, ends[np.unique(sub)], 1.96)
    assert len(got["time"]) > 20
    for col in ("time", "at_risk", "events", "mcf"):
        np.testing.assert_array_equal(got[col], want[col], err_msg=col)
    for col in ("std_err", "ci_lower", "ci_upper"):  # the same sums in another order
        np.testing.assert_allclose(got[col], want[col], rtol=1e-12, atol=0, err_msg=col)
    # a subject counted in ``ends`` at another time than its end: as if listed at its end
    moved = ends.copy()
    b = np.unique(sub)
    moved[b[:5]] = np.round(moved[b[:5]] / 3, 1)
    listed = follow_up_curve(np.sort(moved), t, first, ends[b], 1.96, listed=moved[b])
    for col in got:
        np.testing.assert_array_equal(listed[col], got[col], err_msg=col)
    plain = follow_up_curve(np.sort(ends), t, first, ends[b], 1.96, conf_type="plain")
    np.testing.assert_allclose(plain["ci_lower"], np.maximum(got["mcf"] - 1.96 * got["std_err"], 0), rtol=1e-12)
    none = follow_up_curve(np.sort(ends), t[:0], first[:0], ends[:0], 1.96)
    assert all(len(v) == 0 for v in none.values())
