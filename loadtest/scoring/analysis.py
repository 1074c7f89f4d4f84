"""From raw per-request records and the chaos timeline to scorecard rows and per-second series.

Every figure of the scorecard and the report is computed here from `requests.csv` and `timeline.jsonl`,
so `python -m loadtest.scoring.analysis results/<run>` recomputes them from the raw data alone.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path

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


def fault_name(row: dict) -> str:
    """"kill app2", or "kill app2 at 80% load" in the load suite (a scenario or a scorecard row)."""
    load = row.get("load")
    return f"{row['fault']} {row['target']}" + (f" at {load:.0%} load" if load else "")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation), as Locust reports it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def scenario_rows(rows: list[dict], scenario: dict) -> list[dict]:
    """One scorecard row per strategy. `scenario` holds mode, fault, target, start, end, inject, recovered."""
    inject, recovered, end = scenario["inject"], scenario["recovered"], scenario["end"]
    by_strategy: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_strategy[r["strategy"]].append(r)
    out = []
    for strategy, rs in by_strategy.items():
        rs.sort(key=lambda r: r["t"])
        outcome = lambda o, within=rs: [r for r in within if r["outcome"] == o]  # noqa: E731
        after = [r for r in rs if r["t"] >= inject]
        errors_after = outcome(ERROR, after)
        bad_after = [r for r in after if r["outcome"] in (ERROR, SESSION_LOST, WRITES_LOST)]
        last_bad = bad_after[-1]["t"] if bad_after else None
        # Where each user's live session was when the target stopped answering: the users its death should
        # cost. That moment is the target's last answer, not `inject`: a graceful stop drains for a while
        # and even takes new logins. A user whose session ended (logged out, then replaying the old
        # credential) holds none. A logout shows a loss like any request: a node that does not hold a node-local
        # session answers 409 session_not_here, not "logged out".
        target = scenario["target"]
        services = scenario.get("services") or [target]
        cutoff = max([inject, *(r["t"] for r in rs if inject <= r["t"] < recovered and r["node"] in services)])
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
        latencies = [r["latency_ms"] for r in rs]
        window = [r["latency_ms"] for r in rs if inject <= r["t"] < recovered]
        unavailable, first_success = unavailability(rs, inject)
        events = {e["event"]: e["t"] for e in scenario.get("store_events", ())}
        out.append({
            "strategy": strategy,
            "mode": scenario["mode"],
            "fault": scenario["fault"],
            "target": scenario["target"],
            "load": scenario.get("load"),
            "requests": len(rs),
            # Requests per second sent in the seconds before the fault (steady, after the users' start) and
            # between the fault and recovery: what the load suite offered, and what got through.
            "rps_before": round(sum(1 for r in rs if inject - RATE_WINDOW <= r["t"] < inject) / RATE_WINDOW, 1),
            "rps_window": round(len(window) / (recovered - inject), 1) if recovered > inject else None,
            "ok": len(outcome(OK)),
            "errors": len(outcome(ERROR)),
            "errors_not_503": sum(1 for r in outcome(ERROR) if r["status"] != 503),
            # Answers the fault cut off: the dying node had sent its status line and headers (gunicorn writes
            # them before the body), nginx had passed on the 200, and the body never came whole. nginx cannot
            # take a status back or retry once it has answered, so no routing hides these.
            "cut_off_by_fault": sum(1 for r in outcome(ERROR) if r["status"] == 200 and r["node"] in services
                                    and inject <= r["t"] < recovered),
            "sessions_lost": len(outcome(SESSION_LOST)),
            "sessions_lost_before_fault": sum(1 for r in outcome(SESSION_LOST) if r["t"] < inject),
            "sessions_lost_after_recovery": sum(1 for r in outcome(SESSION_LOST) if r["t"] >= recovered),
            "writes_lost": sum(r["lost_items"] for r in outcome(WRITES_LOST)),
            "foreign": len(outcome(FOREIGN)),
            "duplicates": len(outcome(DUPLICATE)),
            "store": scenario.get("store", ""),
            "errors_get": sum(1 for r in outcome(ERROR) if r["action"] in GET_ACTIONS),
            "errors_post": sum(1 for r in outcome(ERROR) if r["action"] not in GET_ACTIONS),
            "unavailable_s": unavailable,
            "p99_window_ms": percentile(window, 99),
            "p50_window_ms": percentile(window, 50),
            "max_window_ms": max(window, default=None),
            "p99_before_ms": percentile([r["latency_ms"] for r in rs if inject - RATE_WINDOW <= r["t"] < inject], 99),
            "errors_off_shard": errors_off_shard(errors_after, scenario),
            **{column: next((round(events[e] - inject, 2) for e in names if e in events), None)
               for column, names in STORE_EVENTS.items()},
            "first_success_s": first_success,
            "replays": sum(1 for r in rs if r["action"] == "replay"),
            "not_revoked": len(outcome(NOT_REVOKED)),
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
            "error_window_s": round(errors_after[-1]["t"] - errors_after[0]["t"] + errors_after[-1]["latency_ms"] / 1000, 2)
            if errors_after else 0.0,
            "recover_s": (round(last_bad - inject, 2) if last_bad is not None and last_bad < end - SETTLED_AFTER
                          else (0.0 if last_bad is None else None)),
            "users": len({r["user"] for r in rs}),
            "users_on_target": sorted(u for u, n in last_node.items() if n in services),
            "users_on_first": sorted(u for u, n in last_node.items() if n == services[0]),
            "nodes_with_losses": nodes_with_losses(rs, inject),
            "acked_at_death": acked_at_death(rs, scenario, services, cutoff),
            "add_p50_ms": percentile([r["latency_ms"] for r in outcome(OK) if r["action"] == "add" and r["t"] < inject], 50),
            "add_p99_ms": percentile([r["latency_ms"] for r in outcome(OK) if r["action"] == "add" and r["t"] < inject], 99),
            "users_lost": sorted({r["user"] for r in outcome(SESSION_LOST, after)}),
            "users_started_during_fault": sorted({r["user"] for r in rs if r["action"] == "login"
                                                  and r["outcome"] == OK and inject <= r["t"] < recovered}),
        })
    return out


IN_FLIGHT_WINDOW = 1.0  # seconds before a node's death in which an acknowledged change may not be copied yet


def acked_at_death(rs: list[dict], scenario: dict, services: list[str], cutoff: float) -> int:
    """Changes (logins, adds) a faulted node acknowledged within IN_FLIGHT_WINDOW of its death: what an
    asynchronous copy may not have shipped yet. A redeploy's nodes each die at their own step."""
    deaths = ([(s["node"], s["t"], s["replaced"]) for s in scenario.get("steps", ())]
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


def errors_off_shard(errors: list[dict], scenario: dict) -> int | None:
    """Errors (logins aside) of sessions whose slot the faulted Cluster nodes do not serve; None when the
    fault is not a Cluster one. A login is left out: its new session may land on any shard, the dead one too."""
    slots = scenario.get("slots")
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


def load_run(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """(scenarios, scorecard rows) recomputed from a run folder's raw data."""
    scenarios = json.loads((run_dir / "scenarios.json").read_text())
    rows = []
    for scenario in scenarios:
        raw = run_dir / "raw" / scenario["id"] / "requests.csv"
        if raw.exists():
            rows += scenario_rows(record.read(raw), scenario)
    return scenarios, rows


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
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
