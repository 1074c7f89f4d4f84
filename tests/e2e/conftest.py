"""The real compose stack, through nginx, as a separate project (own name, port and subnet), so the tests
never touch a stack you started with `make up`. Built once per test session from `down -v`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from loadtest.lab import CLUSTER, SENTINEL_DATA, SENTINELS
from tests.conftest import require
from tests.session_client import Reply, SessionClient

ROOT = Path(__file__).resolve().parents[2]
PROJECT = os.environ.get("E2E_PROJECT", "session-lab-e2e")
PORT = os.environ.get("E2E_LB_PORT", "18080")
SUBNET = os.environ.get("E2E_SUBNET_PREFIX", "172.30.58")
NODES = ["app1", "app2", "app3"]
LONG_RUNNING = {*NODES, "lb", "redis", *SENTINEL_DATA, *SENTINELS, *CLUSTER}  # all but the one-shot cluster-init


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def offline_images() -> dict[str, str]:
    """What `make` exports after `make offline-images`, so plain `pytest` selects the same images."""
    path = ROOT / "offline-images" / "offline.env"
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


class Stack:
    def __init__(self, env_file: Path):
        self.env = {**offline_images(), **os.environ, "LB_PORT": PORT, "LAB_SUBNET_PREFIX": SUBNET}
        self.env.pop("COMPOSE_PROJECT_NAME", None)
        self.env_file = env_file
        self.url = f"http://127.0.0.1:{PORT}"

    def compose(self, *args: str, timeout: float = 300) -> str:
        cmd = ["docker", "compose", "-p", PROJECT, "--env-file", str(self.env_file), *args]
        done = subprocess.run(cmd, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def up(self, *services: str) -> None:
        self.compose("up", "-d", "--wait", "--wait-timeout", "120", *services)

    def switch_mode(self, mode: str) -> str:
        return self.compose("exec", "-T", "lb", "switch-mode", mode)

    def mode(self) -> str:
        return requests.get(f"{self.url}/nginx-health", timeout=5).json()["mode"]

    def started_at(self, service: str) -> str:
        cid = self.compose("ps", "-q", service).strip()
        return subprocess.run(
            ["docker", "inspect", "-f", "{{.State.StartedAt}}", cid], capture_output=True, text=True, check=True
        ).stdout.strip()

    def running(self) -> set[str]:
        rows = [json.loads(line) for line in self.compose("ps", "--format", "json").splitlines() if line.strip()]
        return {r["Service"] for r in rows if r["State"] == "running"}

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)

    def tool_env(self, **extra: str) -> dict[str, str]:
        """Environment for the lab's own tools (chaos, experiment, make) aimed at this stack."""
        return {**self.env, "LAB_URL": self.url, "COMPOSE_PROJECT_NAME": PROJECT,
                "COMPOSE_ENV_FILES": str(self.env_file), "COMPOSE_FILE": str(ROOT / "docker-compose.yml"), **extra}

    def client(self, strategy: str) -> SessionClient:
        return SessionClient(strategy, http_sender(self.url))

    def setting(self, name: str) -> str:
        """A value from the stack's env file (its generated secrets)."""
        return next(line.split("=", 1)[1] for line in self.env_file.read_text().splitlines()
                    if line.startswith(f"{name}="))

    def as_proxy(self, address: str) -> dict[str, str]:
        """The headers of a request forwarded for `address` by the trusted proxy (the lab's load users send
        these): nginx takes `address` for the client."""
        return {"X-Forwarded-For": address, "X-Lab-Proxy-Secret": self.setting("LB_PROXY_SECRET")}

    def forwarded_client(self, strategy: str, address: str) -> SessionClient:
        """A client of its own behind the trusted proxy, with its own cookie jar."""
        send, proxy = http_sender(self.url), self.as_proxy(address)
        return SessionClient(strategy, lambda method, path, headers=None, json=None: send(
            method, path, headers={**(headers or {}), **proxy}, json=json))

    def strategies(self) -> list[dict]:
        return self.get("/api/strategies").json()["strategies"]


def http_sender(base_url: str):
    """A `send` for SessionClient over real HTTP, with its own cookie jar like one browser."""
    http = requests.Session()

    def send(method, path, headers=None, json=None):
        r = http.request(method, base_url + path, headers=headers, json=json, timeout=10)
        try:
            body = r.json()
        except ValueError:
            body = None
        return Reply(r.status_code, body, {k.lower(): v for k, v in r.headers.items()})

    return send


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    require(docker_available(), "Docker is not available (docker info failed)")
    env_file = tmp_path_factory.mktemp("e2e") / ".env"
    subprocess.run([str(ROOT / "scripts" / "make-env.sh"), str(env_file)], cwd=ROOT, check=True, capture_output=True)
    s = Stack(env_file)
    s.compose("down", "-v", "--remove-orphans")
    s.compose("build", timeout=900)
    s.up()
    yield s
    s.compose("down", "-v", "--remove-orphans")


def ready(stack: Stack) -> Stack:
    """The stack with every service running and round-robin routing, whatever the last test did."""
    if stack.running() != LONG_RUNNING:
        stack.up()
    if stack.mode() != "round-robin":
        stack.switch_mode("round-robin")
    return stack


@pytest.fixture
def lab(stack):
    return ready(stack)


@pytest.fixture
def lab_tools(lab, monkeypatch):
    """The lab, with this process's environment aimed at it, for the lab's own Python tools (chaos, store
    roles) called in-process."""
    for name, value in lab.tool_env().items():
        monkeypatch.setenv(name, value)
    return lab
