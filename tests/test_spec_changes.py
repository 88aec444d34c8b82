"""What an edited spec may do to its results folder (``fomolab.changes``).

Descriptions never block resuming; more replicates, added sweep values and
added arms that leave the finished runs as they are extend the folder; any
other change (a parameter, a removed sweep value, a removed arm, an arm that
would change the finished runs) is refused with each changed key's old and
new value, exit 2, and nothing written.  ``fomolab.run`` returns the
replicates asked for.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from fomolab import Results, run
from fomolab.cli import main

SPEC = """
[experiment]
name = "edits"
description = "{description}"
seed = 5
replicates = {replicates}

[stream]
duration_s = 600.0
[stream.arrivals]
rate_per_s = 0.4

[population.segments.all]
share = 1.0
impulsiveness = {{ beta = [2.0, 5.0] }}
dwell = {{ mean_s = 200.0 }}

[lineup.item]
price = 10.0
base_rate_per_s = 2.0e-3

[lineup.item.tactics.lightning_sale]
start_s = 100.0
end_s = 300.0
discount = 0.3
gain = 2.0

[arms.control]
description = "{arm_description}"
[arms.sale]
tactics = ["item.lightning_sale"]
{extra}
"""

#: An added arm within the existing arms' envelope: a smaller discount, the same window and gain.
MILD = """
[arms.mild_sale]
tactics = ["item.lightning_sale"]
set = { "lineup.item.tactics.lightning_sale.discount" = 0.1 }
"""
#: An added arm that raises the envelope (a larger gain): every arm's candidate purchase times would change.
STRONG = """
[arms.strong_sale]
tactics = ["item.lightning_sale"]
set = { "lineup.item.tactics.lightning_sale.gain" = 6.0 }
"""


def spec(tmp_path: Path, name: str = "s", description: str = "first", arm_description: str = "none",
         replicates: int = 2, extra: str = "") -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(SPEC.format(description=description, arm_description=arm_description, replicates=replicates,
                             extra=extra), encoding="utf-8")
    return p


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


def test_edited_descriptions_never_block_resuming(tmp_path):
    out = tmp_path / "r"
    first = run(spec(tmp_path), out, workers=1)
    edited = spec(tmp_path, "edited", description="a better description", arm_description="no tactic at all")
    again = run(edited, out, workers=1)
    assert again.manifest["invocations"][-1]["runs_computed"] == 0
    assert again.manifest["description"] == "a better description"  # the folder records the new text
    assert again.manifest["spec"]["arms"]["control"]["description"] == "no tactic at all"
    pd.testing.assert_frame_equal(first.runs, again.runs)


def test_an_added_arm_is_computed_and_the_finished_runs_kept(tmp_path):
    out = tmp_path / "r"
    before = run(spec(tmp_path), out, workers=1).runs
    grown = run(spec(tmp_path, "grown", extra=MILD), out, workers=1)
    assert grown.manifest["invocations"][-1]["runs_computed"] == 2  # the new arm's two replicates
    assert grown.manifest["arms"] == ["control", "sale", "mild_sale"]
    assert grown.completeness.complete and grown.completeness.runs_expected == 6
    kept = grown.runs[grown.runs.arm != "mild_sale"].reset_index(drop=True)
    plain = {"arm": str, "run_id": str}
    pd.testing.assert_frame_equal(before.astype(plain), kept.astype(plain))
    fresh = run(spec(tmp_path, "grown", extra=MILD), tmp_path / "fresh", workers=1).runs
    pd.testing.assert_frame_equal(fresh.astype(plain), grown.runs.astype(plain))


def test_an_added_arm_that_would_change_the_finished_runs_is_refused(tmp_path, capsys):
    out = tmp_path / "r"
    run(spec(tmp_path), out, workers=1)
    before = snapshot(out)
    assert main(["run", str(spec(tmp_path, "strong", extra=STRONG)), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "adding arm 'strong_sale' changes the runs already computed (arms 'control', 'sale')" in err
    assert "--out" in err and snapshot(out) == before


@pytest.mark.parametrize(("old", "new", "shown"), [
    ("price = 10.0", "price = 12.0", "lineup.item.price: 10.0 -> 12.0"),
    ("seed = 5", "seed = 6", "experiment.seed: 5 -> 6"),
    ('[arms.sale]\ntactics = ["item.lightning_sale"]', "", "arms.sale: {\"tactics\": [\"item.lightning_sale\"]} -> (absent)"),
    ("gain = 2.0", "gain = 2.0\narrival_boost = 1.5", "lineup.item.tactics.lightning_sale.arrival_boost: (absent) -> 1.5"),
])
def test_other_changes_are_refused_with_old_and_new_values(tmp_path, capsys, old, new, shown):
    out = tmp_path / "r"
    path = spec(tmp_path)
    run(path, out, workers=1)
    before = snapshot(out)
    changed = tmp_path / "changed.toml"
    changed.write_text(path.read_text().replace(old, new), encoding="utf-8")
    assert changed.read_text() != path.read_text()
    assert main(["run", str(changed), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "holds results of a different experiment" in err and shown in err, err
    assert snapshot(out) == before, "nothing written"


def _sweep(tmp_path: Path, name: str, discounts: str) -> Path:
    text = (ROOT / "experiments/discount_timer_sweep.toml").read_text()
    text = text.replace('"lineup.lipstick.tactics.lightning_sale.discount" = [0.1, 0.3, 0.5]',
                        f'"lineup.lipstick.tactics.lightning_sale.discount" = [{discounts}]')
    assert f"[{discounts}]" in text
    p = tmp_path / f"{name}.toml"
    p.write_text(text.replace("replicates = 3", "replicates = 1"), encoding="utf-8")
    return p


def test_a_removed_sweep_value_is_refused_and_an_added_one_computed(tmp_path, capsys):
    (tmp_path / "agents").symlink_to(ROOT / "agents")
    out = tmp_path / "r"
    run(_sweep(tmp_path, "full", "0.1, 0.3, 0.5"), out, workers=1)
    before = snapshot(out)
    assert main(["run", str(_sweep(tmp_path, "fewer", "0.1, 0.3")), "--out", str(out), "-q"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "sweep.parameters.lineup.lipstick.tactics.lightning_sale.discount: [0.1, 0.3, 0.5] -> [0.1, 0.3]" in err
    assert "2 sweep points with finished runs would leave the design" in err
    assert snapshot(out) == before
    grown = run(_sweep(tmp_path, "more", "0.1, 0.3, 0.5, 0.7"), out, workers=1)
    assert grown.manifest["invocations"][-1]["runs_computed"] == 4  # 2 points x 2 arms x 1 replicate
    s = grown.summary()
    assert (s.runs == s.runs_expected).all() and s.runs.tolist() == [8, 8]  # never "10 of 8 runs"


def test_run_returns_the_replicates_asked_for(tmp_path):
    out = tmp_path / "r"
    path = spec(tmp_path, replicates=4)
    run(path, out, workers=1)
    fewer = run(path, out, replicates=2)
    assert fewer.manifest["invocations"][-1]["runs_computed"] == 0
    assert sorted(fewer.runs.replicate.unique()) == [0, 1] and len(fewer.runs) == 4
    assert fewer.summary().runs.tolist() == [2, 2] and fewer.completeness.complete
    assert "the first 2 of the folder's 4 replicates" in repr(fewer)
    assert len(Results(out).runs) == 8  # the folder keeps them all
    fresh = run(path, tmp_path / "fresh", replicates=2, workers=1)
    pd.testing.assert_frame_equal(fresh.runs, fewer.runs)  # exactly what a 2-replicate run computes
    with pytest.raises(ValueError, match="replicates must be a whole number >= 1"):
        Results(out, replicates=0)


def test_notebook_views_of_results_analysis_and_statistics(tmp_path):
    from fomolab import analyze
    from fomolab.stats import kaplan_meier

    res = run(spec(tmp_path), tmp_path / "r", workers=1)
    a = analyze(res.path, n_boot=0)
    km = kaplan_meier(pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 0, 1]}), "t", "e")
    for obj in (res, a, km):
        page = obj._repr_html_()
        assert page.startswith('<div class="fomolab">') and "<table" in page, type(obj)
    assert "sale" in res._repr_html_() and "headline" in a._repr_html_()


def test_the_readmes_first_snippet_runs_without_a_warning(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    (tmp_path / "agents").symlink_to(ROOT / "agents")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(code, "README.md", "exec"), {})
    assert json.loads((tmp_path / "results/lightning_sale/manifest.json").read_text())["replicates"] == 10
