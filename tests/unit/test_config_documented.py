"""Configuration that does nothing, or that nobody can find: every setting the app (services/app) and the
balancer (loadbalancer/*.sh) read is documented in .env.example and passed to its container by
docker-compose.yml, or named as fixed on purpose (config.FIXED_SETTINGS), and every setting .env.example offers
reaches something. The lists are parsed from the files themselves, so a setting added anywhere is checked;
a failure names the setting and what it lacks. `make env` writes .env readable by its owner only."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from session_lab.config import FIXED_SETTINGS, STORE_USERS, Settings
from tests.conftest import settings_env

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "services" / "app"
COMPOSE = (ROOT / "docker-compose.yml").read_text()
NAME = r"([A-Z][A-Z0-9_]*)"
# How Python code here reads a variable: env.get("X"), os.environ["X"], os.getenv("X"), and config.py's helpers
# that take the mapping first: _int(env, "X", ...), _secret(env, "X", ...), addresses(env, "X", ...).
PYTHON_READS = [rf"\b(?:env|environ)\.get\(\s*[\"']{NAME}[\"']", rf"\b(?:env|environ)\[\s*[\"']{NAME}[\"']\s*\]",
                rf"\bgetenv\(\s*[\"']{NAME}[\"']", rf"\(\s*env\s*,\s*[\"']{NAME}[\"']"]


def app_reads() -> dict[str, str]:
    """Every variable the app's Python reads: {name: the file that reads it}."""
    found = {}
    for source in sorted(APP.rglob("*.py")):
        text = source.read_text()
        for pattern in PYTHON_READS:
            for name in re.findall(pattern, text):
                found.setdefault(name, str(source.relative_to(ROOT)))
    # config.py reads the store users' passwords through a table (STORE_USERS), not by a literal name.
    for name in STORE_USERS.values():
        found.setdefault(name, "services/app/session_lab/config.py")
    return found


def balancer_reads() -> dict[str, str]:
    """Every upper-case variable loadbalancer/*.sh reads and does not set itself."""
    found = {}
    for script in sorted((ROOT / "loadbalancer").glob("*.sh")):
        text = script.read_text()
        assigned = set(re.findall(rf"^\s*{NAME}=", text, re.MULTILINE))
        for name in set(re.findall(rf"\$\{{?{NAME}", text)) - assigned:
            found.setdefault(name, str(script.relative_to(ROOT)))
    return found


def documented() -> set[str]:
    """The names .env.example sets or shows commented out (`NAME=` or `#NAME=`)."""
    return set(re.findall(rf"^#?{NAME}=", (ROOT / ".env.example").read_text(), re.MULTILINE))


def compose_environment(header: str, indent: int) -> dict[str, str]:
    """The `environment:` mapping under the docker-compose.yml line `header`: {name: its value's text}."""
    lines = COMPOSE.splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip() == header)
    env_line = next(i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("environment:"))
    found, current = {}, None
    for line in lines[env_line + 1:]:
        if not line.strip() or line.strip().startswith("#"):
            continue
        depth = len(line) - len(line.lstrip())
        if depth < indent:
            break
        entry = re.match(rf"{NAME}:\s*(.*)", line.strip()) if depth == indent else None
        if entry:
            current = entry.group(1)
            found[current] = entry.group(2)
        elif current:
            found[current] += " " + line.strip()  # a folded value's next line
    return found


APP_ENV = compose_environment("x-app-node: &app-node", 4)
LB_ENV = compose_environment("  lb:", 6)


def problems(reads: dict[str, str], passed: dict[str, str], where: str) -> list[str]:
    found = []
    for name, reader in sorted(reads.items()):
        if name in FIXED_SETTINGS:
            continue
        lacks = [what for what, ok in [
            (".env.example", name in documented()),
            (f"docker-compose.yml's {where} environment", name in passed),
            (f"`${{{name}` in that environment entry (the .env value reaches the container)",
             "${" + name in passed.get(name, "")),
        ] if not ok]
        if lacks:
            found.append(f"{name} (read by {reader}) is missing from: {'; '.join(lacks)}. Document it and pass it "
                         f"through, or name it in config.FIXED_SETTINGS with the reason")
    return found


