"""Chaos: fault one service of the running stack, hold, recover, and write every step to a timeline.

    python -m loadtest.faults.chaos --fault kill --target app2 --hold 15
    python -m loadtest.faults.chaos --fault pause --target random --seed 7 --timeline results/timeline.jsonl

Targets: a service (app1-3, redis, a Sentinel or Cluster container), a store role resolved when the
fault fires (loadtest/faults/store_roles.py): sentinel-primary, sentinel-replica, sentinel-quorum,
cluster-master, cluster-shard; or a group of app nodes: node-and-buddy (the node that owns the most replicated
sessions, or a random one with --seed, and the next one in the ring, which holds their copies: both at once),
app-nodes (all). `random` picks an app node.

Faults:
    kill        SIGKILL: the process dies at once, mid-request          recover: start it again
    stop        SIGTERM: graceful, in-flight requests finish first       recover: start it again
    pause       frozen (cgroup freezer): TCP still accepted, no answers  recover: unpause
    disconnect  cut off from the lab network                            recover: reconnect, same address
    restart     graceful stop and start in one step                     (its own recovery)
    redeploy    app nodes replaced one at a time, as a version upgrade:  (its own recovery)
                graceful stop, a new container, healthy, and every replicated session copied
                to its buddy again, before the next one

--hold 0 leaves the fault in place (recover later with --recover SERVICE[,SERVICE]). Ctrl-C during the hold recovers
at once. Every action is appended to the timeline (JSON lines, epoch seconds) with how long it took.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from loadtest.faults import store_roles
from loadtest.faults.docker import (
    compose,
    container_id,
    docker,
    node_get,
    require_docker,
    require_stack,
    strategies,
)
from loadtest.faults.readiness import wait_healthy, wait_replicated
from loadtest.lab import APP_NODES, ROLES, SERVICES, LabError, buddy

FAULTS = ("kill", "stop", "pause", "disconnect", "restart", "redeploy")
NODE_GROUPS = ("node-and-buddy", "app-nodes")
TARGETS = SERVICES + tuple(ROLES) + NODE_GROUPS
SELF_RECOVERING = ("restart", "redeploy")
CLIENT_FACING = ("_edge", "_front")  # docker-compose.yml's networks a node's clients reach it through


def networks(cid: str) -> dict[str, str]:
    """The networks a container is on, each with its address (a node is on two: front and back), the ones
    facing its clients first. Cut in this order (and joined again in the reverse), a node is never reachable
    through the balancer while it cannot reach its stores: the full experiment saw app2, its back network cut
    and its front not yet, acknowledge a jwt logout it could not publish."""
    fmt = "{{range $name, $net := .NetworkSettings.Networks}}{{$name}} {{$net.IPAddress}}\n{{end}}"
    lines = docker("inspect", "-f", fmt, cid).stdout.split("\n")
    found = dict(line.split(" ", 1) for line in lines if line.strip())
    return dict(sorted(found.items(), key=lambda item: not item[0].endswith(CLIENT_FACING)))


def busiest_owner() -> str:
    """The app node that owns the most sessions of every node-replica strategy (the fewest among them
    counts), so that killing it and its buddy has users to show: the full experiment once picked a node with
    no replicated user at all."""
    replicas = [s["name"] for s in strategies() if s["node_replica"]]
    owned = {}
    for node in APP_NODES:
        details = node_get(node, "/readyz").get("details", {})
        owned[node] = min((details.get(name, {}).get("owned", 0) for name in replicas), default=0)
    return max(APP_NODES, key=lambda node: owned[node])


@dataclass
class Fault:
    fault: str
    target: str  # a service or a store role
    services: list[str] = field(default_factory=list)  # what the target is when the fault fires
    slots: list[list[int]] = field(default_factory=list)  # the Cluster slot ranges those services served
    # For `disconnect`: service -> {network: address}, so each comes back on every network, where it was.
    addresses: dict[str, dict[str, str]] = field(default_factory=dict)
    seed: int | None = None

    steps: list[dict] = field(default_factory=list)  # redeploy: each node's replacement, as it happened

    def resolve(self) -> list[str]:
        if not self.services:
            if self.target == "node-and-buddy":
                first = random.Random(self.seed).choice(APP_NODES) if self.seed is not None else busiest_owner()
                self.services = [first, buddy(first)]  # the order matters: the first one's copies die with the second
            elif self.target == "app-nodes":
                self.services = list(APP_NODES)
            else:
                self.services, self.slots = store_roles.resolve(self.target, random.Random(self.seed))
        if self.fault == "redeploy" and not set(self.services) <= set(APP_NODES):
            raise LabError(f"redeploy replaces app nodes; {self.target} is not one", exit_code=2)
        return self.services

    def inject(self) -> None:
        services = self.resolve()
        if self.fault == "kill":
            compose("kill", "-s", "SIGKILL", *services)
        elif self.fault == "stop":
            compose("stop", "-t", "15", *services, timeout=60)
        elif self.fault == "pause":
            compose("pause", *services)
        elif self.fault == "disconnect":
            for service in services:
                cid = container_id(service)
                self.addresses[service] = networks(cid)
                for network in self.addresses[service]:
                    docker("network", "disconnect", network, cid)
        elif self.fault == "restart":
            compose("restart", "-t", "15", *services, timeout=120)
            wait_healthy(*services)
        elif self.fault == "redeploy":
            for node in services:
                started = time.time()
                # A new container from the image (not a restart of the old one): the old one gets SIGTERM and
                # compose's stop timeout, as gunicorn's graceful stop expects.
                compose("up", "-d", "--no-deps", "--no-build", "--force-recreate", node, timeout=120)
                replaced = time.time()  # the old container is gone
                wait_healthy(node)
                wait_replicated()
                self.steps.append({"node": node, "t": round(started, 3), "replaced": round(replaced, 3),
                                   "seconds": round(time.time() - started, 3)})
                print(f"  replaced {node} in {self.steps[-1]['seconds']:.1f} s", flush=True)

    def recover(self) -> None:
        services = self.resolve()
        if self.fault in ("kill", "stop"):
            compose("start", *services, timeout=120)  # the same containers again: no image lookup, no rebuild
        elif self.fault == "pause":
            compose("unpause", *services)
        elif self.fault == "disconnect":
            for service in services:
                for network, ip in reversed(self.addresses.get(service, {}).items()):  # stores first
                    args = ["network", "connect", "--alias", service, *(["--ip", ip] if ip else [])]
                    docker(*args, network, container_id(service))
        wait_healthy(*services)


class Timeline:
    def __init__(self, path: Path | None):
        self.path = path
        self.events: list[dict] = []

    def log(self, event: str, fault: Fault, started: float, ok: bool = True, detail: str = "") -> dict:
        entry = {"t": round(started, 3), "event": event, "fault": fault.fault, "target": fault.target,
                 "services": list(fault.services), "seconds": round(time.time() - started, 3), "ok": ok,
                 "detail": detail}
        self.events.append(entry)
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps(entry) + "\n")
        stamp = time.strftime("%H:%M:%S", time.localtime(started))
        role = f" = {', '.join(fault.services)}" if fault.services != [fault.target] else ""
        print(f"[{stamp}] {event:<9} {fault.fault} {fault.target}{role} ({entry['seconds']:.1f} s)"
              f"{' ' + detail if detail else ''}", flush=True)
        return entry


def pick_target(target: str, seed: int | None) -> str:
    if target == "random":
        return random.Random(seed).choice(APP_NODES)
    if target not in TARGETS:
        raise LabError(f"unknown target {target!r}: choose one of {', '.join(TARGETS)} or random", exit_code=2)
    return target


def run(fault: Fault, hold: float, timeline: Timeline, sleep=time.sleep) -> None:
    """Inject, hold, recover. Recovery runs even when the hold is interrupted (Ctrl-C)."""
    started = time.time()
    fault.inject()
    timeline.log("inject", fault, started)
    if fault.fault in SELF_RECOVERING:
        timeline.log("recovered", fault, time.time())
        return
    if hold <= 0:
        return
    try:
        sleep(hold)
    finally:
        started = time.time()
        try:
            fault.recover()
            timeline.log("recovered", fault, started)
        except LabError as exc:
            timeline.log("recovered", fault, started, ok=False, detail=str(exc))
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fault", choices=FAULTS, default="kill")
    parser.add_argument("--target", default="random",
                        help=f"a service, a store role ({', '.join(ROLES)}), or random (an app node)")
    parser.add_argument("--seed", type=int, default=None, help="seed for --target random")
    parser.add_argument("--hold", type=float, default=15, help="seconds before recovery; 0 leaves it faulted")
    parser.add_argument("--timeline", type=Path, default=None, help="JSON-lines file to append the steps to")
    parser.add_argument("--recover", metavar="SERVICES",
                        help="only recover these comma-separated services from --fault (after --hold 0)")
    args = parser.parse_args(argv)
    try:
        timeline = Timeline(args.timeline)
        if args.recover:
            services = [s.strip() for s in args.recover.split(",") if s.strip()]
            for service in services:
                if service not in SERVICES:
                    raise LabError(f"--recover takes services (a role has moved on since): {service!r} is none of "
                                   f"{', '.join(SERVICES)}", exit_code=2)
            fault = Fault(args.fault, ",".join(services), services=services)
            require_docker()
            started = time.time()
            fault.recover()
            timeline.log("recovered", fault, started)
            return 0
        fault = Fault(args.fault, pick_target(args.target, args.seed), seed=args.seed)
        require_stack()
        run(fault, args.hold, timeline)
        if args.hold <= 0:
            print(f"chaos: left faulted; recover with --fault {fault.fault} --recover {','.join(fault.services)}")
        return 0
    except LabError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("chaos: interrupted; the fault was recovered", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
