"""A stalled store through the whole stack (issue 16, docs/hardening.md "A stalled store"): a Cluster master
paused (SIGSTOP through the chaos CLI, which resolves the role at fault time) while cluster-wait users of its
shard and `none` users send requests through nginx. Every cluster-wait request is answered by the app with
JSON (200 or 503) before nginx's 5 s read timeout, so nginx never counts a node failed for it, and `none`
users never meet nginx's 502 (no live upstreams) or 504."""

from __future__ import annotations

import threading
import time

from redis.crc import key_slot

from loadtest.faults import store_roles
from session_lab.strategies._redis_cart import keys_of
from tests.e2e.test_stores import chaos, recover

NGINX_READ_TIMEOUT = 5.0  # proxy_read_timeout, loadbalancer/proxy.conf
SECONDS = 10.0  # the master is detected, its replica promoted (about 3 s), and the shard serves again


def send_for(client, seconds: float, answers: list, lock: threading.Lock, max_rounds: int = 80) -> None:
    """Adds and reads in turn for `seconds` (at most max_rounds: 40 adds, under MAX_CART_ITEMS 50)."""
    stop_at = time.monotonic() + seconds
    for round_ in range(max_rounds):
        if time.monotonic() >= stop_at:
            return
        started = time.monotonic()
        reply = client.add(f"item-{round_}") if round_ % 2 == 0 else client.cart()
        with lock:
            answers.append((client.strategy, reply, time.monotonic() - started))


def test_a_paused_cluster_master_costs_its_shard_503s_at_most_and_never_a_gateway_error(lab_tools):
    slots_of = {master["service"]: master["slots"] for master in store_roles.cluster_masters()}
    stalled_users = [lab_tools.client("cluster-wait") for _ in range(12)]
    none_users = [lab_tools.client("none") for _ in range(4)]
    for i, user in enumerate(stalled_users + none_users):
        assert user.login(f"user{i}").status == 200
    services = chaos(lab_tools, "pause", "cluster-master")
    answers: list = []
    lock = threading.Lock()
    try:
        ranges = slots_of[services[0]]
        on_shard = [u for u in stalled_users
                    if any(first <= key_slot(keys_of(u.session_id())[0].encode()) <= last for first, last in ranges)]
        threads = [threading.Thread(target=send_for, args=(u, SECONDS, answers, lock)) for u in on_shard + none_users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=SECONDS + 60)
    finally:
        recover(lab_tools, "pause", services)
    assert on_shard, f"no cluster-wait session on the paused master's slots {ranges}"
    none_answers = [reply for strategy, reply, _ in answers if strategy == "none"]
    assert none_answers and all(reply.status == 200 for reply in none_answers), \
        sorted({reply.status for reply in none_answers})
    stalled = [(reply, seconds) for strategy, reply, seconds in answers if strategy == "cluster-wait"]
    assert stalled
    for reply, seconds in stalled:
        assert reply.status in (200, 503) and isinstance(reply.body, dict), (reply.status, reply.body)
        assert reply.status == 200 or reply.body["error"] in ("store_unavailable", "write_not_confirmed")
        assert reply.headers.get("x-served-by"), "an answer of the app, not of nginx"
        assert seconds < NGINX_READ_TIMEOUT, f"answered after nginx's read timeout ({seconds:.1f} s)"
    assert "breakers" in lab_tools.get("/readyz").json()
