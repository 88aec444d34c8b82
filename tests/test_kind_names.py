"""Tactic kind names appear as quoted strings only in the tactics package.

Outside ``fomolab/tactics/`` (the plugins and their registry) no module names
a tactic kind in a string literal: scenarios live in TOML spec files, and code
reaches a tactic through its spec tables, so a new or renamed plugin changes
the tactics package and the specs alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from fomolab.tactics import registry

SRC = Path(__file__).resolve().parents[1] / "src"
TACTICS = SRC / "fomolab" / "tactics"


def quoted_kind_names(root: Path, kinds: list[str]) -> list[str]:
    """``path:line: text`` of each line of a ``.py`` file under ``root``, outside the tactics package,
    with a kind name between quotes."""
    pattern = re.compile(r"[\"'](" + "|".join(map(re.escape, kinds)) + r")[\"']")
    hits = []
    for path in sorted(root.rglob("*.py")):
        if path.is_relative_to(TACTICS):
            continue
        for n, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(root.parent)}:{n}: {line.strip()}")
    return hits


def test_the_registry_knows_the_kinds_searched_for():
    assert {"lightning_sale", "countdown_timer", "scarcity_cue", "social_proof", "exclusive_code",
            "giveaway"} <= set(registry())


def test_no_quoted_kind_name_outside_the_tactics_package():
    hits = quoted_kind_names(SRC, sorted(registry()))
    assert not hits, "tactic kind names quoted outside src/fomolab/tactics/ (put the scenario in a TOML " \
                     "spec file):\n" + "\n".join(hits)


def test_the_search_finds_a_quoted_kind_name(tmp_path):
    (tmp_path / "fomolab").mkdir()
    (tmp_path / "fomolab" / "check.py").write_text("x = 1\nspec = {'giveaway': {}}\n")
    assert quoted_kind_names(tmp_path, ["giveaway"]) == [f"{tmp_path.name}/fomolab/check.py:2: spec = {{'giveaway': {{}}}}"]


def test_fit_asks_the_tactic_why_its_likelihood_fails():
    from fomolab.fit.likelihood import untractable
    from fomolab.validation._sim import experiment, scenario

    spec = scenario("elasticity")
    live = experiment(spec).arms["notifications"].scenario
    assert untractable(live) == ["lineup.item.tactics.social_proof depends on other viewers' purchases"]
    spec["lineup"]["item"]["tactics"]["social_proof"]["fabricated_rate_per_s"] = 0.1
    fake = experiment(spec).arms["notifications"].scenario
    assert untractable(fake) == ["lineup.item.tactics.social_proof shows fabricated notifications not in the data"]
    assert untractable(experiment(scenario("planted")).arms["sale"].scenario) == []
