"""CPU seconds each of the stack's containers has used, read on the host from its cgroup.

CPU per request is the bench's steadiest figure on a shared machine: throughput moves with whatever else
runs, the CPU a request costs much less. The counters are the kernel's own (cgroup v1 `cpuacct.usage` in
nanoseconds, v2 `cpu.stat` `usage_usec`), found from each container's main process, so either cgroup
version and either Docker cgroup driver works. A restarted container starts a new cgroup from zero: the
bench reads the processes once, before its rounds, and no round restarts anything.

Steal time is the CPU the hypervisor gave other tenants while this machine's processes wanted it
(/proc/stat's 8th field): during a round with much of it, the stack ran on less CPU than it seemed to have.
"""

from __future__ import annotations

from pathlib import Path

from loadtest.faults.docker import compose, docker
from loadtest.lab import LabError

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_STAT = Path("/proc/stat")


class CpuUnreadable(LabError):
    pass


def containers() -> dict[str, int]:
    """Service name -> the host PID of its container's main process, for every running service."""
    ids = compose("ps", "-q").stdout.split()
    if not ids:
        raise LabError("no container of the stack runs: start it with `make up`")
    out = docker("inspect", "-f", '{{.State.Pid}} {{index .Config.Labels "com.docker.compose.service"}}',
                         *ids).stdout
    pids = {}
    for line in out.splitlines():
        pid, _, service = line.partition(" ")
        if int(pid) > 0:
            pids[service] = int(pid)
    return pids


def seconds(pid: int) -> float:
    """CPU seconds (user and system) used so far by the cgroup of process `pid`."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError as exc:
        raise CpuUnreadable(f"cannot read the cgroup of process {pid}: {exc}") from exc
    groups = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            groups[controller] = path
    if "cpuacct" in groups:  # cgroup v1
        for mount in ("cpuacct", "cpu,cpuacct"):
            usage = CGROUP_ROOT / mount / groups["cpuacct"].lstrip("/") / "cpuacct.usage"
            if usage.exists():
                return int(usage.read_text()) / 1e9
    for mount in (CGROUP_ROOT, CGROUP_ROOT / "unified"):  # cgroup v2, alone or beside v1
        stat = mount / groups.get("", "/").lstrip("/") / "cpu.stat"
        if stat.exists():
            fields = dict(line.split() for line in stat.read_text().splitlines())
            return int(fields["usage_usec"]) / 1e6
    raise CpuUnreadable(f"no CPU counter for process {pid} under {CGROUP_ROOT} (is this the Docker host?)")


def reading(pids: dict[str, int]) -> dict[str, float]:
    return {service: seconds(pid) for service, pid in pids.items()}


def used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {service: round(after[service] - before[service], 4) for service in before if service in after}


def machine_ticks(stat: str | None = None) -> tuple[int, int]:
    """(steal, all) CPU time of the whole machine so far, in clock ticks, from /proc/stat's `cpu` line
    (user nice system idle iowait irq softirq steal ...; guest time is already in user)."""
    text = PROC_STAT.read_text() if stat is None else stat
    fields = [int(v) for v in text.splitlines()[0].split()[1:9]]
    fields += [0] * (8 - len(fields))  # an old kernel without the steal field: none
    return fields[7], sum(fields)


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time stolen between two machine_ticks() readings."""
    stolen, elapsed = after[0] - before[0], after[1] - before[1]
    return round(stolen / elapsed, 4) if elapsed > 0 else 0.0
