"""Rotate the JWT signing key with rolling restarts, so that no session is lost:

    make rotate-jwt-key          (python scripts/rotate_jwt_key.py)

1. add a new key to JWT_KEYS (kept: the key that signs now; dropped: any older one), restart the app nodes
   one at a time: every node now verifies both keys, and still signs with the old one;
2. move JWT_SIGNING_KEY_ID to the new key, restart the nodes one at a time again.

Signing moves only once every node can verify the new key, so a token minted by a restarted node is never
refused by one that has not restarted yet. Tokens signed with the dropped keys stop working: rotate at most
once per SESSION_IDLE_TIMEOUT, so that no token of a key older than the current one is still in use.

The env file is the first of COMPOSE_ENV_FILES, else .env; the stack is the usual compose project.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path

from loadtest.faults.docker import compose, require_docker
from loadtest.lab import LabError, env_file

ROLE_LABEL = "session-lab.role"
# nginx marks a restarted node failed for fail_timeout (5 s, loadbalancer/render-mode.sh) after its first
# refused connection; waiting that long before the next node keeps two nodes from being out at once.
SETTLE_SECONDS = 5.0


def read_settings(path: Path) -> tuple[list[tuple[str, str]], str]:
    """(JWT_KEYS as (kid, secret) pairs, the signing kid) from the env file."""
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    pairs = [pair.partition(":") for pair in values.get("JWT_KEYS", "").split()]
    keys = [(kid, secret) for kid, sep, secret in pairs if sep and kid and secret]
    if not keys:
        raise LabError(f"{path} has no JWT_KEYS (run `make env`)", exit_code=2)
    signer = values.get("JWT_SIGNING_KEY_ID") or keys[0][0]
    if signer not in dict(keys):
        raise LabError(f"{path}: JWT_SIGNING_KEY_ID {signer!r} is not in JWT_KEYS", exit_code=2)
    return keys, signer


def write_settings(path: Path, keys: list[tuple[str, str]], signer: str) -> None:
    """Replace JWT_KEYS and JWT_SIGNING_KEY_ID in place (added if missing); every other line is kept."""
    wanted = {"JWT_KEYS": " ".join(f"{kid}:{secret}" for kid, secret in keys), "JWT_SIGNING_KEY_ID": signer}
    lines, seen = [], set()
    for line in path.read_text().splitlines():
        name = line.partition("=")[0].strip()
        if name in wanted:
            lines.append(f"{name}={wanted[name]}")
            seen.add(name)
        else:
            lines.append(line)
    lines += [f"{name}={value}" for name, value in wanted.items() if name not in seen]
    temporary = path.with_name(path.name + ".rotating")
    temporary.write_text("\n".join(lines) + "\n")
    temporary.chmod(0o600)
    temporary.replace(path)  # atomic: a crash leaves the old file or the new one, never half of each


def app_nodes() -> list[str]:
    config = json.loads(compose("config", "--format", "json").stdout)
    nodes = sorted(name for name, service in config["services"].items()
                   if (service.get("labels") or {}).get(ROLE_LABEL) == "app-node")
    if not nodes:
        raise LabError(f"no service carries the label {ROLE_LABEL}=app-node in the compose file")
    return nodes


def rolling_restart(nodes: list[str], phase: str) -> None:
    for node in nodes:
        started = time.monotonic()
        # A changed environment makes compose recreate the container: SIGTERM (gunicorn drains), then start;
        # --wait returns once it is healthy.
        compose("up", "-d", "--no-deps", "--wait", "--wait-timeout", "90", node, timeout=180)
        print(f"  {phase}: {node} restarted and healthy ({time.monotonic() - started:.1f} s)", flush=True)
        time.sleep(SETTLE_SECONDS)


def new_key_id(existing: list[tuple[str, str]]) -> str:
    kid = "k" + time.strftime("%Y%m%d%H%M%S", time.gmtime())
    taken = {k for k, _ in existing}
    return kid if kid not in taken else f"{kid}-{secrets.token_hex(2)}"


def main() -> int:
    try:
        require_docker()
        path = env_file()
        if not path.exists():
            raise LabError(f"{path} does not exist: run `make up` first", exit_code=2)
        keys, signer = read_settings(path)
        nodes = app_nodes()
        kid = new_key_id(keys)
        retired = [k for k, _ in keys if k != signer]
        new_keys = [(kid, secrets.token_urlsafe(48)), (signer, dict(keys)[signer])]
        print(f"rotating the JWT signing key {signer} -> {kid} on {', '.join(nodes)} ({path})"
              + (f"; dropping {', '.join(retired)}" if retired else ""), flush=True)
        write_settings(path, new_keys, signer)
        rolling_restart(nodes, f"1/2 verify {kid}")
        write_settings(path, new_keys, kid)
        rolling_restart(nodes, f"2/2 sign with {kid}")
        print(f"done: {kid} signs, {signer} still verifies; rotate again no sooner than SESSION_IDLE_TIMEOUT")
        return 0
    except LabError as exc:
        print(f"rotate-jwt-key: {exc}\nThe env file holds the intended keys: `make up` applies them to every node.",
              file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
