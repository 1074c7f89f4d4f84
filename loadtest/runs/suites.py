"""The experiment's suites as data (chaostoolkit's method): seconds per phase, and the faults to run.

App-node faults run once per routing mode, because routing decides who loses what when a node dies. Store
faults run in one mode (round-robin): routing cannot change what a store fault does, since any node talks
to the same store. The faults that test node replication (two adjacent nodes at once, a rolling redeploy)
run in sticky mode, the routing the pattern is built for: it sends a dead node's users to its buddy.
"""

from __future__ import annotations

from dataclasses import dataclass

STORE_FAULT_MODE = "round-robin"
REPLICATION_FAULT_MODE = "sticky"


@dataclass(frozen=True)
class Schedule:
    warmup: float
    hold: float
    cooldown: float
    faults: tuple[tuple[str, str], ...]  # (fault, target) in every routing mode
    store_faults: tuple[tuple[str, str], ...] = ()  # (fault, target) in STORE_FAULT_MODE only
    sticky_faults: tuple[tuple[str, str], ...] = ()  # (fault, target) in REPLICATION_FAULT_MODE only


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
}


def plan(schedule: Schedule, modes: list[str]) -> list[tuple[str, str, str]]:
    """(mode, fault, target) in the order they run."""
    steps = [(mode, fault, target) for mode in modes for fault, target in schedule.faults]
    store_mode = STORE_FAULT_MODE if STORE_FAULT_MODE in modes else modes[0]
    steps += [(store_mode, fault, target) for fault, target in schedule.store_faults]
    if REPLICATION_FAULT_MODE in modes:
        steps += [(REPLICATION_FAULT_MODE, fault, target) for fault, target in schedule.sticky_faults]
    return steps
