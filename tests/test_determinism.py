"""Same spec and seed, same tables; another seed, other tables; any executor."""

from __future__ import annotations

import pandas as pd
import pytest

from fomolab import Results, load_experiment, run

from helpers import make_spec, run_tables


def assert_same(a: Results, b: Results) -> None:
    for name in ("runs", "shoppers", "events"):
        x, y = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(x, y, check_exact=True)


@pytest.fixture(scope="module")
def social(root):
    return load_experiment(root / "experiments/social_proof.toml").with_overrides(replicates=3)


def test_same_seed_same_tables(tmp_path, social):
    a = run(social, tmp_path / "a")
    b = run(social, tmp_path / "b")
    assert_same(a, b)
    assert len(a.shoppers) > 1000 and len(a.events) > 2000


def test_other_seed_other_tables(tmp_path, social):
    a = run(social, tmp_path / "a")
    b = run(social, tmp_path / "b", seed=social.seed + 1)
    assert not a.shoppers[["arrival_s"]].equals(b.shoppers[["arrival_s"]])
    assert (a.runs.seed.values != b.runs.seed.values).all()


def test_processes_match_serial(tmp_path, social):
    a = run(social, tmp_path / "serial", workers=1)
    b = run(social, tmp_path / "pool", workers=2)
    assert_same(a, b)


def test_simulate_is_pure():
    spec = make_spec(lineup={"item": {"stock": 30, "tactics": {"social_proof": {"gain": 3.0}}}},
                     arms={"control": {"tactics": ["item.social_proof"]}})
    one, two = run_tables(spec), run_tables(spec)
    for name in ("shoppers", "events", "runs"):
        pd.testing.assert_frame_equal(getattr(one["control"], name), getattr(two["control"], name))
