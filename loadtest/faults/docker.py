"""A thin wrapper over `docker compose` for the chaos script, the experiment runner and the bench, and the
few questions the running stack answers (its containers, a node's own endpoints, the balancer's mode).

The project, env file and compose file come from the usual compose variables (COMPOSE_PROJECT_NAME,
COMPOSE_ENV_FILES, COMPOSE_FILE), so the same code drives your `make up` stack or the e2e test stack.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request

from loadtest.lab import BALANCER, LAB_URL, NODE_PORT, ROOT, SERVICES, LabError


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


def lab_get(path: str, timeout: float = 3) -> dict:
    with urllib.request.urlopen(LAB_URL + path, timeout=timeout) as r:
        return json.loads(r.read())


def require_stack() -> None:
    """Docker answers, every service runs, and the balancer answers on LAB_URL."""
    require_docker()
    running = {s for s, row in states().items() if row.get("State") == "running"}
    missing = [s for s in (BALANCER, *SERVICES) if s not in running]
    if missing:
        raise LabError(f"the stack is not running (missing: {', '.join(missing)}): start it with `make up`")
    try:
        lab_get("/nginx-health")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LabError(f"the balancer does not answer at {LAB_URL} ({exc}); set LAB_URL or run `make up`") from None


def current_mode() -> str:
    return lab_get("/nginx-health")["mode"]


def switch_mode(mode: str) -> None:
    done = compose("exec", "-T", BALANCER, "switch-mode", mode, check=False)
    if done.returncode != 0:
        raise LabError((done.stderr or done.stdout).strip(), exit_code=2 if done.returncode == 2 else 1)


def strategies() -> list[dict]:
    return lab_get("/api/strategies")["strategies"]
