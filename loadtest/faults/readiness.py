"""Is the lab ready for the next step? Every wait on the running stack, and the app nodes' CPU quota.

Used by chaos (a fault recovered), the experiment (between scenarios), the bench's growth suite (nodes
stopped and started) and `make reset`: each waits for the same things the same way.
"""

from __future__ import annotations

import itertools
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import Callable

from loadtest.faults import store_roles
from loadtest.faults.docker import container_id, docker, node_get, states
from loadtest.lab import APP_NODES, LAB_URL, LabError, as_proxy, buddy

# Under load each app node gets this many cores of its own, so that the nodes bound the capacity, as in a
# deployment where each node is its own machine. Unlimited, three nodes share the host's cores and two can
# use them all (a gunicorn worker uses up to a core): killing one took no capacity away. Measured on the
# 2-core machine of the lab: an app node spends about 1.1 ms of CPU a request, nginx, the stores, wrk and
# Locust about 0.5 ms more; at 0.5 core each the nodes were not the limit (capacity 732 requests/s with
# 0.37 core used per node), at 0.3 they are, with the rest of the host free for everything else.
NODE_CPUS = 0.3
CPU_PERIOD_US = 100_000  # the kernel's default CFS period


def wait_healthy(*services: str, timeout: float = 90) -> None:
    """Every one of `services` runs and its healthcheck (if it has one) passes."""
    deadline = time.monotonic() + timeout
    waiting = list(services)
    while time.monotonic() < deadline:
        rows = states()
        waiting = [s for s in waiting if not (rows.get(s, {}).get("State") == "running"
                                              and rows[s].get("Health", "healthy") in ("healthy", ""))]
        if not waiting:
            return
        time.sleep(0.5)
    raise LabError(f"{', '.join(waiting)} did not become healthy within {timeout:.0f} s")


def wait_replicated(timeout: float = 60) -> None:
    """Every node's replicated strategies have a buddy that holds their copies: the link is up, and its last
    state transfer went to the buddy's current process (a replaced node starts empty)."""
    deadline = time.monotonic() + timeout
    while True:
        details = {node: node_get(node, "/readyz").get("details", {}) for node in APP_NODES}
        waiting = [f"{node}/{name}" for node in APP_NODES for name, report in details[node].items()
                   if report.get("buddy") and not (report["buddy"]["state"] == "up" and report["buddy"]["filled"]
                                                   == details[buddy(node)].get(name, {}).get("boot"))]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise LabError(f"replicas not restored within {timeout:.0f} s: {', '.join(waiting)}")
        time.sleep(0.5)


def wait_balanced(timeout: float = 60) -> None:
    """The balancer sends new users to every app node again. nginx learns that a recovered node is back only
    from requests (passive health checks), and the full experiment saw a run start with every new user on the
    one node that had stayed up."""
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


def wait_stores_whole(say: Callable[[str], None], timeout: float = 90) -> None:
    """The Sentinel primary has its two replicas again and every Cluster master a replica (a recovered node
    resyncs first), so each fault starts from the same topology. `say` tells the user what it waits for."""
    deadline = time.monotonic() + timeout
    missing = store_roles.whole()
    if missing:
        say(f"waiting for the stores to be whole: {missing}")
    while missing and time.monotonic() < deadline:
        time.sleep(1)
        missing = store_roles.whole()
    if missing:
        raise LabError(f"the stores did not become whole within {timeout:.0f} s: {missing}")


@contextmanager
def cpu_quota(services: tuple[str, ...], cpus: float | None):
    """Each service limited to `cpus` cores while the block runs, then given back the quota it had (None:
    no change). `docker update` changes a running container in place; a container restarted by `compose start`
    keeps the limit, one recreated does not. The quota goes through --cpu-quota, not --cpus: only that one
    can be lifted again (-1)."""
    if not cpus:
        yield
        return
    before = {s: docker("inspect", "-f", "{{.HostConfig.CpuQuota}}", container_id(s)).stdout.strip() for s in services}
    try:
        for service in services:
            docker("update", "--cpu-period", str(CPU_PERIOD_US), "--cpu-quota", str(int(cpus * CPU_PERIOD_US)),
                   container_id(service))
        yield
    finally:
        for service, quota in before.items():
            docker("update", "--cpu-quota", quota if quota not in ("", "0") else "-1", container_id(service),
                   check=False)
