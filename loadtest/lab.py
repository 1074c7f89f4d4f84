"""The lab's layout, in one place: its nodes and stores, its routing modes, the ring of buddies, the store
roles' names, where the balancer answers and how a lab tool plays the trusted proxy in front of it.

The bottom of loadtest/: plain data and pure functions, no docker, no HTTP. Every other module takes the
layout from here (layers, bottom up: users and lab, faults, scoring, bench, runs; nothing imports upward).
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAB_URL = os.environ.get("LAB_URL", "http://127.0.0.1:8080")
NODE_PORT = 8000  # gunicorn's bind in every app container (APP_PORT in services/app/gunicorn.conf.py)

# -- services ---------------------------------------------------------------------------------------------

BALANCER = "lb"
APP_NODES = ("app1", "app2", "app3")  # in ring order: each node's buddy is the next (REPLICATION_PEERS)
SENTINEL_DATA = ("sentinel-data1", "sentinel-data2", "sentinel-data3")  # the Sentinel group's Redis processes
SENTINELS = ("sentinel1", "sentinel2", "sentinel3")
CLUSTER = tuple(f"cluster{i}" for i in range(1, 7))
SERVICES = APP_NODES + ("redis",) + SENTINEL_DATA + SENTINELS + CLUSTER  # the services chaos may fault


def buddy(node: str) -> str:
    """The node that keeps a copy of `node`'s replicated sessions, and takes its users in sticky mode: the next
    one in the ring, the last one's is the first (the same ring as loadbalancer/render-mode.sh and the app's
    REPLICATION_PEERS)."""
    return APP_NODES[(APP_NODES.index(node) + 1) % len(APP_NODES)]


# -- routing modes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Routing:
    """One of the balancer's routing modes (a template in loadbalancer/modes/)."""

    name: str
    keeps_user_on_node: bool  # True: a user's requests go to one node while it lives; False: spread over all


# One entry per loadbalancer/modes/*.conf (a unit test holds the two together): a new mode must say whether
# it keeps a user on one node, since that decides which hypotheses apply to it.
ROUTINGS = {r.name: r for r in (
    Routing("ip-hash", keeps_user_on_node=True),  # the client's address picks the node
    Routing("least-conn", keeps_user_on_node=False),
    Routing("round-robin", keeps_user_on_node=False),
    Routing("sticky", keeps_user_on_node=True),  # a cookie names the node; its buddy is the backup
)}
MODES = tuple(sorted(ROUTINGS))
STICKY_MODES = tuple(m for m in MODES if ROUTINGS[m].keeps_user_on_node)
SPREADING_MODES = tuple(m for m in MODES if not ROUTINGS[m].keeps_user_on_node)
DEFAULT_MODE = "round-robin"  # the stack's (LB_MODE in docker-compose.yml)
REPLICA_ROUTING = "sticky"  # the mode that sends a dead node's users to its buddy (loadbalancer/modes/sticky.conf)


def mode_files() -> tuple[str, ...]:
    """The routing modes nginx has a template for."""
    return tuple(sorted(p.stem for p in (ROOT / "loadbalancer" / "modes").glob("*.conf")))


# -- store roles ------------------------------------------------------------------------------------------

# Which container plays a role is asked of the store when a fault fires (faults/store_roles.py); the names:
ROLES = {
    "sentinel-primary": "sentinel",  # the Redis the sentinels name as primary
    "sentinel-replica": "sentinel",  # one replica of that primary
    "sentinel-quorum": "sentinel",  # two of the three sentinels: no failover is possible
    "cluster-master": "cluster",  # one Cluster master (its replica should take over)
    "cluster-shard": "cluster",  # a Cluster master and its replica: the shard's slots have no copy left
}
HA_STORES = ("sentinel", "cluster")  # the stores with replicas and failover, which have roles
SENTINEL_SERVICE = "lab-primary"  # the name the sentinels monitor (stores/sentinel/sentinel.conf)


def store_of(target: str) -> str:
    """The store a fault target belongs to: redis, sentinel, cluster, or "" for an app node."""
    if target in ROLES:
        return ROLES[target]
    if target in SENTINEL_DATA or target in SENTINELS:
        return "sentinel"
    if target in CLUSTER:
        return "cluster"
    return "redis" if target == "redis" else ""


# -- errors -----------------------------------------------------------------------------------------------


class LabError(RuntimeError):
    """Something the user can fix: the message says what (exit code 2 for bad input, 1 otherwise)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


# -- reaching the lab -------------------------------------------------------------------------------------


def lab_address() -> tuple[str, int]:
    """The balancer's published address (LAB_URL): the only way from the host to a node."""
    url = urllib.parse.urlsplit(LAB_URL)
    return url.hostname or "127.0.0.1", url.port or 80


def env_file() -> Path:
    """The lab's env file: the first of COMPOSE_ENV_FILES (the e2e stack's, say), else .env."""
    listed = [p for p in os.environ.get("COMPOSE_ENV_FILES", "").split(",") if p.strip()]
    return Path(listed[0]) if listed else ROOT / ".env"


@cache
def lab_setting(name: str) -> str:
    """A lab setting as the stack got it: from the environment, else from the env file, else ""."""
    if os.environ.get(name):
        return os.environ[name]
    path = env_file()
    lines = path.read_text().splitlines() if path.exists() else []
    found = [value.strip() for key, sep, value in (line.partition("=") for line in lines)
             if sep and key.strip() == name]
    return found[-1] if found else ""


PROXY_SECRET_HEADER = "X-Lab-Proxy-Secret"  # nginx believes X-Forwarded-For with it (loadbalancer/render-client.sh)


def as_proxy(address: str) -> dict[str, str]:
    """The headers with which a lab tool plays the trusted proxy in front of nginx, forwarding `address` as
    its client's: nginx then takes `address` for the client (its login limit, its ip-hash node), as it
    would a real proxy's. Without the secret (no env file) the header is ignored, like any client's."""
    secret = lab_setting("LB_PROXY_SECRET")
    return {"X-Forwarded-For": address, **({PROXY_SECRET_HEADER: secret} if secret else {})}
