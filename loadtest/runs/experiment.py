"""The experiment: for each routing mode, all strategies' users at once under one fault schedule, then a
scorecard, the raw data behind it, an HTML report with plots, and a verdict on the lab's claims.

    python -m loadtest.runs.experiment --quick          (make experiment QUICK=1)
    python -m loadtest.runs.experiment                  (full: every fault)

Each scenario: warm-up, fault, hold, recovery, cool-down, with Locust running throughout. Results go to
results/<UTC time>/. Exit 0 when every hypothesis held, 1 when one deviated, 2 on bad input; Ctrl-C
recovers the faulted service, restores the routing mode, and keeps the data gathered so far (exit 130).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from loadtest.faults import chaos
from loadtest.runs import locust_run
from loadtest.scoring import analysis, report
from loadtest.users import record
from loadtest.faults.chaos import FAULTS, Fault, Timeline, wait_healthy
from loadtest.faults.compose import LAB_URL, ROOT, SERVICES, LabError, current_mode, require_stack, switch_mode

sys.path.insert(0, str(ROOT / "services" / "app"))
from session_lab import strategies as registry  # noqa: E402

MODES = sorted(p.stem for p in (ROOT / "loadbalancer" / "modes").glob("*.conf"))


@dataclass(frozen=True)
class Schedule:
    """Seconds per phase, and the faults to run in each routing mode (chaostoolkit's method, as data)."""

    warmup: float
    hold: float
    cooldown: float
    faults: tuple[tuple[str, str], ...]


QUICK = Schedule(warmup=8, hold=8, cooldown=10, faults=(("kill", "app2"),))
FULL = Schedule(warmup=10, hold=10, cooldown=15, faults=(
    ("kill", "app2"), ("stop", "app2"), ("pause", "app2"), ("disconnect", "app2"), ("kill", "redis"),
))


def parse_args(argv):
    p = argparse.ArgumentParser(prog="experiment", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one fault (kill app2) per mode: about 3 minutes")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from: {', '.join(MODES)}")
    p.add_argument("--strategies", default="", help="comma-separated subset (default: every strategy)")
    p.add_argument("--faults", default="", help="override the schedule: fault:target,... e.g. stop:app1,kill:redis")
    p.add_argument("--users", type=int, default=30, help="simulated users in all, spread over the strategies")
    p.add_argument("--out", type=Path, default=None, help="results folder (default results/<UTC time>)")
    args = p.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise LabError(f"unknown routing mode {', '.join(bad) or '(none)'}: choose from {', '.join(MODES)}", 2)
    names = registry.names()
    chosen = [s.strip() for s in args.strategies.split(",") if s.strip()]
    bad = [s for s in chosen if s not in names]
    if bad:
        raise LabError(f"unknown strategy {', '.join(bad)}: choose from {', '.join(names)}", 2)
    schedule = QUICK if args.quick else FULL
    if args.faults:
        faults = []
        for step in args.faults.split(","):
            fault, _, target = step.strip().partition(":")
            if fault not in FAULTS or fault == "restart" or target not in SERVICES:
                raise LabError(f"bad fault step {step!r}: use FAULT:TARGET with FAULT in kill, stop, pause, "
                               f"disconnect and TARGET in {', '.join(SERVICES)}", 2)
            faults.append((fault, target))
        schedule = Schedule(schedule.warmup, schedule.hold, schedule.cooldown, tuple(faults))
    if args.users < len(chosen or names):
        raise LabError(f"--users must be at least one per strategy ({len(chosen or names)})", 2)
    return args, modes, chosen, schedule


class Progress:
    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.monotonic()

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.1f}s] [{self.done + 1}/{self.total}] {text}", flush=True)

    def wait(self, seconds: float, phase: str) -> None:
        self.say(f"{phase} {seconds:.0f} s")
        time.sleep(seconds)


