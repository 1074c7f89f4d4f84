"""The experiment: for each routing mode, all strategies' users at once under one fault schedule, then a
scorecard, the raw data behind it, an HTML report with plots, and a verdict on the lab's claims.

    python -m loadtest.runs.experiment --quick          (make experiment QUICK=1)
    python -m loadtest.runs.experiment                  (full: every app-node fault, and Redis killed)
    python -m loadtest.runs.experiment --suite stores   (make experiment SUITE=stores: Sentinel and Cluster)
    python -m loadtest.runs.experiment --suite saturation   (a node killed at 50 % and 80 % of capacity)

Each scenario: warm-up, fault, hold, recovery, cool-down, with Locust running throughout; a store fault
also records the store's own timeline (detected, promoted). Results go to
results/<UTC time>/. Exit 0 when every hypothesis held, 1 when one deviated, 2 on bad input; Ctrl-C
recovers the faulted service, restores the routing mode, and keeps the data gathered so far (exit 130).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from loadtest.bench import capacity
from loadtest.faults import chaos, store_watch
from loadtest.faults.chaos import FAULTS, TARGETS, Fault, Timeline
from loadtest.faults.docker import current_mode, node_get, require_stack, strategies, switch_mode
from loadtest.faults.readiness import NODE_CPUS, cpu_quota, wait_balanced, wait_healthy, wait_stores_whole
from loadtest.lab import APP_NODES, HA_STORES, LAB_URL, MODES, ROOT, SERVICES, LabError, store_of
from loadtest.runs import locust_run
from loadtest.runs.suites import LOAD_FAULT_MODE, REPLICATION_FAULT_MODE, SUITES, Schedule, Step, plan
from loadtest.scoring import analysis, report
from loadtest.users import record
from session_lab import strategies as registry

# Under load, each user sends a request every LOAD_PACING s, so users = rate x LOAD_PACING; they start
# LOAD_SPAWN_RATE a second, below the balancer's 50 logins a second per address (loadbalancer/nginx.conf).
LOAD_PACING = 0.25
LOAD_SPAWN_RATE = 25


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="experiment", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="the quick suite: kill app2 in every mode, kill the "
                   "Sentinel primary and a Cluster master: about 3.5 minutes")
    p.add_argument("--suite", choices=sorted(SUITES), default=None, help=f"{', '.join(sorted(SUITES))} (default full)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from: {', '.join(MODES)}")
    p.add_argument("--strategies", default="", help="comma-separated subset (default: every strategy)")
    p.add_argument("--faults", default="", help="override the schedule: fault:target,... e.g. stop:app1,kill:redis "
                   "(store roles such as kill:sentinel-primary run in one mode)")
    p.add_argument("--loads", default="", help="the load suite's loads, as fractions of the measured capacity "
                   "of three nodes: e.g. 0.5,0.8")
    p.add_argument("--node-cpus", type=float, default=NODE_CPUS, help="cores each app node may use in a load "
                   f"suite (default {NODE_CPUS}; 0: no limit)")
    p.add_argument("--users", type=int, default=None,
                   help="simulated users in all, spread over the strategies (default: 4 per strategy)")
    p.add_argument("--out", type=Path, default=None, help="results folder (default results/<UTC time>)")
    return p.parse_args(argv)


@dataclass(frozen=True)
class RunPlan:
    """What one experiment runs: the suite's schedule in these routing modes, with these strategies' users."""

    suite: str
    modes: list[str]
    strategies: list[str]  # the strategies whose users run, in the registry's order
    users: int  # simulated users in all (a load step sizes its own from the capacity)
    schedule: Schedule
    node_cpus: float  # cores per app node while a step runs under load (0: no limit)
    out: Path  # the results folder

    @property
    def steps(self) -> list[Step]:
        return plan(self.schedule, self.modes)

    @property
    def under_load(self) -> bool:
        return any(step.load for step in self.steps)

    @property
    def cpu_limit(self) -> float | None:
        """The app nodes' CPU quota for the run: only under load."""
        return self.node_cpus if self.under_load else None


