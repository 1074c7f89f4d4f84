"""The memory strategy: one locked store per process, bounded, with atomic adds."""

import threading

from session_lab import create_app
from tests.conftest import flask_sender
from tests.session_client import SessionClient


def test_concurrent_adds_to_one_session_all_survive(make_settings, clock):
    app = create_app(make_settings(MAX_CART_ITEMS="500"), clock=clock)
    alice = SessionClient("memory", flask_sender(app))
    alice.login("alice")
    sid = alice.replies[-1].headers["set-cookie"].split(";")[0].split("=", 1)[1]

    def add_many(worker):
        http = app.test_client()
        http.set_cookie("sl_memory", sid)
        for i in range(25):
            r = http.post("/api/memory/cart", json={"item": f"w{worker}-{i}"})
            assert r.status_code == 200

    threads = [threading.Thread(target=add_many, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    items = alice.cart().body["items"]
    assert len(items) == 200 and set(items) == {f"w{w}-{i}" for w in range(8) for i in range(25)}


def test_store_is_bounded_and_evicts_least_recently_used(make_settings, clock):
    app = create_app(make_settings(MEMORY_MAX_SESSIONS="3"), clock=clock)
    users = [SessionClient("memory", flask_sender(app)) for _ in range(4)]
    for n, user in enumerate(users[:3]):
        user.login(f"user{n}")
    users[0].cart()  # user0 is now the most recently used
    users[3].login("user3")
    assert len(app.extensions["session_lab.strategies"]["memory"]) == 3
    assert users[1].cart().status == 401  # the least recently used went first
    assert [u.cart().status for u in (users[0], users[2], users[3])] == [200, 200, 200]


def test_unknown_and_malformed_ids_are_401(app):
    http = app.test_client()
    for value in ["A" * 43, "short", "../../etc/passwd", "x" * 4000]:
        http.set_cookie("sl_memory", value)
        reply = http.get("/api/memory/cart")
        assert reply.status_code == 401 and reply.get_json()["error"] == "unauthorized"
