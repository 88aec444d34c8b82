"""Lineup templates: many products in consecutive slots from one table, and its bad input."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from fomolab.cli import main
from fomolab.errors import SpecError
from fomolab.spec import parse_spec

SPEC: dict[str, Any] = {
    "experiment": {"name": "tpl", "seed": 3, "replicates": 1},
    "stream": {"duration_s": 3600.0, "arrivals": {"rate_per_s": 1.0}},
    "population": {"profile": "mixed"},
    "lineup": {"opener": {"price": 10.0, "base_rate_per_s": 1e-4, "slot_s": [0.0, 60.0]}},
    "lineup_template": {
        "count": 50, "name": "shade{n:02d}", "first_slot_s": 60.0, "slot_s": 60.0, "gap_s": 10.0,
        "price": {"cycle": [59.0, 79.0, 99.0]},
        "base_rate_per_s": {"uniform": [2e-4, 6e-4], "round": 6},
        "stock": {"choice": [40, 80, "unlimited"]},
        "tactics": {
            "lightning_sale": {"every": 10, "offset": 2, "start_s": 20.0, "end_s": 50.0,
                               "discount": {"cycle": [0.2, 0.3]}},
            "countdown_timer": {"every": 10, "offset": 2},
            "social_proof": {"share": 0.5, "gain": {"integers": [1, 3]}},
        },
    },
    "arms": {"control": {}, "sale": {"tactics": ["*.lightning_sale", "*.countdown_timer"]}},
}

ROOT = Path(__file__).resolve().parents[1]


def parse(spec: dict[str, Any]):
    return parse_spec(spec, source="<test>", base_dir=ROOT / "experiments")


def test_products_fill_consecutive_slots_with_cycled_and_drawn_values():
    exp = parse(SPEC)
    lineup = exp.arms["sale"].scenario.lineup
    made = [f"shade{n:02d}" for n in range(1, 51)]
    assert list(lineup) == ["opener", *made] and exp.generated == tuple(made)
    for k, name in enumerate(made):
        p = lineup[name]
        assert p.slot_s == (60.0 + 70.0 * k, 120.0 + 70.0 * k)
        assert p.price == [59.0, 79.0, 99.0][k % 3]
        assert 2e-4 <= p.base_rate_per_s <= 6e-4 and round(p.base_rate_per_s, 6) == p.base_rate_per_s
        assert p.stock in (40, 80, None)
    assert {lineup[n].stock for n in made} == {40, 80, None}  # every choice is drawn among 50
    on = [n for n in made if lineup[n].tactics.lightning_sale is not None]
    assert on == ["shade03", "shade13", "shade23", "shade33", "shade43"]
    for i, name in enumerate(on):  # times are after the slot's start; the cycle goes round the sale's products
        sale, slot = lineup[name].tactics.lightning_sale, lineup[name].slot_s
        assert (sale.start_s, sale.end_s) == (slot[0] + 20.0, slot[0] + 50.0)
        assert sale.discount == [0.2, 0.3][i % 2]
        assert lineup[name].tactics.countdown_timer.deadline_s == sale.end_s  # filled from its sale
    social = [n for n in made if exp.spec["lineup"][n].get("tactics", {}).get("social_proof")]
    assert 15 <= len(social) <= 35  # share 0.5 of 50
    assert {exp.spec["lineup"][n]["tactics"]["social_proof"]["gain"] for n in social} <= {1, 2, 3}


def test_draws_are_seeded_and_independent_per_key():
    a, b = parse(SPEC), parse(SPEC)
    assert a.spec["lineup"] == b.spec["lineup"] and a.spec_hash == b.spec_hash
    other = copy.deepcopy(SPEC)
    other["lineup_template"]["seed"] = 99
    c = parse(other)
    rates = [c.spec["lineup"][n]["base_rate_per_s"] for n in c.generated]
    assert rates != [a.spec["lineup"][n]["base_rate_per_s"] for n in a.generated]
    # a new key leaves the draws of the others as they were
    more = copy.deepcopy(SPEC)
    del more["lineup_template"]["stock"]
    d = parse(more)
    assert [d.spec["lineup"][n]["base_rate_per_s"] for n in d.generated] == \
        [a.spec["lineup"][n]["base_rate_per_s"] for n in a.generated]


def test_the_recorded_spec_is_expanded_and_parses_again():
    exp = parse(SPEC)
    assert "lineup_template" not in exp.spec and len(exp.spec["lineup"]) == 51
    again = parse_spec(exp.spec, source="<recorded>", resolve=False)
    assert again.spec_hash == exp.spec_hash
    assert exp.with_overrides(replicates=3).replicates == 3


def broken(**edits: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    for dotted, value in edits.items():
        node = spec["lineup_template"]
        *head, last = dotted.split("__")
        for k in head:
            node = node[k]
        node[last] = value
    return spec


CASES = {
    "count_missing": ({"count": None}, [("lineup_template.count", "missing")]),
    "count_over_limit": ({"count": 5000}, [("lineup_template.count", "limit_exceeded")]),
    "slots_past_end": ({"slot_s": 100.0}, [("lineup_template.slot_s", "inconsistent")]),
    "name_without_n": ({"name": "shade"}, [("lineup_template.name", "inconsistent")]),
    "clash": ({"name": "opener{n:0.0s}"}, [("lineup_template.name", "invalid")]),
    "unknown_key": ({"prize": 3}, [("lineup_template.prize", "unknown_key")]),
    "bad_generator": ({"price": {"cycel": [1.0]}}, [("lineup_template.price", "unknown_key")]),
    "bad_uniform": ({"base_rate_per_s": {"uniform": [6e-4, 2e-4]}},
                    [("lineup_template.base_rate_per_s.uniform", "invalid")]),
    "decimal_stock": ({"stock": {"choice": [40.5, 80]}}, [("lineup_template.stock", "wrong_type")]),
    "unknown_tactic": ({"tactics__flash": {"every": 2}}, [("lineup_template.tactics.flash", "unknown_name")]),
    "bad_every": ({"tactics__lightning_sale__every": 0}, [("lineup_template.tactics.lightning_sale.every", "invalid")]),
    "share_and_every": ({"tactics__social_proof__every": 2},
                        [("lineup_template.tactics.social_proof.share", "inconsistent")]),
    "drawn_value_breaks_rule": ({"tactics__lightning_sale__discount": {"cycle": [0.2, 1.3]}},
                                [("lineup_template.tactics.lightning_sale.discount", "too_large")]),
    "several_at_once": ({"stock": {"choice": [40.5]}, "tactics__lightning_sale__discount": 1.5},
                        [("lineup_template.stock", "wrong_type"),
                         ("lineup_template.tactics.lightning_sale.discount", "too_large")]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_templates_name_each_problem(case):
    edits, expected = CASES[case]
    spec = broken(**{k: v for k, v in edits.items() if v is not None})
    if edits.get("count", 1) is None:
        del spec["lineup_template"]["count"]
    with pytest.raises(SpecError) as exc:
        parse(spec)
    got = [(p.path, p.code) for p in exc.value.errors]
    assert got == expected, got
    for p in exc.value.errors:
        assert p.file == "<test>" and p.rule


def test_validate_prints_the_expanded_lineup_and_bad_input_exits_2(tmp_path, capsys):
    from _toml import dumps

    good = tmp_path / "good.toml"
    good.write_text(dumps(SPEC))
    assert main(["validate", str(good)]) == 0
    out = capsys.readouterr().out
    assert "51 products" not in out and "50 products made by the lineup template" in out
    for name in ("shade01", "shade03", "shade50"):
        assert name in out
    assert "60-120" in out and "130-190" in out  # the first two slots
    bad = tmp_path / "bad.toml"
    bad.write_text(dumps(broken(**CASES["several_at_once"][0])))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 2, err
    assert f"{bad}: lineup_template.stock:" in lines[0] and "(got 40.5)" in lines[0]
    assert "lineup_template.tactics.lightning_sale.discount" in lines[1] and "(got 1.5)" in lines[1]


def test_the_marathon_example_is_short_and_long():
    from fomolab.spec import load_experiment

    path = ROOT / "experiments" / "marathon.toml"
    assert len(path.read_text().splitlines()) < 60
    exp = load_experiment(path)
    scen = exp.arms["sales"].scenario
    assert scen.stream.duration_s == 7 * 3600.0 and len(scen.lineup) == 380 == len(exp.generated)
    assert scen.stream.arrivals.hawkes is not None and scen.stream.retention is not None
    on = [p for p in scen.lineup.values() if p.tactics.lightning_sale is not None]
    assert len(on) == 38 and all(p.tactics.countdown_timer is not None for p in on)
    assert max(p.slot_s[1] for p in scen.lineup.values()) <= scen.stream.duration_s
