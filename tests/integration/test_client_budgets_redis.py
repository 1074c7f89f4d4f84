"""One client cannot fill Redis (noeviction: a full Redis refuses every user's login and add with a 503): its
sessions per store are counted (REDIS_MAX_SESSIONS_PER_CLIENT, 429 too_many_sessions beyond), a session's
bytes are bounded (MAX_CART_ITEMS items of MAX_ITEM_LENGTH characters) and so are its adds per second
(MAX_ADDS_PER_SECOND, 429 too_many_adds). Here with a scaled-down maxmemory and quota, against a real
redis-server: the maxmemory holds the client's whole budget with room for others, as docker-compose.yml's
256mb does at the default budget (docs/hardening.md has the arithmetic)."""

from __future__ import annotations

import pytest

from session_lab import create_app
from tests.conftest import flask_sender
from tests.integration.acl import APP_PASSWORDS
from tests.session_client import SessionClient

pytestmark = pytest.mark.integration

QUOTA = 20
FULL_SESSION_BYTES = 21_000  # a cart of 50 emoji items of 64 characters with 64-character keys, measured: ~20.6 KB
EMOJI_ITEM = "\U0001F600" * 62


@pytest.fixture
def scaled_down(make_settings, redis_server, store, clock):
    """An app whose clients may hold QUOTA sessions each, over a Redis with room for the attacker's whole
    budget in each key family (the lab's strategies' and the peer's) plus 1 MB, and nothing like for 200
    full sessions."""
    settings = make_settings(REDIS_PORT=str(redis_server.port), **APP_PASSWORDS,
                             REDIS_MAX_SESSIONS_PER_CLIENT=str(QUOTA), MAX_CART_ITEMS="50")
    used = store.info("memory")["used_memory"]
    store.config_set("maxmemory", used + 2 * QUOTA * FULL_SESSION_BYTES + 1_000_000)
    store.config_set("maxmemory-policy", "noeviction")
    yield create_app(settings, clock=clock)
    store.config_set("maxmemory", 0)


def client_at(app, address: str, strategy: str) -> SessionClient:
    send = flask_sender(app)
    return SessionClient(strategy, lambda method, path, headers=None, json=None: send(
        method, path, {**(headers or {}), "X-Forwarded-For": address}, json))


def fill(app, strategy: str, address: str, sessions: int) -> list[int]:
    """Up to `sessions` logins from `address`, each session filled with 50 maximum-size items; the login
    statuses."""
    statuses = []
    for n in range(sessions):
        attacker = client_at(app, address, strategy)
        login = attacker.login(f"fill-{n}")
        statuses.append(login.status)
        if login.status != 200:
            assert login.body["error"] == "too_many_sessions", login.body
            continue
        for i in range(50):
            assert attacker.add(f"{i:02d}{EMOJI_ITEM}").status == 200
    return statuses


@pytest.mark.parametrize("strategy", ["redis", "flask-session"])
def test_one_client_trying_to_fill_redis_leaves_others_logging_in_and_adding(scaled_down, store, strategy):
    statuses = fill(scaled_down, strategy, "198.51.100.9", 200)
    assert statuses == [200] * QUOTA + [429] * (200 - QUOTA)
    for n in range(10):  # other clients, each with its own budget
        other = client_at(scaled_down, f"203.0.113.{n}", strategy)
        assert other.login(f"other-{n}").status == 200
        assert [other.add(f"item-{i}").status for i in range(5)] == [200] * 5
        assert other.cart().body["items"] == [f"item-{i}" for i in range(5)]


@pytest.mark.parametrize("strategy", ["redis", "flask-session"])
def test_a_logout_gives_the_client_its_session_back(scaled_down, strategy):
    clients = [client_at(scaled_down, "198.51.100.9", strategy) for _ in range(QUOTA + 1)]
    assert [c.login("ada").status for c in clients] == [200] * QUOTA + [429]
    assert clients[0].logout().status == 200
    assert clients[-1].login("ada").status == 200


def test_adds_to_one_session_are_limited_per_second(make_settings, redis_server, store, clock):
    app = create_app(make_settings(REDIS_PORT=str(redis_server.port), **APP_PASSWORDS,
                                   MAX_CART_ITEMS="50", MAX_ADDS_PER_SECOND="60"), clock=clock)
    ada = client_at(app, "203.0.113.7", "redis")
    assert ada.login("ada").status == 200
    statuses = [ada.add(f"item-{n}").status for n in range(61)]  # the test's clock stands still: one second
    assert statuses == [200] * 50 + [409] * 10 + [429]
    assert ada.replies[-1].body["error"] == "too_many_adds"
    assert len(ada.cart().body["items"]) == 50
    clock.advance(1)
    assert ada.add("one more").status == 409  # a new second: the cart's own limit again
