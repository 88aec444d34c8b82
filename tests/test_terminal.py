"""What the commands print: tables that fit the terminal, and machine-readable formats.

With ``COLUMNS=80`` no line that ``validate``, ``run`` or ``analyze`` prints on
any shipped example is wider than 80 characters, and every cell of every table
(each arm name, each number, as ``--format markdown`` gives the same cells
unsqueezed) appears whole on one line.  ``--format csv|json|markdown`` is
checked by parsing what it prints.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from _toml import dumps
from fomolab._terminal import Column, Table, print_text
from fomolab.cli import main
from fomolab.results import Results
from test_examples import EXAMPLES, shrink

from helpers import ROOT

WIDTH = 80


def _lines(captured) -> list[str]:
    return (captured.out + captured.err).splitlines()


def _too_wide(lines: list[str], width: int = WIDTH) -> list[str]:
    return [f"{len(line)}: {line}" for line in lines if len(line) > width]


def _markdown_cells(text: str) -> list[str]:
    """The body cells of every Markdown table in ``text`` (header and separator rows left out)."""
    cells, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        for row in block[2:]:
            cells += [c.strip() for c in row.strip().strip("|").split(" | ")]
        block = []
    return [c for c in cells if c]


def _missing(cells: list[str], lines: list[str]) -> list[str]:
    """Cells that appear whole on no line."""
    return [c for c in cells if not any(c in line for line in lines)]


@pytest.fixture
def small(tmp_path, request):
    example = request.param
    spec = shrink(tomllib.loads(example.read_text(encoding="utf-8")))
    path = tmp_path / example.name
    path.write_text(dumps(spec), encoding="utf-8")
    (tmp_path / "agents").symlink_to(ROOT / "agents")
    return path, spec


@pytest.mark.parametrize("small", EXAMPLES, ids=[p.stem for p in EXAMPLES], indirect=True)
def test_every_example_prints_within_80_columns_and_cuts_nothing(small, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    path, spec = small
    out = tmp_path / "results"

    assert main(["validate", str(path)]) == 0
    lines = _lines(capsys.readouterr())
    assert not _too_wide(lines)
    assert main(["validate", str(path), "--format", "json"]) == 0
    design = json.loads(capsys.readouterr().out)
    words = [a["arm"] for a in design["arms"]] + [w for a in design["arms"] for k, v in a["set"].items()
                                                 for w in (k, json.dumps(v) if isinstance(v, bool | str) else str(v))]
    assert sorted(a["arm"] for a in design["arms"]) == sorted(spec["arms"])
    assert not _missing(words, lines)

    assert main(["run", str(path), "--out", str(out), "--workers", "1"]) == 0
    lines = _lines(capsys.readouterr())
    assert not _too_wide(lines)
    assert main(["run", str(path), "--out", str(out), "--format", "markdown"]) == 0  # complete: computes nothing
    cells = _markdown_cells(capsys.readouterr().out)
    summary = Results(out).summary()
    assert set(summary.index) <= set(cells)
    assert f"{summary.revenue_per_run.iloc[0]:,.2f}" in cells
    assert not _missing(cells, lines)

    assert main(["analyze", str(out), "--boot", "0"]) == 0
    lines = _lines(capsys.readouterr())
    assert not _too_wide(lines)
    assert main(["analyze", str(out), "--boot", "0", "--format", "markdown", "--out", str(tmp_path / "a2")]) == 0
    cells = _markdown_cells(capsys.readouterr().out)
    assert set(spec["arms"]) <= set(cells)
    assert not _missing(cells, lines)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small lightning-sale folder (four arms), run once for the format tests."""
    tmp = tmp_path_factory.mktemp("formats")
    spec = shrink(tomllib.loads((ROOT / "experiments" / "lightning_sale.toml").read_text(encoding="utf-8")))
    path = tmp / "lightning_sale.toml"
    path.write_text(dumps(spec), encoding="utf-8")
    (tmp / "agents").symlink_to(ROOT / "agents")
    out = tmp / "results"
    assert main(["run", str(path), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return path, out


def test_run_csv_and_json_are_the_summary(built, capsys):
    path, out = built
    assert main(["run", str(path), "--out", str(out), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    summary = Results(out).summary()
    assert [r["arm"] for r in rows] == list(summary.index)
    assert [float(r["revenue_per_run"]) for r in rows] == pytest.approx(list(summary.revenue_per_run), rel=1e-12)
    assert main(["run", str(path), "--out", str(out), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["experiment"] == "lightning_sale" and doc["complete"] is True
    assert [r["runs"] for r in doc["summary"]] == [2] * 4


def test_analyze_csv_is_the_headline_and_json_has_the_impact(built, tmp_path, capsys):
    _, out = built
    assert main(["analyze", str(out), "--boot", "0", "--format", "csv", "--out", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    written = list(csv.DictReader((tmp_path / "a" / "headline.csv").open(encoding="utf-8")))
    assert [r["arm"] for r in rows] == [r["arm"] for r in written]
    assert [float(r["cuminc"]) for r in rows] == pytest.approx([float(r["cuminc"]) for r in written], rel=1e-9)
    assert "tables:" in captured.err and "tables:" not in captured.out  # the notes go to stderr
    assert main(["analyze", str(out), "--boot", "0", "--format", "json", "--out", str(tmp_path / "b")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["control"] == "control" and len(doc["headline"]) == 4
    assert {r["arm"] for r in doc["impact"]} == {"sale", "sale_timer", "sale_timer_scarcity"}
    assert all(isinstance(r["induced_purchases"], float) for r in doc["impact"])


def test_validate_shows_overrides_so_honest_and_deceptive_arms_differ(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    spec = ROOT / "experiments" / "dark_patterns.toml"
    assert main(["validate", str(spec)]) == 0
    text = capsys.readouterr().out
    block = text.split("resetting_timer:")[1].split("honest_scarcity:")[0]
    assert "set lineup.skincare.tactics.countdown_timer.resets = true" in block
    assert "countdown_timer.resets" not in text.split("honest_timer:")[1].split("resetting_timer:")[0]
    assert main(["validate", str(spec), "--format", "json"]) == 0
    arms = {a["arm"]: a for a in json.loads(capsys.readouterr().out)["arms"]}
    assert arms["honest_timer"]["set"] == {}
    assert arms["resetting_timer"]["set"] == {"lineup.skincare.tactics.countdown_timer.resets": True}
    assert arms["all_dark"]["set"]["lineup.skincare.tactics.scarcity_cue.displayed_stock"] == 3  # inherited too
    assert main(["validate", str(spec), "--format", "markdown"]) == 0
    assert "| resetting_timer | skincare.countdown_timer, skincare.lightning_sale | " \
           "lineup.skincare.tactics.countdown_timer.resets = true |" in capsys.readouterr().out


TIMER_ONLY = """
[experiment]
name = "timer_only"
seed = 1
replicates = 2
[stream]
duration_s = 600.0
[stream.arrivals]
rate_per_s = 0.5
[population]
profile = "mixed"
[lineup.lipstick]
price = 20.0
base_rate_per_s = 3.0e-4
[lineup.lipstick.tactics.lightning_sale]
start_s = 100.0
end_s = 400.0
discount = 0.2
[lineup.lipstick.tactics.countdown_timer]
gain = 2.0
[arms.control]
[arms.timer]
tactics = ["lipstick.countdown_timer"]
[arms.sale_timer]
tactics = ["lipstick.countdown_timer", "lipstick.lightning_sale"]
[arms.own_window]
tactics = ["lipstick.countdown_timer"]
set = { "lineup.lipstick.tactics.countdown_timer.start_s" = 0.0, "lineup.lipstick.tactics.countdown_timer.deadline_s" = 300.0 }
"""


def test_validate_warns_of_a_timer_counting_down_a_sale_that_is_off(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    spec = tmp_path / "timer_only.toml"
    spec.write_text(TIMER_ONLY, encoding="utf-8")
    assert main(["validate", str(spec)]) == 0  # a warning, not an error
    captured = capsys.readouterr()
    warnings = captured.err.replace("\n", " ")
    assert "arms.timer: lipstick.countdown_timer counts down" in warnings
    assert "arms.sale_timer" not in warnings and "arms.own_window" not in warnings  # the sale on; its own window
    # (the line may wrap where the spec's path is long: compare the words)
    assert "1 warning on stderr" in " ".join(captured.out.split())
    assert main(["validate", str(spec), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["warnings"]) == 1 and "arms.timer:" in doc["warnings"][0]
    assert main(["validate", str(spec), "--strict"]) == 2
    assert "--strict" in capsys.readouterr().err


def test_validate_warns_of_an_arm_that_copies_another(tmp_path, capsys):
    spec = tmp_path / "copy.toml"
    spec.write_text(TIMER_ONLY.replace("[arms.control]", "[arms.control]\n[arms.again]"), encoding="utf-8")
    assert main(["validate", str(spec)]) == 0
    assert "arms.again: simulates the same scenario as arms.control" in capsys.readouterr().err.replace("\n", " ")


_cell = st.one_of(
    st.floats(-1e9, 1e9, allow_nan=False).map(lambda x: f"{x:,.2f}"),
    st.integers(0, 10**7).map(lambda n: f"{n:,}"),
    st.from_regex(r"[a-z][a-z_]{0,30}", fullmatch=True),
    st.tuples(st.floats(0, 10), st.floats(0, 10)).map(lambda t: f"{t[0]:.3f} ({t[1]:.3f}, {t[0] + t[1]:.3f})"),
)


@settings(max_examples=60, deadline=None)
@given(width=st.integers(40, 160), ncols=st.integers(1, 9), nrows=st.integers(1, 6), data=st.data())
def test_any_table_fits_any_width_and_keeps_every_cell_whole(width, ncols, nrows, data):
    headers = data.draw(st.lists(st.from_regex(r"[a-z]{1,12}( [a-z()%]{1,8}){0,3}", fullmatch=True),
                                 min_size=ncols, max_size=ncols))
    rows = tuple(tuple(data.draw(_cell) for _ in range(ncols + 1)) for _ in range(nrows))
    table = Table("t", "a title that is long enough to wrap " * 3,
                  (Column("arm", numeric=False, key=True), *(Column(h) for h in headers)), rows)
    console = Console(width=width, file=io.StringIO(), color_system=None)
    print_text(console, [table])
    lines = console.file.getvalue().splitlines()
    assert not _too_wide(lines, width)
    assert not _missing([c for r in rows for c in r], lines)
