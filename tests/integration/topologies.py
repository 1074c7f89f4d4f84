"""Real Sentinel and Cluster topologies of redis-server processes on 127.0.0.1, started from the same
config files as the compose stack (stores/), for the integration tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from tests.integration import acl
from tests.integration.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
STORES = ROOT / "stores"


def wait_until(check, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} within {timeout:.0f} s")


class Node:
    """One redis-server (data node or sentinel) that a test may kill, pause and start again."""

    def __init__(self, args: list[str], port: int, folder: Path):
        self.args, self.port, self.folder = args, port, folder
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        args = list(self.args)
        if args[0].startswith(str(STORES)):  # a writable copy: sentinels CONFIG REWRITE the file a node started from
            copy = self.folder / "redis.conf"
            if not copy.exists():
                shutil.copy(args[0], copy)
            args[0] = str(copy)
        self.process = subprocess.Popen([shutil.which("redis-server"), *args], cwd=self.folder,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class Topology:
    def __init__(self, folder: Path):
        self.folder = folder
        self.password = acl.ADMIN_PASSWORD  # the admin user's: the tests' own clients, replication, sentinels
        self.nodes: list[Node] = []

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=self.password, decode_responses=True, socket_timeout=2)

    def ask(self, port: int, *command):
        with self.client(port) as c:
            return c.execute_command(*command)

    def stop(self) -> None:
        for node in self.nodes:
            if node.process and node.process.poll() is None:
                node.resume()
            node.kill()


class SentinelGroup(Topology):
    """One primary, two replicas, three sentinels (quorum 2), as in docker-compose.yml."""

    SERVICE = "lab-primary"

    def __init__(self, folder: Path):
        super().__init__(folder)
        self.data = []
        users = acl.render("sentinel/redis.acl", folder / "data-users.acl")
        for i in range(3):
            port = free_port()
            args = [str(STORES / "sentinel" / "redis.conf"), "--port", str(port), "--bind", "127.0.0.1",
                    "--dir", ".", "--aclfile", str(users), "--masterauth", self.password]
            if i:
                args += ["--replicaof", "127.0.0.1", str(self.data[0].port)]
            self.data.append(Node(args, port, folder / f"data{i}"))
        self.sentinels = []
        users = acl.render("sentinel/sentinel.acl", folder / "sentinel-users.acl")
        template = (STORES / "sentinel" / "sentinel.conf").read_text()
        for i in range(3):
            port = free_port()
            conf = folder / f"sentinel{i}" / "sentinel.conf"
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(template.replace("port 26379", f"port {port}\nbind 127.0.0.1")
                            .replace("@ANNOUNCE_IP@", "127.0.0.1").replace("@ANNOUNCE_PORT@", str(port))
                            .replace("@PRIMARY_HOST@", "127.0.0.1").replace("@PRIMARY_PORT@", str(self.data[0].port))
                            .replace("@PASSWORD@", self.password))
            self.sentinels.append(Node([str(conf), "--sentinel", "--aclfile", str(users)], port, conf.parent))
        self.nodes = self.data + self.sentinels

    def start(self) -> "SentinelGroup":
        for node in self.nodes:
            node.start()
        self.wait_healthy()
        return self

    def primary_port(self) -> int:
        return int(self.ask(self.sentinels[-1].port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE)[1])

    def primary(self) -> Node:
        return next(n for n in self.data if n.port == self.primary_port())

    def wait_healthy(self, timeout: float = 30) -> None:
        """Every sentinel agrees on the primary, the quorum is reachable, and two replicas are in sync."""
        def healthy():
            live = [s for s in self.sentinels if s.process.poll() is None]
            primaries = {self.primary_port() for _ in live}
            info = self.client(primaries.pop()).info("replication")
            online = [v for k, v in info.items()
                      if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"]
            return (all(self.ask(s.port, "SENTINEL", "CKQUORUM", self.SERVICE) for s in live)
                    and info["role"] == "master" and len(online) == 2)
        wait_until(healthy, "the Sentinel group did not become healthy", timeout)

    def env(self) -> dict[str, str]:
        return {"SENTINEL_ADDRESSES": " ".join(s.address for s in self.sentinels), **acl.APP_PASSWORDS}


class ClusterGroup(Topology):
    """Three masters with a replica each, formed by the same init script as compose's cluster-init."""

    def __init__(self, folder: Path):
        super().__init__(folder)
        users = acl.render("cluster/redis.acl", folder / "users.acl")
        for i in range(6):
            port = free_cluster_port()
            args = [str(STORES / "cluster" / "redis.conf"), "--port", str(port), "--bind", "127.0.0.1",
                    "--dir", ".", "--aclfile", str(users), "--masterauth", self.password]
            self.nodes.append(Node(args, port, folder / f"node{i}"))

    def start(self) -> "ClusterGroup":
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            wait_until(lambda n=node: self.client(n.port).ping(), f"cluster node {node.port} did not answer")
        subprocess.run([str(STORES / "cluster" / "init.sh"), *(n.address for n in self.nodes)], check=True,
                       capture_output=True, env={**os.environ, "REDISCLI_AUTH": self.password}, timeout=60)
        self.wait_healthy()
        return self

    def live(self) -> Node:
        return next(n for n in self.nodes if n.process.poll() is None)

    def shards(self) -> list[tuple[int, int, Node, list[Node]]]:
        """(first slot, last slot, master, replicas) per slot range, as a live node sees them now."""
        by_port = {n.port: n for n in self.nodes}
        return [(first, last, by_port[int(primary[1])], [by_port[int(r[1])] for r in replicas])
                for first, last, primary, *replicas in self.ask(self.live().port, "CLUSTER", "SLOTS")]

    def master_of(self, key: str) -> Node:
        slot = self.ask(self.live().port, "CLUSTER", "KEYSLOT", key)
        return next(master for first, last, master, _ in self.shards() if first <= slot <= last)

    def replica_of(self, master: Node) -> Node:
        return next(replicas[0] for _, _, m, replicas in self.shards() if m is master)

    def wait_healthy(self, timeout: float = 30) -> None:
        """cluster_state:ok everywhere and every master has a replica again."""
        def healthy():
            live = [n for n in self.nodes if n.process.poll() is None]
            shards = self.shards()
            return (all(self.client(n.port).cluster("info")["cluster_state"] == "ok" for n in live)
                    and len(shards) == 3 and all(replicas for *_, replicas in shards))
        wait_until(healthy, "the cluster did not become healthy", timeout)

    def env(self) -> dict[str, str]:
        return {"CLUSTER_NODES": " ".join(n.address for n in self.nodes), **acl.APP_PASSWORDS}
