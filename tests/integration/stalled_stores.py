"""A lab on loopback for the stalled-store tests (issue 16): one Redis, a Sentinel group and a Cluster of real
redis-server processes, three real app nodes (gunicorn) using them, and the real nginx in round-robin mode in
front, where one failed attempt takes a node out of the pool (max_fails=1). Any store role can be paused
(SIGSTOP: it accepts connections and answers nothing, as the experiment's `pause` fault does), while
clients of every strategy send requests through nginx; each answer is recorded with how long it took."""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from session_lab import strategies
from session_lab.strategies._redis_cart import keys_of
from tests.conftest import require
from tests.integration import acl
from tests.integration.app_nodes import Ring
from tests.integration.balancer import Balancer
from tests.integration.conftest import free_port
from tests.integration.topologies import ClusterGroup, Node, SentinelGroup, wait_until
from tests.session_client import Reply, SessionClient

# nginx gives a node this long to answer (proxy_read_timeout, loadbalancer/proxy.conf) before it counts it failed.
NGINX_READ_TIMEOUT = 5.0
STORE_ROLES = ("redis", "sentinel-primary", "cluster-master")
STORES = ("redis", "sentinel", "cluster")
STORE_OF_ROLE = {"redis": "redis", "sentinel-primary": "sentinel", "cluster-master": "cluster"}


@dataclass(frozen=True)
class Answer:
    strategy: str
    status: int
    served_by: str  # X-Served-By: empty when nginx answered itself (502, 504)
    seconds: float
    error: str


def nginx_sender(lb: Balancer, record: list, strategy: str):
    """A SessionClient `send` through nginx with its own cookie jar; every answer is appended to `record`."""
    jar: dict[str, str] = {}

    def send(method, path, headers=None, json_body=None):
        sent = dict(headers or {})
        if jar:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in jar.items())
        data = None
        if json_body is not None:
            data, sent["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        started = time.monotonic()
        reply = lb.request(method, path, data, sent)
        seconds = time.monotonic() - started
        cookie = reply.headers.get("set-cookie")
        if cookie:
            name, _, value = cookie.split(";")[0].partition("=")
            jar[name.strip()] = value
        body = json.loads(reply.body) if reply.body else {}
        record.append(Answer(strategy, reply.status, reply.headers.get("x-served-by", ""), seconds,
                             body.get("error", "") if isinstance(body, dict) else ""))
        return Reply(reply.status, body, reply.headers)

    return lambda method, path, headers=None, json=None: send(method, path, headers, json)


class StallLab:
    def __init__(self, folder: Path, stores: tuple[str, ...] = STORES):
        require(shutil.which("redis-server") is not None, "redis-server is not installed")
        require(shutil.which("nginx") is not None, "nginx is not installed (apt-get install nginx-light)")
        self.folder = folder
        port = free_port()
        users = acl.render("redis/redis.acl", folder / "redis" / "users.acl")
        self.redis = Node(["--port", str(port), "--bind", "127.0.0.1", "--aclfile", str(users), "--save", "",
                           "--appendonly", "no", "--dir", "."], port, folder / "redis")
        self.sentinels = SentinelGroup(folder / "sentinel")
        self.cluster = ClusterGroup(folder / "cluster")
        self.topologies = [t for name, t in (("sentinel", self.sentinels), ("cluster", self.cluster)) if name in stores]
        self.stores = stores
        self.ring: Ring | None = None
        self.balancer: Balancer | None = None

    def start(self) -> "StallLab":
        env = {"REDIS_CONNECT_TIMEOUT": "0.5", "REDIS_SOCKET_TIMEOUT": "1.0", "STORE_RETRY_BUDGET": "",
               **acl.APP_PASSWORDS}
        if "redis" in self.stores:
            self.redis.start()
            wait_until(lambda: self.sentinels.client(self.redis.port).ping(), "the single redis did not answer")
            env.update(REDIS_HOST="127.0.0.1", REDIS_PORT=str(self.redis.port), JWT_REVOCATION_SYNC="true")
        for topology in self.topologies:
            topology.start()
            env.update(topology.env())
        self.ring = Ring(self.folder, **env).start()
        self.balancer = Balancer(self.folder, list(self.ring.nodes.values()), "round-robin")
        self.balancer.start()
        return self

    def stop(self) -> None:
        if self.balancer:
            self.balancer.stop()
        if self.ring:
            self.ring.stop()
        for topology in self.topologies:
            topology.stop()
        if self.redis.process:
            self.redis.resume()
            self.redis.kill()

    def heal(self) -> None:
        """Resume whatever a test paused and wait until every store is whole, and nginx has every node back
        (a node marked failed stays out for fail_timeout, 5 s)."""
        if self.redis.process:
            self.redis.resume()
        for topology in self.topologies:
            for node in topology.nodes:
                node.resume()
            topology.wait_healthy(timeout=60)
        wait_until(lambda: len(self._nodes_serving()) == 3, "nginx did not route to all three nodes again",
                   timeout=15)
        # A breaker opened by the pause fails fast for BREAKER_OPEN_SECONDS, then lets a probe through.
        wait_until(lambda: all("open" not in node.request("GET", "/readyz")[1].get("breakers", {}).values()
                               for node in self.ring.nodes.values()), "a store's breaker stayed open", timeout=15)

    def _nodes_serving(self) -> set[str]:
        served = set()
        for _ in range(6):
            reply = self.balancer.get("/healthz")
            if reply.status == 200:
                served.add(reply.headers["x-served-by"])
        return served

    def clients(self, record: list, names: list[str] | None = None) -> dict[str, SessionClient]:
        """A logged-in client per name in `names` (default: one per strategy), talking through nginx; keyed
        by the strategy's name, then #2, #3... for the next ones of the same strategy."""
        found = {}
        for name in names or [cls.name for cls in strategies.classes()]:
            client = SessionClient(name, nginx_sender(self.balancer, record, name))
            assert client.login(f"user-{name}").status == 200, f"{name}: login before the pause"
            key = name if name not in found else f"{name}#{sum(k.split('#')[0] == name for k in found) + 1}"
            found[key] = client
        return found

    def pause(self, role: str, clients: dict[str, SessionClient]) -> None:
        if role == "redis":
            self.redis.pause()
        elif role == "sentinel-primary":
            self.sentinels.primary().pause()
        else:  # the master owning the cluster-wait user's session (the experiment's defect)
            sid = clients["cluster-wait"].session_id()
            self.cluster.master_of(keys_of(sid)[0]).pause()


def keep_sending(clients: dict[str, SessionClient], seconds: float, max_rounds: int = 80) -> None:
    """Every client adds and reads in turn, each in its own thread, for `seconds` (at most max_rounds each:
    40 adds, under the default cart limit of 50)."""
    stop_at = time.monotonic() + seconds

    def run(client: SessionClient):
        for round_ in range(max_rounds):
            if time.monotonic() >= stop_at:
                return
            client.add(f"item-{round_}") if round_ % 2 == 0 else client.cart()

    threads = [threading.Thread(target=run, args=(c,)) for c in clients.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 4 * NGINX_READ_TIMEOUT)
