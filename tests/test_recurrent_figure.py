"""The repeat-purchase figure's curve from counts equals the statistics package's curve of the per-row table.

The per-row definition: one row per purchase (its time since its visit's
arrival, an event) and one per visit (its length, no event), the subjects
the visits (in a marketplace a viewer's visits of one run, the purchases
timed from the viewer's first visit), :func:`fomolab.stats.mean_cumulative_function`
by arm, read on the figure's grid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fomolab import figure_data
from fomolab.errors import DataError
from fomolab.stats import mean_cumulative_function
from fomolab.stats._example import example_results


@pytest.fixture(scope="module")
def tables():
    res = example_results()
    sh = res.viewers(["run_id", "shopper_id", "arm", "arrival_s", "departure_s"])
    sh["arm"] = sh.arm.astype(str).astype(object)  # as the analysis holds it: text
    ev = res.table("events", ["run_id", "time_s", "kind", "shopper_id"])
    # viewers who buy again: more purchases between some purchases and the visit's end (twice for some)
    buys = ev[ev.kind == "purchase"].iloc[::3]
    visits = sh.assign(run_id=sh.run_id.astype(str))[["run_id", "shopper_id", "departure_s"]]
    more = buys.assign(run_id=buys.run_id.astype(str), shopper_id=buys.shopper_id.astype("int64")).merge(
        visits, on=["run_id", "shopper_id"])
    second = more.assign(time_s=(more.time_s + more.departure_s) / 2)
    third = second.iloc[::2].assign(time_s=lambda d: (d.time_s + d.departure_s) / 2)
    extra = pd.concat([second, third])[ev.columns].astype({"shopper_id": ev.shopper_id.dtype})
    extra["run_id"] = pd.Categorical(extra.run_id, categories=ev.run_id.cat.categories)
    ev = pd.concat([ev, extra], ignore_index=True).sort_values(["run_id", "time_s"], kind="stable")
    return sh, ev.reset_index(drop=True)


def _per_row(sh: pd.DataFrame, ev: pd.DataFrame, arms, horizon: float) -> pd.DataFrame:
    """The figure's table from the per-row definition."""
    first = sh.assign(run_id=sh.run_id.astype(str)).drop_duplicates(["run_id", "shopper_id"])
    buys = ev[ev.kind == "purchase"].assign(run_id=lambda d: d.run_id.astype(str),
                                            shopper_id=lambda d: d.shopper_id.astype("int64"))
    buys = buys.merge(first, on=["run_id", "shopper_id"])
    rows = pd.concat([buys.assign(t=(buys.time_s - buys.arrival_s).clip(lower=0), e=1),
                      sh.assign(t=(sh.departure_s - sh.arrival_s).clip(lower=0), e=0,
                                run_id=sh.run_id.astype(str))], ignore_index=True)
    rows["visit"] = rows.run_id + "/" + rows.shopper_id.astype(str)
    rows["arm"] = rows.arm.astype(str)
    mcf = mean_cumulative_function(rows, "t", "e", by="arm", id="visit").curve
    ends = sh.departure_s.to_numpy(float) - sh.arrival_s.to_numpy(float)
    grid, tick = figure_data._time_grid(ends, horizon)
    out = []
    for arm in arms:
        ref = mcf[mcf.group == arm].sort_values("time")
        M, lo, hi = figure_data._step_at({c: ref[c].to_numpy() for c in ("time", "mcf", "ci_lower", "ci_upper")},
                                         grid, ("mcf", "ci_lower", "ci_upper"))
        dur = np.sort(ends[sh.arm.astype(str).to_numpy() == arm])
        out.append(pd.DataFrame({"arm": arm, "time_s": grid, "mcf": M, "ci_lower": lo, "ci_upper": hi,
                                 "at_risk": (len(dur) - np.searchsorted(dur, grid, "left")).astype("int64"),
                                 "tick": tick}))
    return pd.concat(out, ignore_index=True)


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == figure_data.REPEAT_COLUMNS and len(got) == len(want) > 0
    for col in ("arm", "time_s", "at_risk", "tick"):
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(), err_msg=col)
    # the estimate is the same sum in the same order; the band's variance is summed in another order
    np.testing.assert_allclose(got.mcf.to_numpy(), want.mcf.to_numpy(), rtol=1e-13, atol=0)
    for col in ("ci_lower", "ci_upper"):
        np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), rtol=1e-12, atol=0, err_msg=col)


ARMS = ["control", "sale_timer"]


