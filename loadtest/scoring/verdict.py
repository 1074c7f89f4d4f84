"""Verdict at a glance: the figure and paragraph the experiment's report opens with.

One row per strategy, one column per fault, each cell coloured by the worst thing its users lost and
labelled with how much:

    nothing  <  errors only, state kept (failed requests)  <  sessions lost  <  acknowledged writes lost

and, apart, sessions the routing lost before the fault as well (node-local sessions under routing that
spreads a user's requests): the fault did not cause those, so they are grey, not orange.

A fault gets one column per group of routing modes that agree (every strategy in the same category), so
routing shows only where it changes an outcome; the numbers of a merged column are totals over its modes.
Strategy order comes from the registry (the caller passes it) or from the data; strategies that keep no
state (the `none` baseline) go last, below a line: what a fault costs with no session at all.

Written beside the figure: verdict.json, the grid it was drawn from (cells, counts, modes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.patches import Patch, Rectangle

from loadtest.scoring.analysis import fault_name
from loadtest.scoring.records import ScorecardRow

NOTHING, ERRORS, ROUTING, SESSIONS, WRITES = "nothing", "errors", "routing", "sessions", "writes"


@dataclass(frozen=True)
class Category:
    name: str
    count: str  # the scorecard field the cell's number comes from ("" for nothing)
    unit: str  # the label's unit: "12 err"
    legend: str
    colour: str


# In order of severity. Colours: Okabe & Ito's bluish green for "nothing", then a yellow-orange-red ramp of
# falling lightness (ColorBrewer YlOrRd), which stays ordered for red-green colour blindness too
# (https://jfly.uni-koeln.de/color/, https://colorbrewer2.org). Every cell also says its category in words.
CATEGORIES = [
    Category(NOTHING, "", "", "0   nothing lost, no error", "#7fcdb4"),
    Category(ERRORS, "errors", "err", "err   failed requests, all state kept", "#fed45c"),
    # Grey: lost before the fault too, so the routing's cost, not the fault's (Okabe & Ito stay for the rest).
    Category(ROUTING, "sessions_lost", "sess", "sess + routing   sessions lost before the fault as well "
             "(the routing's cost)", "#c8c8c8"),
    Category(SESSIONS, "sessions_lost", "sess", "sess   sessions lost (users logged out)", "#f98b3a"),
    Category(WRITES, "writes_lost", "writes", "writes   acknowledged writes lost", "#b2182b"),
]
BY_NAME = {c.name: c for c in CATEGORIES}
COUNTS = ("errors", "sessions_lost", "writes_lost")
NOT_RUN = "#e8e8e8"


def classify(counts: dict) -> str:
    """The worst category of a scorecard row, or of counts summed over several rows."""
    if counts.get("writes_lost"):
        return WRITES
    if counts.get("sessions_lost"):
        return ROUTING if counts.get("sessions_lost_before_fault") else SESSIONS
    if counts.get("errors"):
        return ERRORS
    return NOTHING


@dataclass(frozen=True)
class Cell:
    errors: int = 0
    sessions_lost: int = 0
    writes_lost: int = 0
    sessions_lost_before_fault: int = 0
    foreign: int = 0
    duplicates: int = 0
    not_revoked: int = 0

    @property
    def category(self) -> str:
        return classify(vars(self))

    @property
    def number(self) -> int:
        count = BY_NAME[self.category].count
        return getattr(self, count) if count else 0

    @property
    def label(self) -> str:
        """'0', '12 err', '3 sess', '1 write', '5 writes'."""
        if self.category == NOTHING:
            return "0"
        unit = BY_NAME[self.category].unit
        return f"{self.number:,} {unit[:-1] if unit == 'writes' and self.number == 1 else unit}"

    @property
    def also(self) -> str:
        """What the colour hides: 'routing' on a grey cell, the lesser losses ('+359 err' under '10 sess')."""
        worse = [c.name for c in CATEGORIES].index(self.category)
        lesser = [f"+{getattr(self, c.count):,} {c.unit}" for c in CATEGORIES[1:worse]
                  if c.count != BY_NAME[self.category].count and getattr(self, c.count)]
        return " ".join((["routing"] if self.category == ROUTING else []) + lesser)


def _sum(rows: list[ScorecardRow]) -> Cell:
    return Cell(**{f: sum(getattr(r, f) or 0 for r in rows) for f in Cell.__dataclass_fields__})


@dataclass(frozen=True)
class Column:
    fault: str
    modes: tuple[str, ...]  # the routing modes this column totals
    fault_modes: tuple[str, ...]  # every mode the fault ran in

    @property
    def split(self) -> bool:
        """Another column of the same fault covers other modes."""
        return self.modes != self.fault_modes

    @property
    def where(self) -> str:
        """The routing line of the column's heading."""
        if len(self.fault_modes) > 1 and not self.split:
            return f"any of {len(self.modes)} routings"
        return "\n".join(self.modes)


