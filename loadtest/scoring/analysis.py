"""From raw per-request records and the chaos timeline to scorecard rows and per-second series.

Every figure of the scorecard and the report is computed here from `requests.csv` and `timeline.jsonl`,
so `python -m loadtest.scoring.analysis results/<run>` recomputes them from the raw data alone.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from loadtest.scoring.records import Scenario, ScorecardRow
from loadtest.scoring.records import scenario as as_scenario
from loadtest.users import record
from loadtest.users.oracle import DUPLICATE, ERROR, FOREIGN, NOT_REVOKED, OK, OUTCOMES, SESSION_LOST, WRITES_LOST

SETTLED_AFTER = 3.0  # a strategy counts as recovered when its last bad answer came this long before the end
RATE_WINDOW = 5.0  # seconds before a fault over which the offered request rate is measured (warm-ups are longer)
GET_ACTIONS = ("read", "replay")  # every other action is a POST (login, add, logout)
# The store's own events (loadtest/faults/store_watch.py) that the scorecard reports, as columns.
STORE_EVENTS = {  # column: events in order of preference (a 100 ms poll can miss a short-lived state)
    "detected_s": ("primary down (quorum)", "master failed (majority)", "primary down (one sentinel)",
                   "master suspected (one node)"),
    "promoted_s": ("replica promoted",),
}


def fault_name(row: Scenario | ScorecardRow | dict) -> str:
    """"kill app2", or "kill app2 at 80% load" in the load suite (a scenario or a scorecard row; the runner
    still passes scenarios.json's dicts)."""
    row = as_scenario(row) if isinstance(row, dict) else row
    return f"{row.fault} {row.target}" + (f" at {row.load:.0%} load" if row.load else "")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation), as Locust reports it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Records:
    """One strategy's records in one scenario, in time order, with the marks every metric measures from."""

    rs: list[dict]
    scenario: Scenario

    @property
    def inject(self) -> float:
        return self.scenario.inject

    @property
    def recovered(self) -> float:
        return self.scenario.recovered

    def outcome(self, o: str, within: list[dict] | None = None) -> list[dict]:
        return [r for r in (self.rs if within is None else within) if r["outcome"] == o]

    @cached_property
    def after(self) -> list[dict]:
        """From the fault on."""
        return [r for r in self.rs if r["t"] >= self.inject]

    @cached_property
    def before(self) -> list[dict]:
        """The RATE_WINDOW seconds before the fault."""
        return [r for r in self.rs if self.inject - RATE_WINDOW <= r["t"] < self.inject]

    @cached_property
    def window(self) -> list[dict]:
        """Between the fault and recovery."""
        return [r for r in self.rs if self.inject <= r["t"] < self.recovered]

    @cached_property
    def cutoff(self) -> float:
        """When the target stopped answering: its last answer in the window, not `inject` (a graceful stop
        drains for a while and even takes new logins)."""
        nodes = self.scenario.nodes
        return max([self.inject, *(r["t"] for r in self.window if r["node"] in nodes)])


def counts(d: Records) -> dict:
    """How many answers of each kind, and of the errors, which kind."""
    errors = d.outcome(ERROR)
    lost = d.outcome(SESSION_LOST)
    return {
        "requests": len(d.rs),
        "ok": len(d.outcome(OK)),
        "errors": len(errors),
        "errors_not_503": sum(1 for r in errors if r["status"] != 503),
        # Answers the fault cut off: the dying node had sent its status line and headers (gunicorn writes
        # them before the body), nginx had passed on the 200, and the body never came whole. nginx cannot
        # take a status back or retry once it has answered, so no routing hides these.
        "cut_off_by_fault": sum(1 for r in d.outcome(ERROR, d.window)
                                if r["status"] == 200 and r["node"] in d.scenario.nodes),
        "sessions_lost": len(lost),
        "sessions_lost_before_fault": sum(1 for r in lost if r["t"] < d.inject),
        "sessions_lost_after_recovery": sum(1 for r in lost if r["t"] >= d.recovered),
        "writes_lost": sum(r["lost_items"] for r in d.outcome(WRITES_LOST)),
        "foreign": len(d.outcome(FOREIGN)),
        "duplicates": len(d.outcome(DUPLICATE)),
        "errors_get": sum(1 for r in errors if r["action"] in GET_ACTIONS),
        "errors_post": sum(1 for r in errors if r["action"] not in GET_ACTIONS),
        "replays": sum(1 for r in d.rs if r["action"] == "replay"),
        "not_revoked": len(d.outcome(NOT_REVOKED)),
        "users": len({r["user"] for r in d.rs}),
    }


