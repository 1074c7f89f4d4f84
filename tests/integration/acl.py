"""The stores' users for the integration tests: ACL files rendered from the containers' own templates
(stores/*/*.acl) by the containers' own script (stores/render-acl.sh), with passwords made up for the run,
so the redis-server, Sentinel and Cluster processes of the tests hold every strategy to the same limits."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

from session_lab.config import STORE_USERS

STORES = Path(__file__).resolve().parents[2] / "stores"
# The admin's password (REDIS_PASSWORD: the tests' own clients, replication, the sentinels) and one per
# strategy family's user. Hex: never a leading "-", which redis-server would read as an option.
PASSWORDS = {name: secrets.token_hex(16) for name in ("REDIS_PASSWORD", *STORE_USERS.values())}
ADMIN_PASSWORD = PASSWORDS["REDIS_PASSWORD"]
# What the app nodes get: every family's password, never the admin's.
APP_PASSWORDS = {name: PASSWORDS[name] for name in STORE_USERS.values()}


def render(template: str, out: Path) -> Path:
    """Render stores/<template> (e.g. "sentinel/redis.acl") into `out`, as start.sh does in a container."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(STORES / "render-acl.sh"), str(STORES / template), str(out)], check=True,
                   capture_output=True, env={**os.environ, **PASSWORDS}, timeout=30)
    return out