def listed(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def chosen_modes(text: str) -> list[str]:
    modes = listed(text)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise LabError(f"unknown routing mode {', '.join(bad) or '(none)'}: choose from {', '.join(MODES)}", 2)
    return modes


def chosen_suite(quick: bool, suite: str | None) -> str:
    if quick and suite not in (None, "quick"):
        raise LabError(f"--quick and --suite {suite} disagree: choose one", 2)
    return "quick" if quick else (suite or "full")


def with_faults(schedule: Schedule, text: str) -> Schedule:
    """The schedule with its faults replaced by --faults: app-node faults and store faults apart."""
    app_faults, store_faults = [], []
    for step in text.split(","):
        fault, _, target = step.strip().partition(":")
        if fault not in FAULTS or fault == "restart" or target not in TARGETS:
            raise LabError(f"bad fault step {step!r}: use FAULT:TARGET with FAULT in "
                           f"{', '.join(f for f in FAULTS if f != 'restart')} and TARGET in {', '.join(TARGETS)}", 2)
        (store_faults if store_of(target) in HA_STORES else app_faults).append((fault, target))
    if schedule.loads:  # under load, the app faults are the load faults
        return replace(schedule, load_faults=tuple(app_faults), store_faults=tuple(store_faults))
    return replace(schedule, faults=tuple(app_faults), store_faults=tuple(store_faults), sticky_faults=())


def with_loads(schedule: Schedule, text: str) -> Schedule:
    try:
        loads = tuple(float(x) for x in text.split(","))
    except ValueError:
        loads = ()
    if not schedule.loads or not loads or not all(0 < x <= 1.5 for x in loads):
        raise LabError("--loads takes fractions of capacity between 0 and 1.5, e.g. 0.5,0.8, with a load "
                       f"suite ({', '.join(n for n, s in SUITES.items() if s.loads)})", 2)
    return replace(schedule, loads=loads)


def known_strategies(chosen: list[str], classes) -> list[str]:
    names = [c.name for c in classes]
    bad = [s for s in chosen if s not in names]
    if bad:
        raise LabError(f"unknown strategy {', '.join(bad)}: choose from {', '.join(names)}", 2)
    return chosen


def default_strategies(classes, under_load: bool) -> list[str]:
    """Every strategy; under load every one that needs no sticky routing: round-robin spreads every user over
    the nodes, so those would lose their sessions throughout, and tell nothing about capacity."""
    return [c.name for c in classes if not (under_load and c.needs_sticky)]


def plan_run(args: argparse.Namespace, classes, now: time.struct_time) -> RunPlan:
    """The run the arguments ask for; `classes` are the strategies (with .name and .needs_sticky traits), `now`
    names the default results folder."""
    modes = chosen_modes(args.modes)
    chosen = known_strategies(listed(args.strategies), classes)
    suite = chosen_suite(args.quick, args.suite)
    schedule = SUITES[suite]
    if args.faults:
        schedule = with_faults(schedule, args.faults)
    if args.loads:
        schedule = with_loads(schedule, args.loads)
    chosen = chosen or default_strategies(classes, bool(schedule.loads))
    users = 4 * len(chosen) if args.users is None else args.users
    if users < len(chosen):
        raise LabError(f"--users must be at least one per strategy ({len(chosen)})", 2)
    out = args.out or ROOT / "results" / time.strftime("%Y%m%dT%H%M%SZ", now)
    return RunPlan(suite, modes, chosen, users, schedule, args.node_cpus, out)


class Progress:
    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.monotonic()

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.1f}s] [{self.done + 1}/{self.total}] {text}", flush=True)

    def wait(self, seconds: float, phase: str) -> None:
        self.say(f"{phase} {seconds:.0f} s")
        time.sleep(seconds)


