"""The documentation site: every page is in its navigation, CI builds it strictly, docstrings render.

The build itself (``mkdocs build --strict``) runs here when the ``docs``
extra is installed, and always in CI (``.ci/run``, ``python3 tasks.py docs``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MKDOCS = (ROOT / "mkdocs.yml").read_text()


def _nav_pages() -> set[str]:
    nav = MKDOCS.split("\nnav:", 1)[1]
    return set(re.findall(r"([\w./-]+\.md)\s*$", nav, re.M))


def test_every_page_is_in_the_navigation_and_every_entry_exists() -> None:
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    nav = _nav_pages()
    assert pages - nav == set(), f"pages missing from mkdocs.yml's nav: {sorted(pages - nav)}"
    assert nav - pages == set(), f"nav entries without a page: {sorted(nav - pages)}"
    for name in ("MODEL.md", "STATISTICS.md", "schema.md", "performance.md", "VALIDATION.md", "ARCHITECTURE.md"):
        assert name in nav  # other docs and tests link to these names


def test_ci_builds_the_site_strictly_after_lint_and_tasks_installs_the_docs_extra() -> None:
    steps = [line.split("#")[0].strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    steps = [s for s in steps if s]
    assert steps.index("python3 tasks.py docs") == steps.index(".ci/lint") + 1
    assert "strict: true" in MKDOCS
    tasks = (ROOT / "tasks.py").read_text()
    assert 'setup("docs")' in tasks and '["build", "--strict"]' in tasks
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re.split(r"[\[<>=]", req)[0] for req in extras["docs"]}
    assert names == {"mkdocs", "mkdocs-material", "mkdocstrings", "ruff"}
    assert "fomolab[docs]" not in extras["all"]  # not a feature of the package
    assert "/site/" in (ROOT / ".gitignore").read_text().splitlines()


def _griffe_rst():
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("griffe_rst", DOCS / "griffe_rst.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docstring_roles_tables_and_literal_blocks_become_markdown() -> None:
    rst = _griffe_rst().rst_to_markdown
    assert rst("See :func:`fomolab.run` and :class:`~fomolab.results.Results`.") == (
        "See `fomolab.run` and `Results`.")
    table = ("Labels:\n\n"
             "=============  ==================\n"
             "label          meaning\n"
             "=============  ==================\n"
             "``induced``    bought only because\n"
             "               of the tactic\n"
             "``accelerated`` bought sooner\n"
             "=============  ==================\n\n"
             "After.")
    assert [line for line in rst(table).splitlines() if line.startswith("|")] == [
        "| label | meaning |", "|---|---|", "| ``induced`` | bought only because of the tactic |",
        "| ``accelerated`` | bought sooner |"]
    assert rst(table).endswith("After.")
    headerless = "====  ====\n``a``  one\n``b``  two\n====  ====\n"
    assert "| ``b`` | two |" in rst(headerless).splitlines()
    assert rst("Layout::\n\n    [stream]\n").splitlines()[:3] == ["Layout:", "", ""]


@pytest.mark.slow
def test_the_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        pytest.skip("the docs extra is not installed (pip install -e '.[docs]'); CI builds the site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api = (tmp_path / "site" / "api.html").read_text()
    assert "fomolab.runner.run" in api and "kaplan_meier" in api
    assert not re.search(r":(func|class|mod|meth|attr|exc):", api), "a reStructuredText role reached the page"
    for page in ("index.html", "getting-started.html", "reading-tables.html", "tutorials/first-study.html"):
        assert (tmp_path / "site" / page).is_file()
