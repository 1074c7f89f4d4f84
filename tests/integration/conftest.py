"""A real, throwaway redis-server for each test session (the binary from the machine's redis-server package),
with the lab's users (stores/redis/redis.acl)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
import redis

from session_lab.config import STORE_USERS
from tests.conftest import require
from tests.integration import acl
from tests.integration.balancer import NODE_NAMES, Node


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, tmp_path):
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.password = acl.ADMIN_PASSWORD  # the admin (`default`) user's: the tests' own clients
        self.acl = acl.render("redis/redis.acl", tmp_path / "users.acl")
        self.dir = tmp_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--aclfile", str(self.acl),
             "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with self.client() as probe:  # closed at once: no socket left for the GC to warn about
                    if probe.ping():
                        return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer within 10 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        """As the admin user."""
        return redis.Redis(port=self.port, password=self.password, decode_responses=True, socket_timeout=2)

    def client_as(self, user: str) -> redis.Redis:
        """As one of the strategy families' users (config.STORE_USERS)."""
        return redis.Redis(port=self.port, username=user, password=acl.PASSWORDS[STORE_USERS[user]],
                           decode_responses=True, socket_timeout=2)

    def client_bytes(self) -> redis.Redis:
        """For values that are not text (Flask-Session's msgpack blobs)."""
        return redis.Redis(port=self.port, password=self.password, socket_timeout=2)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    require(shutil.which("redis-server") is not None, "redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store(redis_server):
    """A clean Redis for one test (restarted if an earlier test stopped it)."""
    if redis_server.process.poll() is not None:
        redis_server.start()
    redis_server.client().flushall()
    return redis_server.client()


@pytest.fixture
def settings(make_settings, redis_server, store):
    return make_settings(
        REDIS_PORT=str(redis_server.port),
        **acl.APP_PASSWORDS,
        SESSION_IDLE_TIMEOUT="60",
        SESSION_ABSOLUTE_TIMEOUT="300",
        MAX_CART_ITEMS="5",
    )


@pytest.fixture
def nodes():
    """Three scriptable upstream nodes (tests/integration/balancer.py) for a real nginx in front of them."""
    nodes = [Node(name) for name in NODE_NAMES]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.stop()

def started(kind: str, folder):
    """A real Sentinel group or Cluster (topologies.py) of redis-server processes, healthy."""
    require(shutil.which("redis-server") is not None, "redis-server is not installed (apt-get install redis-server)")
    from tests.integration.topologies import ClusterGroup, SentinelGroup  # topologies imports this module

    return {"sentinel": SentinelGroup, "cluster": ClusterGroup}[kind](folder).start()


@pytest.fixture(scope="module")
def sentinel_group(tmp_path_factory):
    """One Sentinel group per test module that asks for it."""
    group = started("sentinel", tmp_path_factory.mktemp("sentinel"))
    yield group
    group.stop()


@pytest.fixture(scope="module")
def cluster_group(tmp_path_factory):
    """One Cluster per test module that asks for it."""
    group = started("cluster", tmp_path_factory.mktemp("cluster"))
    yield group
    group.stop()