@dataclass
class Grid:
    strategies: list[str]  # the rows, baseline last
    baseline: list[str]  # the strategies that keep no state
    columns: list[Column]
    cells: dict[tuple[str, int], Cell] = field(default_factory=dict)  # (strategy, column index); absent: not run

    def cell(self, strategy: str, column: int) -> Cell | None:
        return self.cells.get((strategy, column))

    def to_json(self) -> dict:
        return {"strategies": self.strategies, "baseline": self.baseline, "columns": [
            {"fault": c.fault, "modes": list(c.modes), "cells": {
                s: {"category": cell.category, "label": cell.label, **vars(cell)}
                for s in self.strategies if (cell := self.cells.get((s, i))) is not None}}
            for i, c in enumerate(self.columns)]}


def _strategy_order(rows: list[ScorecardRow], order: list[str] | None, baseline) -> list[str]:
    """Registry order, then names not in it in the order of the data; the baseline last."""
    present = list(dict.fromkeys(r.strategy for r in rows))
    ordered = [n for n in (order or []) if n in present] + [n for n in present if n not in (order or [])]
    return [n for n in ordered if n not in baseline] + [n for n in ordered if n in baseline]


def _fault_order(rows: list[ScorecardRow], fault_order: list[str] | None) -> list[str]:
    named = [fault_name(r) for r in rows]
    return list(dict.fromkeys([f for f in (fault_order or []) if f in named] + named))


def _mode_groups(rows: list[ScorecardRow], modes: tuple[str, ...], strategies: list[str]) -> list[list[str]]:
    """The modes of one fault, grouped where every strategy lands in the same category: routing changed
    nothing there, so they share a column."""
    groups: dict[tuple, list[str]] = {}
    for m in modes:
        cells = {s: _sum(mine) for s in strategies if (mine := [r for r in rows if r.mode == m and r.strategy == s])}
        outcome = tuple((s, cell.category) for s, cell in sorted(cells.items()))
        groups.setdefault(outcome, []).append(m)
    return list(groups.values())


def build(rows: list[ScorecardRow], order: list[str] | None = None, baseline: set[str] | frozenset = frozenset(),
          fault_order: list[str] | None = None) -> Grid:
    """The grid of scorecard rows. `order`: strategy names in registry order (names not in it follow in the
    order of the data); `baseline`: strategies that keep no state, drawn last; `fault_order`: fault names
    (analysis.fault_name) in the order the faults ran, else the order of the data."""
    strategies = _strategy_order(rows, order, baseline)
    grid = Grid(strategies, [n for n in strategies if n in baseline], [])
    for fault in _fault_order(rows, fault_order):
        mine = [r for r in rows if fault_name(r) == fault]
        modes = tuple(dict.fromkeys(r.mode for r in mine))
        for group in _mode_groups(mine, modes, strategies):
            index = len(grid.columns)
            grid.columns.append(Column(fault, tuple(group), modes))
            for s in strategies:
                rows_here = [r for r in mine if r.mode in group and r.strategy == s]
                if rows_here:
                    grid.cells[(s, index)] = _sum(rows_here)
    return grid


# --- the paragraph -------------------------------------------------------------------------------------------

