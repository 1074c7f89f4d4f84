"""The redis strategy against a real Redis server."""

import threading

import pytest

from session_lab import create_app, strategies
from tests.conftest import flask_sender
from tests.integration.acl import APP_PASSWORDS
from tests.session_client import SessionClient
from tests.strategy_contract import CONTRACT

# Strategies over the one Redis of this module's fixture; Sentinel and Cluster have test_ha_stores.py.
WITH_SERVICES = [c.name for c in strategies.classes() if c.dependencies == ("redis",)]


@pytest.mark.parametrize("strategy", WITH_SERVICES)
@pytest.mark.parametrize("check", CONTRACT, ids=lambda f: f.__name__)
def test_contract(session_client, clock, settings, strategy, check):
    check(lambda: session_client(strategy), clock, settings)


def test_session_keys_share_one_cluster_slot_and_expire(session_client, store, settings):
    alice = session_client("redis")
    alice.login("alice")
    alice.add("apple")
    sid = alice.session_id()
    meta, items = f"sl:{{{sid}}}:meta", f"sl:{{{sid}}}:items"
    assert store.hgetall(meta)["user"] == "alice" and store.lrange(items, 0, -1) == ["apple"]
    for key in (meta, items):
        assert 0 < store.pttl(key) <= settings.idle_timeout * 1000


def test_reads_refresh_the_ttl_once_the_refresh_interval_passed(session_client, store, clock, settings):
    alice = session_client("redis")
    alice.login("alice")
    meta = f"sl:{{{alice.session_id()}}}:meta"
    store.pexpire(meta, 5_000)
    alice.cart()  # soon after the login: the script writes nothing
    assert store.pttl(meta) <= 5_000
    clock.advance(settings.refresh_after)
    alice.cart()
    assert store.pttl(meta) > 5_000 and store.hget(meta, "seen") == str(int(clock() * 1000))


def test_concurrent_adds_to_one_session_all_survive(make_settings, redis_server, store, clock):
    app = create_app(
        # The test's clock stands still: all 200 adds fall in one second of it, over the default limit.
        make_settings(REDIS_PORT=str(redis_server.port), **APP_PASSWORDS, MAX_CART_ITEMS="500",
                      MAX_ADDS_PER_SECOND="1000"),
        clock=clock,
    )
    alice = SessionClient("redis", flask_sender(app))
    alice.login("alice")
    sid = alice.session_id()
    failures = []

    def add_many(worker):
        http = app.test_client()
        http.set_cookie("sl_redis", sid)
        for i in range(25):
            r = http.post("/api/redis/cart", json={"item": f"w{worker}-{i}"})
            if r.status_code != 200:
                failures.append(r.get_json())

    threads = [threading.Thread(target=add_many, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    cart = alice.cart().body
    assert len(cart["items"]) == 200 and cart["version"] == 200
    assert set(cart["items"]) == {f"w{w}-{i}" for w in range(8) for i in range(25)}


def test_an_add_never_resurrects_an_expired_session(session_client, store):
    alice = session_client("redis")
    alice.login("alice")
    sid = alice.session_id()
    store.delete(f"sl:{{{sid}}}:meta")  # as if its TTL ran out
    assert alice.add("apple").status == 401
    assert not store.exists(f"sl:{{{sid}}}:items")


def test_login_drops_the_previous_session(session_client, store):
    alice = session_client("redis")
    alice.login("alice")
    first = alice.session_id()
    alice.login("alice")
    assert alice.session_id() != first and not store.exists(f"sl:{{{first}}}:meta")


def test_logout_deletes_the_session(session_client, store):
    alice = session_client("redis")
    alice.login("alice")
    alice.add("apple")
    sid = alice.session_id()
    alice.logout()
    assert store.keys(f"sl:{{{sid}}}:*") == []


def test_wrong_password_is_503_not_500(make_settings, redis_server, clock):
    settings = make_settings(REDIS_PORT=str(redis_server.port), REDIS_CART_PASSWORD="wrong-password")
    app = create_app(settings, clock=clock)
    reply = app.test_client().post("/api/redis/login", json={"user": "alice"})
    assert reply.status_code == 503 and reply.get_json()["error"] == "store_unavailable"


def test_redis_dying_mid_session_gives_503_then_401_after_it_returns_empty(session_client, redis_server):
    alice = session_client("redis")
    alice.login("alice")
    alice.add("apple")
    redis_server.stop()
    assert alice.cart().status == 503
    assert alice.add("pear").status == 503
    redis_server.start()  # no persistence: the session is gone, and the app says so
    reply = alice.cart()
    assert reply.status == 401 and "unknown session" in reply.body["message"]


def test_readiness_reports_redis(app):
    # This fixture has no Sentinel or Cluster, so readiness as a whole is 503; redis' own check is what counts.
    assert app.test_client().get("/readyz").get_json()["checks"]["redis"] == "ok"


def test_idempotency_keys_live_and_die_with_the_session(session_client, store, settings):
    alice = session_client("redis")
    alice.login("alice")
    sid = alice.session_id()
    for _ in range(2):
        reply = alice.send("POST", "/api/redis/cart", json={"item": "apple"}, headers={"Idempotency-Key": "k1"})
        assert reply.body["items"] == ["apple"] and reply.body["version"] == 1
    keys = f"sl:{{{sid}}}:keys"
    assert store.smembers(keys) == {"k1"} and 0 < store.pttl(keys) <= settings.idle_timeout * 1000
    alice.logout()
    assert not store.exists(keys)


def test_a_refused_add_does_not_burn_its_key(session_client, settings):
    alice = session_client("redis")
    alice.login("alice")
    for i in range(settings.max_cart_items):
        alice.add(f"item-{i}")
    full = alice.send("POST", "/api/redis/cart", json={"item": "late"}, headers={"Idempotency-Key": "late"})
    assert full.status == 409
    assert alice.send("POST", "/api/redis/cart", json={"item": "late"},
                      headers={"Idempotency-Key": "late"}).status == 409  # refused again, not "already applied"


def test_a_session_carries_its_format_and_one_this_version_cannot_read_is_a_clean_401(session_client, store):
    alice = session_client("redis")
    alice.login("alice")
    alice.add("apple")
    meta = f"sl:{{{alice.session_id()}}}:meta"
    assert store.hget(meta, "fmt") == "1"
    store.hdel(meta, "fmt")  # written by a version from before formats: format 1's layout, still read
    assert alice.cart().body["items"] == ["apple"]
    store.hset(meta, "fmt", "99")  # written by a newer version with another layout
    for reply in (alice.cart(), alice.add("pear")):
        assert reply.status == 401 and reply.body["error"] == "session_format_unsupported"
    assert store.lrange(f"sl:{{{alice.session_id()}}}:items", 0, -1) == ["apple"]  # the refused add changed nothing