def scenario_id(step: Step) -> str:
    return f"{step.mode}--{step.fault}-{step.target}" + (f"--at-{round(step.load * 100)}pct" if step.load else "")


def load_of(step: Step, run: RunPlan, capacity_rps: float | None) -> tuple[int, float, dict[str, str], dict]:
    """(users, users started a second, LOADTEST_* settings, what the scenario records) for one step: the
    suite's users, all at once; or, under load, as many paced users as the step's share of capacity needs."""
    if not step.load:
        return run.users, run.users, {}, {}
    target_rps = step.load * capacity_rps
    users = max(len(run.strategies), math.ceil(target_rps * LOAD_PACING))
    recorded = {"load": step.load, "capacity_rps": capacity_rps, "target_rps": round(target_rps, 1), "users": users}
    return users, LOAD_SPAWN_RATE, {"LOADTEST_PACING": str(LOAD_PACING)}, recorded


def close_scenario(scenario: dict, events: list[dict], fault: Fault, watch, refused_before) -> None:
    """Fill in what happened once the scenario is over, or interrupted: the fault's times as the timeline
    logged them (the scenario's end when it never fired), and the store's and breakers' records."""
    for event in events:
        if event["event"] == "inject":
            scenario["inject"] = event["t"]
        elif event["event"] == "recovered":
            scenario["recovered"] = event["t"] + event["seconds"]
    scenario["end"] = time.time()
    if fault.steps:
        scenario["steps"] = fault.steps
    if watch is not None:
        scenario["store_events"] = watch.stop()
    if refused_before is not None:
        scenario["refused"] = refusals_since(refused_before, breaker_refusals())
    scenario.setdefault("inject", scenario["end"])
    scenario.setdefault("recovered", scenario["end"])


def run_scenario(run_dir: Path, step: Step, run: RunPlan, progress: Progress, timeline: Timeline,
                 scenarios: list[dict], capacity_rps: float | None = None) -> dict:
    """Runs one scenario; it is appended to `scenarios` at once, so an interrupted one keeps its data."""
    mode, fault, schedule = step.mode, Fault(step.fault, step.target), run.schedule
    sid = scenario_id(step)
    raw = run_dir / "raw" / sid
    raw.mkdir(parents=True, exist_ok=True)
    # Locust's own bound: the whole schedule plus room for a slow recovery.
    bound = schedule.warmup + schedule.hold + schedule.cooldown + 120
    scenario = {"id": sid, "mode": mode, "fault": fault.fault, "target": fault.target, "interrupted": True}
    users, spawn, pacing, recorded = load_of(step, run, capacity_rps)
    scenario.update(recorded)
    scenarios.append(scenario)
    locust = locust_run.start(raw, users, bound, ",".join(run.strategies), "--csv-full-history", spawn_rate=spawn,
                              env=pacing)
    scenario["start"] = time.time()
    mark = len(timeline.events)
    watch = refused_before = None
    try:
        progress.wait(schedule.warmup, f"{mode}: {users} users" + (f" ({step.load:.0%} of {capacity_rps:.0f} "
                                                                      "requests/s)" if step.load else "")
                      + ", warm-up")
        progress.say(f"{mode}: {analysis.fault_name(scenario)}")
        scenario["store"] = store_of(fault.target)
        scenario["services"] = fault.resolve()  # the role or node group now, just before the fault fires
        if mode == REPLICATION_FAULT_MODE and not scenario["store"]:
            scenario["node_memory"] = node_memory()
        if scenario["store"] in HA_STORES:
            if fault.slots:
                scenario["slots"] = fault.slots
            watch = store_watch.StoreWatch(fault.target, scenario["services"], schedule.hold + schedule.cooldown + 30)
        refused_before = breaker_refusals() if scenario["store"] else None
        # Inject, hold, recover: the chaos script's own sequence, which recovers even when interrupted.
        chaos.run(fault, schedule.hold, timeline, sleep=lambda seconds: progress.wait(seconds, f"{mode}: hold"))
        progress.wait(schedule.cooldown, f"{mode}: recovered in {timeline.events[-1]['seconds']:.1f} s, cool-down")
        scenario["interrupted"] = False
    finally:
        close_scenario(scenario, timeline.events[mark:], fault, watch, refused_before)
        locust_run.stop(locust)
    if not (raw / "requests.csv").exists():
        raise LabError(f"Locust wrote no records; see {raw / 'locust.log'}")
    return scenario


