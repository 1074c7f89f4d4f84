"""The Sentinel group and the Cluster through nginx: a store failover is latency or a 503 JSON answer,
never a gateway error (the app's retry budget ends before nginx's proxy_read_timeout), and a lost shard
touches only its own sessions. Faults go through the chaos CLI, which resolves the store role at fault time."""

from __future__ import annotations

import subprocess
import sys
import time

from redis.crc import key_slot

from loadtest.faults import store_roles
from tests.e2e.conftest import ROOT


def chaos(lab, fault: str, target: str) -> list[str]:
    """Fault `target` and leave it faulted (--hold 0); the services it resolved to."""
    done = subprocess.run([sys.executable, "-m", "loadtest.faults.chaos", "--fault", fault, "--target", target,
                           "--hold", "0"], cwd=ROOT, env=lab.tool_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.rsplit("--recover ", 1)[1].split()[0].split(",")


def recover(lab, fault: str, services: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "loadtest.faults.chaos", "--fault", fault, "--recover",
                           ",".join(services)], cwd=ROOT, env=lab.tool_env(), capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 90
    while store_roles.whole() and time.monotonic() < deadline:
        time.sleep(1)
    assert store_roles.whole() is None, "the stores did not become whole again"


def test_the_new_strategies_are_listed_with_their_traits(lab):
    listed = {s["name"]: s for s in lab.strategies()}
    assert listed["sentinel-wait"]["confirms_writes"] and not listed["sentinel"]["confirms_writes"]
    assert listed["cluster"]["dependencies"] == ["cluster"] and listed["cluster"]["credential"] == "cookie sl_cluster"
    ready = lab.get("/readyz").json()["checks"]
    assert ready["sentinel"] == "ok" and ready["cluster"] == "ok"


def test_paused_sentinel_primary_is_latency_or_503_never_a_gateway_error(lab_tools):
    alice = lab_tools.client("sentinel-wait")
    alice.login("alice")
    assert alice.add("before").status == 200
    services = chaos(lab_tools, "pause", "sentinel-primary")
    answers = []
    try:
        deadline = time.monotonic() + 10  # the failover takes about 3 s; 10 s of adds see it through
        while time.monotonic() < deadline and len(answers) < 40:  # MAX_CART_ITEMS is 50
            item = f"during-{len(answers)}"
            started = time.monotonic()
            reply = alice.add(item)
            answers.append((item, reply, time.monotonic() - started))
            time.sleep(0.2)
    finally:
        recover(lab_tools, "pause", services)
    statuses = [reply.status for _, reply, _ in answers]
    assert set(statuses) <= {200, 503}, f"nginx gave up on a retrying node: {statuses}"
    assert all(reply.body.get("error") for _, reply, _ in answers if reply.status == 503)
    assert max(seconds for *_, seconds in answers) < 5, "every answer came before nginx's 5 s read timeout"
    assert statuses[-1] == 200, "the promoted replica serves the session"
    acked = ["before"] + [item for item, reply, _ in answers if reply.status == 200]
    items = alice.cart().body["items"]
    assert [i for i in items if i in acked] == acked, "every acknowledged item survived, in order"


def test_a_lost_cluster_shard_is_503_for_its_sessions_only(lab_tools):
    users = [lab_tools.client("cluster") for _ in range(9)]
    for i, user in enumerate(users):
        assert user.login(f"user{i}").status == 200
        assert user.add("apple").status == 200
    slots = {master["service"]: master["slots"] for master in store_roles.cluster_masters()}
    services = chaos(lab_tools, "kill", "cluster-shard")  # a master and its replica
    try:
        gone = slots[services[0]]
        assert gone, f"{services[0]} served no slots before the fault"
        for user in users:
            slot = key_slot(user.session_id().encode())
            started = time.monotonic()
            reply = user.cart()
            assert time.monotonic() - started < 5
            if any(first <= slot <= last for first, last in gone):
                assert reply.status == 503 and reply.body["error"] == "store_unavailable"
            else:
                assert reply.status == 200 and reply.body["items"] == ["apple"], (slot, gone, services, reply)
    finally:
        recover(lab_tools, "kill", services)
    for user in users:  # back from their append-only files: nothing lost
        assert user.cart().body["items"] == ["apple"]
