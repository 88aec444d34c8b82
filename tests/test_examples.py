"""Every shipped example spec runs, analyzes and reports, at a small size.

Each file in ``experiments/`` is found by glob, so a new example is covered
without editing this file.  The copy run here keeps the spec's structure (arms,
tactics, sweep, market) and only shrinks its cost: two replicates, and arrival
rates scaled down so that a run has a few hundred viewers.  The commands run
through the CLI, printing included, as a user would type them.
"""

from __future__ import annotations

import json
import tomllib

import pytest

from _toml import dumps
from fomolab.cli import main

from helpers import ROOT

EXAMPLES = sorted((ROOT / "experiments").glob("*.toml"))
#: Expected viewers per stream and run in the shrunken copy.
VIEWERS = 400


def shrink(spec: dict, viewers: float = VIEWERS) -> dict:
    """The spec with 2 replicates and arrival rates scaled to about ``viewers`` per run."""
    spec["experiment"]["replicates"] = 2
    stream = spec["stream"]
    arrivals = stream["arrivals"]
    duration = float(stream["duration_s"])
    if "schedule" in arrivals:
        pieces = arrivals["schedule"]
        starts = [float(p["start_s"]) for p in pieces] + [duration]
        expected = sum(float(p["rate_per_s"]) * (b - a) for p, a, b in zip(pieces, starts, starts[1:], strict=False))
    else:
        expected = float(arrivals["rate_per_s"]) * duration
    factor = min(1.0, viewers / expected)
    if "schedule" in arrivals:
        for p in arrivals["schedule"]:
            p["rate_per_s"] = float(p["rate_per_s"]) * factor
    else:
        arrivals["rate_per_s"] = float(arrivals["rate_per_s"]) * factor
    return spec


def test_examples_are_found():
    assert len(EXAMPLES) >= 9, [p.name for p in EXAMPLES]


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_analyzes_and_reports(example, tmp_path, capsys):
    spec = shrink(tomllib.loads(example.read_text(encoding="utf-8")))
    small = tmp_path / example.name
    small.write_text(dumps(spec), encoding="utf-8")
    (tmp_path / "agents").symlink_to(ROOT / "agents")  # profiles by name, as beside the original
    out = tmp_path / "results"

    assert main(["validate", str(small)]) == 0
    assert main(["run", str(small), "--out", str(out), "--workers", "1"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(list((out / "runs").glob("*.parquet"))) == manifest["runs"]

    assert main(["analyze", str(out), "--boot", "20"]) == 0  # printing included: it once crashed on sweeps
    printed = capsys.readouterr().out
    assert spec["experiment"]["name"] in printed and "Traceback" not in printed
    assert (out / "analysis" / "headline.csv").is_file()

    assert main(["report", str(out)]) == 0
    page = (out / "report" / "index.html").read_text(encoding="utf-8")
    assert spec["experiment"]["name"] in page
    assert list((out / "report" / "figures").glob("*.png"))
