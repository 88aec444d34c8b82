"""Tables for people and for programs: one table, printed to fit the terminal or as CSV, JSON or Markdown.

A :class:`Table` holds its cells twice: formatted, as people read them
(``"1,234.5"``, ``"+1.30 (0.20, 2.41)"``), and, optionally, as raw values
(a list of records) for programs.  :func:`print_text` prints tables on a
terminal of any width without cutting a number or a name: a header wraps at
its words; a table too wide for the terminal is split into parts that repeat
the key columns (arm, point); a part still too wide is printed transposed,
one small block per row.  :func:`emit` writes the machine formats.

>>> t = Table("t", "Two arms", (Column("arm", key=True, numeric=False), Column("viewers")),
...           (("control", "1,234"), ("sale", "1,301")))
>>> print(markdown([t]).strip())
### Two arms
<BLANKLINE>
| arm | viewers |
| --- | ---: |
| control | 1,234 |
| sale | 1,301 |
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = ["FORMATS", "Column", "Table", "emit", "fit_widths", "html_view", "markdown", "print_text", "records"]

#: Output formats of ``--format``.
FORMATS = ("text", "csv", "json", "markdown")

#: Width of a column's borders and padding in a boxed table: one border and a space each side.
_GAP = 3


@dataclass(frozen=True)
class Column:
    """A column: its header, and how its cells behave.

    ``numeric`` cells are right-justified; ``key`` columns (arm, point) are
    repeated in every part of a table split to fit the terminal.  Cells are
    never wrapped or cut, except those of ``wrap`` columns (prose: descriptions,
    lists), which wrap at their words; headers wrap at their words.
    """

    header: str
    numeric: bool = True
    key: bool = False
    wrap: bool = False


@dataclass(frozen=True)
class Table:
    """A titled table of formatted cells, with the raw records programs get.

    ``records`` (one dict per row, raw values) is what ``--format csv|json``
    writes; without it, the formatted cells are written under the headers.
    """

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    records: list[dict[str, Any]] | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()

    def data(self) -> list[dict[str, Any]]:
        """The records programs get (raw values where given, the cells otherwise)."""
        if self.records is not None:
            return self.records
        return [dict(zip((c.header for c in self.columns), row, strict=True)) for row in self.rows]


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def _longest_word(text: str) -> int:
    return max((_cell_len(w) for w in text.split()), default=0)


def fit_widths(table: Table, width: int) -> list[list[int]] | None:
    """Column groups that fit ``width``: each a list of column indices (keys first), or None.

    None means that even the key columns and one other column do not fit side
    by side: the table is printed transposed.

    >>> t = Table("t", "", (Column("arm", numeric=False, key=True), Column("a"), Column("b")),
    ...           (("control", "1" * 30, "2" * 30),))
    >>> fit_widths(t, 80), fit_widths(t, 60), fit_widths(t, 20)
    ([[0, 1, 2]], [[0, 1], [0, 2]], None)
    """
    need = [_min_width(table, j) + _GAP for j in range(len(table.columns))]
    keys = [j for j, c in enumerate(table.columns) if c.key]
    rest = [j for j in range(len(table.columns)) if j not in keys]
    base = 1 + sum(need[j] for j in keys)
    groups: list[list[int]] = []
    current: list[int] = []
    used = base
    for j in rest:
        if base + need[j] > width:
            return None
        if used + need[j] > width and current:
            groups.append(keys + current)
            current, used = [], base
        current.append(j)
        used += need[j]
    if current or not groups:
        groups.append(keys + current)
    return groups


def _min_width(table: Table, j: int) -> int:
    """The narrowest a column can be: its widest cell (longest word if it wraps), its header's longest word."""
    measure = _longest_word if table.columns[j].wrap else _cell_len
    cells = max((measure(r[j]) for r in table.rows), default=0)
    return max(cells, _longest_word(table.columns[j].header), 1)


def _full_width(table: Table, j: int) -> int:
    cells = max((_cell_len(r[j]) for r in table.rows), default=0)
    return max(cells, _cell_len(table.columns[j].header), 1)


def _widths(table: Table, cols: list[int], width: int) -> list[int]:
    """Widths of ``cols`` within ``width``: at least each one's minimum; headers unwrapped where room allows."""
    widths = [_min_width(table, j) for j in cols]
    room = width - 1 - sum(w + _GAP for w in widths)
    order = sorted(range(len(cols)), key=lambda k: table.columns[cols[k]].wrap)  # prose takes what is left
    for k in order:  # give headers and prose their full length while room lasts
        j = cols[k]
        extra = min(_full_width(table, j) - widths[k], max(room, 0))
        widths[k] += extra
        room -= extra
    return widths


def print_text(console: Any, tables: Iterable[Table], notes: Sequence[str] = ()) -> None:
    """Print ``tables`` (then ``notes``) on a rich console, each fitting the console's width.

    Numbers and names are never cut: headers wrap; a table too wide is split
    into parts that repeat its key columns, or printed transposed.
    """
    for table in tables:
        _print_table(console, table)
    for note in notes:
        console.print(note, markup=False, highlight=False)