def rates(d: Records) -> dict:
    """Requests per second sent in the seconds before the fault (steady, after the users' start) and between
    the fault and recovery: what the load suite offered, and what got through."""
    span = d.recovered - d.inject
    return {"rps_before": round(len(d.before) / RATE_WINDOW, 1),
            "rps_window": round(len(d.window) / span, 1) if span > 0 else None}


def latency(d: Records) -> dict:
    """Percentiles over the whole scenario, before the fault, and between the fault and recovery; the adds
    acknowledged before the fault (the write path's cost, for the replication section)."""
    window = [r["latency_ms"] for r in d.window]
    every = [r["latency_ms"] for r in d.rs]
    adds = [r["latency_ms"] for r in d.outcome(OK) if r["action"] == "add" and r["t"] < d.inject]
    return {
        "p99_window_ms": percentile(window, 99),
        "p50_window_ms": percentile(window, 50),
        "max_window_ms": max(window, default=None),
        "p99_before_ms": percentile([r["latency_ms"] for r in d.before], 99),
        "p50_ms": percentile(every, 50),
        "p95_ms": percentile(every, 95),
        "p99_ms": percentile(every, 99),
        "add_p50_ms": percentile(adds, 50),
        "add_p99_ms": percentile(adds, 99),
    }


def windows(d: Records) -> dict:
    """How long the fault showed: the longest wait for a good answer, the first good answer after a failure,
    first to last error, and the fault to the last bad answer (None: bad answers went on to the end)."""
    unavailable, first_success = unavailability(d.rs, d.inject)
    return {"unavailable_s": unavailable, "first_success_s": first_success,
            "error_window_s": error_window(d.outcome(ERROR, d.after)),
            "recover_s": recover_time(d.after, d.inject, d.scenario.end)}


def error_window(errors: list[dict]) -> float:
    """From the first error's start to the last one's answer."""
    if not errors:
        return 0.0
    return round(errors[-1]["t"] - errors[0]["t"] + errors[-1]["latency_ms"] / 1000, 2)


def recover_time(after: list[dict], inject: float, end: float) -> float | None:
    """The fault to the last bad answer; 0.0 with none, None when they came until SETTLED_AFTER before the end."""
    bad = [r for r in after if r["outcome"] in (ERROR, SESSION_LOST, WRITES_LOST)]
    if not bad:
        return 0.0
    last = bad[-1]["t"]
    return round(last - inject, 2) if last < end - SETTLED_AFTER else None


def store_timeline(d: Records) -> dict:
    """The store's own events, seconds after the fault (STORE_EVENTS), and the errors off a faulted shard."""
    events = {e["event"]: e["t"] for e in d.scenario.events}
    found = {column: next((round(events[e] - d.inject, 2) for e in names if e in events), None)
             for column, names in STORE_EVENTS.items()}
    return {"errors_off_shard": errors_off_shard(d.outcome(ERROR, d.after), d.scenario), **found}