def measure_capacity(run_dir: Path, chosen: list[str], progress) -> float:
    """Requests/s three nodes carry of the users' mix, measured now (loadtest/bench/capacity.py)."""
    switch_mode(LOAD_FAULT_MODE)
    measured = [s for s in strategies() if s["name"] in chosen]
    progress.say(f"measuring capacity: {len(measured)} strategies, read and write paths, "
                 f"{capacity.SECONDS} s each, {LOAD_FAULT_MODE}")
    result = capacity.measure(measured, LOAD_FAULT_MODE, run_dir / "capacity")
    if result["errors"]:
        raise LabError(f"the capacity measurement met {result['errors']} errors: see {run_dir / 'capacity'}")
    progress.say(f"capacity: {result['rps']:.0f} requests/s of the users' mix")
    wait_balanced()
    return result["rps"]


def node_memory() -> dict[str, dict]:
    """What each node holds per strategy that reports it (sessions owned, copies kept, their size as JSON),
    asked of every node itself: the memory cost of replication, next to the memory strategy's."""
    found = {}
    for node in APP_NODES:
        try:
            found[node] = node_get(node, "/readyz").get("details", {})
        except LabError as exc:
            print(f"experiment: no memory figures from {node}: {exc}", file=sys.stderr)
    return found


def breaker_refusals() -> dict[str, dict[str, dict[str, int]]]:
    """Each node's fail-fast answers so far, by store and why (the breaker open, the bulkhead full): the
    counters of session_lab/breaker.py that /readyz shows."""
    found = {}
    for node in APP_NODES:
        try:
            found[node] = node_get(node, "/readyz").get("refused", {})
        except LabError as exc:
            print(f"experiment: no breaker figures from {node}: {exc}", file=sys.stderr)
    return found


def refusals_since(before: dict, after: dict) -> dict[str, dict[str, int]]:
    """The fail-fast answers between two rounds of breaker_refusals(), summed over the nodes, by store (one
    breaker per Cluster master counts as the cluster's) and why. A node missing from either round adds
    nothing; a counter that went down (the node restarted) counts from zero."""
    total: dict[str, dict[str, int]] = {}
    for node, stores in after.items():
        for name, counts in stores.items():
            store = name.split()[0]
            for why, count in counts.items():
                was = before.get(node, {}).get(name, {}).get(why, 0) if node in before else count
                gained = count - was if count >= was else count
                if gained:
                    total.setdefault(store, {}).setdefault(why, 0)
                    total[store][why] += gained
    return total


def summarize(rows: list) -> None:
    cols = ["requests", "errors", "sessions_lost", "writes_lost", "duplicates", "unavailable_s", "p95_ms"]
    width = max((len(row.strategy) for row in rows), default=0) + 2  # names come from the registry
    for row in rows:
        print("      " + f"{row.strategy:<{width}}" + "  ".join(f"{c}={getattr(row, c)}" for c in cols))


def main(argv: list[str] | None = None) -> int:
    try:
        run = plan_run(parse_args(argv), registry.classes(), time.gmtime())
        require_stack()
    except LabError as exc:
        print(f"experiment: {exc}", file=sys.stderr)
        return exc.exit_code
    run.out.mkdir(parents=True, exist_ok=True)
    scenarios: list[dict] = []
    return finish(run.out, scenarios, execute(run, scenarios))


