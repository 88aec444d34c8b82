"""The tables are what docs/schema.md says they are."""

from __future__ import annotations

import re

import pytest

from fomolab import run


def documented(root) -> dict[str, dict[str, str]]:
    text = (root / "docs/schema.md").read_text()
    tables: dict[str, dict[str, str]] = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        name = section.split("\n", 1)[0].strip()
        rows = re.findall(r"^\| `([a-z_0-9]+)` \| ([A-Za-z0-9]+) \|", section, flags=re.M)
        if rows:
            tables[name] = dict(rows)
    return tables


@pytest.fixture(scope="module")
def results(root, tmp_path_factory):
    # the flagship has every kind of event: boosts, quotas off, stock-outs, cues
    return run(root / "experiments/lightning_sale.toml", tmp_path_factory.mktemp("s") / "r", replicates=1)


@pytest.mark.parametrize("table", ["runs", "shoppers", "events"])
def test_table_matches_schema(table, results, root):
    doc = documented(root)[table]
    df = getattr(results, table)
    actual = {c: str(t) for c, t in df.dtypes.items()}
    assert list(actual) == list(doc), "columns and their order"
    assert actual == doc
    assert len(df) > 0


def test_event_kinds_are_documented(results, root):
    from fomolab.recorder import EVENT_KINDS

    text = (root / "docs/schema.md").read_text()
    assert set(results.events.kind.unique()) <= set(EVENT_KINDS)
    for kind in EVENT_KINDS:
        assert f"`{kind}`" in text