def attribution(d: Records) -> dict:
    """Which users and nodes a loss belongs to: the users whose live session was on the target when it stopped
    answering (the users its death should cost), and who lost one."""
    last_node = last_nodes(d.rs, d.cutoff)
    nodes = d.scenario.nodes
    return {
        "users_on_target": sorted(u for u, n in last_node.items() if n in nodes),
        "users_on_first": sorted(u for u, n in last_node.items() if n == nodes[0]),
        "nodes_with_losses": nodes_with_losses(d.rs, d.inject),
        "nodes_holding_sessions": sorted(set(last_nodes(d.rs, d.inject).values())),
        "acked_at_death": acked_at_death(d.rs, d.scenario, nodes, d.cutoff),
        "users_lost": sorted({r["user"] for r in d.outcome(SESSION_LOST, d.after)}),
        "users_started_during_fault": sorted({r["user"] for r in d.outcome(OK, d.window) if r["action"] == "login"}),
    }


def last_nodes(rs: list[dict], cutoff: float) -> dict[str, str]:
    """Per user, the node that held its live session at `cutoff`. A user whose session ended (logged out,
    then replaying the old credential) holds none. A logout shows a loss like any request: a node that does
    not hold a node-local session answers 409 session_not_here, not "logged out"."""
    last_node: dict[str, str] = {}
    first_after: dict[str, str] = {}
    for r in rs:
        if r["t"] > cutoff:
            first_after.setdefault(r["user"], r["action"])
        elif r["outcome"] != OK:
            continue
        elif r["action"] in ("logout", "replay"):
            last_node.pop(r["user"], None)
        elif r["node"]:
            last_node[r["user"]] = r["node"]
    for user in [u for u, action in first_after.items() if action == "replay"]:
        last_node.pop(user, None)
    return last_node


# Each scorecard figure and the function that computes it, from one strategy's records (`Records`); the
# row's order of fields is ScorecardRow's, not this table's.
METRICS: list[tuple[str, Callable[[Records], dict]]] = [
    ("counts", counts),
    ("rates", rates),
    ("latency", latency),
    ("windows", windows),
    ("store timeline", store_timeline),
    ("attribution", attribution),
]


def strategy_row(strategy: str, rs: list[dict], scenario: Scenario) -> ScorecardRow:
    """The scorecard row of one strategy's records (in time order)."""
    d = Records(rs, scenario)
    figures = {name: value for _, metric in METRICS for name, value in metric(d).items()}
    return ScorecardRow(strategy=strategy, mode=scenario.mode, fault=scenario.fault, target=scenario.target,
                        load=scenario.load, store=scenario.store or "", **figures)


def scenario_rows(rows: list[dict], scenario: Scenario | dict) -> list[ScorecardRow]:
    """One scorecard row per strategy, in the order the strategies first appear in the records."""
    scenario = as_scenario(scenario)
    by_strategy: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_strategy[r["strategy"]].append(r)
    return [strategy_row(strategy, sorted(rs, key=lambda r: r["t"]), scenario) for strategy, rs in by_strategy.items()]


IN_FLIGHT_WINDOW = 1.0  # seconds before a node's death in which an acknowledged change may not be copied yet


def acked_at_death(rs: list[dict], scenario: Scenario, services: list[str], cutoff: float) -> int:
    """Changes (logins, adds) a faulted node acknowledged within IN_FLIGHT_WINDOW of its death: what an
    asynchronous copy may not have shipped yet. A redeploy's nodes each die at their own step."""
    deaths = ([(s["node"], s["t"], s["replaced"]) for s in scenario.steps or ()]
              or [(node, cutoff, cutoff) for node in services])
    return sum(1 for r in rs if r["outcome"] == OK and r["action"] in ("login", "add")
               and any(r["node"] == node and start - IN_FLIGHT_WINDOW <= r["t"] <= end for node, start, end in deaths))


def nodes_with_losses(rs: list[dict], inject: float) -> list[str]:
    """The nodes that held the sessions lost after the fault: each lost user's last good answer came from there."""
    last_ok: dict[str, str] = {}
    found = set()
    for r in rs:
        if r["outcome"] == OK and r["node"]:
            last_ok[r["user"]] = r["node"]
        elif r["outcome"] == SESSION_LOST and r["t"] >= inject and r["user"] in last_ok:
            found.add(last_ok.pop(r["user"]))
    return sorted(found)


