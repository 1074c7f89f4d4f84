"""Tables of scorecard-like rows, as Markdown and as HTML: one shape for every table of the report.

A row is a dict or a record (a dataclass such as ScorecardRow); `columns` are (field, heading) pairs. `text`
turns a row's field into a cell's text (default: empty for a missing or None field, else str); `markup`, for
HTML only, gives a cell's markup where a column needs more than escaped text.
"""

from __future__ import annotations

import html
from collections.abc import Callable

Columns = list[tuple[str, str]]


def value(row, field: str):
    """A row's field, None when missing: rows are dicts or records."""
    return row.get(field) if isinstance(row, dict) else getattr(row, field, None)


def _text(row, field: str) -> str:
    found = value(row, field)
    return "" if found is None else str(found)


def markdown(rows: list, columns: Columns, text: Callable[[object, str], str] = _text) -> str:
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(text(row, f) for f, _ in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def html_table(rows: list, columns: Columns, text: Callable[[object, str], str] = _text,
               markup: Callable[[object, str], str] | None = None) -> str:
    e = html.escape
    markup = markup or (lambda row, field: e(text(row, field)))
    head = "<tr>" + "".join(f"<th>{e(h)}</th>" for _, h in columns) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{markup(row, f)}</td>" for f, _ in columns) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"
