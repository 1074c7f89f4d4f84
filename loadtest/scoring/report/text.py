"""The Markdown report: scorecard.md (every table) and report.md (the verdict at a glance, then the same tables).
Every table goes through loadtest/scoring/tables.py."""

from __future__ import annotations

from loadtest.scoring import analysis, replication_report, saturation_report, tables
from loadtest.scoring import verdict as glance

COLUMNS = [  # (scorecard field, heading)
    ("strategy", "strategy"), ("mode", "routing"), ("fault", "fault"), ("requests", "requests"),
    ("errors", "errors"), ("sessions_lost", "sessions lost"), ("writes_lost", "writes lost"),
    ("foreign", "foreign"), ("duplicates", "duplicates"), ("not_revoked", "not revoked"), ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"), ("p99_ms", "p99 ms"), ("error_window_s", "error window s"),
    ("unavailable_s", "unavailable s"), ("recover_s", "recover s"),
]
# The store-fault table: only the strategies of the faulted store, with the store's own timeline.
STORE_COLUMNS = [
    ("strategy", "strategy"), ("fault", "fault"), ("requests", "requests"), ("errors_get", "errors GET"),
    ("errors_post", "errors POST"), ("unavailable_s", "unavailable s"), ("p99_window_ms", "p99 in window ms"),
    ("sessions_lost", "sessions lost"), ("writes_lost", "writes lost"), ("duplicates", "duplicates"),
    ("errors_off_shard", "errors off shard"), ("detected_s", "detected s"), ("promoted_s", "promoted s"),
    ("first_success_s", "first success s"),
]


def cell(row, field: str) -> str:
    """A scorecard cell: the fault by name, "never" for a recovery that never came, floats to a tenth (the
    error window to a hundredth); None is printed as it is (no scorecard column of COLUMNS is None but p50-p99
    of a strategy without requests)."""
    value = getattr(row, field)
    if field == "fault":
        return analysis.fault_name(row)
    if field == "recover_s" and value is None:
        return "never"
    if isinstance(value, float):
        return f"{value:.1f}" if field != "error_window_s" else f"{value:.2f}"
    return str(value)


def store_cell(row, field: str) -> str:
    """As `cell`, with an empty cell where the store's timeline had no such event."""
    return "" if getattr(row, field) is None else cell(row, field)


def scorecard(card) -> str:
    """scorecard.md: the scorecard, then the sections the run has data for."""
    out = tables.markdown(card.rows, COLUMNS, cell)
    if card.store_rows:
        out += "\n## Store faults\n\n" + tables.markdown(card.store_rows, STORE_COLUMNS, store_cell)
    if card.cost:
        out += "\n## What node replication costs\n\n" + replication_report.markdown(card.cost)
    if card.under_load:
        out += "\n## Failover under load\n\n" + saturation_report.markdown(card.under_load)
    return out


def report(card) -> str:
    """report.md: the verdict at a glance opens it, the scorecard follows."""
    return glance.markdown(card.grid) + "\n## Scorecard\n\n" + scorecard(card)