def run_scenario(run_dir: Path, mode: str, fault: Fault, schedule: Schedule, args, chosen, progress,
                 timeline: Timeline, scenarios: list[dict]) -> dict:
    """Runs one scenario; it is appended to `scenarios` at once, so an interrupted one keeps its data."""
    sid = f"{mode}--{fault.fault}-{fault.target}"
    raw = run_dir / "raw" / sid
    raw.mkdir(parents=True, exist_ok=True)
    # Locust's own bound: the whole schedule plus room for a slow recovery.
    bound = schedule.warmup + schedule.hold + schedule.cooldown + 120
    scenario = {"id": sid, "mode": mode, "fault": fault.fault, "target": fault.target, "interrupted": True}
    scenarios.append(scenario)
    locust = locust_run.start(raw, args.users, bound, ",".join(chosen), "--csv-full-history")
    scenario["start"] = time.time()
    mark = len(timeline.events)
    try:
        progress.wait(schedule.warmup, f"{mode}: {args.users} users, warm-up")
        progress.say(f"{mode}: {fault.fault} {fault.target}")
        # Inject, hold, recover: the chaos script's own sequence, which recovers even when interrupted.
        chaos.run(fault, schedule.hold, timeline, sleep=lambda seconds: progress.wait(seconds, f"{mode}: hold"))
        progress.wait(schedule.cooldown, f"{mode}: recovered in {timeline.events[-1]['seconds']:.1f} s, cool-down")
        scenario["interrupted"] = False
    finally:
        for event in timeline.events[mark:]:
            if event["event"] == "inject":
                scenario["inject"] = event["t"]
            elif event["event"] == "recovered":
                scenario["recovered"] = event["t"] + event["seconds"]
        scenario["end"] = time.time()
        scenario.setdefault("inject", scenario["end"])
        scenario.setdefault("recovered", scenario["end"])
        locust_run.stop(locust)
    if not (raw / "requests.csv").exists():
        raise LabError(f"Locust wrote no records; see {raw / 'locust.log'}")
    return scenario


def summarize(rows: list[dict]) -> None:
    cols = ["requests", "errors", "sessions_lost", "writes_lost", "foreign", "not_revoked", "p95_ms"]
    for row in rows:
        print("      " + f"{row['strategy']:<8}" + "  ".join(f"{c}={row[c]}" for c in cols))


def main(argv: list[str] | None = None) -> int:
    try:
        args, modes, chosen, schedule = parse_args(argv)
        require_stack()
    except LabError as exc:
        print(f"experiment: {exc}", file=sys.stderr)
        return exc.exit_code
    run_dir = args.out or ROOT / "results" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir.mkdir(parents=True, exist_ok=True)
    timeline = Timeline(run_dir / "timeline.jsonl")
    plan = [(mode, f, t) for mode in modes for f, t in schedule.faults]
    progress = Progress(len(plan))
    original_mode = current_mode()
    scenarios: list[dict] = []
    (run_dir / "run.json").write_text(json.dumps({
        "quick": args.quick, "modes": modes, "strategies": chosen or registry.names(), "users": args.users,
        "schedule": asdict(schedule), "lab_url": LAB_URL, "started": time.time(), "cores": os.cpu_count(),
    }, indent=2))
    print(f"experiment: {len(plan)} scenarios, results in {run_dir}", flush=True)
    status = 0
    try:
        for mode, fault_name, target in plan:
            if current_mode() != mode:
                switch_mode(mode)
            scenario = run_scenario(run_dir, mode, Fault(fault_name, target), schedule, args, chosen, progress,
                                    timeline, scenarios)
            (run_dir / "scenarios.json").write_text(json.dumps(scenarios, indent=2))
            summarize(analysis.scenario_rows(record.read(run_dir / "raw" / scenario["id"] / "requests.csv"),
                                             scenario))
            for service in SERVICES:
                wait_healthy(service)
            progress.done += 1
    except KeyboardInterrupt:
        print("\nexperiment: interrupted; the faulted service was recovered, writing what was gathered", file=sys.stderr)
        status = 130
    except LabError as exc:
        print(f"experiment: {exc}", file=sys.stderr)
        status = exc.exit_code
    finally:
        try:
            if current_mode() != original_mode:
                switch_mode(original_mode)
        except (LabError, OSError) as exc:
            print(f"experiment: could not restore routing mode {original_mode}: {exc}", file=sys.stderr)
    return finish(run_dir, scenarios, status)


def finish(run_dir: Path, scenarios: list[dict], status: int) -> int:
    """Write the scorecard and report from the raw data; the exit code says whether every hypothesis held."""
    scenarios = [s for s in scenarios if (run_dir / "raw" / s["id"] / "requests.csv").exists()]
    if not scenarios:
        return status or 1
    (run_dir / "scenarios.json").write_text(json.dumps(scenarios, indent=2))
    verdict = report.write(run_dir)
    print(f"\nscorecard: {run_dir / 'scorecard.md'}\nreport:    {run_dir / 'report.html'}")
    deviated = [v for v in verdict if not v["held"]]
    for v in deviated:
        print(f"DEVIATED {v['hypothesis']}: {v['strategy']} / {v['mode']} / {v['fault']}: {v['detail']}")
    print(f"hypotheses: {len(verdict) - len(deviated)} held, {len(deviated)} deviated")
    if status:
        return status
    return 1 if deviated else 0


if __name__ == "__main__":
    sys.exit(main())
