"""analyze(), Analysis.write() and `fomolab analyze`: tables, files, CLI, schema."""

from __future__ import annotations

import hashlib
import re

import pytest

from fomolab import run
from fomolab.analysis import HEADLINE_COLUMNS, analyze
from fomolab.cli import main

from helpers import experiment, make_spec


def spec():
    return make_spec(
        experiment={"name": "small", "seed": 8, "replicates": 4},
        lineup={"item": {"price": 10.0, "base_rate_per_s": 1 / 900, "tactics": {
            "lightning_sale": {"start_s": 400.0, "end_s": 800.0, "discount": 0.2, "gain": 2.0},
            "countdown_timer": {"gain": 2.0}}}},
        arms={"control": {}, "sale_timer": {"tactics": ["item.*"]}},
    )


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    return run(experiment(spec()), tmp_path_factory.mktemp("an") / "small", workers=1)


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "analysis" not in p.parts}


def test_analyze_tables(res):
    a = analyze(res, n_boot=50)
    assert list(a.headline.columns) == HEADLINE_COLUMNS
    assert a.headline.arm.tolist() == ["control", "sale_timer"]
    ctrl, trt = a.headline.iloc[0], a.headline.iloc[1]
    assert ctrl.hazard_ratio == 1.0 and ctrl.odds_ratio == 1.0
    hr = a.arms[a.arms.measure == "hazard_ratio"].iloc[0]
    assert trt.hazard_ratio == hr.estimate and trt.hr_p_holm == hr.p_holm
    assert trt.deadline_share == a.deadline.iloc[0].share_last
    assert a.surface is None and a.sobol is None
    assert "headline (2 rows)" in repr(a)


def test_write_is_atomic_and_leaves_runs_alone(res):
    before = digest(res.path)
    out = analyze(res, n_boot=20).write()
    names = sorted(p.name for p in out.iterdir())
    tables = ("headline", "arms", "deadline", "points", "impact", "impact_segment", "impact_total", "timeline",
              "windows", "survival", "incidence", "repeat", "deadline_curve", "impulsiveness")
    assert names == sorted(f"{t}.{ext}" for t in tables for ext in ("csv", "md"))
    assert digest(res.path) == before
    out2 = analyze(res, n_boot=20).write()  # replaces the old analysis
    assert out2 == out and not [p for p in res.path.iterdir() if p.name.startswith(".analysis")]
    md = (out / "headline.md").read_text()
    assert md.startswith("# Headline") and "| sale_timer |" in md


def test_cli_prints_headline_and_writes(res, capsys):
    assert main(["analyze", str(res.path), "--boot", "20"]) == 0
    printed = capsys.readouterr().out
    assert "hazard ratio" in printed and "sale_timer" in printed and "odds ratio" in printed
    assert (res.path / "analysis" / "arms.csv").is_file()


def test_cli_bad_folder_exits_2(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fomolab: error:") and "manifest.json" in err and err.count("\n") == 1


def test_sweep_analysis_tables(root, tmp_path):
    res = run(root / "experiments/discount_timer_sweep.toml", tmp_path / "dts", workers=1)
    a = analyze(res, n_boot=0)
    assert set(a.headline.point) == set(range(6)) and a.surface is not None and a.sobol is None
    assert set(a.tables()) == {"headline", "arms", "deadline", "points", "surface", "impact", "impact_segment",
                               "impact_total", "pooled", "marginals", "cells", "timeline", "windows", "survival",
                               "incidence", "repeat", "deadline_curve", "impulsiveness"}


def documented_analysis(root) -> dict[str, dict[str, str]]:
    text = (root / "docs/schema.md").read_text()
    part = text.split("\n## analysis", 1)[1]
    tables = {}
    for section in re.split(r"^### ", part, flags=re.M)[1:]:
        name = section.split("\n", 1)[0].strip().strip("`")
        tables[name] = dict(re.findall(r"^\| `([a-z_0-9]+)` \| ([A-Za-z0-9]+) \|", section, flags=re.M))
    return tables


def test_analysis_tables_match_schema(root, res):
    from fomolab.stats import episodes
    from fomolab.stats._example import example_sweep_results

    doc = documented_analysis(root)
    a = analyze(res, n_boot=20)
    s = analyze(example_sweep_results(), n_boot=0)
    m = analyze(run(root / "experiments/virtual_host.toml", res.path.parent / "vh", replicates=2), n_boot=0)
    frames = {"headline": a.headline, "arms": a.arms, "deadline": a.deadline, "points": s.points,
              "surface": s.surface, "sobol": s.sobol, "impact": a.impact, "impact_segment": a.impact_segment,
              "streams": m.streams, "episodes": episodes(res), "impact_total": a.impact_total,
              "pooled": s.pooled, "concentration": m.concentration, "timeline": a.timeline, "windows": a.windows,
              "survival": a.survival, "incidence": a.incidence, "repeat": a.repeat,
              "deadline_curve": a.deadline_curve, "impulsiveness": a.impulsiveness,
              "marginals": s.marginals, "cells": s.cells}
    assert set(doc) == {f"analysis/{k}" for k in frames if k != "episodes"} | {"episodes"}
    for name, df in frames.items():
        want = doc[name if name == "episodes" else f"analysis/{name}"]
        cols = [c for c in df.columns if c in want or name != "points"]
        assert cols[: len(want)] == list(want), name
        assert {c: str(df[c].dtype) for c in want} == want, name
