"""Tactics are plugins: the registry, the protocol, and the engine's envelope check."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from fomolab.design import envelopes, expand
from fomolab.engine import simulate
from fomolab.errors import EnvelopeError
from fomolab.lineup import Tactics
from fomolab.tactics import KINDS, ExclusiveCode, SocialProof, Tactic, registry
from fomolab.tactics.social_proof import _Ticker

from helpers import ROOT, experiment, make_spec

BUILTIN = ["lightning_sale", "countdown_timer", "scarcity_cue", "social_proof", "exclusive_code"]


def test_registry_finds_every_plugin_in_order():
    found = registry()
    assert list(found)[:5] == BUILTIN
    assert [c.order for c in found.values()] == sorted(c.order for c in found.values())
    assert all(issubclass(c, Tactic) and c.kind == k for k, c in found.items())
    assert list(Tactics.model_fields) == list(KINDS)  # the lineup's table is the registry


def test_no_module_outside_tactics_names_a_kind():
    quoted = re.compile("[\"'](" + "|".join(KINDS) + ")[\"']")
    core = ["engine.py", "lineup.py", "market.py", "recorder.py", "theory.py", "design.py", "spec/rules.py",
            "spec/parse.py", "stats/episodes.py", "stats/compare.py", "stats/deadline.py", "stats/_folder.py",
            "stats/_facts.py"]
    hits = [(f, n) for f in core for n, line in enumerate((ROOT / "src/fomolab" / f).read_text().splitlines(), 1)
            if quoted.search(line)]
    assert not hits


class _Overdrive(ExclusiveCode):
    """A faulty plugin: its factor is three times what its envelope declares."""

    def factor(self, t, z, arrival_s, departure_s):
        return 1.0 + 3.0 * self.gain * z * self.signal(t)


class _Flood(SocialProof):
    """A faulty plugin: its live signal exceeds 1."""

    def live(self, ctx):
        ticker = _Ticker(self)
        ticker.level = lambda t, stock: 2.0  # type: ignore[method-assign]
        return ticker


def _swap(tactic_cls, kind: str, **fields):
    """A run of a small spec whose product carries ``tactic_cls`` under ``kind``."""
    spec = make_spec(experiment={"replicates": 1}, stream={"arrivals": {"rate_per_s": 2.0}},
                     lineup={"item": {"base_rate_per_s": 1 / 120, "stock": 10_000}})
    run = expand(experiment(spec), range(1))[0]
    sc = run.scenario
    prod = sc.lineup["item"]
    prod = prod.model_copy(update={"tactics": Tactics(**{kind: tactic_cls(**fields)})})
    sc = sc.model_copy(update={"lineup": {"item": prod}})
    return replace(run, scenario=sc, envelope=envelopes([sc]))


def test_engine_catches_a_hazard_above_its_declared_bound(monkeypatch):
    bad = _swap(_Overdrive, "exclusive_code", announce_s=0.0, expires_s=1200.0, gain=4.0)
    monkeypatch.setenv("FOMOLAB_CHECK_BOUNDS", "1")
    with pytest.raises(EnvelopeError, match="exceeds its envelope"):
        simulate(bad)
    monkeypatch.setenv("FOMOLAB_CHECK_BOUNDS", "0")
    simulate(bad)  # unchecked, the faulty plugin runs (and would thin against a wrong bound)
    monkeypatch.setenv("FOMOLAB_CHECK_BOUNDS", "1")
    simulate(_swap(ExclusiveCode, "exclusive_code", announce_s=0.0, expires_s=1200.0, gain=4.0))


def test_engine_catches_a_live_signal_above_one(monkeypatch):
    monkeypatch.setenv("FOMOLAB_CHECK_BOUNDS", "1")
    with pytest.raises(EnvelopeError, match="must lie in"):
        simulate(_swap(_Flood, "social_proof", gain=2.0))
    simulate(_swap(SocialProof, "social_proof", gain=2.0))


def test_tactics_table_and_windows_are_stored_with_the_run():
    tac = {"lightning_sale": {"start_s": 100.0, "end_s": 400.0, "quota": 5, "gain": 3.0},
           "countdown_timer": {"gain": 1.0}}
    spec = make_spec(stream={"arrivals": {"rate_per_s": 2.0}},
                     lineup={"item": {"stock": 5000, "base_rate_per_s": 1 / 1000, "tactics": tac}},
                     arms={"control": {}, "sale": {"tactics": ["item.lightning_sale", "item.countdown_timer"]}})
    t = simulate(expand(experiment(spec), range(1))[1])
    assert t.products[["product", "price", "stock", "slot_start_s", "slot_end_s"]].values.tolist() == \
        [["item", 10.0, 5000, 0.0, 1200.0]]
    assert t.tactics.tactic.tolist() == ["lightning_sale", "countdown_timer"]
    w = t.windows.set_index("tactic")
    ends = t.events[(t.events.kind == "tactic_end") & (t.events.tactic == "lightning_sale")].time_s
    assert w.loc["lightning_sale", "start_s"] == 100.0
    assert w.loc["lightning_sale", "end_s"] == ends.iloc[0] < 400.0  # the quota sold out: the sale ended early
    assert (w.loc["countdown_timer", ["start_s", "end_s"]] == [100.0, 400.0]).all()
    assert np.isnan(t.events[t.events.kind == "tactic_start"].value.iloc[1])


def test_episodes_read_the_stored_facts_not_the_spec(tmp_path, monkeypatch):
    import json
    import shutil

    import pandas as pd

    from fomolab import run
    from fomolab.stats import _folder, deadline_shares, episodes

    tac = {"lightning_sale": {"start_s": 300.0, "end_s": 600.0, "quota": 40, "gain": 3.0},
           "countdown_timer": {"gain": 1.0, "urgency": "hyperbolic"},
           "exclusive_code": {"announce_s": 700.0, "expires_s": 900.0, "gain": 2.0},
           "social_proof": {"gain": 1.0}}
    spec = make_spec(stream={"arrivals": {"rate_per_s": 2.0}},
                     lineup={"item": {"stock": 400, "base_rate_per_s": 1 / 600, "tactics": tac}},
                     arms={"control": {}, "all": {"tactics": ["item.*"]}})
    res = run(experiment(spec), tmp_path / "new", workers=1)
    facts = ("products", "tactics", "windows")

    def older(folder, runs):  # as if ``runs`` had been written before runs stored their facts
        shutil.copytree(res.path, folder)
        for rid in runs:
            for table in facts:
                (folder / table / f"{rid}.parquet").unlink()
            commit = folder / "commits" / f"{rid}.json"
            rec = json.loads(commit.read_text())
            rec["partitions"] = {k: v for k, v in rec["partitions"].items() if k not in facts}
            commit.write_text(json.dumps(rec))
        return folder

    ids = sorted(res.runs.run_id.astype(str))
    old = older(tmp_path / "old", ids)
    mixed = older(tmp_path / "mixed", ids[:1])  # a folder extended by a later fomolab
    want_ep, want_dl = episodes(old), deadline_shares(old)  # derived once from the manifest's spec
    pd.testing.assert_frame_equal(episodes(mixed), want_ep)

    def no_spec(*args, **kwargs):
        raise AssertionError("the analysis re-parsed the spec")

    monkeypatch.setattr(_folder, "run_scenarios", no_spec)
    ep = episodes(res)
    pd.testing.assert_frame_equal(ep, want_ep)
    pd.testing.assert_frame_equal(deadline_shares(res), want_dl)
    assert ep.sale_active.any() and ep.code_active.any() and (ep.social_proof_level > 0).any()

    from fomolab.analysis import analyze
    from fomolab.results import Results

    monkeypatch.setattr(Results, "experiment", property(no_spec))
    a = analyze(res, n_boot=0)  # the whole analysis (stream ends, starting stock, windows) from stored facts
    assert list(a.headline.arm) == ["control", "all"]
    stock = a.timeline[a.timeline.series == "stock"]
    assert not stock.empty and stock["mean"].max() == 400