def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _places(grid: Grid, columns: list[int]) -> str:
    """'kill app2 (round-robin, least-conn) and stop app2': the faults of `columns`, each with its routing modes
    where the fault was split by routing and `columns` do not cover all of them."""
    out = []
    for fault in dict.fromkeys(grid.columns[i].fault for i in columns):
        mine = {m for i in columns if grid.columns[i].fault == fault for m in grid.columns[i].modes}
        every = next(c.fault_modes for c in grid.columns if c.fault == fault)
        out.append(fault if len(mine) == len(every) else f"{fault} ({', '.join(m for m in every if m in mine)})")
    return _join(out)


def _by_place(parts: list[tuple[str, int, str]], code) -> str:
    """'`a` 3 and `b` 5 in kill app2; `c` 2 in stop app2': strategies that lost in the same places, together."""
    places: dict[str, list[tuple[str, int]]] = {}
    for strategy, number, where in parts:
        places.setdefault(where, []).append((strategy, number))
    return "; ".join(f"{_join([f'{code(s)} {n:,}' for s, n in who])} in {where}" for where, who in places.items())


def _requests(n: int) -> str:
    return f"{n:,} request" + ("" if n == 1 else "s")


def routing_losses(cell: Cell) -> bool:
    """Sessions were lost before the fault too: the routing, not the fault, lost them (node-local sessions
    under routing that spreads a user's requests)."""
    return cell.sessions_lost_before_fault > 0


def _worst(grid: Grid, strategy: str) -> str:
    rank = [c.name for c in CATEGORIES].index
    return max((c.category for (name, _), c in grid.cells.items() if name == strategy), key=rank, default=NOTHING)


def _keeping(grid: Grid) -> list[str]:
    return [s for s in grid.strategies if s not in grid.baseline]


def _clean(grid: Grid, code) -> list[str]:
    clean = [code(s) for s in _keeping(grid) if _worst(grid, s) == NOTHING]
    return [f"{_join(clean)} lost nothing and failed no request in any fault."] if clean else []


def _losses(grid: Grid, code) -> list[str]:
    """Per category, worst first, the strategies whose worst it is, where and how much. Sessions lost before
    the fault as well are the routing's doing (_routing), left out here, which then name what the faults
    themselves cost."""
    sentences = []
    for category, opening in ((WRITES, "Lost acknowledged writes"), (SESSIONS, "Lost sessions"),
                              (ERRORS, "Kept every session and write but failed requests")):
        parts = []
        for s in (s for s in _keeping(grid) if _worst(grid, s) == category):
            hit = [i for i in range(len(grid.columns)) if (c := grid.cell(s, i)) and c.category == category
                   and not (category == SESSIONS and routing_losses(c))]
            if hit:
                parts.append((s, sum(grid.cells[(s, i)].number for i in hit), _places(grid, hit)))
        if parts:
            sentences.append(f"{opening}: {_by_place(parts, code)}.")
    return sentences


def _routed_modes(grid: Grid, strategy: str) -> tuple[str, ...]:
    """The modes in which `strategy` lost sessions before a fault too."""
    every = dict.fromkeys(m for c in grid.columns for m in c.fault_modes)
    return tuple(m for m in every if any(m in grid.columns[i].modes and routing_losses(cell)
                                         for (name, i), cell in grid.cells.items() if name == strategy))


def _routing(grid: Grid, code) -> list[str]:
    """Sessions lost before any fault, said once per strategy and mode."""
    routed = {s: modes for s in _keeping(grid) if (modes := _routed_modes(grid, s))}
    return [f"{_join([code(s) for s, m in routed.items() if m == modes])} lost sessions under {_join(list(modes))} "
            f"whatever the fault, already before it: that routing spreads a user's requests over nodes that do "
            f"not share them." for modes in dict.fromkeys(routed.values())]


def _baseline(grid: Grid, code) -> list[str]:
    sentences = []
    for s in grid.baseline:
        failed = [i for (name, i), c in grid.cells.items() if name == s and c.errors]
        if failed:
            total = sum(grid.cells[(s, i)].errors for i in failed)
            sentences.append(f"The baseline {code(s)}, which keeps no state, failed {_requests(total)} in "
                             f"{_places(grid, failed)}: what those faults cost with no session at all.")
        else:
            sentences.append(f"The baseline {code(s)}, which keeps no state, failed no request.")
    return sentences


