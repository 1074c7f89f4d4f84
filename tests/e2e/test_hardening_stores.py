"""The stores' hardening on the running stack (docs/hardening.md: "Store credentials", "The peer's pickle",
"JWT logouts"): a pickle planted under the peer's prefix runs nothing on any node, a jwt logout made while
Redis refuses writes reaches every node once Redis recovers, and the carts' Redis user (its password from
.env) cannot FLUSHALL; the nodes hold no admin password."""

from __future__ import annotations

import pickle
import secrets
import subprocess
import time

import requests

from tests.e2e.conftest import NODES, PROJECT, ROOT

PEER_COOKIE = "sl_flask_session"


def cli(lab, service: str, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> str:
    """`docker compose exec` in one service, its output (stdout and stderr) whatever its exit code: redis-cli
    prints a refused command's error and may still exit 0."""
    extra = [arg for name, value in (env or {}).items() for arg in ("-e", f"{name}={value}")]
    cmd = ["docker", "compose", "-p", PROJECT, "--env-file", str(lab.env_file), "exec", "-T", *extra, service, *args]
    done = subprocess.run(cmd, cwd=ROOT, env=lab.env, input=stdin, capture_output=True, timeout=60)
    return (done.stdout + done.stderr).decode(errors="replace")


def dotenv(lab, name: str) -> str:
    for line in lab.env_file.read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name} is not in {lab.env_file}")


def on_node(lab, node: str, path: str, **kwargs) -> requests.Response:
    """One request pinned to `node` through nginx: in sticky mode the sl_route cookie picks the node."""
    cookies = {"sl_route": node, **kwargs.pop("cookies", {})}
    return requests.get(f"{lab.url}{path}", cookies=cookies, timeout=10, **kwargs)


class CreatesAFile:
    """A pickle whose loading creates `path`: what an attacker who can write Redis would plant."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def test_a_pickle_planted_under_the_peers_prefix_runs_nothing(lab):
    lab.switch_mode("sticky")
    marker = f"/tmp/session-lab-planted-pickle-{secrets.token_hex(8)}"
    sid = secrets.token_urlsafe(32)  # the shape of a real session id, so every node looks it up
    key = f"fs:{sid}"
    planted = cli(lab, "redis", "redis-cli", "-x", "SET", key, stdin=pickle.dumps(CreatesAFile(marker), protocol=4))
    assert "OK" in planted, planted  # as the admin user (REDISCLI_AUTH in the redis container)
    try:
        for node in NODES:
            for _ in range(2):  # a read twice, so a node that would unpickle has every chance to
                r = on_node(lab, node, "/api/flask-session/cart", cookies={PEER_COOKIE: sid})
                assert r.headers["X-Served-By"] == node
                assert r.status_code == 401 and r.json()["error"] == "unauthorized", r.text
        for node in NODES:
            assert cli(lab, node, "sh", "-c", f"test -e {marker} && echo RAN || echo CLEAN").strip() == "CLEAN", node
    finally:
        cli(lab, "redis", "redis-cli", "DEL", key)


def test_a_logout_made_while_redis_refuses_writes_is_refused_on_every_node_once_it_recovers(lab):
    lab.switch_mode("sticky")
    alice = lab.client("jwt")
    alice.login("alice")
    token = alice.token
    bearer = {"Authorization": f"Bearer {token}"}
    for node in NODES:  # every node knows the token, and listens
        assert on_node(lab, node, "/api/jwt/cart", headers=bearer).status_code == 200
    maxmemory = cli(lab, "redis", "redis-cli", "CONFIG", "GET", "maxmemory").split()[1]
    assert "OK" in cli(lab, "redis", "redis-cli", "CONFIG", "SET", "maxmemory", "1")  # every write refused (OOM)
    try:
        answer = alice.logout()
        assert answer.status == 200, answer.body  # kept pending on the node that served it, retried
        served = answer.node
        assert on_node(lab, served, "/api/jwt/cart", headers=bearer).status_code == 401  # that node: at once
        ready = on_node(lab, served, "/readyz").json()["checks"]["jwt-revocations"]
        assert ready.startswith("not propagating"), ready
        time.sleep(2)  # several retries, all refused
    finally:
        assert "OK" in cli(lab, "redis", "redis-cli", "CONFIG", "SET", "maxmemory", maxmemory)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
            on_node(lab, n, "/api/jwt/cart", headers=bearer).status_code != 401 for n in NODES):
        time.sleep(0.2)
    assert [on_node(lab, n, "/api/jwt/cart", headers=bearer).status_code for n in NODES] == [401] * len(NODES)


def test_the_cart_user_cannot_flushall(lab):
    alice = lab.client("redis")
    alice.login("alice")
    alice.add("apple")
    as_cart = {"REDISCLI_AUTH": dotenv(lab, "REDIS_CART_PASSWORD")}
    assert cli(lab, "redis", "redis-cli", "--user", "redis-cart", "PING", env=as_cart).strip() == "PONG"
    for command in (["FLUSHALL"], ["CONFIG", "SET", "maxmemory", "1"], ["KEYS", "*"], ["GET", "fs:x"]):
        out = cli(lab, "redis", "redis-cli", "--user", "redis-cart", *command, env=as_cart)
        assert "NOPERM" in out, (command, out)
    assert alice.cart().body["items"] == ["apple"]  # nothing was flushed


def test_the_nodes_hold_each_familys_password_and_never_the_admins(lab):
    for node in NODES:
        names = {line.split("=", 1)[0] for line in cli(lab, node, "env").splitlines()}
        assert "REDIS_CART_PASSWORD" in names and "CLUSTER_CART_PASSWORD" in names, node
        assert not names & {"REDIS_PASSWORD", "REDISCLI_AUTH"}, node