def run_record(run: RunPlan) -> dict:
    """run.json: what the run was asked to do, and on what."""
    return {
        "suite": run.suite, "quick": run.suite == "quick", "modes": run.modes, "strategies": run.strategies,
        "users": run.users, "schedule": asdict(run.schedule), "lab_url": LAB_URL, "started": time.time(),
        "cores": os.cpu_count(), "node_cpus": run.cpu_limit,
    }


def execute(run: RunPlan, scenarios: list[dict]) -> int:
    """Every step of the plan, the routing mode put back at the end; the scenarios go into `scenarios` as they
    run. The exit code so far: 0, or what stopped the run (130 on Ctrl-C)."""
    steps = run.steps
    progress = Progress(len(steps))
    timeline = Timeline(run.out / "timeline.jsonl")
    original_mode = current_mode()
    described = run_record(run)
    (run.out / "run.json").write_text(json.dumps(described, indent=2))
    print(f"experiment: {run.suite} suite, {len(steps)} scenarios, results in {run.out}", flush=True)
    try:
        with cpu_quota(APP_NODES, run.cpu_limit):
            capacity_rps = None
            if run.under_load:
                capacity_rps = described["capacity_rps"] = measure_capacity(run.out, run.strategies, progress)
                (run.out / "run.json").write_text(json.dumps(described, indent=2))
            for step in steps:
                run_step(run, step, progress, timeline, scenarios, capacity_rps)
    except KeyboardInterrupt:
        print("\nexperiment: interrupted; the faulted service was recovered, writing what was gathered",
              file=sys.stderr)
        return 130
    except LabError as exc:
        print(f"experiment: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        restore_mode(original_mode)
    return 0


def run_step(run: RunPlan, step: Step, progress: Progress, timeline: Timeline, scenarios: list[dict],
             capacity_rps: float | None) -> None:
    """One scenario from the same, whole stack as every other: its mode, every node reachable, then after it
    every service healthy and the stores whole again for the next one."""
    if current_mode() != step.mode:
        switch_mode(step.mode)
    if progress.done:
        wait_balanced()
    scenario = run_scenario(run.out, step, run, progress, timeline, scenarios, capacity_rps)
    (run.out / "scenarios.json").write_text(json.dumps(scenarios, indent=2))
    summarize(analysis.scenario_rows(record.read(run.out / "raw" / scenario["id"] / "requests.csv"), scenario))
    progress.done += 1
    if progress.done < progress.total:
        wait_healthy(*SERVICES)
        wait_stores_whole(progress.say)


def restore_mode(original_mode: str) -> None:
    try:
        if current_mode() != original_mode:
            switch_mode(original_mode)
    except (LabError, OSError) as exc:
        print(f"experiment: could not restore routing mode {original_mode}: {exc}", file=sys.stderr)


def finish(run_dir: Path, scenarios: list[dict], status: int) -> int:
    """Write the scorecard and report from the raw data; the exit code says whether every hypothesis held."""
    scenarios = [s for s in scenarios if (run_dir / "raw" / s["id"] / "requests.csv").exists()]
    if not scenarios:
        return status or 1
    (run_dir / "scenarios.json").write_text(json.dumps(scenarios, indent=2))
    verdict = report.write(run_dir)
    print(f"\nscorecard: {run_dir / 'scorecard.md'}\nreport:    {run_dir / 'report.html'} "
          f"({run_dir / 'report.md'}; at a glance: {run_dir / 'verdict.png'})")
    deviated = [v for v in verdict if not v["held"]]
    for v in deviated:
        print(f"DEVIATED {v['hypothesis']}: {v['strategy']} / {v['mode']} / {v['fault']}: {v['detail']}")
    print(f"hypotheses: {len(verdict) - len(deviated)} held, {len(deviated)} deviated")
    if status:
        return status
    return 1 if deviated else 0


if __name__ == "__main__":
    sys.exit(main())
