"""The consumer-impact tables read a batch of replicates at a time: the same tables as from every visit at once."""

from __future__ import annotations

import numpy as np
import pytest

from fomolab import run
from fomolab.attribution import _batches, _exact_quantiles, _match, attribute, impact, impact_tables

from helpers import experiment, make_spec

BY = ("quintile", "segment", "all")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three arms (one with an arrival boost), two sweep points, five replicates, two segments: 30 runs."""
    spec = make_spec(
        experiment={"replicates": 5},
        stream={"duration_s": 900.0},
        population={"segments": {
            "all": {"share": 0.6},
            "keen": {"share": 0.4, "impulsiveness": {"beta": [5.0, 2.0]}, "dwell": {"mean_s": 200.0},
                     "price_sensitivity": 0.0}}},
        lineup={"item": {"tactics": {
            "lightning_sale": {"start_s": 300.0, "end_s": 600.0, "discount": 0.3, "gain": 3.0,
                               "arrival_boost": 1.5},
            "countdown_timer": {"gain": 2.0}}}},
        arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]}, "both": {"tactics": ["item.*"]}},
        sweep={"design": "grid", "parameters": {"lineup.item.tactics.countdown_timer.gain": [1.0, 4.0]}},
    )
    return run(experiment(spec), tmp_path_factory.mktemp("attr") / "r", workers=1)


def test_batches_hold_whole_replicates_in_the_folders_order(folder):
    runs = folder.runs
    batches = _batches(runs, 1)
    assert len(batches) == 10  # one per point and replicate
    assert [i for b in batches for i in b] == list(runs.run_id.astype(str))
    for ids in batches:
        reps = runs[runs.run_id.astype(str).isin(ids)]
        assert len(reps) == 3 and reps[["point", "replicate"]].drop_duplicates().shape[0] == 1
    assert len(_batches(runs, int(runs.viewers.sum()))) == 1
    assert len(_batches(runs, 10**9)) == 1
    middle = _batches(runs, int(runs.viewers.sum()) // 3)
    assert 2 <= len(middle) <= 4


@pytest.mark.parametrize("share", [0.0, 1 / 3, 1.0])
def test_batched_tables_equal_the_one_batch_tables(folder, share):
    one = impact_tables(folder, batch_visits=10**9)
    labels = attribute(folder)
    for by in BY:  # the one batch is the table of every visit's labels
        assert one[by].equals(impact(folder, by=by, labels=labels))
    size = max(int(folder.runs.viewers.sum() * share), 1)
    assert len(_batches(folder.runs, size)) > 1 or share == 1.0
    batched = impact_tables(folder, batch_visits=size)
    for by in BY:
        assert batched[by].equals(one[by]), by
    assert set(one["quintile"].group) == {"Q1", "Q2", "Q3", "Q4", "Q5"}
    assert set(one["segment"].group) == {"all", "keen"}
    assert (one["all"].replicates == 5).all() and set(one["all"].point) == {0, 1}
    assert set(one["all"].arm) == {"sale", "both"}


def test_impact_without_labels_is_the_batched_table(folder):
    tabs = impact_tables(folder)
    for by in BY:
        assert impact(folder, by=by).equals(tabs[by])
    with pytest.raises(ValueError, match="'quintile', 'segment' or 'all'"):
        impact_tables(folder, by=("arm",))


def test_exact_quantiles_equal_numpy_bit_for_bit():
    rng = np.random.default_rng(7)
    q = [0.2, 0.4, 0.6, 0.8, 0.0, 1.0, 0.5, 0.33]
    samples = [rng.beta(2, 5, 10_001), rng.normal(size=997), rng.integers(0, 4, 500).astype(float),
               np.array([3.5]), np.array([1.0, -2.0]), np.array([0.0, -0.0, 1e-300, -1e-300, 5.0]),
               np.full(40, 0.25), rng.exponential(size=2) * 1e6, rng.uniform(0.5, 0.5 + 1e-12, 300)]
    for x in samples:
        for parts in (1, 3, 17):
            chunks = np.array_split(rng.permutation(x), parts)
            got = _exact_quantiles(lambda c=chunks: iter(c), q)
            assert np.array_equal(got, np.quantile(x, q)), (x[:5], parts)
    with_nan = np.array([1.0, np.nan, 2.0])
    assert np.isnan(_exact_quantiles(lambda: iter([with_nan[:1], with_nan[1:]]), q)).all()


def test_exact_quantiles_read_alike_chunks_once_and_others_twice():
    rng = np.random.default_rng(11)
    q = [0.2, 0.4, 0.6, 0.8]
    x = rng.beta(2, 5, 40_000)
    reads = []

    def counted(chunks):
        def call():
            reads.append(1)
            return iter(chunks)
        return call

    alike = np.array_split(x, 20)  # every chunk drawn alike, as replicates are: the first chunk tells where to look
    assert np.array_equal(_exact_quantiles(counted(alike), q), np.quantile(x, q)) and len(reads) == 1
    reads.clear()
    ordered = np.array_split(np.sort(x), 20)  # the first chunk holds the smallest values: a second read
    assert np.array_equal(_exact_quantiles(counted(ordered), q), np.quantile(x, q)) and len(reads) == 2


def test_keys_are_matched_by_table_or_by_search_alike():
    dense = _match(np.array([3, 1, 2]), np.array([2, 0, 3, 9, 1]))  # a narrow range: looked up in a table
    sparse = _match(np.array([3, 1, 2 * 10**12]), np.array([2 * 10**12, 0, 3, 9, 1]))  # a wide one: searched
    assert dense.tolist() == [2, -1, 0, -1, 1] and sparse.tolist() == [2, -1, 0, -1, 1]
    assert _match(np.array([], np.int64), np.array([4])).tolist() == [-1]
    for kb in (np.array([1, 2, 1]), np.array([10**12, 2, 10**12])):
        with pytest.raises(ValueError, match="duplicate"):
            _match(kb, np.array([1]))


def test_labels_with_text_segments_give_the_same_table(folder):
    labels = attribute(folder)
    text = labels.assign(segment=labels.segment.astype(str).astype(object), arm=labels.arm.astype("category"))
    for by in BY:
        assert impact(folder, by=by, labels=text).equals(impact(folder, by=by, labels=labels)), by
