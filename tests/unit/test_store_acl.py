"""The stores' ACL templates (stores/*/*.acl) against the code that uses them, without a Redis: every command
the cart scripts call is granted to each cart user, each family's user denies by default and is granted no
admin or dangerous command, and the app nodes get each family's password and never the admin's.
tests/integration/test_store_acl.py proves the same against real redis-server, Sentinel and Cluster."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from session_lab.config import STORE_USERS
from session_lab.strategies import _redis_cart

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / "stores").glob("*/*.acl"))
CART_USERS = ["redis-cart", "sentinel-cart", "cluster-cart"]
# Commands that would let one family's user read others' keys, change the server or take it down.
DANGEROUS = {"flushall", "flushdb", "config", "debug", "keys", "scan", "randomkey", "shutdown", "acl", "module",
             "script", "function", "monitor", "replicaof", "slaveof", "client", "save", "bgsave",
             "bgrewriteaof", "migrate", "restore", "swapdb", "info", "sort", "object", "dump", "failover"}


def users() -> dict[str, list[tuple[Path, list[str]]]]:
    """user name -> (template, rules) for every `user` line of every template."""
    found: dict[str, list[tuple[Path, list[str]]]] = {}
    for template in TEMPLATES:
        for line in template.read_text().splitlines():
            if line.startswith("user "):
                _, name, *rules = line.split()
                found.setdefault(name, []).append((template, rules))
    return found


def granted(rules: list[str]) -> set[str]:
    return {r[1:].lower() for r in rules if r.startswith("+") and not r.startswith("+@")}


def test_every_family_has_its_user_and_its_password_variable():
    found = users()
    assert set(found) == {"default", *STORE_USERS}
    for name, variable in STORE_USERS.items():
        for template, rules in found[name]:
            assert f"#@{variable}@" in rules, f"{template.name}: {name} is not given {variable}"
    for template, rules in found["default"]:
        assert "#@REDIS_PASSWORD@" in rules, template


@pytest.mark.parametrize("name", list(STORE_USERS))
def test_each_familys_user_denies_by_default_and_holds_nothing_dangerous(name):
    for template, rules in users()[name]:
        assert {"resetkeys", "resetchannels", "-@all"} <= set(rules), template
        assert not [r for r in rules if r.startswith("+@") or r in ("~*", "&*", "allkeys", "allchannels",
                                                                     "allcommands", "nopass")], template
        assert not {g.split("|")[0] for g in granted(rules)} & DANGEROUS - {"sentinel"}, template


def script_commands() -> set[str]:
    bodies = [s.body for s in vars(_redis_cart).values() if isinstance(s, _redis_cart.Script)]
    assert bodies, "no Lua script found in strategies/_redis_cart.py"
    return {c.lower() for body in bodies for c in re.findall(r"redis\.call\('(\w+)'", body)}


@pytest.mark.parametrize("name", CART_USERS)
def test_every_command_the_cart_scripts_call_is_granted_to_each_cart_user(name):
    needed = script_commands() | {"evalsha", "eval", "ping"}
    data_nodes = [(t, rules) for t, rules in users()[name] if t.name != "sentinel.acl"]
    assert data_nodes
    for template, rules in data_nodes:
        missing = needed - granted(rules)
        assert not missing, f"{template.relative_to(ROOT)}: {name} lacks {sorted(missing)} (NOPERM in service)"
        assert "~sl:*" in rules


def test_the_app_nodes_get_each_familys_password_and_never_the_admins():
    text = (ROOT / "docker-compose.yml").read_text()
    start = text.index("environment: &app-env")
    app_env = text[start:text.index("\n  depends_on:", start)]
    for variable in STORE_USERS.values():
        assert f"\n    {variable}: ${{{variable}:?" in app_env, variable
    assert "REDIS_PASSWORD:" not in app_env and "REDISCLI_AUTH" not in app_env


def test_make_env_generates_every_store_password_and_env_example_documents_it():
    make_env = (ROOT / "scripts" / "make-env.sh").read_text()
    example = (ROOT / ".env.example").read_text()
    for variable in ("REDIS_PASSWORD", *STORE_USERS.values()):
        assert re.search(rf"secrets=\([^)]*\b{variable}\b", make_env), variable
        assert f"\n{variable}=\n" in example, variable
