"""A slow store must never eject healthy nodes (issue 16): one deadline per request bounds every store call,
a breaker per store fails fast once it is known down, a bulkhead keeps one store from taking every thread,
and an add nginx replays with the same request id is applied once. No Redis here: a frozen store is a socket
that accepts and never answers (what a SIGSTOPped redis-server does), and an unreachable one is port 1."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis
from redis.exceptions import RedisClusterException

from session_lab import deadline, redis_client
from session_lab.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, Guard
from session_lab.config import ConfigError, Settings
from session_lab.errors import StoreUnavailable
from session_lab.single_flight import SingleFlight
from session_lab.stores import ClusterShard, SentinelPrimary
from tests.conftest import FakeClock, settings_env

# What "answered before nginx's timeout" means in these tests: well under proxy_read_timeout's 5 s, far
# above the deadline under test, so a loaded host does not make them flaky.
NGINX_READ_TIMEOUT = 5.0


@pytest.fixture
def frozen_store():
    """A listening socket that accepts connections (the kernel does it) and never answers a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def test_a_frozen_store_answers_within_the_request_deadline_not_its_socket_timeout(frozen_store):
    client = redis_client.client("127.0.0.1", frozen_store, socket_connect_timeout=30, socket_timeout=30,
                                 retry=redis_client.RETRY)
    started = time.monotonic()
    with client, deadline.within(0.3), pytest.raises(redis.TimeoutError):
        client.ping()
    assert time.monotonic() - started < NGINX_READ_TIMEOUT, "the 30 s socket timeout was not shrunk to the deadline"


@pytest.fixture
def frozen_stores():
    """Three listening sockets that never answer: sentinels or cluster startup nodes, all frozen."""
    servers = [socket.socket() for _ in range(3)]
    for server in servers:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
    yield " ".join(f"127.0.0.1:{server.getsockname()[1]}" for server in servers)
    for server in servers:
        server.close()


@pytest.mark.parametrize("store_class, addresses", [(SentinelPrimary, "SENTINEL_ADDRESSES"),
                                                     (ClusterShard, "CLUSTER_NODES")])
def test_redis_pys_own_loops_over_frozen_nodes_end_with_the_deadline(frozen_stores, store_class, addresses):
    """Sentinel discovery asks each sentinel in turn, a cluster client each startup node: 3 x 10 s each
    without the deadline."""
    settings = Settings.from_env(settings_env(**{addresses: frozen_stores}, REDIS_CONNECT_TIMEOUT="10",
                                              REDIS_SOCKET_TIMEOUT="10", STORE_RETRY_BUDGET="1",
                                              REQUEST_DEADLINE="1"))
    store = store_class(settings)
    started = time.monotonic()
    with deadline.within(0.3), pytest.raises((redis.RedisError, RedisClusterException)):
        store.ping()
    assert time.monotonic() - started < NGINX_READ_TIMEOUT


def test_past_the_deadline_nothing_is_sent(frozen_store):
    client = redis_client.client("127.0.0.1", frozen_store, socket_timeout=30)
    with client, deadline.within(-1), pytest.raises(deadline.DeadlinePassed):
        client.ping()


def test_outside_a_request_the_configured_timeouts_apply():
    connection = redis_client.Connection(socket_timeout=1.0, socket_connect_timeout=0.5)
    assert (connection.socket_timeout, connection.socket_connect_timeout) == (1.0, 0.5)


def test_the_deadline_is_half_nginxs_read_timeout_and_bounds_the_retry_budget():
    settings = Settings.from_env(settings_env(STORE_RETRY_BUDGET=""))
    assert settings.request_deadline == 2.5 and settings.store_retry_budget <= settings.request_deadline
    with pytest.raises(ConfigError, match="REQUEST_DEADLINE"):
        Settings.from_env(settings_env(REQUEST_DEADLINE="4"))
    with pytest.raises(ConfigError, match="STORE_RETRY_BUDGET"):
        Settings.from_env(settings_env(REQUEST_DEADLINE="1", STORE_RETRY_BUDGET="2"))


# --- the breaker -------------------------------------------------------------------------------------------


def test_the_breaker_opens_after_failures_in_a_row_and_fails_fast():
    clock = FakeClock()
    breaker = Breaker(failures=3, open_seconds=2.0, clock=clock)
    for _ in range(2):
        breaker.failed()
    breaker.succeeded()  # a success in between: not in a row
    for _ in range(2):
        breaker.failed()
    assert breaker.state == CLOSED and breaker.allow()
    breaker.failed()
    assert breaker.state == OPEN and not breaker.allow()
    assert breaker.retry_after() == 2


