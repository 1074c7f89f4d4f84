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
from loadtest.users.oracle import ERROR, FOREIGN, NOT_REVOKED, OK, OUTCOMES, SESSION_LOST, WRITES_LOST

SETTLED_AFTER = 3.0  # a strategy counts as recovered when its last bad answer came this long before the end


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
        # credential) holds none, and one whose first request afterwards is its logout cannot show a loss.
        target = scenario["target"]
        cutoff = max([inject, *(r["t"] for r in rs if inject <= r["t"] < recovered and r["node"] == target)])
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
        for user in [u for u, action in first_after.items() if action in ("logout", "replay")]:
            last_node.pop(user, None)
        latencies = [r["latency_ms"] for r in rs]
        out.append({
            "strategy": strategy,
            "mode": scenario["mode"],
            "fault": scenario["fault"],
            "target": scenario["target"],
            "requests": len(rs),
            "ok": len(outcome(OK)),
            "errors": len(outcome(ERROR)),
            "errors_not_503": sum(1 for r in outcome(ERROR) if r["status"] != 503),
            "sessions_lost": len(outcome(SESSION_LOST)),
            "sessions_lost_before_fault": sum(1 for r in outcome(SESSION_LOST) if r["t"] < inject),
            "sessions_lost_after_recovery": sum(1 for r in outcome(SESSION_LOST) if r["t"] >= recovered),
            "writes_lost": sum(r["lost_items"] for r in outcome(WRITES_LOST)),
            "foreign": len(outcome(FOREIGN)),
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
            "users_on_target": sorted(u for u, n in last_node.items() if n == scenario["target"]),
            "users_lost": sorted({r["user"] for r in outcome(SESSION_LOST, after)}),
            "users_started_during_fault": sorted({r["user"] for r in rs if r["action"] == "login"
                                                  and r["outcome"] == OK and inject <= r["t"] < recovered}),
        })
    return out


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
