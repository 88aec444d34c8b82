"""The episode model from aggregated counts equals the counting-process Cox model (Breslow ties)."""

from __future__ import annotations

import numpy as np
import pytest

from fomolab.episode_model import EPISODE_MODEL_COLUMNS, episode_counts, episode_model, tactic_episodes
from fomolab.stats import cox
from fomolab.stats._example import example_results


@pytest.fixture(scope="module")
def res():
    return example_results()


@pytest.fixture(scope="module")
def flagship(tmp_path_factory):
    from fomolab import run

    from helpers import ROOT

    return run(ROOT / "experiments/lightning_sale.toml", tmp_path_factory.mktemp("e") / "r", replicates=2)


@pytest.mark.parametrize(("which", "sample"), [("res", None), ("res", 0.5), ("flagship", None)])
def test_hazard_ratios_equal_the_cox_fit_on_the_episodes(which, sample, request):
    res = request.getfixturevalue(which)
    table = episode_model(res, sample=sample, seed=3)
    assert list(table.columns) == EPISODE_MODEL_COLUMNS
    ep = tactic_episodes(res, sample=sample, seed=3)
    covs = table.attrs["covariates"]
    assert covs[: len(table)] == table.covariate.tolist()
    fit = cox(ep, "stop_s", "event", covs, start="start_s", ties="breslow", cluster="replicate").summary
    for _, row in table.iterrows():
        c = fit.loc[row.covariate]
        assert row.hazard_ratio == pytest.approx(c.hazard_ratio, rel=1e-8)
        assert row.ci_lower == pytest.approx(c.ci_lower, rel=1e-7)
        assert row.ci_upper == pytest.approx(c.ci_upper, rel=1e-7)
    assert table.events.iloc[0] == ep.event.sum()


def test_counts_add_up_and_the_epoch_pieces_approximate(res):
    cells, _names, facts = episode_counts(res)
    sh = res.shoppers
    f, d = sh.first_purchase_s.to_numpy(), sh.departure_s.to_numpy()
    assert cells.events.sum() == facts["events"] == int((np.isfinite(f) & (f <= d)).sum())
    assert facts["pieces"] == len(np.unique(f[np.isfinite(f)]))
    exact = episode_model(res)
    coarse = episode_model(res, max_pieces=1)
    assert "tactic epochs" in coarse.method.iloc[0] and "event time" in exact.method.iloc[0]
    # a baseline nearly constant within minutes: the two agree within the estimate's own error
    se = (np.log(exact.ci_upper) - np.log(exact.ci_lower)) / (2 * 1.96)
    assert np.all(np.abs(np.log(coarse.hazard_ratio) - np.log(exact.hazard_ratio)) < se)


def test_tactics_running_together_share_a_row(res):
    t = episode_model(res)
    assert t.tactic.tolist() == ["countdown_timer + lightning_sale"]
    assert "run exactly together" in t.note.iloc[0]


@pytest.mark.parametrize(("sample", "max_pieces"), [(None, 2_000_000), (0.5, 2_000_000), (None, 1)])
def test_visits_in_memory_give_the_table_of_the_files(flagship, sample, max_pieces):
    import pandas as pd

    v = flagship.viewers(["run_id", "arrival_s", "departure_s", "first_purchase_s"])
    runs = v.run_id.astype(str).unique()
    # the runs in another order (each run's rows kept in order), run ids as text
    moved = pd.concat([v[v.run_id == r] for r in runs[::-1]], ignore_index=True)
    moved = moved.assign(run_id=moved.run_id.astype(str))
    # the runs' rows interleaved (each run's in order), run ids categorical: not one slice per run
    turn = v.groupby("run_id", observed=True).cumcount().to_numpy()  # each run's first row, then its second...
    mixed = v.iloc[np.argsort(turn, kind="stable")].reset_index(drop=True)
    assert isinstance(mixed.run_id.dtype, pd.CategoricalDtype) and (mixed.run_id != v.run_id).any()
    frames = [v, moved, mixed]
    if sample is None:  # without sampling, the order of a run's rows does not matter: arrivals out of order
        frames.append(v.iloc[np.random.default_rng(1).permutation(len(v))].reset_index(drop=True))
    want = episode_counts(flagship, sample=sample, seed=4, max_pieces=max_pieces)[0]
    for visits in frames:
        got = episode_counts(flagship, sample=sample, seed=4, max_pieces=max_pieces, visits=visits)[0]
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert len(runs) > 2 and want.events.sum() > 0
    pd.testing.assert_frame_equal(episode_model(flagship, visits=moved), episode_model(flagship), check_exact=True)


def test_the_pattern_is_on_while_a_window_of_its_kind_runs():
    from fomolab.episode_model import _pattern

    rng = np.random.default_rng(7)
    t = np.concatenate((rng.uniform(0, 100, 500), np.arange(0.0, 101.0)))  # window edges among the times
    start = np.round(rng.uniform(0, 90, (3, 6)))
    end = start + np.round(rng.uniform(-5, 30, (3, 6)))  # overlapping, empty (end == start) and reversed windows
    windows = [np.column_stack((s, e)) for s, e in zip(start, end, strict=True)]
    windows[1] = np.array([[50.0, 40.0], [30.0, 60.0]])  # a reversed window inside a real one
    windows[2] = np.empty((0, 2))
    want = np.zeros(len(t), np.int64)
    for k, w in enumerate(windows):
        on = np.zeros(len(t), bool)
        for s, e in w:
            on |= (t > s) & (t <= e)
        want |= on.astype(np.int64) << k
    assert (want & 1).any() and (want & 2).any() and not (want & 4).any()
    np.testing.assert_array_equal(_pattern(t, windows, 3), want)


def test_the_fit_from_pooled_cells_is_the_fit_of_the_table(flagship):
    from fomolab.stats import piecewise_exponential

    table = episode_model(flagship)
    cells, _names, facts = episode_counts(flagship)
    covs = table.attrs["covariates"]
    assert facts["clusters"] == 2 and len(covs) > len(table)
    fit = piecewise_exponential(cells, covariates=covs, pieces="piece", cluster="replicate").summary
    for _, row in table.iterrows():  # the same sums in the same order: the same numbers
        s = fit.loc[row.covariate]
        assert (row.hazard_ratio, row.ci_lower, row.ci_upper, row.p) == (s.hazard_ratio, s.ci_lower, s.ci_upper,
                                                                          s.p)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from fomolab import run

    from helpers import ROOT

    return run(ROOT / "experiments/discount_timer_sweep.toml", tmp_path_factory.mktemp("s") / "r", replicates=1)


def test_a_tactic_at_the_same_times_in_every_run_is_left_to_the_baseline(sweep):
    # the lightning sale runs at the same stream times in both arms of every point: within each event time
    # it is on or off for every run, so the baseline absorbs it; the timer is fitted without it
    table = episode_model(sweep).set_index("tactic")
    assert np.isnan(table.loc["lightning_sale", "hazard_ratio"])
    assert "same stream times" in table.loc["lightning_sale", "note"]
    covs = table.attrs["covariates"]
    assert "lightning_sale_running" not in covs and "countdown_timer_running" in covs
    ep = tactic_episodes(sweep)
    fit = cox(ep, "stop_s", "event", covs, start="start_s", ties="breslow").summary
    assert table.loc["countdown_timer", "hazard_ratio"] == pytest.approx(fit.loc["countdown_timer_running",
                                                                                 "hazard_ratio"], rel=1e-8)
    assert np.isfinite(table.loc["countdown_timer", "ci_lower"])