def test_a_half_open_breaker_lets_one_probe_through_and_closes_on_its_success():
    clock = FakeClock()
    breaker = Breaker(failures=1, open_seconds=1.0, clock=clock)
    breaker.failed()
    clock.advance(1.0)
    assert breaker.state == HALF_OPEN
    assert breaker.allow(), "the probe"
    assert not breaker.allow(), "one probe at a time: the others still fail fast"
    breaker.succeeded()
    assert breaker.state == CLOSED and breaker.allow()


def test_a_failed_probe_opens_the_breaker_again():
    clock = FakeClock()
    breaker = Breaker(failures=5, open_seconds=1.0, clock=clock)
    for _ in range(5):
        breaker.failed()
    clock.advance(1.0)
    assert breaker.allow()
    breaker.failed()
    assert breaker.state == OPEN and not breaker.allow()


def test_the_bulkhead_refuses_a_call_beyond_its_places_with_a_503():
    guard = Guard("redis", Breaker(3, 1.0), max_concurrent=1)
    inside, release = threading.Event(), threading.Event()

    def hold():
        with guard.call(lambda exc: True):
            inside.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(5)
        with pytest.raises(StoreUnavailable) as refused:
            with guard.call(lambda exc: True):
                pass
        assert refused.value.retry_after == 1
        assert guard.refused == {"bulkhead_full": 1}, "counted, for /readyz to show what the bulkhead cost"
    finally:
        release.set()
        holder.join(5)
    with guard.call(lambda exc: True):  # the place is free again
        pass


def test_an_unreachable_store_opens_its_breaker_and_then_answers_503_with_retry_after(app):
    http = app.test_client()
    answers = [http.post("/api/redis/login", json={"user": "alice"}) for _ in range(4)]
    assert all(a.status_code == 503 and a.get_json()["error"] == "store_unavailable" for a in answers)
    assert "Retry-After" not in answers[0].headers, "the store was not known down yet"
    assert answers[-1].headers["Retry-After"] == "1" and "circuit open" in answers[-1].get_json()["message"]
    ready = http.get("/readyz").get_json()
    assert ready["breakers"]["redis"] == OPEN
    assert http.post("/api/none/login", json={"user": "bob"}).status_code == 200, "other strategies carry on"


# --- exactly-once replays without an Idempotency-Key -----------------------------------------------------


REQUEST_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("strategy", ["memory", "replicated", "replicated-async"])
def test_an_add_replayed_with_the_same_request_id_is_applied_once(session_client, strategy):
    c = session_client(strategy)
    assert c.login("alice").status == 200
    for _ in range(2):  # nginx's replay on the same node, after the first answer was lost
        reply = c.add("apple", headers={"X-Request-Id": REQUEST_ID})
        assert reply.status == 200
    assert c.cart().body["items"] == ["apple"]


@pytest.mark.parametrize("request_id", ["not-hex-" + "0" * 24, REQUEST_ID.upper(), REQUEST_ID + "0", ""])
def test_a_request_id_not_shaped_like_nginxs_is_no_operation_key(session_client, request_id):
    c = session_client("memory")
    c.login("alice")
    for _ in range(2):
        assert c.add("apple", headers={"X-Request-Id": request_id}).status == 200
    assert c.cart().body["items"] == ["apple", "apple"], "two requests, two adds"


def test_the_clients_idempotency_key_wins_over_the_request_id(session_client):
    c = session_client("memory")
    c.login("alice")
    for request_id in (REQUEST_ID, "f" * 32):  # two client requests, one key: the client's own retry
        assert c.add("apple", headers={"X-Request-Id": request_id, "Idempotency-Key": "k1"}).status == 200
    assert c.cart().body["items"] == ["apple"]


# --- the instruments ---------------------------------------------------------------------------------------


def test_while_one_request_refreshes_an_instrument_the_others_get_the_last_answer_at_once():
    clock = FakeClock()
    flight = SingleFlight(max_age=1.0, clock=clock)
    assert flight.get(lambda: "first", lambda: "unknown")[0] == "first"
    clock.advance(2.0)
    refreshing, release = threading.Event(), threading.Event()

    def slow_refresh():
        refreshing.set()
        release.wait(5)
        return "second"

    refresher = threading.Thread(target=lambda: flight.get(slow_refresh, lambda: "unknown"))
    refresher.start()
    try:
        assert refreshing.wait(5)
        assert flight.get(lambda: pytest.fail("a second refresh ran"), lambda: "unknown")[0] == "first"
    finally:
        release.set()
        refresher.join(5)
    assert flight.get(lambda: "third", lambda: "unknown")[0] == "second"