def test_the_parsers_find_what_the_app_really_reads():
    """Settings.from_env, given a mapping that records every lookup, reads nothing the parser missed."""
    class Recording(dict):
        def __init__(self, *args):
            super().__init__(*args)
            self.asked = set()

        def get(self, key, default=None):
            self.asked.add(key)
            return super().get(key, default)

        def __getitem__(self, key):
            self.asked.add(key)
            return super().__getitem__(key)

    env = Recording(settings_env(REPLICATION_PEERS="test-node=127.0.0.1:1", REPLICATION_SECRET="r" * 32))
    Settings.from_env(env)
    assert env.asked <= set(app_reads()), f"read but not found by the parser: {env.asked - set(app_reads())}"
    assert {"GUNICORN_THREADS", "LOG_LEVEL", "APP_PORT"} <= set(app_reads())  # gunicorn.conf.py's
    assert {"LB_MODE", "LOGIN_RATE_LIMIT", "APP_NODES"} <= set(balancer_reads())
    assert {"SESSION_IDLE_TIMEOUT", "REPLICATION_PEERS"} <= set(APP_ENV) and {"LB_MODE", "APP_NODES"} <= set(LB_ENV)


def test_every_setting_the_app_reads_is_documented_and_reaches_the_nodes_or_is_fixed():
    found = problems(app_reads(), APP_ENV, "x-app-node")
    assert not found, "\n".join(found)


def test_every_setting_the_balancer_reads_is_documented_and_reaches_it_or_is_fixed():
    found = problems(balancer_reads(), LB_ENV, "lb")
    assert not found, "\n".join(found)


def test_every_documented_setting_reaches_something():
    """A name in .env.example that neither the app, the balancer nor compose itself uses does nothing."""
    idle = [f"{name} is in .env.example, but no container and no compose line reads it"
            for name in sorted(documented())
            if name not in app_reads() and name not in balancer_reads() and "${" + name not in COMPOSE]
    assert not idle, "\n".join(idle)


def test_compose_passes_nothing_its_container_ignores():
    assert sorted(set(APP_ENV) - set(app_reads())) == []
    assert sorted(set(LB_ENV) - set(balancer_reads())) == []


def test_the_fixed_settings_are_read_and_not_offered():
    read = set(app_reads()) | set(balancer_reads())
    assert sorted(set(FIXED_SETTINGS) - read) == [], "fixed, but nothing reads it any more"
    assert sorted(set(FIXED_SETTINGS) & documented()) == [], "fixed on purpose, yet .env.example offers it"
    assert all(len(reason) > 20 for reason in FIXED_SETTINGS.values())


@pytest.fixture
def chmod_does_nothing(tmp_path):
    """A PATH on which `chmod` succeeds and changes nothing: only a mode set from the start survives."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "chmod"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_make_env_creates_env_readable_by_its_owner_only_from_the_start(tmp_path, chmod_does_nothing):
    """Under the usual umask 022 a file is created 644, readable by every user of the host for as long as a
    later chmod takes; the script must create it 600 (its own umask), so a chmod after is not what protects it."""
    target = tmp_path / "lab" / ".env"
    target.parent.mkdir()
    subprocess.run(["bash", "-c", 'umask 022 && exec scripts/make-env.sh "$0"', str(target)], cwd=ROOT,
                   env=chmod_does_nothing, check=True, capture_output=True, timeout=30)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600, oct(target.stat().st_mode)
    text = target.read_text()
    for secret in ("REDIS_PASSWORD", "JWT_KEYS", "CLIENT_SESSION_KEY", "REPLICATION_SECRET"):
        assert re.search(rf"^{secret}=.{{20,}}$", text, re.MULTILINE), f"{secret} not generated"
