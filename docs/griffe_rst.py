"""A griffe extension for the API reference: the reStructuredText in fomolab's docstrings, as Markdown.

The numpydoc docstrings use a few reStructuredText constructs that Markdown
does not have: cross-reference roles (:func:`fomolab.run`, with ``~`` for the
last name only), simple tables (columns under rows of ``====``) and literal
blocks introduced by ``::``.  mkdocstrings renders docstrings as Markdown, so
this extension rewrites those three before they are parsed; nothing else of a
docstring changes.  mkdocs.yml loads it (``extensions``); the site does not
publish it (``exclude_docs``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|exc|data|obj|const|ref|doc|term):`(~?)([^`]+)`")
BORDER = re.compile(r"^(?P<indent>\s*)=+(?:\s+=+)+\s*$")


def _role(m: re.Match[str]) -> str:
    target = m.group(2)
    if m.group(1):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def _cells(line: str, starts: list[int]) -> list[str]:
    """Cut a table line at the columns' starts; a cell that runs past its column's end takes the rest of its word."""
    cells, pos = [], starts[0]
    for i in range(len(starts)):
        end = starts[i + 1] if i + 1 < len(starts) else len(line)
        end = max(end, pos)
        while i + 1 < len(starts) and 0 < end < len(line) and not line[end - 1].isspace():
            end += 1
        cells.append(line[pos:end].strip().replace("|", "\\|"))
        pos = end
    return cells


def _table(lines: list[str], indent: str, starts: list[int]) -> list[str]:
    """A simple table (its lines between and including the borders) as a Markdown table."""
    borders = [i for i, line in enumerate(lines) if BORDER.match(line)]
    header: list[str] | None = None
    body = lines[1:-1]
    if len(borders) == 3:  # border, header, border, body, border
        header = [" ".join(c) for c in zip(*(_cells(l, starts) for l in lines[1:borders[1]]), strict=True)]
        body = lines[borders[1] + 1:-1]
    rows: list[list[str]] = []
    for line in body:
        if not line.strip():
            continue
        cells = _cells(line, starts)
        if rows and not cells[0]:  # a continuation line: the first column is empty
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    head = header or [" "] * len(starts)
    out = [indent + "| " + " | ".join(head) + " |", indent + "|" + "---|" * len(starts)]
    out += [indent + "| " + " | ".join(r) + " |" for r in rows]
    return ["", *out, ""]


def rst_to_markdown(text: str) -> str:
    """Rewrite roles, simple tables and ``::`` literal-block markers of a docstring as Markdown."""
    lines = text.splitlines()  # tables first: their columns are positions in the original text
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = BORDER.match(lines[i])
        if m:
            starts = [s.start() for s in re.finditer(r"=+", lines[i])]
            closing = [j for j in range(i + 1, len(lines)) if BORDER.match(lines[j])]
            # the closing border is the first one followed by a blank line (or the end)
            end = next((j for j in closing if j + 1 >= len(lines) or not lines[j + 1].strip()), None)
            if end is not None and end > i:
                out += _table(lines[i:end + 1], m.group("indent"), starts)
                i = end + 1
                continue
        line = lines[i]
        if line.rstrip().endswith("::") and not line.strip().startswith(".."):
            stripped = line.rstrip()[:-2].rstrip()
            line = stripped + ":" if stripped else ""
            out += [line, ""]
            i += 1
            continue
        out.append(line)
        i += 1
    return ROLE.sub(_role, "\n".join(out))


class RstDocstrings(griffe.Extension):
    """Rewrite each docstring's reStructuredText constructs as Markdown when griffe loads it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:  # griffe's hook signature
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
