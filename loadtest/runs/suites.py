"""The experiment's suites as data (chaostoolkit's method): seconds per phase, and the faults to run.

App-node faults run once per routing mode, because routing decides who loses what when a node dies. Store
faults run in one mode (round-robin): routing cannot change what a store fault does, since any node talks
to the same store. The faults that test node replication (two adjacent nodes at once, a rolling redeploy)
run in sticky mode, the routing the pattern is built for: it sends a dead node's users to its buddy.
Faults under load run in round-robin, once per load: a fraction of what three nodes carry of the users' mix
(measured by loadtest/bench/capacity.py just before), so whether two nodes can carry it decides the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from loadtest.lab import DEFAULT_MODE, REPLICA_ROUTING

STORE_FAULT_MODE = DEFAULT_MODE
REPLICATION_FAULT_MODE = REPLICA_ROUTING
LOAD_FAULT_MODE = DEFAULT_MODE


@dataclass(frozen=True)
class Schedule:
    warmup: float
    hold: float
    cooldown: float
    faults: tuple[tuple[str, str], ...]  # (fault, target) in every routing mode
    store_faults: tuple[tuple[str, str], ...] = ()  # (fault, target) in STORE_FAULT_MODE only
    sticky_faults: tuple[tuple[str, str], ...] = ()  # (fault, target) in REPLICATION_FAULT_MODE only
    load_faults: tuple[tuple[str, str], ...] = ()  # (fault, target) in LOAD_FAULT_MODE, once per load
    loads: tuple[float, ...] = ()  # fractions of the measured capacity of three nodes


class Step(NamedTuple):
    mode: str
    fault: str
    target: str
    load: float | None = None  # None: the suite's fixed number of users, far below capacity


SUITES = {
    # CI and a first look: an app node killed in each mode, the Sentinel primary and a Cluster master killed.
    # Short phases keep it under 4 minutes; the hold still outlasts a store failover (about 3 s), and the
    # cool-down the 3 s a strategy needs without bad answers to count as recovered.
    "quick": Schedule(warmup=6, hold=8, cooldown=6, faults=(("kill", "app2"),),
                      store_faults=(("kill", "sentinel-primary"), ("kill", "cluster-master"))),
    "full": Schedule(warmup=10, hold=10, cooldown=15, faults=(
        ("kill", "app2"), ("stop", "app2"), ("pause", "app2"), ("disconnect", "app2"), ("kill", "redis"),
    ), sticky_faults=(("kill", "node-and-buddy"), ("redeploy", "app-nodes"))),
    # Every store role and fault. The hold (10 s) outlasts detection and promotion (about 3 s), so a paused
    # primary wakes up after a failover believing it is still primary.
    "stores": Schedule(warmup=8, hold=10, cooldown=12, faults=(), store_faults=(
        ("kill", "sentinel-primary"), ("stop", "sentinel-primary"), ("pause", "sentinel-primary"),
        ("disconnect", "sentinel-primary"), ("kill", "sentinel-replica"), ("kill", "sentinel-quorum"),
        ("kill", "cluster-master"), ("stop", "cluster-master"), ("pause", "cluster-master"),
        ("disconnect", "cluster-master"), ("kill", "cluster-shard"),
    )),
    # A node killed at half and at four fifths of what three nodes carry: at 1/2, two nodes run at 3/4 of
    # their capacity and should hide the death; at 4/5 they are asked for 6/5 of theirs. The warm-up covers
    # the users' staggered start (logins are rate-limited per address) and a steady second or two.
    "saturation": Schedule(warmup=12, hold=10, cooldown=10, faults=(), load_faults=(("kill", "app2"),),
                           loads=(0.5, 0.8)),
}


def plan(schedule: Schedule, modes: list[str]) -> list[Step]:
    """The scenarios in the order they run."""
    steps = [Step(mode, fault, target) for mode in modes for fault, target in schedule.faults]
    store_mode = STORE_FAULT_MODE if STORE_FAULT_MODE in modes else modes[0]
    steps += [Step(store_mode, fault, target) for fault, target in schedule.store_faults]
    if REPLICATION_FAULT_MODE in modes:
        steps += [Step(REPLICATION_FAULT_MODE, fault, target) for fault, target in schedule.sticky_faults]
    if LOAD_FAULT_MODE in modes:
        steps += [Step(LOAD_FAULT_MODE, fault, target, load) for load in schedule.loads
                  for fault, target in schedule.load_faults]
    return steps
