"""Self-check: evidence that the engine samples its model, that the statistics
recover effects that are there (and find none where there are none), and that
the model reproduces what field studies of urgency and scarcity report.

Each numbered item of ``docs/VALIDATION.md`` is a function returning
:class:`Check` records (figure, target, pass).  ``fomolab selfcheck`` runs them
at full size (``--write docs/VALIDATION.md`` rewrites that page); the test
suite runs the same functions at ``quick`` size (``tests/validation``), with
the same targets: only the Monte Carlo sizes differ, so the standard errors
are wider, never the tolerances.
Everything the checks need is in the package (no file of a checkout is read),
and nothing is written unless ``--write`` names where.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Check", "ITEMS", "run_checks", "render_report", "write_report", "SCALES"]

#: Monte Carlo sizes: ``quick`` for the test suite, ``full`` for ``fomolab selfcheck``.
SCALES = ("quick", "full")


@dataclass(frozen=True)
class Check:
    """One checked figure."""

    item: int
    name: str
    figure: str
    target: str
    passed: bool
    details: dict = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return f"Check({self.item}, {self.name!r}: {self.figure} [{self.target}] {'PASS' if self.passed else 'FAIL'})"


def _items() -> dict[int, tuple[str, Callable[[str], list[Check]]]]:
    from fomolab.validation import engine, replicates, statistics
    from fomolab.validation import field_studies as field_checks

    return {
        1: ("Conversion and time to purchase against numerical integration", engine.item1_integration),
        2: ("Arrivals and dwell times", engine.item2_arrivals),
        3: ("Concurrent viewers against M(t)/G/infinity", engine.item3_concurrent),
        4: ("Planted effect: coverage and bias of the time-varying Cox hazard ratio", statistics.item4_planted),
        5: ("A/A: false positive rate of log-rank and Cox tests", statistics.item5_aa),
        6: ("Power: plan_replicates against simulated power", statistics.item6_power),
        7: ("Deadline bunching (Roth & Ockenfels 2002)", field_checks.item7_bunching),
        8: ("Shorter deadlines raise completion (Shu & Gneezy 2010)", field_checks.item8_deadline_length),
        9: ("Impulsiveness and buying (Santini et al. 2019)", field_checks.item9_impulsiveness),
        10: ("Response to past purchases (after Cui, Zhang & Bassamboo 2019)", field_checks.item10_social_proof),
        11: ("Few replicates: coverage and A/A false positives of paired t intervals",
             replicates.item11_few_replicates),
    }


ITEMS = tuple(range(1, 12))


def run_checks(scale: str = "full", items: list[int] | None = None,
               progress: Callable[[int, str, list[Check], float], None] | None = None) -> list[Check]:
    """Run the checks of ``items`` (default all) at ``scale``."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}: {scale!r}")
    table = _items()
    out: list[Check] = []
    for k in items or ITEMS:
        title, fn = table[k]
        start = time.perf_counter()
        checks = fn(scale)
        seconds = time.perf_counter() - start
        out += checks
        if progress is not None:
            progress(k, title, checks, seconds)
    return out


#: The line after which the validation page holds sections written by benchmarks (kept on rewriting).
KEPT = "<!-- Sections below are written from benchmarks; fomolab selfcheck --write keeps them. -->"


def write_report(checks: list[Check], path: str | Path, *, scale: str, seconds: dict[int, float]) -> Path:
    """Write the validation page (``docs/VALIDATION.md`` in the repository) to ``path``, atomically."""
    import os

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    text = render_report(checks, scale=scale, seconds=seconds)
    if path.is_file():  # sections written by benchmarks, below KEPT, are kept
        old = path.read_text(encoding="utf-8")
        if KEPT in old:
            text = text.rstrip("\n") + "\n\n" + old[old.index(KEPT):]
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def render_report(checks: list[Check], *, scale: str, seconds: dict[int, float]) -> str:
    """The validation page as Markdown: every figure, its target, pass or fail."""
    import datetime as dt

    from fomolab import __version__

    table = _items()
    lines = [
        "# Validation",
        "",
        f"Written by `fomolab selfcheck` ({scale} size) with fomolab {__version__} on "
        f"{dt.date.today().isoformat()}. Every figure below is recomputed by that command; the test "
        "suite runs the same checks at quick size (`tests/validation/`, fixed seeds, the same targets). "
        "Each check's scenario is a spec file shipped with fomolab (`fomolab/validation/scenarios/*.toml`).",
        "Standard errors (SE) are Monte Carlo errors of the simulated figure; targets are the acceptance "
        "thresholds set for each check, or come from the cited finding.",
        "",
        f"**{sum(c.passed for c in checks)} of {len(checks)} checks pass.**",
        "",
    ]
    for k in sorted({c.item for c in checks}):
        title = table[k][0]
        lines += [f"## {k}. {title}", "", f"Time: {seconds.get(k, float('nan')):.1f} s.", "",
                  "| check | figure | target | result |", "|---|---|---|---|"]
        for c in (c for c in checks if c.item == k):
            lines.append(f"| {c.name} | {c.figure} | {c.target} | {'pass' if c.passed else '**FAIL**'} |")
        notes = [str(c.details["note"]) for c in checks if c.item == k and c.details.get("note")]
        for note in dict.fromkeys(notes):
            lines += ["", note]
        lines.append("")
    return "\n".join(lines)
