"""A stalled store (SIGSTOP: it accepts connections and answers nothing) through the real nginx in front of
three real app nodes (tests/integration/stalled_stores.py): every request of every strategy is answered by
the app, with JSON, before nginx's read timeout, so nginx never counts a node failed because of one
strategy's store; the strategies on other stores carry on; a flood of /readyz cannot take the node's threads.
Assertions on time are behaviours with a wide margin: "answered before nginx's 5 s", where the app's own
deadline is 2.5 s."""

from __future__ import annotations

import threading
import time

import pytest

from session_lab import strategies
from tests.integration.stalled_stores import NGINX_READ_TIMEOUT, STORE_OF_ROLE, STORE_ROLES, StallLab, keep_sending

pytestmark = pytest.mark.integration

CLASSES = {cls.name: cls for cls in strategies.classes()}
PAUSE_SECONDS = 4.0  # long enough for the old code to overrun nginx's 5 s with an add (a read, then a write)


@pytest.fixture(scope="module")
def stall_lab(tmp_path_factory):
    lab = StallLab(tmp_path_factory.mktemp("stall")).start()
    yield lab
    lab.stop()


@pytest.fixture
def lab(stall_lab):
    stall_lab.heal()
    yield stall_lab
    stall_lab.heal()


@pytest.mark.parametrize("role", STORE_ROLES)
def test_a_paused_store_answers_every_request_with_json_before_nginxs_timeout(lab, role):
    answers = []
    clients = lab.clients(answers)
    answers.clear()
    lab.pause(role, clients)
    keep_sending(clients, PAUSE_SECONDS)
    assert answers, "no request was sent"
    from_nginx = [a for a in answers if not a.served_by or a.status in (502, 504)]
    assert not from_nginx, f"nginx answered itself (its timeout or no live node): {from_nginx[:5]}"
    late = [a for a in answers if a.seconds >= NGINX_READ_TIMEOUT]
    assert not late, f"answered after nginx's read timeout: {late[:5]}"
    store = STORE_OF_ROLE[role]
    for answer in answers:
        cls = CLASSES[answer.strategy]
        if store in cls.dependencies:
            assert answer.status in (200, 503), answer
            assert answer.status == 200 or answer.error in ("store_unavailable", "write_not_confirmed"), answer
        elif cls.needs_sticky:  # round-robin: a node-local session is unknown on the other nodes
            assert answer.status in (200, 401), answer
        else:
            assert answer.status == 200, f"a strategy off the paused {store} store failed: {answer}"


def test_a_flood_of_readyz_while_a_store_is_paused_leaves_threads_for_other_users(lab):
    node = lab.ring["app1"]
    lab.redis.pause()
    stop = threading.Event()

    def flood():
        for _ in range(500):  # bounded; each answer takes at most its client timeout
            if stop.is_set():
                return
            try:
                node.request("GET", "/readyz")
            except OSError:
                pass

    flooders = [threading.Thread(target=flood) for _ in range(64)]  # 4x the node's 16 threads
    for thread in flooders:
        thread.start()
    try:
        time.sleep(1.0)  # let the flood fill the node's threads
        for _ in range(5):
            status, body, _ = node.request("POST", "/api/none/login", {"user": "alice"})  # client timeout: 5 s
            assert status == 200 and body["node"] == "app1"
    finally:
        stop.set()
        for thread in flooders:
            thread.join(timeout=30)
