"""Scorecard (JSON and Markdown), per-second series, plots and the report (HTML and Markdown) for one run folder.
Both reports open with the verdict at a glance (verdict.png, loadtest/scoring/verdict.py).

    python -m loadtest.scoring.report results/<run>     rebuilds all of it from the raw data in that folder

build.py computes the scorecard once and writes the files; text.py renders the Markdown, page.py the HTML,
figures.py the plots, notes.py the notes on why each fault looks the way it does (numbers read from the config).
"""

from __future__ import annotations

from pathlib import Path

from loadtest.scoring.records import Scenario, ScorecardRow
from loadtest.scoring.report import figures
from loadtest.scoring.report.build import Scorecard, compute, main, registry, store_rows, write

__all__ = ["Scorecard", "compute", "main", "plot_store_faults", "write"]


def plot_store_faults(rows: list[ScorecardRow], path: Path, scenarios: list[Scenario] = ()) -> None:
    """The store-fault figure of any scorecard rows: only the rows of the store each strategy uses are drawn."""
    classes = {cls.name: cls for cls in registry.classes()}
    figures.plot_store_faults(store_rows(rows, classes), path, scenarios)
