"""One user must never hurt another, seen through nginx: growing state to its limit, oversized credentials,
a login flood and slow clients. Unit tests behind Flask's test client cannot see what nginx does here."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

import pytest
import requests

from session_lab.limits import CREDENTIAL_MAX_BYTES
from tests.e2e.conftest import NODES, PORT
from tests.session_client import SessionClient

# Maximum-length items (MAX_ITEM_LENGTH 64): ASCII, and characters that cost 2 and 4 bytes in UTF-8.
ALPHABETS = {"ascii": "x", "latin": "é", "emoji": "\U0001F600"}


def kept_strategies(lab) -> list[str]:
    return [s["name"] for s in lab.strategies() if s["keeps_state"]]


def grow_to_the_limit(client: SessionClient, alphabet: str, tries: int = 60) -> tuple[list[int], list[str]]:
    """Add maximum-length items until the server refuses; (every status, the acknowledged items)."""
    assert client.login("u" * 64).status == 200
    statuses, acked = [], []
    for n in range(tries):
        item = f"{n:03d}" + alphabet * 61
        reply = client.add(item)
        statuses.append(reply.status)
        if reply.status == 200:
            acked.append(item)
        else:
            assert reply.body["error"] in ("cart_full", "state_too_large"), reply.body
    return statuses, acked


def others_on_every_node(lab) -> list[SessionClient]:
    """Users of every strategy that keeps shared state, logged in and with one item (round-robin: all nodes)."""
    shared = [s["name"] for s in lab.strategies() if s["keeps_state"] and not s["needs_sticky"]]
    users = []
    for name in shared:
        for n in range(3):
            c = lab.client(name)
            assert c.login(f"other-{name}-{n}").status == 200 and c.add("kept").status == 200
            users.append(c)
    return users


@pytest.mark.parametrize("alphabet", ALPHABETS.values(), ids=ALPHABETS.keys())
def test_growing_any_state_to_its_limit_gives_only_2xx_then_409_or_413(lab, alphabet):
    lab.switch_mode("sticky")  # so that the node-local strategy keeps its session too
    for name in kept_strategies(lab):
        client = lab.client(name)
        statuses, acked = grow_to_the_limit(client, alphabet)
        refused = statuses.index(next(s for s in statuses if s != 200))
        assert set(statuses[:refused]) == {200} and set(statuses[refused:]) <= {409, 413}, (name, statuses)
        assert acked, f"{name}: not one maximum-length item fitted"
        read = client.cart()
        assert read.status == 200 and read.body["items"] == acked, name  # a refused add changed nothing


def test_a_user_at_the_limit_in_a_loop_never_fails_another_user(lab):
    """The finding that started this: three oversized answers in a row took every node out of nginx."""
    hogs = []
    for name in [s["name"] for s in lab.strategies() if s["keeps_state"] and not s["needs_sticky"]]:
        hog = lab.client(name)
        grow_to_the_limit(hog, ALPHABETS["emoji"])
        hogs.append(hog)
    others = others_on_every_node(lab)
    stop, hog_statuses = threading.Event(), Counter()

    def hammer():
        deadline = time.monotonic() + 30
        for _ in range(300):  # bounded in count and time
            if stop.is_set() or time.monotonic() > deadline:
                return
            for hog in hogs:
                hog_statuses[hog.add("\U0001F600" * 64).status] += 1

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        served, nodes = Counter(), set()
        for _ in range(10):
            for c in others:
                reply = c.cart()
                served[reply.status] += 1
                nodes.add(reply.node)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert set(hog_statuses) <= {409, 413} and sum(hog_statuses.values()) > 30, hog_statuses
    assert served == Counter({200: 10 * len(others)}), served
    assert nodes == set(NODES)
    assert "too big header" not in lab.compose("logs", "lb")


def test_the_largest_credential_passes_and_a_larger_one_is_a_json_4xx(lab):
    lab.switch_mode("round-robin")
    for name in ("jwt", "client"):
        full = lab.client(name)
        grow_to_the_limit(full, ALPHABETS["ascii"])
        credential = full.token or full.client_state
        assert CREDENTIAL_MAX_BYTES - 100 < len(credential) <= CREDENTIAL_MAX_BYTES
        for _ in NODES:  # every node (round-robin) takes the largest credential there is
            assert full.cart().status == 200
    # The largest credential of each kind, all in one request: every node still accepts it.
    headers = {"Authorization": f"Bearer {'a' * CREDENTIAL_MAX_BYTES}", "X-Client-Session": "v1." + "b" * 3830,
               "Cookie": f"sl_client=v1.{'c' * 3830}; sl_redis={'d' * 43}; sl_memory={'e' * 43}"}
    for _ in NODES:
        r = requests.get(f"{lab.url}/api/jwt/cart", headers=headers, timeout=10)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"  # the app judged it, not a limit
    # Past what gunicorn's defaults took (8190) and below nginx's 16k line: the app answers, in JSON.
    r = requests.get(f"{lab.url}/api/client/cart", headers={"X-Client-Session": "v1." + "f" * 12_000}, timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    # Past nginx's line: nginx refuses, in JSON too.
    r = requests.get(f"{lab.url}/api/jwt/cart", headers={"Authorization": "Bearer " + "g" * 17_000}, timeout=10)
    assert r.status_code == 431 and r.json()["error"] == "header_too_large"


def test_a_login_flood_is_limited_and_ends_no_one_elses_session(lab):
    lab.switch_mode("sticky")
    others = others_on_every_node(lab)
    memory_user = lab.client("memory")
    assert memory_user.login("memory-survivor").status == 200 and memory_user.add("kept").status == 200
    others.append(memory_user)
    counted = [Counter() for _ in range(8)]  # one per thread, summed after

    def flood(first: int) -> None:
        flooder, statuses = requests.Session(), counted[first]
        for n in range(first, 400, 8):  # bounded: far past the burst (LOGIN_BURST=100)
            r = flooder.post(f"{lab.url}/api/memory/login", json={"user": f"flood-{n}"}, timeout=10)
            statuses[r.status_code] += 1
            if r.status_code == 429:
                assert r.json()["error"] == "too_many_logins" and r.headers["Retry-After"] == "1"

    # Eight at once: one after the other, 400 logins on a loaded host took longer than the limit needs to
    # refill them (50/s), and none was refused.
    flooders = [threading.Thread(target=flood, args=(first,)) for first in range(8)]
    for thread in flooders:
        thread.start()
    for thread in flooders:
        thread.join(timeout=120)
    statuses = sum(counted, Counter())
    assert sum(statuses.values()) == 400, statuses
    assert statuses[429] > 0 and statuses[200] > 0 and set(statuses) == {200, 429}, statuses
    for c in others:  # their sessions are untouched, and reads and adds are not rate limited
        reply = c.cart()
        assert reply.status == 200 and reply.body["items"] == ["kept"], (c.strategy, reply.body)
    time.sleep(2)  # the limit refills at LOGIN_RATE_LIMIT (50/s)
    assert lab.client("redis").login("after-the-flood").status == 200


def test_slow_clients_wait_on_nginx_not_on_app_threads(lab):
    """More dribbling requests than all nodes have threads (3 x 16): nginx reads each request whole before
    it picks a node, so everyone else is served as usual meanwhile."""
    lab.switch_mode("round-robin")
    slow = []
    try:
        for _ in range(3 * 16 + 12):
            s = socket.create_connection(("127.0.0.1", int(PORT)), timeout=5)
            s.sendall(b"POST /api/redis/login HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"user\":")  # and then nothing more
            slow.append(s)
        others = others_on_every_node(lab)
        nodes = {reply.node for c in others for reply in [c.cart()] if reply.status == 200}
        assert nodes == set(NODES)
        assert all(c.replies[-1].status == 200 for c in others)
    finally:
        for s in slow:
            s.close()
