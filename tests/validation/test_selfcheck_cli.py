"""`fomolab selfcheck` runs from an installed package alone and writes only where --write says."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from fomolab import load_experiment
from fomolab.cli import main
from fomolab.design import expand
from fomolab.engine import simulate
from fomolab.validation._sim import experiment
from fomolab.validation.engine import REFERENCE

from helpers import ROOT


def test_packaged_reference_is_the_shipped_spec():
    packaged, shipped = experiment(REFERENCE), load_experiment(ROOT / "experiments/reference_flash.toml")
    assert (packaged.name, packaged.seed, packaged.replicates, list(packaged.arms)) == \
        (shipped.name, shipped.seed, shipped.replicates, list(shipped.arms))
    for a, b in zip(expand(packaged, range(2)), expand(shipped, range(2)), strict=True):
        assert (a.arm, a.replicate, a.seed) == (b.arm, b.replicate, b.seed)
        ta, tb = simulate(a), simulate(b)
        for name in ("shoppers", "events"):
            pd.testing.assert_frame_equal(getattr(ta, name).drop(columns="run_id"),
                                          getattr(tb, name).drop(columns="run_id"), check_exact=True)


def test_selfcheck_writes_only_where_told(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "VALIDATION.md"
    page.write_text("tracked page")
    assert main(["selfcheck", "--quick", "--items", "2"]) == 0
    assert page.read_text() == "tracked page" and sorted(p.name for p in tmp_path.iterdir()) == ["docs"]
    capsys.readouterr()
    assert main(["selfcheck", "--quick", "--items", "2", "--write", "-"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("# Validation") and "## 2. Arrivals and dwell times" in out
    assert "checks pass" in err
    assert page.read_text() == "tracked page" and sorted(p.name for p in tmp_path.iterdir()) == ["docs"]
    assert main(["selfcheck", "--quick", "--items", "2", "--write", "docs/VALIDATION.md"]) == 0
    assert page.read_text().startswith("# Validation")
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == ["VALIDATION.md"]
    assert main(["selfcheck", "--quick", "--items", "2", "--write", "no/such/folder/v.md"]) == 2


def test_selfcheck_from_the_package_alone(tmp_path):
    """The package copied away from the checkout (as pip installs it) runs item 1 from an empty folder."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "src" / "fomolab", site / "fomolab", ignore=shutil.ignore_patterns("__pycache__"))
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    res = subprocess.run([sys.executable, "-c", "import sys, fomolab; assert fomolab.__file__.startswith(sys.argv[1]); "
                          "from fomolab.cli import main; sys.exit(main(sys.argv[2:]))", str(site),
                          "selfcheck", "--quick", "--items", "1", "--write", "-"],
                         cwd=empty, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.startswith("# Validation") and "reference" in res.stdout
    assert list(empty.iterdir()) == []


def test_items_are_the_registered_checks(capsys):
    from fomolab.validation import ITEMS

    with pytest.raises(SystemExit) as exc:
        main(["selfcheck", "--quick", "--items", str(ITEMS[-1] + 1)])
    assert exc.value.code == 2
    assert f"items are 1 to {ITEMS[-1]}" in capsys.readouterr().err


def test_rewriting_the_page_keeps_the_sections_benchmarks_wrote(tmp_path):
    from fomolab.validation import KEPT, write_report

    page = tmp_path / "VALIDATION.md"
    page.write_text(f"# Validation\n\nold checks\n\n{KEPT}\n\n## Calibration\n\nrecovery table\n")
    write_report([], page, scale="quick", seconds={})
    text = page.read_text()
    assert "old checks" not in text and text.startswith("# Validation")
    assert text.endswith(f"{KEPT}\n\n## Calibration\n\nrecovery table\n")
    page.write_text("# Validation\n\nno benchmark sections\n")
    write_report([], page, scale="quick", seconds={})
    assert KEPT not in page.read_text()
