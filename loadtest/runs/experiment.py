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
import itertools
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, replace
from pathlib import Path

from loadtest.bench import capacity
from loadtest.faults import chaos, store_roles, store_watch
from loadtest.faults.chaos import FAULTS, TARGETS, Fault, Timeline, wait_healthy
from loadtest.faults.compose import (
    APP_NODES, LAB_URL, ROOT, SERVICES, LabError, as_proxy, cpu_quota, current_mode, node_get, require_stack, strategies,
    switch_mode,
)
from loadtest.runs import locust_run
from loadtest.runs.suites import LOAD_FAULT_MODE, REPLICATION_FAULT_MODE, SUITES, Schedule, Step, plan
from loadtest.scoring import analysis, report
from loadtest.users import record

from session_lab import strategies as registry

MODES = sorted(p.stem for p in (ROOT / "loadbalancer" / "modes").glob("*.conf"))
# Under load, each user sends a request every LOAD_PACING s, so users = rate x LOAD_PACING; they start
# LOAD_SPAWN_RATE a second, below the balancer's 50 logins a second per address (loadbalancer/nginx.conf).
LOAD_PACING = 0.25
LOAD_SPAWN_RATE = 25
# Under load each app node gets this many cores of its own, so that the nodes bound the capacity, as in a
# deployment where each node is its own machine. Unlimited, three nodes share the host's cores and two can
# use them all (a gunicorn worker uses up to a core): killing one took no capacity away. Measured on the
# 2-core machine of the lab: an app node spends about 1.1 ms of CPU a request, nginx, the stores, wrk and
# Locust about 0.5 ms more; at 0.5 core each the nodes were not the limit (capacity 732 requests/s with
# 0.37 core used per node), at 0.3 they are, with the rest of the host free for everything else.
NODE_CPUS = 0.3


def parse_args(argv):
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
    if args.quick and args.suite not in (None, "quick"):
        raise LabError(f"--quick and --suite {args.suite} disagree: choose one", 2)
    args.suite = "quick" if args.quick else (args.suite or "full")
    schedule = SUITES[args.suite]
    if args.faults:
        app_faults, store_faults = [], []
        for step in args.faults.split(","):
            fault, _, target = step.strip().partition(":")
            if fault not in FAULTS or fault == "restart" or target not in TARGETS:
                raise LabError(f"bad fault step {step!r}: use FAULT:TARGET with FAULT in kill, stop, pause, "
                               f"disconnect, redeploy and TARGET in {', '.join(TARGETS)}", 2)
            (store_faults if store_roles.store_of(target) in store_roles.HA_STORES else app_faults).append(
                (fault, target))
        if schedule.loads:  # under load, the app faults are the load faults
            schedule = replace(schedule, load_faults=tuple(app_faults), store_faults=tuple(store_faults))
        else:
            schedule = replace(schedule, faults=tuple(app_faults), store_faults=tuple(store_faults), sticky_faults=())
    if args.loads:
        try:
            loads = tuple(float(x) for x in args.loads.split(","))
        except ValueError:
            loads = ()
        if not schedule.loads or not loads or not all(0 < x <= 1.5 for x in loads):
            raise LabError("--loads takes fractions of capacity between 0 and 1.5, e.g. 0.5,0.8, with a load "
                           f"suite ({', '.join(n for n, s in SUITES.items() if s.loads)})", 2)
        schedule = replace(schedule, loads=loads)
    if schedule.loads and not chosen:
        # Round-robin spreads every user over the nodes: strategies that need sticky routing would lose
        # their sessions throughout, and tell nothing about capacity.
        chosen = [c.name for c in registry.classes() if not c.needs_sticky]
    if args.users is None:
        args.users = 4 * len(chosen or names)
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


def run_scenario(run_dir: Path, step: Step, schedule: Schedule, args, chosen, progress,
                 timeline: Timeline, scenarios: list[dict], capacity_rps: float | None = None) -> dict:
    """Runs one scenario; it is appended to `scenarios` at once, so an interrupted one keeps its data."""
    mode, fault = step.mode, Fault(step.fault, step.target)
    sid = f"{mode}--{fault.fault}-{fault.target}" + (f"--at-{round(step.load * 100)}pct" if step.load else "")
    raw = run_dir / "raw" / sid
    raw.mkdir(parents=True, exist_ok=True)
    # Locust's own bound: the whole schedule plus room for a slow recovery.
    bound = schedule.warmup + schedule.hold + schedule.cooldown + 120
    scenario = {"id": sid, "mode": mode, "fault": fault.fault, "target": fault.target, "interrupted": True}
    users, pacing, spawn = args.users, {}, args.users
    if step.load:
        target_rps = step.load * capacity_rps
        users = max(len(chosen), math.ceil(target_rps * LOAD_PACING))
        pacing, spawn = {"LOADTEST_PACING": str(LOAD_PACING)}, LOAD_SPAWN_RATE
        scenario.update(load=step.load, capacity_rps=capacity_rps, target_rps=round(target_rps, 1), users=users)
    scenarios.append(scenario)
    locust = locust_run.start(raw, users, bound, ",".join(chosen), "--csv-full-history", spawn_rate=spawn, env=pacing)
    scenario["start"] = time.time()
    mark = len(timeline.events)
    watch = refused_before = None
    try:
        progress.wait(schedule.warmup, f"{mode}: {users} users" + (f" ({step.load:.0%} of {capacity_rps:.0f} "
                                                                      "requests/s)" if step.load else "")
                      + ", warm-up")
        progress.say(f"{mode}: {analysis.fault_name(scenario)}")
        scenario["store"] = store_roles.store_of(fault.target)
        scenario["services"] = fault.resolve()  # the role or node group now, just before the fault fires
        if mode == REPLICATION_FAULT_MODE and not scenario["store"]:
            scenario["node_memory"] = node_memory()
        if scenario["store"] in store_roles.HA_STORES:
            if fault.slots:
                scenario["slots"] = fault.slots
            watch = store_watch.StoreWatch(fault.target, scenario["services"], schedule.hold + schedule.cooldown + 30)
        refused_before = breaker_refusals() if scenario["store"] else None
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
        if fault.steps:
            scenario["steps"] = fault.steps
        if watch is not None:
            scenario["store_events"] = watch.stop()
        if refused_before is not None:
            scenario["refused"] = refusals_since(refused_before, breaker_refusals())
        scenario.setdefault("inject", scenario["end"])
        scenario.setdefault("recovered", scenario["end"])
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


