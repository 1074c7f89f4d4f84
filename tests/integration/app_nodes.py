"""Three real app nodes (gunicorn, the image's config) on loopback ports, replicating to each other as the
compose stack's nodes do: for tests of the replicated strategies without Docker."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import settings_env
from tests.integration.conftest import free_port
from tests.integration.topologies import wait_until

APP_DIR = Path(__file__).resolve().parents[2] / "services" / "app"


class Node:
    def __init__(self, name: str, port: int, env: dict[str, str], log: Path):
        self.name, self.port, self.env, self.log = name, port, env, log
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        """host:port, as the balancer (tests/integration/balancer.py) lists its upstreams."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [str(gunicorn), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}",
                 "session_lab.wsgi:app"], cwd=APP_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own process group: a kill takes the worker with the master
        wait_until(lambda: self.request("GET", "/healthz")[0] == 200, f"{self.name} did not answer (see {self.log})",
                   timeout=15)

    def kill(self) -> None:
        """SIGKILL to master and worker: the node dies at once, nothing flushed (as `docker kill`)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT)  # a paused node too
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP to master and worker: frozen, connections accepted by the kernel, nothing answered (as
        `docker pause`, the cgroup freezer)."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM: gunicorn's graceful stop."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def request(self, method: str, path: str, body: dict | bytes | None = None, cookie: str = "",
                headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            data = json.dumps(body).encode() if isinstance(body, dict) else body
            sent = {"Content-Type": "application/json", **({"Cookie": cookie} if cookie else {}), **(headers or {})}
            conn.request(method, path, data, sent)
            answer = conn.getresponse()
            raw = answer.read()
            return answer.status, (json.loads(raw) if raw else {}), dict(answer.getheaders())
        finally:
            conn.close()

    def report(self, strategy: str) -> dict:
        return self.request("GET", "/readyz")[1]["details"][strategy]


class Ring:
    """app1 -> app2 -> app3 -> app1, as in docker-compose.yml."""

    def __init__(self, tmp_path: Path, **overrides: str):
        ports = {f"app{i}": free_port() for i in (1, 2, 3)}
        self.secret = secrets.token_urlsafe(32)
        peers = " ".join(f"{name}=127.0.0.1:{port}" for name, port in ports.items())
        self.nodes = {}
        for name, port in ports.items():
            env = {**os.environ, **settings_env(NODE_NAME=name, REPLICATION_PEERS=peers,
                                                REPLICATION_SECRET=self.secret, **overrides)}
            self.nodes[name] = Node(name, port, env, tmp_path / f"{name}.log")

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def start(self) -> "Ring":
        for node in self.nodes.values():
            node.start()
        return self

    def stop(self) -> None:
        for node in self.nodes.values():
            node.kill()

