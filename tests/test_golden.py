"""Golden outputs: every table of every golden spec matches its pinned checksum.

A failure names the spec, the table and the columns that changed.  If the change
is intended, describe it in CHANGELOG.md under "## Unreleased" in a bullet that
starts with "Results change", then re-pin: ``PYTHONPATH=src python -m tests.golden --repin``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fomolab.seeds import PURPOSES

import golden
from golden import REPIN, RepinRefused, column_digest, compare, digest_tables, load_pinned, repin, spec_paths

PINNED = load_pinned()


def test_every_golden_spec_is_pinned():
    names = {p.stem for p in spec_paths()}
    assert names, "no golden specs found"
    assert names == set(PINNED["specs"]), (
        f"golden specs {sorted(names)} but pinned {sorted(PINNED['specs'])}; re-pin: {REPIN}")


@pytest.mark.parametrize("path", spec_paths(), ids=lambda p: p.stem)
def test_golden_tables_unchanged(path):
    current = golden.digest_tables(golden.simulate_spec(path))
    problems = compare(path.stem, PINNED["specs"].get(path.stem), current)
    assert not problems, (
        "simulated tables differ from the pinned golden checksums:\n  " + "\n  ".join(problems)
        + f"\nIf this is intended, add a 'Results change' bullet under '## Unreleased' in CHANGELOG.md "
          f"and re-pin: {REPIN}")


def test_golden_specs_reach_their_mechanisms():
    """The specs exercise what they are named for (a pinned checksum of nothing pins nothing)."""
    tables = {p.stem: golden.simulate_spec(p) for p in spec_paths()}

    def events(spec, arm):
        return pd.concat([t["events"] for label, t in tables[spec] if label.startswith(arm + "/")])

    quota = events("lightning_quota", "sale")
    end = quota[(quota.kind == "tactic_end") & (quota.tactic == "lightning_sale")]
    assert end.time_s.iloc[0] < 600.0 and end.value.iloc[0] == 25, "the sale's quota must end it early"
    assert (events("scarcity", "scarcity").kind == "tactic_start").any(), "the scarcity cue must show"
    timer = events("deceptive", "resetting_timer")
    assert (timer.tactic == "countdown_timer").sum() >= 4, "the timer must reset"
    market = [t for _, t in tables["marketplace"]]
    assert all(t["runs"].switches.iloc[0] > 0 for t in market) and all("stream_series" in t for t in market)
    assert len({label.split("/")[1] for label, _ in tables["sweep"]}) == 4
    assert (events("no_tactic", "control").kind == "stock_out").any()
    assert (events("giveaway", "draw").kind == "prize").sum() == 3, "the draw must award its prizes"
    bursts = [t for _, t in tables["bursts"]]
    assert bursts[0]["runs"].viewers.iloc[0] > 1.5 * 0.5 * 1200, "the cascade must bring arrivals"
    assert len(bursts[0]["product_results"]) == 6, "the template must make the lineup"
    held = next(t["shoppers"] for label, t in tables["retention"] if label.startswith("all/"))
    assert (held.held_by_deal_s > 0).any() and (held.held_by_draw_s > 0).any(), "tactics must hold viewers"
    bought = [t for _, t in tables["purchase_bursts"]]
    assert all((t["shoppers"].held_by_purchase_s > 0).any() for t in bought), "purchases must hold buyers"
    assert bought[0]["runs"].viewers.iloc[0] > 1.05 * 0.4 * 1200 / (1 - 0.3), "purchases must bring viewers"


def test_digest_sees_one_float_bit_and_dtype():
    s = pd.Series([0.1, 0.2, float("nan")], name="x")
    flipped = s.copy()
    flipped.iloc[1] = np.nextafter(0.2, 1.0)  # the next float: one bit apart
    assert column_digest(s) != column_digest(flipped)
    assert column_digest(s) != column_digest(s.astype("float32"))
    assert column_digest(s) != column_digest(s.rename("y"))
    cat = pd.Series(["a", "b", None], dtype="category", name="c")
    assert column_digest(cat) != column_digest(cat.astype(object))
    ints = pd.Series([1, None, 3], dtype="Int64", name="i")
    assert column_digest(ints) != column_digest(pd.Series([1, 0, 3], dtype="Int64", name="i"))


def test_compare_names_table_and_column():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [1, 2]})
    old = digest_tables([("r", {"shoppers": df})])
    new = digest_tables([("r", {"shoppers": df.assign(b=[1, 3])})])
    assert compare("s", old, new) == ["spec 's', table 'shoppers': values or dtype changed in columns: b"]
    more = digest_tables([("r", {"shoppers": df, "windows": df})])
    assert compare("s", old, more) == ["spec 's', table 'windows': produced but not pinned (a new table)"]


def _write_changelog(path, *bullets):
    path.write_text("# Changelog\n\n## Unreleased\n\n" + "".join(f"- {b}\n" for b in bullets)
                    + "\n## 0.1.0 - 2026-01-01\n\n- Results change: an old one, released.\n")


def test_repin_needs_a_new_results_change_entry(tmp_path):
    checksums, changelog = tmp_path / "checksums.json", tmp_path / "CHANGELOG.md"
    before = {"s": digest_tables([("r", {"runs": pd.DataFrame({"a": [1.0]})})])}
    after = {"s": digest_tables([("r", {"runs": pd.DataFrame({"a": [2.0]})})])}
    _write_changelog(changelog, "Faster engine.")
    repin(checksums=checksums, changelog=changelog, current=before)  # a first pin needs no entry
    with pytest.raises(RepinRefused, match="Results change"):
        repin(checksums=checksums, changelog=changelog, current=after)
    assert json.loads(checksums.read_text())["specs"] == before, "a refused re-pin must write nothing"
    repin(checksums=checksums, changelog=changelog, current=before)  # nothing changed: no entry needed
    _write_changelog(changelog, "Faster engine.", "Results change: dwell times drawn per visit.")
    repin(checksums=checksums, changelog=changelog, current=after)
    data = json.loads(checksums.read_text())
    assert data["specs"] == after and data["changelog"] == ["Results change: dwell times drawn per visit."]
    with pytest.raises(RepinRefused):  # the same entry does not justify a second change
        repin(checksums=checksums, changelog=changelog, current=before)


@pytest.mark.parametrize("purpose", sorted(PURPOSES))
def test_every_seed_purpose_is_pinned(purpose, monkeypatch):
    """Renumbering any seed purpose changes a golden table (so the golden test catches it)."""
    import fomolab.seeds

    unused = max(fomolab.seeds.PURPOSES.values()) + 1
    monkeypatch.setitem(fomolab.seeds.PURPOSES, purpose, unused)
    for path in spec_paths():
        if compare(path.stem, PINNED["specs"][path.stem], digest_tables(golden.simulate_spec(path))):
            return
    pytest.fail(f"renumbering seed purpose {purpose!r} changes no golden table: add a golden spec that uses it")
