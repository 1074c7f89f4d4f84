"""The demo page in Chromium against real nodes on loopback: three gunicorn app nodes (a replication ring),
a throwaway redis-server and the project's nginx config, no Docker. The e2e browser tests run the same
scenarios through the compose stack."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from tests.browser_support import Target
from tests.conftest import require
from tests.integration.acl import APP_PASSWORDS
from tests.integration.app_nodes import Ring
from tests.integration.balancer import Balancer
from tests.integration.topologies import wait_until

LOCAL_STORES = {"redis"}  # no Sentinel or Cluster on loopback: those strategies are the e2e layer's


def available(traits: dict) -> bool:
    return set(traits["dependencies"]) <= LOCAL_STORES


class LocalLab:
    def __init__(self, tmp, redis_server):
        self.ring = Ring(tmp, REDIS_PORT=str(redis_server.port), **APP_PASSWORDS,
                         JWT_REVOCATION_SYNC="true")
        nodes = [SimpleNamespace(name=n.name, address=f"127.0.0.1:{n.port}") for n in self.ring.nodes.values()]
        self.balancer = Balancer(tmp, nodes, mode="round-robin")
        self.url = f"http://127.0.0.1:{self.balancer.port}"

    def start(self) -> LocalLab:
        self.ring.start()
        self.balancer.start()
        return self

    def stop(self) -> None:
        self.balancer.stop()
        self.ring.stop()

    def mode(self) -> str:
        return requests.get(f"{self.url}/nginx-health", timeout=5).json()["mode"]

    def workers(self) -> set[int]:
        master = self.balancer.process.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return {int(pid) for pid in children}

    def switch_mode(self, mode: str) -> None:
        """As switch-mode.sh does in the container: render the mode, reload nginx (no node restarts), and wait
        until the old workers are gone, or a browser's kept-alive connection may still reach the old mode."""
        if self.mode() == mode:
            return
        old = self.workers()
        self.balancer.mode = mode
        self.balancer.render()
        subprocess.run(self.balancer.nginx("-s", "reload"), check=True, capture_output=True, timeout=30)
        wait_until(lambda: not (old & self.workers()), "nginx's old workers did not exit", timeout=10)
        wait_until(lambda: self.mode() == mode, f"nginx did not switch to {mode}", timeout=10)

    def kill(self, name: str) -> None:
        self.ring[name].kill()

    def heal(self) -> None:
        for node in self.ring.nodes.values():
            if node.process is None or node.process.poll() is not None:
                node.start()

    def strategies(self) -> list[dict]:
        return requests.get(f"{self.url}/api/strategies", timeout=5).json()["strategies"]


@pytest.fixture(scope="session")
def local_lab(tmp_path_factory, redis_server):
    require(shutil.which("nginx") is not None, "nginx is not installed (apt-get install nginx)")
    lab = LocalLab(tmp_path_factory.mktemp("browser-lab"), redis_server).start()
    yield lab
    lab.stop()


@pytest.fixture
def target(local_lab, store) -> Target:
    """Every node up and round-robin routing, whatever the last test did; Redis flushed (`store`)."""
    local_lab.heal()
    local_lab.switch_mode("round-robin")
    return Target(local_lab.url, local_lab.switch_mode, local_lab.kill, local_lab.strategies)
