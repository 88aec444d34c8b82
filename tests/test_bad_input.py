"""Bad input: one line per problem naming file, key, value and rule; exit 2; nothing written.

The spec catalogue (test_spec_catalogue.py) covers every key; these cases edit a shipped
experiment the way a user would.
"""

from __future__ import annotations

import pytest

from fomolab.cli import main

SPEC = "experiments/reference_flash.toml"


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


CASES = {
    # name: (edit of the reference spec, expected fragments of the message)
    "toml_syntax": (lambda t: edit(t, "duration_s = 3600.0", "duration_s = = 3600.0"),
                    ["is not valid TOML", "line", "duration_s = = 3600.0"]),
    "unknown_key": (lambda t: edit(t, "gain = 4.0", "gian = 4.0"),
                    ["lineup.gloss.tactics.lightning_sale.gian", "unknown key 'gian'", "did you mean 'gain'"]),
    "unknown_top_key": (lambda t: edit(t, "[stream]\n", "[straem]\nduration_s = 1.0\n[stream]\n"),
                        ["straem", "unknown key", "did you mean 'stream'"]),
    "wrong_type": (lambda t: edit(t, "replicates = 20", 'replicates = "twenty"'),
                   ["experiment.replicates", "'twenty'", "must be a whole number"]),
    "bool_for_int": (lambda t: edit(t, "replicates = 20", "replicates = true"),
                     ["experiment.replicates", "True", "must be a whole number"]),
    "string_for_bool": (lambda t: edit(t, 'control = "control"', 'control = "control"\ncommon_random_numbers = "no"'),
                        ["experiment.common_random_numbers", "'no'", "must be true or false"]),
    "nan_rate": (lambda t: edit(t, "rate_per_s = 2.0", "rate_per_s = nan"),
                 ["stream.arrivals.rate_per_s", "nan", "finite"]),
    "inf_gain": (lambda t: edit(t, "gain = 4.0", "gain = inf"),
                 ["lineup.gloss.tactics.lightning_sale.gain", "inf", "finite"]),
    "huge_replicates": (lambda t: edit(t, "replicates = 20", "replicates = 1_000_000_000_000"),
                        ["experiment.replicates", "1000000000000", "at most 100,000"]),
    "zero_rate": (lambda t: edit(t, "rate_per_s = 2.0", "rate_per_s = 0.0"),
                  ["stream.arrivals.rate_per_s", "0.0", "greater than 0"]),
    "negative_rate": (lambda t: edit(t, "rate_per_s = 2.0", "rate_per_s = -1.0"),
                      ["stream.arrivals.rate_per_s", "-1.0", "greater than 0"]),
    "window_outside_stream": (lambda t: edit(t, "end_s = 1500.0", "end_s = 4000.0"),
                              ["lineup.gloss.tactics.lightning_sale.end_s", "4000.0", "inside the stream [0, 3600.0]"]),
    "deadline_before_start": (lambda t: edit(t, 'urgency = "linear"', 'urgency = "linear"\nstart_s = 1400.0\ndeadline_s = 1300.0'),
                              ["lineup.gloss.tactics.countdown_timer", "deadline_s must be after start_s", "1300.0"]),
    "sale_end_before_start": (lambda t: edit(t, "end_s = 1500.0", "end_s = 1100.0"),
                              ["lineup.gloss.tactics.lightning_sale", "end_s must be after start_s", "1100.0"]),
    "unknown_profile": (lambda t: edit(t, 'profile = "reference"', 'profile = "refrence"'),
                        ["population.profile", "'refrence'", "unknown population profile", "did you mean 'reference'"]),
    "unknown_tactic": (lambda t: edit(t, '"gloss.countdown_timer"]', '"gloss.countdown_timr"]'),
                       ["arms.flash.tactics", "'gloss.countdown_timr'", "names no tactic", "did you mean 'gloss.countdown_timer'"]),
    "unknown_tactic_kind": (lambda t: edit(t, "[lineup.gloss.tactics.countdown_timer]", "[lineup.gloss.tactics.countdown]"),
                            ["lineup.gloss.tactics.countdown", "unknown key", "did you mean 'countdown_timer'"]),
    "shares_not_one": (lambda t: edit(t, 'profile = "reference"', 'profile = "reference"\n[population.segments.reference]\nshare = 0.8'),
                       ["population.segments", "0.8", "must sum to 1"]),
    "negative_stock": (lambda t: edit(t, "price = 20.0", "price = 20.0\nstock = -5"),
                       ["lineup.gloss.stock", "-5", "greater than or equal to 0"]),
    "replicates_zero": (lambda t: edit(t, "replicates = 20", "replicates = 0"),
                        ["experiment.replicates", "0", "greater than or equal to 1"]),
    "scarcity_without_stock": (lambda t: edit(t, '"gloss.countdown_timer"]', '"gloss.countdown_timer", "gloss.scarcity_cue"]')
                               + '\n[lineup.gloss.tactics.scarcity_cue]\nthreshold = 5\n',
                               ["lineup.gloss.tactics.scarcity_cue", "finite stock"]),
    "unknown_control": (lambda t: edit(t, 'control = "control"', 'control = "contrl"'),
                        ["experiment.control", "'contrl'", "did you mean 'control'"]),
    "bad_set_path": (lambda t: t + '\n[arms.flash.set]\n"lineup.gloss.tactics.lightning_sale.discont" = 0.2\n',
                     ["arms.flash.set.lineup.gloss.tactics.lightning_sale.discont", "0.2", "did you mean 'lineup.gloss.tactics.lightning_sale.discount'"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_spec(case, tmp_path, root, capsys):
    mutate, fragments = CASES[case]
    spec = tmp_path / f"{case}.toml"
    spec.write_text(mutate((root / SPEC).read_text()))
    out = tmp_path / "out"
    for command in (["validate", str(spec)], ["run", str(spec), "--out", str(out), "--quiet"]):
        code = main(command)
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.count("\n") == 1, f"one message on one line: {err!r}"
        assert str(spec) in err
        for fragment in fragments:
            assert fragment in err, f"{fragment!r} not in {err!r}"
    assert not out.exists()


def test_missing_spec_file(tmp_path, capsys):
    missing = tmp_path / "nope.toml"
    assert main(["run", str(missing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "does not exist" in err
    assert not (tmp_path / "out").exists()


def test_folder_of_another_experiment_is_refused(tmp_path, root, capsys):
    out = tmp_path / "out"
    assert main(["run", str(root / SPEC), "--out", str(out), "--quiet", "--replicates", "1", "--workers", "1"]) == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    changed = tmp_path / "changed.toml"
    changed.write_text((root / SPEC).read_text().replace("gain = 4.0", "gain = 5.0"))
    assert main(["run", str(changed), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "different experiment" in err and "lineup.gloss.tactics.lightning_sale.gain: 4.0 -> 5.0" in err
    assert "--out" in err
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert before == after, "nothing in the folder may change"


def test_folder_that_is_not_results_is_refused(tmp_path, root, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert main(["run", str(root / SPEC), "--out", str(out), "--quiet"]) == 2
    assert "not a fomolab results folder" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


@pytest.mark.parametrize("args", [["--replicates", "0"], ["--seed", "-1"], ["--workers", "x"]])
def test_bad_arguments(args, root, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", str(root / SPEC), "--out", str(tmp_path / "o"), *args])
    assert exc.value.code == 2
    assert "fomolab run: error: argument" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_every_problem_at_once(tmp_path, root, capsys):
    text = (root / SPEC).read_text()
    for old, new in [("rate_per_s = 2.0", "rate_per_s = nan"), ("replicates = 20", "replicates = true"),
                     ("price = 20.0", 'price = "20"'), ("gain = 4.0", "gian = 4.0")]:
        text = edit(text, old, new)
    spec = tmp_path / "several.toml"
    spec.write_text(text)
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "-q"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4, lines
    for key in ("stream.arrivals.rate_per_s", "experiment.replicates", "lineup.gloss.price",
                "lineup.gloss.tactics.lightning_sale.gian"):
        assert sum(f"{spec}: {key}: " in line for line in lines) == 1, key
    assert all(line.startswith("fomolab: error: ") and "(got " in line for line in lines)
    assert not (tmp_path / "out").exists()


def test_specs_validate_from_their_own_folder(root, monkeypatch, capsys):
    """Profiles are found by name whatever the working folder (they ship with fomolab)."""
    monkeypatch.chdir(root / "experiments")
    for spec in sorted((root / "experiments").glob("*.toml")):
        assert main(["validate", spec.name]) == 0, capsys.readouterr().err
