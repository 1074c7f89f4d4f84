"""The report's section on failover under load: a node killed at a fraction of what three nodes carry.

The capacity is measured at the start of the run (loadtest/bench/capacity.py); each scenario's users are
paced to a fraction of it. What the section shows per load: the rate offered before the kill, the rate that
got through between the kill and recovery, and what the users saw meanwhile (errors, latency, losses).
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib.pyplot as plt

from loadtest.scoring import notes, tables
from loadtest.scoring.records import ScorecardRow

COLUMNS = [
    ("load", "load"), ("strategy", "strategy"), ("rps_before", "req/s before"), ("share_before", "of capacity"),
    ("rps_window", "req/s in window"), ("share_window", "of capacity"), ("errors", "errors"),
    ("sessions_lost", "sessions lost"), ("writes_lost", "writes lost"), ("p99_before_ms", "p99 before ms"),
    ("p50_window_ms", "p50 in window ms"), ("p99_window_ms", "p99 in window ms"), ("max_window_ms", "max in window ms"),
]
TOTAL = "all users"

ABOUT = """Round-robin routing, every strategy that needs no sticky routing, each app node limited to its own
share of the cores (as if each were its own machine), users paced to a fraction of the measured capacity of
three nodes for the users' mix; app2 is killed (SIGKILL) and brought back after the hold.
At half load the two nodes left run at three quarters of their capacity: the death should not show beyond a
short latency bump, since nginx retries what app2 had in flight and what it sends to app2's silent address
(a {connect} connect timeout) on the other nodes. At 80 % the two nodes are asked for 120 % of what they can
do: the users (a closed loop: each waits for its answer) slow down until the offered rate fits, so the cost
shows as latency and as a lower rate in the window, and errors appear only where a request waits past
nginx's {read} read timeout. No session is lost either way: the sessions live in the stores, not in the nodes."""


def about() -> str:
    """ABOUT with the balancer's timeouts as its config says them (loadtest/scoring/notes.py)."""
    facts = notes.facts()
    return ABOUT.format(connect=facts["connect_timeout"], read=facts["read_timeout"])


def rows_under_load(rows: list[ScorecardRow], capacity_rps: float | None = None) -> list[dict]:
    """The load suite's rows, by load then strategy, each load followed by the sum over its strategies
    (with the rates as shares of the capacity: the load asked for is paced, the load offered is measured)."""
    loaded = [r for r in rows if r.load]
    out = []
    for load in sorted({r.load for r in loaded}):
        mine = [r for r in loaded if r.load == load]
        shown = [r.to_json() for r in mine] + [_total(mine, capacity_rps)]
        out += [{**r, "load": f"{load:.0%}"} for r in shown]
    return out


def _total(rows: list[ScorecardRow], capacity_rps: float | None) -> dict:
    total = {"strategy": TOTAL}
    for field in ("p99_before_ms", "p99_window_ms", "max_window_ms"):  # the worst strategy's: no user waited longer
        values = [getattr(r, field) for r in rows if getattr(r, field) is not None]
        total[field] = max(values) if values else None
    for field in ("rps_before", "rps_window", "errors", "sessions_lost", "writes_lost"):
        total[field] = round(sum(getattr(r, field) or 0 for r in rows), 1)
    if capacity_rps:
        total["share_before"] = f"{total['rps_before'] / capacity_rps:.0%}"
        total["share_window"] = f"{total['rps_window'] / capacity_rps:.0%}"
    return total


def markdown(table: list[dict]) -> str:
    """`table`: rows_under_load's."""
    return tables.markdown(table, COLUMNS)


def plot(table: list[dict], path: Path) -> None:
    """Per load (`table`: rows_under_load's): the p99 between kill and recovery per strategy (bars), and the
    errors on each bar."""
    loaded = [r for r in table if r["strategy"] != TOTAL]
    loads = list(dict.fromkeys(r["load"] for r in loaded))
    names = list(dict.fromkeys(r["strategy"] for r in loaded))
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(1, len(loads))
    for i, load in enumerate(loads):
        mine = {r["strategy"]: r for r in loaded if r["load"] == load}
        xs = [n + (i - (len(loads) - 1) / 2) * width for n in range(len(names))]
        values = [(mine.get(name) or {}).get("p99_window_ms") or 0 for name in names]
        bars = ax.bar(xs, values, width, label=f"kill at {load} load")
        for bar, name in zip(bars, names):
            errors = (mine.get(name) or {}).get("errors", 0)
            ax.annotate(f"{errors} err", (bar.get_x() + bar.get_width() / 2, bar.get_height()), fontsize=7,
                        ha="center", va="bottom")
    ax.axhline(1500, color="tab:red", linestyle="--", linewidth=1, label="goal at 50 %: 1.5 s")
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylabel("p99 between kill and recovery (ms)")
    ax.set_title("A node killed under load: the slowest 1 % of answers while two nodes carry three nodes' users")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def section(table: list[dict], capacity_rps: float | None) -> str:
    if not table:
        return ""
    e = html.escape
    measured = f"{capacity_rps:.0f} requests/s" if capacity_rps else "not recorded"
    return f"""<h2>Failover under load</h2>
<p>{e(about())}</p>
<p>Capacity of three nodes for the users' mix, measured at the start of this run: {e(measured)}
(<code>capacity/</code>). Req/s before: the last 5 s before the kill. In window: from the kill to app2's
recovery.</p>
{tables.html_table(table, COLUMNS)}
<img src='plots/saturation.png' alt=''>"""
