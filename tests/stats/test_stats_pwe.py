"""The piecewise-exponential model on aggregated person-time.

With one piece per distinct event time it is the Cox partial likelihood with
Breslow ties (exact, to 1e-6); with a few pieces it is statsmodels' Poisson
GLM with piece effects and a log-exposure offset (exact); the aggregation adds
up over disjoint parts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from fomolab.errors import DataError
from fomolab.stats import cox
from fomolab.stats.pwe import person_time, piecewise_exponential


def _episodes(n: int, seed: int) -> pd.DataFrame:
    """Viewers cut at two tactic epochs (a sale on (300, 600] for arm 1), ties in time."""
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, n)
    seg = rng.integers(0, 2, n)
    arrive = np.round(rng.uniform(0, 500, n))
    stay = np.round(rng.exponential(400, n)) + 1
    leave = arrive + stay
    rows = []
    for lo, hi, on in ((0, 300, 0), (300, 600, 1), (600, 10_000, 0)):
        a, b = np.maximum(arrive, lo), np.minimum(leave, hi)
        m = a < b
        rows.append(pd.DataFrame({"viewer": np.flatnonzero(m), "start": a[m], "stop": b[m],
                                  "sale": (arm[m] * on), "seg": seg[m], "arm": arm[m]}))
    ep = pd.concat(rows, ignore_index=True)
    # hazard: 1/800 per s, x2 under the sale, x1.5 for seg 1: thin the follow-up
    rate = (1 / 800) * np.where(ep["sale"] == 1, 2.0, 1.0) * np.where(ep["seg"] == 1, 1.5, 1.0)
    t_ev = ep["start"] + np.ceil(rng.exponential(1 / rate) / 5) * 5  # ties: 5 s grid
    ep["event"] = 0
    hit = t_ev <= ep["stop"]
    ep.loc[hit, "stop"] = t_ev[hit]
    ep.loc[hit, "event"] = 1
    # keep each viewer's rows up to the first event
    ep = ep.sort_values(["viewer", "start"])
    after = ep.groupby("viewer")["event"].cumsum() - ep["event"]
    return ep[after == 0].reset_index(drop=True)


@pytest.fixture(scope="module")
def ep() -> pd.DataFrame:
    return _episodes(1500, 5)


@pytest.mark.parametrize(("strata", "cluster"), [(None, None), ("seg", None), (None, "viewer"),
                                            ("seg", "viewer")])
def test_event_time_pieces_are_cox_breslow(ep, strata, cluster):
    covs = ["sale", "arm"] if strata else ["sale", "seg", "arm"]
    c = cox(ep, "stop", "event", covs, start="start", ties="breslow", strata=strata,
            cluster=cluster)
    cells = person_time(ep, "stop", "event", covs, start="start", breaks="event_times",
                        strata=strata, cluster=cluster)
    if cluster is None:
        assert len(cells) < len(ep)  # it did aggregate
    f = piecewise_exponential(cells, covariates=covs, strata=strata, cluster=cluster)
    for col in ("coef", "se", "naive_se"):
        np.testing.assert_allclose(f.summary[col], c.summary[col], rtol=1e-6, err_msg=col)
    np.testing.assert_allclose(f.loglik, c.loglik, rtol=1e-9)
    np.testing.assert_allclose(f.tests.loc[["likelihood_ratio", "score"], "statistic"],
                               c.tests.loc[["likelihood_ratio", "score"], "statistic"], rtol=1e-6)
    assert f.events == c.events


def test_epoch_pieces_are_statsmodels_poisson_glm(ep):
    covs = ["sale", "seg"]
    cells = person_time(ep, "stop", "event", covs, start="start", breaks=[300, 600],
                        cluster="arm")
    assert cells["piece"].nunique() == 3
    f = piecewise_exponential(cells, covariates=covs, cluster="arm")
    X = pd.get_dummies(cells["piece"], prefix="p", dtype=float).join(cells[covs].astype(float))
    glm = sm.GLM(cells["events"], X, family=sm.families.Poisson(),
                 offset=np.log(cells["exposure"])).fit(
        cov_type="cluster", cov_kwds={"groups": cells["arm"], "use_correction": False})
    np.testing.assert_allclose(f.summary["coef"], glm.params[covs], rtol=1e-7)
    np.testing.assert_allclose(f.summary["se"], glm.bse[covs], rtol=1e-6)
    naive = sm.GLM(cells["events"], X, family=sm.families.Poisson(),
                   offset=np.log(cells["exposure"])).fit()
    np.testing.assert_allclose(f.summary["naive_se"], naive.bse[covs], rtol=1e-6)
    np.testing.assert_allclose(f.baseline["hazard"], np.exp(naive.params[:3]), rtol=1e-6)


def test_cells_split_or_in_another_order_fit_the_same(ep):
    # the fit pools the cells of one piece and pattern: splitting a cell in two (within its cluster) and
    # shuffling the cells change nothing but the order of sums
    covs = ["sale", "seg"]
    cells = person_time(ep, "stop", "event", covs, start="start", breaks=[300, 600], cluster="arm")
    whole = piecewise_exponential(cells, covariates=covs, cluster="arm")
    part = cells.assign(exposure=cells["exposure"] * 0.25, events=cells["events"] // 2)
    rest = cells.assign(exposure=cells["exposure"] - part["exposure"], events=cells["events"] - part["events"])
    split = pd.concat([part, rest], ignore_index=True).sample(frac=1.0, random_state=3)
    assert (split["events"] > 0).sum() > len(cells)
    fit = piecewise_exponential(split, covariates=covs, cluster="arm")
    assert fit.cells == 2 * len(cells) and fit.events == whole.events
    for col in ("coef", "se", "naive_se", "p"):
        np.testing.assert_allclose(fit.summary[col], whole.summary[col], rtol=1e-12, atol=0, err_msg=col)
    np.testing.assert_allclose(fit.loglik, whole.loglik, rtol=1e-12)
    np.testing.assert_allclose(fit.baseline["hazard"], whole.baseline["hazard"], rtol=1e-12)
    assert not np.array_equal(fit.summary["se"], fit.summary["naive_se"])


def test_aggregation_adds_up_and_keeps_totals(ep):
    covs = ["sale", "seg"]
    whole = person_time(ep, "stop", "event", covs, start="start", breaks=[300, 600])
    assert whole["exposure"].sum() == pytest.approx((ep["stop"] - ep["start"]).sum())
    assert whole["events"].sum() == ep["event"].sum()
    parts = [person_time(g, "stop", "event", covs, start="start", breaks=[300, 600])
             for _, g in ep.groupby(ep["viewer"] % 3)]
    keys = ["piece", "piece_start", "piece_stop", *covs]
    summed = pd.concat(parts).groupby(keys, as_index=False).sum()
    pd.testing.assert_frame_equal(summed, whole, check_dtype=False)
    # the exposure of each (piece, pattern) cell, row by row
    for _, cell in whole.iterrows():
        lo, hi = cell["piece_start"], cell["piece_stop"]
        m = (ep["sale"] == cell["sale"]) & (ep["seg"] == cell["seg"])
        pt = (np.minimum(ep.loc[m, "stop"], hi) - np.maximum(ep.loc[m, "start"], lo)).clip(0)
        assert cell["exposure"] == pytest.approx(pt.sum())


def test_epoch_pieces_approximate_cox(ep):
    # the baseline is constant here, so epoch pieces recover the Cox hazard ratios
    covs = ["sale", "seg"]
    c = cox(ep, "stop", "event", covs, start="start")
    f = piecewise_exponential(person_time(ep, "stop", "event", covs, start="start",
                                          breaks=[300, 600]), covariates=covs)
    diff = np.abs(f.summary["coef"] - c.summary["coef"])
    assert (diff < 0.25 * c.summary["se"]).all()


def test_bad_input():
    cells = pd.DataFrame({"piece": [0, 0], "x": [0, 1], "exposure": [1.0, 0.0], "events": [1, 1]})
    with pytest.raises(DataError, match="'exposure' must be > 0"):
        piecewise_exponential(cells, covariates="x")
    with pytest.raises(DataError, match="breaks"):
        person_time(cells, "exposure", "events", "x", breaks="epochs")


def test_event_time_cells_add_up_over_parts_given_all_event_times(ep):
    covs = ["sale", "seg"]
    tau = np.unique(ep.loc[ep["event"] == 1, "stop"])
    whole = person_time(ep, "stop", "event", covs, start="start")
    parts = [person_time(g, "stop", "event", covs, start="start", event_times=tau)
             for _, g in ep.groupby(ep["viewer"] % 4)]
    keys = ["piece", "piece_start", "piece_stop", *covs]
    summed = pd.concat(parts).groupby(keys, as_index=False).sum()
    pd.testing.assert_frame_equal(summed, whole, check_dtype=False)
    with pytest.raises(DataError, match="every event time"):
        person_time(ep, "stop", "event", covs, start="start", event_times=tau[1:])


def test_one_baseline_per_part_reduces_each_part_alone(ep):
    # each part (here: segment, as a run would be) aggregated on its own event times
    covs = ["sale", "arm"]
    cells = pd.concat([person_time(g, "stop", "event", covs, start="start", strata="seg")
                       for _, g in ep.groupby("seg")], ignore_index=True)
    f = piecewise_exponential(cells, covariates=covs, strata="seg")
    c = cox(ep, "stop", "event", covs, start="start", strata="seg", ties="breslow")
    np.testing.assert_allclose(f.summary["coef"], c.summary["coef"], rtol=1e-6)
    np.testing.assert_allclose(f.summary["se"], c.summary["se"], rtol=1e-6)


def test_a_covariate_constant_within_every_piece_is_refused():
    # "on" in piece 1 and "off" in piece 0 for every cell: the piece effects absorb it
    cells = pd.DataFrame({"piece": [0, 0, 1, 1], "x": [0, 1, 0, 1], "on": [0, 0, 1, 1],
                          "exposure": [100.0, 100.0, 50.0, 50.0], "events": [10, 20, 5, 10]})
    with pytest.raises(DataError, match="'on' take a single value"):
        piecewise_exponential(cells, covariates=["x", "on"])
    assert piecewise_exponential(cells, covariates=["x"]).summary.loc["x", "hazard_ratio"] == pytest.approx(2.0)