def wait_balanced(timeout: float = 60) -> None:
    """Before the next scenario: the balancer sends new users to every app node again. nginx learns that a
    recovered node is back only from requests (passive health checks), and the full experiment saw a run
    start with every new user on the one node that had stayed up."""
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    for probe in itertools.count():
        if time.monotonic() >= deadline:
            break
        # A client address of its own per probe, forwarded as the load users' are (ip-hash routes by it;
        # other modes ignore it); ip-hash hashes the first three octets, so the probes differ in the third.
        headers = {"Connection": "close", **as_proxy(f"198.18.{probe % 256}.1")}
        try:
            request = urllib.request.Request(LAB_URL + "/healthz", headers=headers)
            with urllib.request.urlopen(request, timeout=3) as answer:
                seen.add(answer.headers.get("X-Served-By", ""))
        except (urllib.error.URLError, OSError):
            pass
        if set(APP_NODES) <= seen:
            return
        time.sleep(0.2)
    raise LabError(f"the balancer did not reach every node within {timeout:.0f} s (it reached {sorted(seen)})")


def wait_stores_whole(progress, timeout: float = 90) -> None:
    """Before the next scenario: the Sentinel primary has its two replicas again and every Cluster master a
    replica (a recovered node resyncs first), so each fault starts from the same topology."""
    deadline = time.monotonic() + timeout
    missing = store_roles.whole()
    if missing:
        progress.say(f"waiting for the stores to be whole: {missing}")
    while missing and time.monotonic() < deadline:
        time.sleep(1)
        missing = store_roles.whole()
    if missing:
        raise LabError(f"the stores did not become whole within {timeout:.0f} s: {missing}")


def summarize(rows: list[dict]) -> None:
    cols = ["requests", "errors", "sessions_lost", "writes_lost", "duplicates", "unavailable_s", "p95_ms"]
    width = max((len(row["strategy"]) for row in rows), default=0) + 2  # names come from the registry
    for row in rows:
        print("      " + f"{row['strategy']:<{width}}" + "  ".join(f"{c}={row[c]}" for c in cols))


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
    steps = plan(schedule, modes)
    progress = Progress(len(steps))
    original_mode = current_mode()
    scenarios: list[dict] = []
    under_load = any(step.load for step in steps)
    run = {
        "suite": args.suite, "quick": args.suite == "quick", "modes": modes,
        "strategies": chosen or registry.names(), "users": args.users,
        "schedule": asdict(schedule), "lab_url": LAB_URL, "started": time.time(), "cores": os.cpu_count(),
        "node_cpus": args.node_cpus if under_load else None,
    }
    (run_dir / "run.json").write_text(json.dumps(run, indent=2))
    print(f"experiment: {args.suite} suite, {len(steps)} scenarios, results in {run_dir}", flush=True)
    status = 0
    capacity_rps = None
    try:
        with cpu_quota(APP_NODES, args.node_cpus if under_load else None):
            if under_load:
                capacity_rps = measure_capacity(run_dir, chosen, progress)
                run["capacity_rps"] = capacity_rps
                (run_dir / "run.json").write_text(json.dumps(run, indent=2))
            for step in steps:
                if current_mode() != step.mode:
                    switch_mode(step.mode)
                if progress.done:
                    wait_balanced()
                scenario = run_scenario(run_dir, step, schedule, args, chosen, progress, timeline, scenarios,
                                        capacity_rps)
                (run_dir / "scenarios.json").write_text(json.dumps(scenarios, indent=2))
                summarize(analysis.scenario_rows(record.read(run_dir / "raw" / scenario["id"] / "requests.csv"),
                                                 scenario))
                progress.done += 1
                if progress.done < len(steps):  # the next scenario starts from the same, whole stack
                    wait_healthy(*SERVICES)
                    wait_stores_whole(progress)
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