def test_curve_from_counts_is_the_per_row_curve(tables):
    sh, ev = tables
    assert ev.kind.eq("purchase").sum() > sh.shape[0] * 0.01
    buys = ev[ev.kind == "purchase"].groupby(["run_id", "shopper_id"], observed=True).size()
    assert buys.max() >= 3  # reaches viewers who buy again
    _same(figure_data.repeat_purchases(sh, ev, ARMS, 0.95, 300.0), _per_row(sh, ev, ARMS, 300.0))
    # the analysis' visit frame: four-byte viewer ids, the arm a categorical
    compact = sh.assign(shopper_id=sh.shopper_id.astype(np.int32), arm=sh.arm.astype("category"))
    pd.testing.assert_frame_equal(figure_data.repeat_purchases(compact, ev, ARMS, 0.95, 300.0),
                                  figure_data.repeat_purchases(sh, ev, ARMS, 0.95, 300.0), check_exact=True)


def test_visits_in_any_order_give_the_same_curve(tables):
    # shuffled visits and events (runs not in blocks, viewers not in order) take the sorted-keys path
    sh, ev = tables
    rng = np.random.default_rng(5)
    shuffled = sh.iloc[rng.permutation(len(sh))].reset_index(drop=True)
    ev2 = ev.iloc[rng.permutation(len(ev))].reset_index(drop=True)
    want = _per_row(sh, ev, ARMS, 300.0)
    _same(figure_data.repeat_purchases(shuffled, ev2, ARMS, 0.95, 300.0), want)
    # a text run id (not categorical) as well
    _same(figure_data.repeat_purchases(sh.assign(run_id=sh.run_id.astype(str)), ev, ARMS, 0.95, 300.0), want)


def test_a_viewers_visits_of_one_run_are_one_subject(tables):
    # a marketplace: some viewers come back (a second row with the same run and viewer)
    sh, ev = tables
    again = sh.iloc[::7].copy()
    length = again.departure_s - again.arrival_s
    again["arrival_s"] = again.departure_s + 5.0
    again["departure_s"] = again.arrival_s + length * 0.5 + 0.123
    market = pd.concat([sh, again], ignore_index=True)
    got = figure_data.repeat_purchases(market, ev, ARMS, 0.95, 300.0)
    _same(got, _per_row(market, ev, ARMS, 300.0))
    assert not got.equals(figure_data.repeat_purchases(sh, ev, ARMS, 0.95, 300.0))


def test_a_purchase_after_the_recorded_end_extends_the_follow_up(tables):
    sh, ev = tables
    ev = ev.copy()
    buy = np.flatnonzero((ev.kind == "purchase").to_numpy())[:20]
    late = ev.iloc[buy][["run_id", "shopper_id"]].assign(run_id=lambda d: d.run_id.astype(str))
    key = sh.run_id.astype(str) + "/" + sh.shopper_id.astype(str)
    hit = key.isin(late.run_id + "/" + late.shopper_id.astype(str)).to_numpy()
    early = sh.copy()
    early.loc[hit, "departure_s"] = early.arrival_s[hit] + 0.001  # the visits end before their purchases
    got = figure_data.repeat_purchases(early, ev, ARMS, 0.95, 300.0)
    _same(got, _per_row(early, ev, ARMS, 300.0))


def test_purchases_that_share_a_time_with_their_visits_rows_are_named(tables):
    sh, ev = tables
    buy = np.flatnonzero((ev.kind == "purchase").to_numpy())
    k = buy[3]
    rid, vid = str(ev.run_id.iloc[k]), int(ev.shopper_id.iloc[k])
    run_ids = sorted(sh.run_id.astype(str).unique())
    name = run_ids.index(rid) * (int(sh.shopper_id.max()) + 1) + vid
    i = int(np.flatnonzero(((sh.run_id.astype(str) == rid) & (sh.shopper_id == vid)).to_numpy())[0])
    arrival = float(sh.arrival_s.iloc[i])
    twice = pd.concat([ev, ev.iloc[[k]]], ignore_index=True)  # the same purchase twice
    with pytest.raises(DataError, match=f"subject {name} of column 'visit' has a row at time "):
        figure_data.repeat_purchases(sh, twice, ARMS, 0.95, 300.0)
    at_zero = ev.copy()
    at_zero.loc[k, "time_s"] = arrival  # a purchase at the moment of arrival
    with pytest.raises(DataError, match=f"subject {name} of column 'visit' has a row at time 0.0 that is not"):
        figure_data.repeat_purchases(sh, at_zero, ARMS, 0.95, 300.0)
    ends = sh.copy()
    ends.loc[i, "departure_s"] = float(ev.time_s.iloc[k])  # the visit ends at its purchase
    when = float(ev.time_s.iloc[k]) - arrival
    with pytest.raises(DataError, match=f"subject {name} of column 'visit' has a row at time {when!r}"):
        figure_data.repeat_purchases(ends, ev, ARMS, 0.95, 300.0)
    nothing = sh.assign(departure_s=sh.arrival_s)
    with pytest.raises(DataError, match="nothing at risk"):
        figure_data.repeat_purchases(nothing, ev[ev.kind != "purchase"], ARMS, 0.95, 300.0)