def _print_table(console: Any, table: Table) -> None:
    from rich.table import Table as RichTable
    from rich.text import Text

    width = console.width
    if table.title:
        console.print(Text(table.title, style="bold"))
    groups = fit_widths(table, width)
    if groups is None:
        _print_transposed(console, table)
    else:
        for n, cols in enumerate(groups):
            widths = _widths(table, cols, width)
            t = RichTable(show_edge=True, pad_edge=True, title=None,
                          caption=f"part {n + 1} of {len(groups)}" if len(groups) > 1 else None)
            for j, w in zip(cols, widths, strict=True):
                c = table.columns[j]
                t.add_column(c.header, justify="right" if c.numeric else "left", width=w, overflow="fold")
            for row in table.rows:
                t.add_row(*(Text(row[j]) for j in cols))
            console.print(t)
    for note in table.notes:
        console.print(note, markup=False, highlight=False)


def _print_transposed(console: Any, table: Table) -> None:
    """One block per row: the key cells as its heading, then field | value."""
    from rich.table import Table as RichTable
    from rich.text import Text

    keys = [j for j, c in enumerate(table.columns) if c.key]
    others = [j for j in range(len(table.columns)) if j not in keys]
    vw = max((_cell_len(r[j]) for r in table.rows for j in others), default=1)
    room = console.width - 1 - 2 * _GAP  # both columns' content
    vw = min(vw, max(room - 1, 1))  # values first: a header may fold, a value may not
    fw = max(1, min(max((_cell_len(table.columns[j].header) for j in others), default=1), room - vw))
    for row in table.rows:
        heading = "  ".join(f"{table.columns[j].header} {row[j]}" for j in keys)
        t = RichTable(show_header=False, title=None)
        t.add_column(width=fw, overflow="fold")
        t.add_column(width=vw, justify="right", overflow="fold")
        for j in others:
            t.add_row(Text(table.columns[j].header), Text(row[j]))
        if heading:
            console.print(Text(heading, style="bold"))
        console.print(t)


def _clean(value: Any) -> Any:
    """A value JSON can hold: NaN and infinities become null, numpy scalars plain numbers."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        with contextlib.suppress(TypeError, ValueError):
            value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is not None and not isinstance(value, str | int | float | bool):
        return str(value)
    return value


def records(frame: Any) -> list[dict[str, Any]]:
    """The rows of a DataFrame as records of plain values (NaN -> None)."""
    return [{str(k): _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def markdown(tables: Iterable[Table], notes: Sequence[str] = ()) -> str:
    """The tables as GitHub-flavoured Markdown: a heading per table, its formatted cells."""
    out = []
    for table in tables:
        if table.title:
            out.append(f"### {table.title}\n")
        out.append("| " + " | ".join(_md(c.header) for c in table.columns) + " |")
        out.append("| " + " | ".join("---:" if c.numeric else "---" for c in table.columns) + " |")
        out += ["| " + " | ".join(_md(v) for v in row) + " |" for row in table.rows]
        out += ["", *table.notes] if table.notes else []
        out.append("")
    if notes:
        out += [*notes, ""]
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def emit(fmt: str, tables: Sequence[Table], meta: dict[str, Any] | None = None, notes: Sequence[str] = (),
         stream: TextIO | None = None) -> None:
    """Write ``tables`` to ``stream`` (stdout) as ``csv``, ``json`` or ``markdown``.

    ``csv`` writes the first table's records (the command's main table);
    ``json`` one object: ``meta``, then each table's records under its name,
    then the notes; ``markdown`` every table with its title, then the notes.
    """
    stream = stream if stream is not None else sys.stdout
    if fmt == "csv":
        rows = tables[0].data() if tables else []
        buf = io.StringIO()
        names = list(dict.fromkeys(k for r in rows for k in r)) or [c.header for c in tables[0].columns]
        w = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if v is None else (json.dumps(v) if isinstance(v, dict | list) else v)
                        for k, v in ((k, _clean(v)) for k, v in r.items())})
        stream.write(buf.getvalue())
    elif fmt == "json":
        doc: dict[str, Any] = dict(_clean(meta or {}))
        for t in tables:
            doc[t.name] = _clean(t.data())
        if notes:
            doc["notes"] = list(notes)
        stream.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    elif fmt == "markdown":
        stream.write(markdown(tables, notes))
    else:  # pragma: no cover - argparse limits the choices
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    stream.flush()


def html_view(title: str, parts: Sequence[tuple[str, Any]], max_rows: int = 60) -> str:
    """A notebook's view of a result: its one-line description, then each ``(caption, table or text)``.

    The one ``_repr_html_`` of :class:`~fomolab.Results`, the analysis and the
    statistics results.  Tables are DataFrames (numbers without e-notation
    above 1e-4 in size; at most ``max_rows`` rows, with how many more);
    text is shown preformatted.

    >>> import pandas as pd
    >>> page = html_view("Result: 2 arms", [("summary", pd.DataFrame({"arm": ["a"], "revenue": [15240.5]}))])
    >>> "15,240" in page and "e+04" not in page and page.startswith("<div")
    True
    """
    import html

    from fomolab._format import num

    out = [f'<div class="fomolab"><p><strong>{html.escape(title)}</strong></p>']
    for caption, part in parts:
        if caption:
            out.append(f"<p>{html.escape(caption)}</p>")
        if isinstance(part, str):
            out.append(f"<pre>{html.escape(part)}</pre>")
            continue
        shown = part.head(max_rows)
        out.append(shown.to_html(index=not _plain_index(part), float_format=lambda x: num(x, 4), na_rep="–",
                                 border=0))
        if len(part) > len(shown):
            out.append(f"<p>… {len(part) - len(shown)} more rows</p>")
    out.append("</div>")
    return "\n".join(out)


def _plain_index(frame: Any) -> bool:
    import pandas as pd

    return isinstance(frame.index, pd.RangeIndex)
