"""The documentation's tutorials run: every code block of every tutorial page, in order.

A tutorial page is executed like a notebook, in a fresh folder holding a copy
of ``experiments/`` (as a clone has it):

- a ``toml`` block with a title (```` ```toml title="my_sale.toml" ````) is
  written to that file;
- a ``python`` block runs in one namespace shared by the page's python blocks;
- each ``$ `` line of a ``console`` block (with ``\\`` continuations) runs in
  bash, with ``fomolab`` being this checkout's command line.

A page fails on an exception, a command's non-zero exit, or any warning (a
Python warning raised in a block, or a warning printed by a command).  Other
blocks (``text``, ``toml`` without a title) are what a reader sees, not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: Pages whose code is executed: getting started and every tutorial (the tutorials' index is a table of them).
PAGES = sorted([DOCS / "getting-started.md", *(p for p in (DOCS / "tutorials").glob("*.md") if p.name != "index.md")])
#: Pages that take more than about 20 s on a loaded machine (a report, a 40-point sweep, ten arms, a fit):
#: run with the slow tests (``-m slow``, and in CI); the first study runs in every test run.
SLOW = {"getting-started.md", "for-whom.md", "consumer-harm.md", "sobol-sweep.md", "marketplace.md", "field-fit.md"}

FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
#: What a warning looks like in a command's output: Python's own format, or a line a command starts with it.
PRINTED_WARNING = re.compile(r"\b\w*Warning\b|^\s*warning\b", re.I | re.M)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page: its language, the file it names, its code and its line."""

    lang: str
    title: str | None
    code: str
    line: int


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown page, in order (fences at the start of a line)."""
    out = []
    for m in FENCE.finditer(text):
        info = m.group("info").strip()
        lang = info.split()[0] if info else ""
        title = TITLE.search(info)
        out.append(Block(lang, title.group("title") if title else None, m.group("body"),
                         text.count("\n", 0, m.start()) + 1))
    return out


def commands(console: str) -> list[str]:
    """The commands of a console block: ``$ `` lines joined with their ``\\`` continuations."""
    cmds: list[str] = []
    current: str | None = None
    for line in console.splitlines():
        if current is not None:
            current += "\n" + line
        elif line.startswith("$ "):
            current = line[2:]
        else:
            continue  # a command's output, shown to the reader
        if not current.endswith("\\"):
            cmds.append(current)
            current = None
    if current is not None:
        cmds.append(current)
    return cmds


def _fomolab_on_path(work: Path) -> dict[str, str]:
    """An environment whose ``fomolab`` is this checkout's command line, run by this interpreter."""
    bindir = work / ".bin"
    bindir.mkdir()
    script = bindir / "fomolab"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m fomolab.cli "$@"\n')
    script.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bindir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env["MPLBACKEND"] = "Agg"
    env["COLUMNS"] = "100"
    return env


def run_page(page: Path, work: Path) -> None:
    """Execute a page's blocks in ``work`` (the current directory is changed for the python blocks)."""
    text = page.read_text(encoding="utf-8")
    found = blocks(text)
    runnable = [b for b in found if b.lang in ("python", "console") or (b.lang == "toml" and b.title)]
    assert runnable, f"{page.name}: no python, console or titled toml block to execute"
    env = _fomolab_on_path(work)
    namespace: dict[str, object] = {"__name__": "__tutorial__"}
    before = Path.cwd()
    os.chdir(work)
    try:
        for b in runnable:
            where = f"{page.name}:{b.line}"
            if b.lang == "toml":
                target = work / b.title
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(b.code, encoding="utf-8")
            elif b.lang == "python":
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    exec(compile(b.code, where, "exec"), namespace)  # the tutorial's own code
                shown = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]
                assert not shown, f"{where}: the block warned:\n" + "\n".join(shown)
            else:
                for cmd in commands(b.code):
                    proc = subprocess.run(["bash", "-eo", "pipefail", "-c", cmd], cwd=work, env=env,
                                          capture_output=True, text=True, timeout=600)
                    output = proc.stdout + proc.stderr
                    assert proc.returncode == 0, f"{where}: `{cmd}` exited {proc.returncode}:\n{output}"
                    assert not PRINTED_WARNING.search(output), f"{where}: `{cmd}` printed a warning:\n{output}"
    finally:
        os.chdir(before)


def _workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(ROOT / "experiments", work / "experiments")
    return work


@pytest.mark.parametrize(
    "page", [pytest.param(p, id=p.name, marks=[pytest.mark.slow] if p.name in SLOW else []) for p in PAGES])
def test_tutorial_runs(page: Path, tmp_path: Path) -> None:
    run_page(page, _workdir(tmp_path))


# The runner itself: a broken tutorial fails it.

def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text)
    return page


def test_blocks_and_commands_are_read_in_order() -> None:
    assert not SLOW - {p.name for p in PAGES}, "a slow page that is not executed"
    text = ('# t\n\n```toml title="a/s.toml"\nx = 1\n```\n\ntext\n\n```console\n$ echo one \\\n  two\none two\n'
            '$ true\n```\n\n```python\ny = 2\n```\n')
    got = blocks(text)
    assert [(b.lang, b.title, b.line) for b in got] == [("toml", "a/s.toml", 3), ("console", None, 9),
                                                        ("python", None, 16)]
    assert commands(got[1].code) == ["echo one \\\n  two", "true"]


def test_runner_writes_titled_files_and_shares_the_namespace(tmp_path: Path) -> None:
    work = tmp_path / "w"
    work.mkdir()
    page = _page(tmp_path, '```toml title="s.toml"\nx = 1\n```\n```python\nimport pathlib, tomllib\n'
                 'v = tomllib.loads(pathlib.Path("s.toml").read_text())["x"]\n```\n```python\nassert v == 1\n```\n'
                 '```console\n$ test -f s.toml\n```\n')
    run_page(page, work)


@pytest.mark.parametrize("text", [
    "```python\nraise RuntimeError('broken')\n```\n",
    "```python\nimport warnings\nwarnings.warn('deprecated', FutureWarning)\n```\n",
    "```console\n$ fomolab validate no_such_spec.toml\n```\n",
    "```console\n$ echo 'StatisticalWarning: few replicates' >&2\n```\n",
    "```text\nonly text\n```\n",
], ids=["exception", "python-warning", "command-fails", "printed-warning", "nothing-to-run"])
def test_a_broken_page_fails(tmp_path: Path, text: str) -> None:
    work = tmp_path / "w"
    work.mkdir()
    with pytest.raises(AssertionError if "raise" not in text else RuntimeError):
        run_page(_page(tmp_path, text), work)
