"""Compute a run's scorecard once, from its raw data, and write every file of the report from it.

    write(run_dir)  ->  scorecard.json, scorecard.md, expectations.json, per_second.csv, report.md, report.html,
                        verdict.png/.json, plots/*.png;  returns the hypotheses' verdicts
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from loadtest.lab import HA_STORES
from loadtest.scoring import analysis, hypotheses, replication_report, saturation_report
from loadtest.scoring import verdict as glance  # the figure at a glance; the hypotheses' results are `checks`
from loadtest.scoring.records import Scenario, ScorecardRow
from loadtest.scoring.report import figures, page, text
from session_lab import strategies as registry


@dataclass
class Scorecard:
    """Everything the report shows, computed once: the renderers only read it."""

    run_dir: Path
    run: dict  # run.json ({} when missing)
    scenarios: list[Scenario]
    raw: dict[str, list[dict]]  # per scenario id, its records
    classes: dict[str, type]  # the registry, in its order
    rows: list[ScorecardRow]  # by mode, fault, load, then registry order
    checks: list[hypotheses.Check]  # the hypotheses checked on the rows (expectations.json)
    grid: glance.Grid  # the verdict at a glance

    @property
    def capacity_rps(self) -> float | None:
        return self.run.get("capacity_rps")

    @cached_property
    def store_rows(self) -> list[ScorecardRow]:
        """The rows of a Sentinel or Cluster fault for the strategies that keep sessions in that store."""
        return store_rows(self.rows, self.classes)

    @cached_property
    def cost(self) -> list[dict]:
        return replication_report.cost_rows(self.rows, self.scenarios, self.classes)

    @cached_property
    def under_load(self) -> list[dict]:
        return saturation_report.rows_under_load(self.rows, self.capacity_rps)

    @cached_property
    def at_a_glance(self) -> str:
        return glance.paragraph(self.grid)

    @cached_property
    def series(self) -> dict[str, dict[str, list[dict]]]:
        """Per scenario id with records, per strategy: one point a second (analysis.per_second)."""
        return {s.id: analysis.per_second(self.raw[s.id], s.start) for s in self.scenarios if s.id in self.raw}


def store_rows(rows: list[ScorecardRow], classes: dict[str, type]) -> list[ScorecardRow]:
    return [r for r in rows if r.store in HA_STORES and r.strategy in classes
            and r.store in classes[r.strategy].dependencies]


def compute(run_dir: Path) -> Scorecard:
    """The scorecard of a run folder, from scenarios.json, run.json and raw/*/requests.csv."""
    scenarios = analysis.read_scenarios(run_dir)
    raw = analysis.raw_records(run_dir, scenarios)
    classes = {cls.name: cls for cls in registry.classes()}
    order = {name: i for i, name in enumerate(classes)}
    rows = [row for s in scenarios if s.id in raw for row in analysis.scenario_rows(raw[s.id], s)]
    rows.sort(key=lambda r: (r.mode, f"{r.fault} {r.target}", r.load or 0, order.get(r.strategy, len(order))))
    run = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    # The none baseline (keeps no state) is drawn last.
    grid = glance.build(rows, list(classes), {n for n, c in classes.items() if not c.keeps_state},
                        [analysis.fault_name(s) for s in scenarios])
    return Scorecard(run_dir, run, scenarios, raw, classes, rows, hypotheses.evaluate(rows, classes), grid)


def write(run_dir: Path) -> list[dict]:
    """Recompute everything from the raw data and write it; returns the hypotheses' checks as expectations.json
    holds them (dicts: the runner and older callers read them by key)."""
    card = compute(run_dir)
    (run_dir / "scorecard.json").write_text(json.dumps([r.to_json() for r in card.rows], indent=2))
    (run_dir / "scorecard.md").write_text(text.scorecard(card))
    glance.plot(card.grid, run_dir / glance.FIGURE)
    (run_dir / "verdict.json").write_text(json.dumps(card.grid.to_json(), indent=2))
    (run_dir / "report.md").write_text(text.report(card))
    checks = [c.to_json() for c in card.checks]
    (run_dir / "expectations.json").write_text(json.dumps(checks, indent=2))
    write_per_second(card, run_dir / "per_second.csv")
    draw(card, run_dir / "plots")
    (run_dir / "report.html").write_text(page.render(card))
    return checks


def write_per_second(card: Scorecard, path: Path) -> None:
    """One line per scenario, strategy and second: the series the scenario figures draw."""
    with path.open("w", newline="") as f:
        writer = None
        for scenario in (s for s in card.scenarios if s.id in card.raw):
            for strategy, points in card.series[scenario.id].items():
                for p in points:
                    line = {"scenario": scenario.id, "strategy": strategy, **p}
                    if writer is None:
                        writer = csv.DictWriter(f, fieldnames=list(line))
                        writer.writeheader()
                    writer.writerow(line)


def draw(card: Scorecard, plots: Path) -> None:
    plots.mkdir(exist_ok=True)
    for scenario in (s for s in card.scenarios if s.id in card.raw):
        figures.plot_scenario(scenario, card.series[scenario.id], plots / f"{scenario.id}.png")
    figures.plot_losses(card.rows, plots / "losses.png", list(card.classes))
    if card.store_rows:
        figures.plot_store_faults(card.store_rows, plots / "store-faults.png", card.scenarios)
    if card.under_load:
        saturation_report.plot(card.under_load, plots / "saturation.png")


def main(argv: list[str] | None = None) -> int:
    run_dir = analysis.run_dir_argument(argv, "report")
    if run_dir is None:
        return 2
    verdict = write(run_dir)
    print(f"rebuilt {run_dir}: {sum(v['held'] for v in verdict)} of {len(verdict)} checks held")
    return 0
