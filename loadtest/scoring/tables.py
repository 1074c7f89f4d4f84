"""Tables of scorecard-like rows, as Markdown and as HTML: one shape for every section of the report."""

from __future__ import annotations

import html


def _text(row: dict, field: str) -> str:
    value = row.get(field)
    return "" if value is None else str(value)


def markdown(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """`columns`: (field, heading) pairs; a missing or None field is an empty cell."""
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_text(row, f) for f, _ in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def html_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    e = html.escape
    head = "<tr>" + "".join(f"<th>{e(h)}</th>" for _, h in columns) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{e(_text(row, f))}</td>" for f, _ in columns) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"
