"""The replicated strategies through nginx in sticky mode: a dead node's users reach its buddy, which serves
their carts from its copies; the node-to-node channel cannot be reached through the balancer."""

from __future__ import annotations

import json
import subprocess

import requests

from loadtest.lab import buddy
from session_lab.replication.channel import SIGNATURE, sign
from tests.e2e.conftest import ROOT


def users_on(lab, strategy: str, node: str, count: int) -> list:
    """Logged-in users whose session lives on `node` (new users are spread round-robin in sticky mode)."""
    found = []
    for n in range(30):
        user = lab.client(strategy)
        reply = user.login(f"{strategy}-{n}")
        assert reply.status == 200
        if reply.node == node:
            found.append(user)
        if len(found) == count:
            return found
    raise AssertionError(f"no {count} users landed on {node}")


def make(lab, *args: str) -> str:
    done = subprocess.run(["make", "-s", *args], cwd=ROOT, env=lab.tool_env(), capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_killing_a_node_mid_session_its_users_carts_are_intact_on_its_buddy(lab):
    make(lab, "lb", "MODE=sticky")
    users = {s: users_on(lab, s, "app2", 2) for s in ("replicated", "replicated-async")}
    bystander = users_on(lab, "replicated", "app3", 1)[0]
    for user in [*users["replicated"], *users["replicated-async"], bystander]:
        for item in ("tea", "jam"):
            assert user.add(item).status == 200
    try:
        make(lab, "kill-node", "NODE=app2", "HOLD=0")  # SIGKILL, left down
        for strategy, group in users.items():
            for user in group:
                reply = user.cart()
                assert reply.status == 200, reply.body
                assert reply.body["items"] == ["tea", "jam"] and reply.node == buddy("app2") == "app3"
                assert user.add("bread").body["items"] == ["tea", "jam", "bread"]
        assert bystander.cart().body["items"] == ["tea", "jam"]  # app3's own users: untouched
        ready = lab.get("/readyz", cookies={"sl_route": "app3"}).json()
        assert ready["node"] == "app3" and ready["details"]["replicated"]["adopted"] >= 2
    finally:
        lab.up("app2")
    # app3 copies what it adopted on to app1: app3 dying next loses nothing either.
    lab.compose("kill", "app3")
    try:
        for strategy, group in users.items():
            for user in group:
                reply = user.cart()
                assert reply.body["items"] == ["tea", "jam", "bread"] and reply.node == "app1"
    finally:
        lab.up("app3")


def test_both_a_node_and_its_buddy_down_is_a_401_for_its_users_and_other_strategies_carry_on(lab):
    lab.switch_mode("sticky")
    replicated = users_on(lab, "replicated", "app1", 1)[0]
    shared = users_on(lab, "redis", "app1", 1)[0]
    for user in (replicated, shared):
        assert user.add("tea").status == 200
    lab.compose("kill", "app1", "app2")  # app1's only copy lived on app2
    try:
        lost = replicated.cart()
        assert lost.status == 401 and lost.body["error"] == "unauthorized"
        kept = shared.cart()
        assert kept.status == 200 and kept.body["items"] == ["tea"] and kept.node == "app3"
    finally:
        lab.up("app1", "app2")


def test_the_replication_channel_is_not_reachable_through_the_balancer(lab):
    path = "/internal/replication/replicated/copy"
    secret = next(line.split("=", 1)[1] for line in lab.env_file.read_text().splitlines()
                  if line.startswith("REPLICATION_SECRET="))
    body = json.dumps({"from": "app1", "boot": "x", "seq": 1, "transfer": {"gen": "g", "phase": "begin"},
                       "sessions": [], "ended": []}).encode()
    for method, headers in (("GET", {}), ("POST", {}), ("POST", {SIGNATURE: sign(secret, path, body)})):
        r = requests.request(method, lab.url + path, data=body, timeout=10,
                             headers={"Content-Type": "application/json", **headers})
        assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
        assert "X-Served-By" not in r.headers  # nginx answered; no node saw it
    for variant in ("/internal/", "/Internal/replication/replicated/hello", "/internal%2Freplication/replicated/copy",
                    "//internal/replication/replicated/copy", "/api/../internal/replication/replicated/copy"):
        r = requests.post(lab.url + variant, data=body, timeout=10, headers={"Content-Type": "application/json"})
        assert "X-Served-By" not in r.headers or r.status_code == 404, (variant, r.status_code, r.text)
        assert r.status_code != 200, (variant, r.text)