def _anomalies(grid: Grid, code) -> list[str]:
    sentences = []
    for count, what in (("foreign", "answers held another user's data"), ("duplicates", "adds were applied twice"),
                        ("not_revoked", "logged-out credentials still worked")):
        by: dict[str, int] = {}
        for (s, _), cell in grid.cells.items():
            by[s] = by.get(s, 0) + getattr(cell, count)
        if any(by.values()):
            sentences.append(f"{sum(by.values()):,} {what}: {_join([f'{code(s)} {n:,}' for s, n in by.items() if n])}.")
    return sentences


# The paragraph, sentence group by sentence group, in the order it says them.
SENTENCES = (_clean, _losses, _routing, _baseline, _anomalies)


def paragraph(grid: Grid, code=lambda name: name) -> str:
    """What the grid says, in a few sentences, from the data alone. `code` formats a strategy's name."""
    if not grid.columns:
        return "No scenario finished: nothing to judge."
    return " ".join(sentence for group in SENTENCES for sentence in group(grid, code))


# --- the figure ----------------------------------------------------------------------------------------------

CELL_W, CELL_H = 1.2, 0.6  # inches: room for "2,877 sess" over "+718 err" at the sizes below
FONT = 14  # points: legible on a projector when the figure is scaled to the screen's width
SMALL = 11
HEAD = 13  # a fault's heading: one size down, so "app-nodes" clears the lines beside a one-column fault
CHAR_W = 0.12  # inches per character of HEAD, bold, with a margin: how much of a heading fits a column
LINE = {HEAD: 0.36, SMALL: 0.3}  # a line of text at that size, in rows (CELL_H)


def _ink(colour: str) -> str:
    """Black or white text, whichever reads better on `colour` (WCAG relative luminance)."""
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return "black" if 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2] > 0.18 else "white"


def _wrap(text: str, width: int) -> str:
    """Greedy wrap at spaces, and after a hyphen only inside a word too long for a line (which then starts one):
    'kill sentinel-primary' -> 'kill\nsentinel-\nprimary', 'kill app2' stays whole."""
    lines: list[str] = []
    for word in text.split(" "):
        pieces = [word] if len(word) <= width else [p + "-" for p in word.split("-")[:-1]] + [word.split("-")[-1]]
        for n, piece in enumerate(pieces):
            glue = " " if n == 0 else ""
            if lines and len(lines[-1] + glue + piece) <= width and not (n == 0 and len(pieces) > 1):
                lines[-1] += glue + piece
            else:
                lines.append(piece)
    return "\n".join(lines)


def _faults(grid: Grid) -> list[tuple[int, int]]:
    """(first column, number of columns) of each fault."""
    spans: list[tuple[int, int]] = []
    for j, column in enumerate(grid.columns):
        if spans and grid.columns[spans[-1][0]].fault == column.fault:
            spans[-1] = (spans[-1][0], spans[-1][1] + 1)
        else:
            spans.append((j, 1))
    return spans


def _draw_cell(ax, j: int, i: int, cell: Cell | None) -> None:
    """Column j, row i: the category's colour, the label, and under it what the colour hides."""
    colour = BY_NAME[cell.category].colour if cell else NOT_RUN
    ax.add_patch(Rectangle((j, i), 1, 1, facecolor=colour, edgecolor="white", linewidth=2))
    if cell is None:
        ax.text(j + 0.5, i + 0.5, "not run", ha="center", va="center", fontsize=SMALL, color="#555")
        return
    ink = _ink(colour)
    bold = "normal" if cell.category == NOTHING else "bold"
    if cell.also:
        ax.text(j + 0.5, i + 0.38, cell.label, ha="center", va="center", fontsize=FONT, color=ink, fontweight=bold)
        ax.text(j + 0.5, i + 0.77, cell.also, ha="center", va="center", fontsize=SMALL, color=ink)
    else:
        ax.text(j + 0.5, i + 0.5, cell.label, ha="center", va="center", fontsize=FONT, color=ink, fontweight=bold)