def unavailability(rs: list[dict], inject: float) -> tuple[float, float | None]:
    """(unavailable_s, first_success_s) for one strategy after the fault. Unavailable: the longest any user
    waited from its first failed answer to its next good one (to the end of the data when none came);
    first success: when, after the first failure, the first user got a good answer again (s after inject)."""
    failed_at: dict[str, float] = {}
    longest, first_failure, first_success = 0.0, None, None
    for r in rs:
        if r["t"] < inject:
            continue
        end = r["t"] + r["latency_ms"] / 1000
        if r["outcome"] == ERROR:
            failed_at.setdefault(r["user"], r["t"])
            first_failure = r["t"] if first_failure is None else first_failure
        elif r["outcome"] == OK and r["user"] in failed_at:
            longest = max(longest, end - failed_at.pop(r["user"]))
            if first_success is None:
                first_success = end
    if rs:
        last = max(r["t"] + r["latency_ms"] / 1000 for r in rs)
        longest = max([longest, *(last - t for t in failed_at.values())])
    return round(longest, 2), (round(first_success - inject, 2) if first_success is not None else None)


def errors_off_shard(errors: list[dict], scenario: Scenario) -> int | None:
    """Errors (logins aside) of sessions whose slot the faulted Cluster nodes do not serve; None when the
    fault is not a Cluster one. A login is left out: its new session may land on any shard, the dead one too."""
    slots = scenario.slots
    if not slots:
        return None
    inside = lambda slot: any(first <= slot <= last for first, last in slots)  # noqa: E731
    return sum(1 for r in errors if r["action"] != "login" and r["slot"] >= 0 and not inside(r["slot"]))


def per_second(rows: list[dict], start: float) -> dict[str, list[dict]]:
    """Per strategy, one point a second: requests, each outcome, p95 latency."""
    bins: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        bins[r["strategy"]][int(r["t"] - start)].append(r)
    series = {}
    for strategy, by_second in bins.items():
        points = []
        for second in range(0, max(by_second) + 1):
            rs = by_second.get(second, [])
            point = {"second": second, "requests": len(rs),
                     "p95_ms": percentile([r["latency_ms"] for r in rs], 95)}
            for o in OUTCOMES:
                point[o] = sum(1 for r in rs if r["outcome"] == o)
            points.append(point)
        series[strategy] = points
    return series


def read_scenarios(run_dir: Path) -> list[Scenario]:
    return [Scenario.from_json(s) for s in json.loads((run_dir / "scenarios.json").read_text())]


def raw_records(run_dir: Path, scenarios: list[Scenario]) -> dict[str, list[dict]]:
    """Per scenario id, its raw records (scenarios without a requests.csv left out)."""
    paths = {s.id: run_dir / "raw" / s.id / "requests.csv" for s in scenarios}
    return {sid: record.read(path) for sid, path in paths.items() if path.exists()}


def load_run(run_dir: Path) -> tuple[list[Scenario], list[ScorecardRow]]:
    """(scenarios, scorecard rows) recomputed from a run folder's raw data."""
    scenarios = read_scenarios(run_dir)
    raw = raw_records(run_dir, scenarios)
    return scenarios, [row for s in scenarios if s.id in raw for row in scenario_rows(raw[s.id], s)]


def run_dir_argument(argv: list[str] | None, prog: str) -> Path | None:
    """The one argument of `python -m loadtest.scoring.<prog> results/<run>`, or None after printing the usage."""
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1 or not (Path(args[0]) / "scenarios.json").exists():
        print(f"usage: python -m loadtest.scoring.{prog} results/<run>  (a folder written by the experiment runner)",
              file=sys.stderr)
        return None
    return Path(args[0])


def main(argv: list[str] | None = None) -> int:
    run_dir = run_dir_argument(argv, "analysis")
    if run_dir is None:
        return 2
    _, rows = load_run(run_dir)
    print(json.dumps([row.to_json() for row in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
