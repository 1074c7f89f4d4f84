"""The experiment's suites as data (chaostoolkit's method): seconds per phase, and the faults to run.

App-node faults run once per routing mode, because routing decides who loses what when a node dies. Store
faults run in one mode (round-robin): routing cannot change what a store fault does, since any node talks
to the same store.
"""

from __future__ import annotations

from dataclasses import dataclass

STORE_FAULT_MODE = "round-robin"


@dataclass(frozen=True)
class Schedule:
    warmup: float
    hold: float
    cooldown: float
    faults: tuple[tuple[str, str], ...]  # (fault, target) in every routing mode
    store_faults: tuple[tuple[str, str], ...] = ()  # (fault, target) in STORE_FAULT_MODE only


SUITES = {
    # CI and a first look: an app node killed in each mode, the Sentinel primary and a Cluster master killed.
    # Short phases keep it under 4 minutes; the hold still outlasts a store failover (about 3 s), and the
    # cool-down the 3 s a strategy needs without bad answers to count as recovered.
    "quick": Schedule(warmup=6, hold=8, cooldown=6, faults=(("kill", "app2"),),
                      store_faults=(("kill", "sentinel-primary"), ("kill", "cluster-master"))),
    "full": Schedule(warmup=10, hold=10, cooldown=15, faults=(
        ("kill", "app2"), ("stop", "app2"), ("pause", "app2"), ("disconnect", "app2"), ("kill", "redis"),
    )),
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
    return steps + [(store_mode, fault, target) for fault, target in schedule.store_faults]
