"""Derived output (``analyze``, ``report``) never overwrites results or files it did not write.

And odd but legal names of arms and products (spaces, unicode, ``/``, ``..``,
markup) never become paths and are escaped in the report.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from _toml import dumps
from fomolab import run
from fomolab.analysis import analyze
from fomolab.cli import main
from fomolab.errors import ResultsError
from fomolab.outputs import MARKER, check_target, write_output
from fomolab.spec import parse_spec

from helpers import make_spec

SALE = {"lightning_sale": {"start_s": 300.0, "end_s": 600.0, "discount": 0.2, "gain": 3.0}}
SPEC = make_spec(experiment={"name": "safety", "replicates": 2},
                 stream={"duration_s": 900.0, "arrivals": {"rate_per_s": 0.5}},
                 lineup={"item": {"tactics": SALE}}, arms={"control": {}, "sale": {"tactics": ["item.lightning_sale"]}})


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``folder``: (size, mtime in ns)."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("safety") / "res"
    run(parse_spec(SPEC, source="<test>"), out)
    return out


COMMANDS = {"report": ["report"], "analyze": ["analyze", "--boot", "0", "-q"]}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("where", ["itself", "parent", "runs", "shoppers_child"])
def test_out_onto_the_results_is_refused(results, command, where, capsys):
    target = {"itself": results, "parent": results.parent, "runs": results / "runs",
              "shoppers_child": results / "shoppers" / "x"}[where]
    before = snapshot(results.parent)
    assert main([*COMMANDS[command], str(results), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err and str(target) in err
    assert snapshot(results.parent) == before, "something was written or deleted"


@pytest.mark.parametrize("command", COMMANDS)
def test_out_onto_another_results_folder_is_refused(results, tmp_path, command, capsys):
    other = tmp_path / "other"
    run(parse_spec(make_spec(experiment={"name": "other", "replicates": 1},
                             stream={"duration_s": 300.0, "arrivals": {"rate_per_s": 0.2}}), source="<t>"), other)
    before = snapshot(other)
    assert main([*COMMANDS[command], str(results), "--out", str(other)]) == 2
    assert "is a results folder" in capsys.readouterr().err
    assert snapshot(other) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_out_onto_a_users_folder_keeps_its_files(results, tmp_path, command, capsys):
    mine = tmp_path / "thesis"
    (mine / "chapter").mkdir(parents=True)
    (mine / "draft.txt").write_text("do not lose me")
    (mine / "chapter" / "figure.png").write_bytes(b"\x89PNG")
    before = snapshot(mine)
    assert main([*COMMANDS[command], str(results), "--out", str(mine)]) == 2
    assert "not empty and was not written by" in capsys.readouterr().err
    assert snapshot(mine) == before
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    assert main([*COMMANDS[command], str(results), "--out", str(afile)]) == 2
    assert afile.read_text() == "x"
    link = tmp_path / "link"
    link.symlink_to(mine, target_is_directory=True)
    assert main([*COMMANDS[command], str(results), "--out", str(link)]) == 2
    assert snapshot(mine) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_own_output_is_replaced_and_foreign_files_refused(results, tmp_path, command, capsys):
    out = tmp_path / "out"
    out.mkdir()  # an empty folder may be used
    assert main([*COMMANDS[command], str(results), "--out", str(out)]) == 0
    marker = json.loads((out / MARKER).read_text())
    assert marker["kind"] == command.replace("analyze", "analysis")
    assert marker["results"] == str(results.resolve())
    assert sorted(marker["files"]) == sorted(p for p in snapshot(out) if p != MARKER)
    assert main([*COMMANDS[command], str(results), "--out", str(out)]) == 0  # its own: replaced
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary folder was left"
    (out / "my notes.txt").write_text("mine")
    capsys.readouterr()
    assert main([*COMMANDS[command], str(results), "--out", str(out)]) == 2
    assert "my notes.txt" in capsys.readouterr().err
    assert (out / "my notes.txt").read_text() == "mine"
    other = "report" if command == "analyze" else "analysis"
    with pytest.raises(ResultsError, match="output, not"):
        check_target(_marked(tmp_path / "y", other), command.replace("analyze", "analysis"), results)


def _marked(folder: Path, kind: str) -> Path:
    folder.mkdir()
    (folder / "a.csv").write_text("1")
    (folder / MARKER).write_text(json.dumps({"kind": kind, "files": ["a.csv"]}))
    return folder


def test_default_folders_are_inside_the_results(results):
    assert main(["analyze", str(results), "--boot", "0", "-q"]) == 0
    assert main(["report", str(results)]) == 0
    assert (results / "analysis" / MARKER).is_file() and (results / "report" / MARKER).is_file()
    before = snapshot(results)
    assert main(["report", str(results)]) == 0  # again: the old report is replaced, nothing else touched
    after = snapshot(results)
    for name, stat in before.items():
        if not name.startswith("report/"):
            assert after[name] == stat, name


def test_a_failed_write_leaves_the_old_output(results, tmp_path):
    out = analyze(results, n_boot=0).write(tmp_path / "a")
    before = snapshot(out)

    def broken(folder: Path) -> None:
        (folder / "half.csv").write_text("1,2")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_output(out, "analysis", results, broken)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"], "a temporary folder was left"


def test_python_api_refuses_too(results):
    before = snapshot(results)
    with pytest.raises(ResultsError, match="results folder"):
        analyze(results, n_boot=0).write(results)
    from fomolab.report import report

    with pytest.raises(ResultsError, match="results folder"):
        report(results, out=results.parent)
    assert snapshot(results) == before


# -- odd but legal names ---------------------------------------------------------

ODD = ["lip stick", "口红", "a/b", "..", "../../escape", '<b>bold</b> & "q"']


def test_odd_names_never_become_paths_and_are_escaped(tmp_path, capsys):
    lineup = {name: {"price": 10.0, "base_rate_per_s": 1 / 600, "tactics": SALE} for name in ODD[:3]}
    lineup[ODD[3]] = {"price": 5.0, "base_rate_per_s": 1 / 900}
    arms = {"control": {}}
    for k, name in enumerate(ODD):
        arms[name] = {"tactics": [f"{ODD[k % 3]}.lightning_sale"]}
    spec = make_spec(experiment={"name": "odd", "replicates": 2},
                     stream={"duration_s": 900.0, "arrivals": {"rate_per_s": 0.5}}, lineup=lineup, arms=arms)
    spec["population"]["segments"] = {"<i>seg</i>/..": spec["population"]["segments"]["all"]}
    file = tmp_path / "odd.toml"
    file.write_text(dumps(spec), encoding="utf-8")
    out = tmp_path / "res"
    assert main(["run", str(file), "--out", str(out), "--workers", "1"]) == 0
    assert main(["analyze", str(out), "--boot", "10"]) == 0
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "口红" in printed
    # nothing outside the two folders; inside, only fomolab's own names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.toml", "res"]
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        assert all(odd not in rel for odd in ("lip stick", "口红", "escape", "bold", "<i>")), rel
        assert path.resolve().is_relative_to(out.resolve()), rel
        if path.is_file():
            assert path.name.isascii(), rel
    page = (out / "report" / "index.html").read_text(encoding="utf-8")
    assert "<b>bold</b>" not in page and "<i>seg</i>" not in page
    assert html.escape("<b>bold</b> &") in page  # escaped (the quote may be &quot; or &#34;)
    assert "口红" in page and "../../escape" in page
    import pandas as pd

    runs = pd.read_parquet(out / "runs")
    assert set(runs.arm) == {"control", *ODD}
    md = (out / "analysis" / "headline.md").read_text(encoding="utf-8")
    assert "lip stick" in md and "口红" in md
