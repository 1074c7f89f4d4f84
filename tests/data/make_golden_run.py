"""Make the golden test's run folder (tests/data/golden-run/) from real run folders: a few scenarios, each
thinned to one user per strategy so the fixture stays small, with scenarios.json, run.json and timeline.jsonl
cut down to match.

    python tests/data/make_golden_run.py OUT RUN_DIR:SCENARIO_ID [RUN_DIR:SCENARIO_ID ...]

Scenarios may come from several runs (a full run's node and Redis kills, a stores run's Sentinel or Cluster
fault): run.json is the first run's, its schedule listing the store faults kept.

The user kept per strategy is the one with the most answers that were not ok (ties: the first by name), so
a scenario keeps its losses and errors where it had any; every record of that user is kept, unchanged. The
expected outputs beside it come from the report of the base commit, not from this script (see
tests/unit/test_report_golden.py).
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path


def kept_users(lines: list[dict]) -> set[str]:
    bad = Counter(r["user"] for r in lines if r["outcome"] != "ok")
    users: dict[str, list[str]] = {}
    for r in lines:
        users.setdefault(r["strategy"], [])
        if r["user"] not in users[r["strategy"]]:
            users[r["strategy"]].append(r["user"])
    return {min(names, key=lambda u: (-bad[u], u)) for names in users.values()}


def thin(src: Path, dst: Path) -> None:
    with src.open(newline="") as f:
        reader = csv.DictReader(f)
        header, lines = reader.fieldnames, list(reader)
    keep = kept_users(lines)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(r for r in lines if r["user"] in keep)


def main(out: Path, picks: list[str]) -> None:
    scenarios, events, run = [], [], None
    for pick in picks:
        run_dir, _, sid = pick.rpartition(":")
        run_dir = Path(run_dir)
        scenario = next(s for s in json.loads((run_dir / "scenarios.json").read_text()) if s["id"] == sid)
        scenarios.append(scenario)
        thin(run_dir / "raw" / sid / "requests.csv", out / "raw" / sid / "requests.csv")
        timeline = [json.loads(line) for line in (run_dir / "timeline.jsonl").read_text().splitlines()]
        events += [e for e in timeline if scenario["start"] <= e["t"] <= scenario["end"]]
        run = run or json.loads((run_dir / "run.json").read_text())
    # run.json is the first run's; a store fault picked from another run joins its schedule, as one run of
    # both suites would have listed it.
    store_faults = [[s["fault"], s["target"]] for s in scenarios if s.get("store") not in ("", "redis", None)]
    run["schedule"]["store_faults"] = [f for f in run["schedule"]["store_faults"] if f in store_faults] + [
        f for f in store_faults if f not in run["schedule"]["store_faults"]]
    (out / "scenarios.json").write_text(json.dumps(scenarios, indent=2))
    (out / "run.json").write_text(json.dumps(run, indent=2))
    (out / "timeline.jsonl").write_text("".join(json.dumps(e) + "\n" for e in sorted(events, key=lambda e: e["t"])))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
