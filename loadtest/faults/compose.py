"""A thin wrapper over `docker compose` for the chaos script and the experiment runner.

The project, env file and compose file come from the usual compose variables (COMPOSE_PROJECT_NAME,
COMPOSE_ENV_FILES, COMPOSE_FILE), so the same code drives your `make up` stack or the e2e test stack.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP_NODES = ("app1", "app2", "app3")  # in ring order: each node's buddy is the next (REPLICATION_PEERS)
SENTINEL_DATA = ("sentinel-data1", "sentinel-data2", "sentinel-data3")  # the Sentinel group's Redis processes
SENTINELS = ("sentinel1", "sentinel2", "sentinel3")
CLUSTER = tuple(f"cluster{i}" for i in range(1, 7))
SERVICES = APP_NODES + ("redis",) + SENTINEL_DATA + SENTINELS + CLUSTER  # the services chaos may fault
LAB_URL = os.environ.get("LAB_URL", "http://127.0.0.1:8080")
NODE_PORT = 8000  # gunicorn's bind in every app container (APP_PORT in services/app/gunicorn.conf.py)


class LabError(RuntimeError):
    """Something the user can fix: the message says what (exit code 2 for bad input, 1 otherwise)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def project() -> str:
    return os.environ.get("COMPOSE_PROJECT_NAME", "session-lab")


def require_docker() -> None:
    if shutil.which("docker") is None:
        raise LabError("docker is not installed (see README: Requirements)")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        raise LabError("the Docker engine is not running or not reachable (docker info failed)")


def compose(*args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", "compose", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise LabError(f"docker compose {' '.join(args)} failed: {(done.stderr or done.stdout).strip()[-800:]}")
    return done


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise LabError(f"docker {' '.join(args)} failed: {(done.stderr or done.stdout).strip()[-800:]}")
    return done


def container_id(service: str) -> str:
    cid = compose("ps", "-aq", service).stdout.strip()
    if not cid:
        raise LabError(f"service {service} has no container: is the stack up? (make up)")
    return cid.splitlines()[0]


def states() -> dict[str, dict]:
    out = compose("ps", "-a", "--format", "json").stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {r["Service"]: r for r in rows}


def buddy(node: str) -> str:
    """The node that keeps a copy of `node`'s replicated sessions, and takes its users in sticky mode."""
    return APP_NODES[(APP_NODES.index(node) + 1) % len(APP_NODES)]


def node_get(node: str, path: str, timeout: float = 20) -> dict:
    """GET one app node's own endpoint from inside its container (the balancer picks no node for us)."""
    script = ("import json, sys, urllib.request, urllib.error\n"
              f"try: body = urllib.request.urlopen('http://127.0.0.1:{NODE_PORT}' + sys.argv[1], timeout=3).read()\n"
              "except urllib.error.HTTPError as e: body = e.read()\n"
              "sys.stdout.write(body.decode())")
    done = compose("exec", "-T", node, "python3", "-c", script, path, timeout=timeout, check=False)
    if done.returncode != 0:
        raise LabError(f"{node} did not answer {path}: {(done.stderr or done.stdout).strip()[-300:]}")
    return json.loads(done.stdout)


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
    found = [value.strip() for key, sep, value in (line.partition("=") for line in lines) if sep and key.strip() == name]
    return found[-1] if found else ""


PROXY_SECRET_HEADER = "X-Lab-Proxy-Secret"  # nginx believes X-Forwarded-For with it (loadbalancer/render-client.sh)


def as_proxy(address: str) -> dict[str, str]:
    """The headers with which a lab tool plays the trusted proxy in front of nginx, forwarding `address` as
    its client's: nginx then takes `address` for the client (its login limit, its ip-hash node), as it
    would a real proxy's. Without the secret (no env file) the header is ignored, like any client's."""
    secret = lab_setting("LB_PROXY_SECRET")
    return {"X-Forwarded-For": address, **({PROXY_SECRET_HEADER: secret} if secret else {})}


def lab_get(path: str, timeout: float = 3) -> dict:
    with urllib.request.urlopen(LAB_URL + path, timeout=timeout) as r:
        return json.loads(r.read())


def require_stack() -> None:
    """Docker answers, every service runs, and the balancer answers on LAB_URL."""
    require_docker()
    running = {s for s, row in states().items() if row.get("State") == "running"}
    missing = [s for s in ("lb", *SERVICES) if s not in running]
    if missing:
        raise LabError(f"the stack is not running (missing: {', '.join(missing)}): start it with `make up`")
    try:
        lab_get("/nginx-health")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LabError(f"the balancer does not answer at {LAB_URL} ({exc}); set LAB_URL or run `make up`") from None


def current_mode() -> str:
    return lab_get("/nginx-health")["mode"]


def switch_mode(mode: str) -> None:
    done = compose("exec", "-T", "lb", "switch-mode", mode, check=False)
    if done.returncode != 0:
        raise LabError((done.stderr or done.stdout).strip(), exit_code=2 if done.returncode == 2 else 1)


def strategies() -> list[dict]:
    return lab_get("/api/strategies")["strategies"]


CPU_PERIOD_US = 100_000  # the kernel's default CFS period


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