def plot(grid: Grid, path: Path) -> None:
    n_rows, n_cols = len(grid.strategies), len(grid.columns)
    spans = _faults(grid)
    headings = {j: _wrap(grid.columns[j].fault, int(span * CELL_W / CHAR_W)) for j, span in spans}
    mode_lines = max([len(c.where.splitlines()) for c in grid.columns] + [1])
    fault_lines = max([len(h.splitlines()) for h in headings.values()] + [1])
    mode_h = 0.15 + mode_lines * LINE[SMALL]  # rows
    head_h = mode_h + 0.15 + fault_lines * LINE[HEAD]
    names = [s + ("\n(no state)" if s in grid.baseline else "") for s in grid.strategies]
    name_w = CHAR_W * max([len(line) for n in names for line in n.splitlines()] + [6]) + 0.3
    title_h = 0.95  # inches
    legend_h = 0.5 + 0.32 * math.ceil(len(CATEGORIES) / 2)  # two entries a line
    width = name_w + max(n_cols, 5) * CELL_W + 0.3
    height = title_h + (head_h + n_rows) * CELL_H + legend_h
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes([name_w / width, legend_h / height, n_cols * CELL_W / width, n_rows * CELL_H / height])
    ax.set_xlim(0, n_cols)
    ax.set_ylim(n_rows, 0)
    ax.axis("off")
    for j in range(n_cols):
        for i, strategy in enumerate(grid.strategies):
            _draw_cell(ax, j, i, grid.cell(strategy, j))
    for i, name in enumerate(names):
        ax.text(-0.08, i + 0.5, name, ha="right", va="center", fontsize=FONT, linespacing=1.0)
    if grid.baseline and len(grid.baseline) < n_rows:
        ax.plot([-name_w / CELL_W, n_cols], [n_rows - len(grid.baseline)] * 2, color="black", linewidth=1.5,
                clip_on=False)
    # Headings: each fault over its columns, each column's routing under it; a line between faults.
    for j, column in enumerate(grid.columns):
        ax.text(j + 0.5, -0.1, column.where, ha="center", va="bottom", fontsize=SMALL, style="italic",
                color="#333", linespacing=1.0)
    for j, span in spans:
        ax.text(j + span / 2, -mode_h - 0.1, headings[j], ha="center", va="bottom", fontsize=HEAD,
                fontweight="bold", linespacing=1.0)
        if j:
            ax.plot([j, j], [-head_h, n_rows], color="black", linewidth=1.5, clip_on=False)
    fig.text(0.5, 1 - 0.2 / height, "What users lost when a fault hit: each strategy's worst outcome per fault",
             ha="center", va="top", fontsize=FONT + 3, fontweight="bold")
    fig.text(0.5, 1 - 0.58 / height, "A fault is split by routing only where routing changed an outcome; "
             "a column's numbers are totals over its routings.", ha="center", va="top", fontsize=SMALL + 1)
    handles = [Patch(facecolor=c.colour, edgecolor="#999", label=c.legend) for c in CATEGORIES]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.05 / height), ncol=2,
               fontsize=SMALL + 1, frameon=False, handlelength=2.2, handleheight=1.2, columnspacing=2.5)
    # A tight box takes in the title and legend where a narrow grid leaves them wider than the figure.
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.25)
    plt.close(fig)


# --- the report's opening ------------------------------------------------------------------------------------

FIGURE = "verdict.png"
ALT = "verdict: per strategy and fault, what its users lost (nothing, failed requests, sessions, writes)"


def write(run_dir: Path, rows: list[ScorecardRow], order: list[str] | None = None,
          baseline: set[str] | frozenset = frozenset(), fault_order: list[str] | None = None) -> tuple[Grid, str]:
    """Draw verdict.png and write verdict.json in `run_dir`; returns the grid and its paragraph (plain text)."""
    grid = build(rows, order, baseline, fault_order)
    plot(grid, run_dir / FIGURE)
    (run_dir / "verdict.json").write_text(json.dumps(grid.to_json(), indent=2))
    return grid, paragraph(grid)


def markdown(grid: Grid) -> str:
    """The opening of report.md: the figure, then the paragraph."""
    return f"![{ALT}]({FIGURE})\n\n{paragraph(grid, code=lambda name: f'`{name}`')}\n"
