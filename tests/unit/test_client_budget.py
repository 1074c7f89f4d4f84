"""One client cannot push other clients' sessions out of a node's memory (memory, replicated): its logins
beyond its quota push out its own oldest, and the store-wide limits take from the client holding the most.
The client is the address nginx forwards (X-Forwarded-For, one hop, read by ProxyFix)."""

from __future__ import annotations

import pytest

from session_lab import create_app, session_format
from session_lab.config import Settings
from session_lab.strategies.base import new_session_id
from session_lab.strategies.replicated import Replicated
from tests.conftest import flask_sender, settings_env
from tests.session_client import SessionClient

SECRET = "unit-test-replication-secret-0123456789abcdef"
NODE_LOCAL = ["memory", "replicated", "replicated-async"]  # without peers, replicated is a memory store


def client_from(app, address: str, strategy: str) -> SessionClient:
    send = flask_sender(app)
    return SessionClient(strategy, lambda method, path, headers=None, json=None: send(
        method, path, {**(headers or {}), "X-Forwarded-For": address}, json))


def flood(app, strategy: str, address: str, logins: int) -> None:
    http = app.test_client(use_cookies=False)  # a new session each time, none ended
    for n in range(logins):
        r = http.post(f"/api/{strategy}/login", json={"user": f"flood-{n}"}, headers={"X-Forwarded-For": address})
        assert r.status_code == 200


@pytest.mark.parametrize("strategy", NODE_LOCAL)
def test_one_clients_5000_logins_leave_another_clients_session_alive(make_settings, clock, strategy):
    app = create_app(make_settings(MEMORY_MAX_SESSIONS="1000", MEMORY_MAX_SESSIONS_PER_CLIENT="100"), clock=clock)
    ana = client_from(app, "203.0.113.7", strategy)
    assert ana.login("ana").status == 200 and ana.add("kept").status == 200
    flood(app, strategy, "198.51.100.9", 5000)
    reply = ana.cart()
    assert reply.status == 200 and reply.body["items"] == ["kept"]
    assert len(app.extensions["session_lab.strategies"][strategy]) == 101  # the flooder kept its newest 100


@pytest.mark.parametrize("strategy", NODE_LOCAL)
def test_the_store_wide_cap_takes_from_the_client_holding_the_most(make_settings, clock, strategy):
    app = create_app(make_settings(MEMORY_MAX_SESSIONS="50", MEMORY_MAX_SESSIONS_PER_CLIENT="1000"), clock=clock)
    users = [client_from(app, f"203.0.113.{n}", strategy) for n in range(1, 11)]
    for n, user in enumerate(users):
        assert user.login(f"user{n}").status == 200
    flood(app, strategy, "198.51.100.9", 500)  # many clients' worth: the cap, not the quota, bites
    assert [u.cart().status for u in users] == [200] * 10  # the oldest sessions, but each its client's only one


def test_the_byte_budget_takes_from_the_client_holding_the_most(make_settings, clock):
    app = create_app(make_settings(MEMORY_MAX_MB="1", MAX_CART_ITEMS="50"), clock=clock)
    ana = client_from(app, "203.0.113.7", "memory")
    assert ana.login("ana").status == 200 and ana.add("kept").status == 200
    for n in range(60):  # 60 sessions of 50 emoji items of 64 characters: about 1.5 MiB, over the budget
        big = client_from(app, "198.51.100.9", "memory")
        assert big.login(f"big-{n}").status == 200
        for i in range(50):
            assert big.add(f"{i:02d}" + "\U0001F600" * 62).status == 200
    store = app.extensions["session_lab.strategies"]["memory"]
    assert store._ledger.bytes <= 2**20 and len(store) < 60
    assert ana.cart().body["items"] == ["kept"]


def test_a_buddy_budgets_its_wards_copies_by_client_too(clock):
    env = settings_env(NODE_NAME="app2", REPLICATION_PEERS="app1=127.0.0.1:1 app2=127.0.0.1:2 app3=127.0.0.1:3",
                       REPLICATION_SECRET=SECRET, MEMORY_MAX_SESSIONS="1000", MEMORY_MAX_SESSIONS_PER_CLIENT="100")
    buddy = Replicated(Settings.from_env(env), clock=clock)
    ana = new_session_id()
    buddy.on_copy({"from": "app1", "sessions": [copy_of(ana, client="203.0.113.7")]})
    for _ in range(50):  # 5,000 copies of one other client's sessions
        buddy.on_copy({"from": "app1", "sessions": [copy_of(new_session_id(), client="198.51.100.9")
                                                    for _ in range(100)]})
    assert ana in buddy._copies and buddy.report()["copies"] == 101


def copy_of(sid: str, client: str) -> dict:
    """A session copy as a ward sends it, naming the client that owns the session."""
    return {"sid": sid, "user": "ada", "items": [], "created": 1_800_000_000.0, "version": 0, "keys": [],
            "client": client, session_format.FIELD: session_format.FORMAT}
