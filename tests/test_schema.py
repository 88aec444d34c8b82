"""The tables are what docs/schema.md says they are."""

from __future__ import annotations

import re

import pytest

from fomolab import run

MARKET_MARK = "Marketplace runs add"
RETENTION_MARK = "Runs with retention"
OWN_PURCHASE_MARK = "With retention from a viewer's own purchase"
SHOPPER_MARK = "Specs with a `[shopper]` table add"


def documented(root) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """{table: (columns of every run, columns marketplace runs add)}."""
    return {k: v[:2] for k, v in documented_all(root).items()}


def documented_all(root) -> dict[str, tuple[dict[str, str], ...]]:
    """{table: (columns of every run, columns marketplace runs add, columns a [shopper] table adds)}."""
    text = (root / "docs/schema.md").read_text().split("\n## analysis", 1)[0]
    tables = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        name = section.split("\n", 1)[0].strip()
        base, _, extra = section.partition(MARKET_MARK)
        extra, _, shop = extra.partition(SHOPPER_MARK)
        extra = extra.partition(RETENTION_MARK)[0]
        shop = shop.partition(RETENTION_MARK)[0]
        pattern = r"^\| `([a-z_0-9]+)` \| ([A-Za-z0-9]+) \|"
        rows = [dict(re.findall(pattern, part, flags=re.M)) for part in (base, extra, shop)]
        if rows[0] or rows[1]:
            tables[name] = (rows[0], rows[1], rows[2])
    return tables


@pytest.fixture(scope="module")
def results(root, tmp_path_factory):
    # the flagship has every kind of event: boosts, stock-outs, cues
    return run(root / "experiments/lightning_sale.toml", tmp_path_factory.mktemp("s") / "r", replicates=1)


@pytest.fixture(scope="module")
def market(root, tmp_path_factory):
    return run(root / "experiments/virtual_host.toml", tmp_path_factory.mktemp("m") / "r", replicates=1)


def check(df, want: dict[str, str]) -> None:
    actual = {c: str(t) for c, t in df.dtypes.items()}
    assert list(actual) == list(want), "columns and their order"
    assert actual == want
    assert len(df) > 0


@pytest.mark.parametrize("table", ["runs", "shoppers", "events"])
def test_table_matches_schema(table, results, market, root):
    base, extra = documented(root)[table]
    check(getattr(results, table), base)
    check(getattr(market, table), {**base, **extra})


def test_retention_columns_match_schema(root):
    from helpers import make_spec, run_tables

    text = (root / "docs/schema.md").read_text().split("\n## events", 1)[0].split(RETENTION_MARK, 1)[1]
    text, own_text = text.split(OWN_PURCHASE_MARK, 1)
    pattern = r"^\| `([a-z_0-9]+)` \| ([A-Za-z0-9]+) \|"
    held = dict(re.findall(pattern, text, flags=re.M))
    own = dict(re.findall(pattern, own_text, flags=re.M))
    base, _ = documented(root)["shoppers"]
    spec = make_spec(stream={"retention": {"deal": 0.5}},
                     lineup={"item": {"tactics": {"lightning_sale": {"start_s": 100.0, "end_s": 400.0}}}},
                     arms={"control": {}, "sale": {"tactics": ["item.*"]}})
    for tables in run_tables(spec).values():
        check(tables.shoppers, {**base, **held})
    spec["stream"]["retention"]["purchase"] = 0.5
    for tables in run_tables(spec).values():
        check(tables.shoppers, {**base, **held, **own})


@pytest.mark.parametrize("table", ["products", "tactics", "windows", "product_results"])
def test_fact_tables_match_schema(table, results, market, root):
    base, _ = documented(root)[table]
    check(results.table(table), base)
    check(market.table(table), base)


@pytest.mark.parametrize("table", ["exposure", "sales", "purchase_times"])
def test_aggregate_tables_match_schema(table, results, market, root):
    base, _ = documented(root)[table]
    check(results.table(table), base)
    check(market.table(table), base)


@pytest.mark.parametrize("table", ["streams", "stream_series"])
def test_market_tables_match_schema(table, results, market, root):
    base, _ = documented(root)[table]
    check(getattr(market, table), base)
    assert getattr(results, table).empty


def test_event_kinds_are_documented(results, root):
    from fomolab.recorder import EVENT_KINDS

    text = (root / "docs/schema.md").read_text() + (root / "docs/MODEL.md").read_text()  # tactics' own kinds
    assert set(results.events.kind.unique()) <= set(EVENT_KINDS)
    for kind in EVENT_KINDS:
        assert f"`{kind}`" in text


@pytest.mark.parametrize("table", ["runs", "shoppers"])
def test_shopper_columns_match_schema(table, root, tmp_path):
    """A spec with budgets and returns (the golden `shopper` spec) adds the documented columns, in order."""
    base, _, shop = documented_all(root)[table]
    res = run(root / "tests/golden/specs/shopper.toml", tmp_path / "r", replicates=1)
    check(getattr(res, table), {**base, **shop})
