"""Each strategy family reaches its store as its own Redis ACL user (stores/*/*.acl, rendered by the
containers' own script, tests/integration/acl.py): every strategy works with only what its user is granted
(Redis logs no denied command while it serves), and no user reaches another family's keys or channel or
runs an admin or dangerous command. The admin user's password never reaches the app."""

from __future__ import annotations

import time

import pytest
import redis

from session_lab import create_app
from session_lab.config import STORE_USERS
from tests.conftest import flask_sender
from tests.integration.acl import APP_PASSWORDS, PASSWORDS
from tests.integration.topologies import SentinelGroup, wait_until
from tests.session_client import SessionClient

# What no family's user may run on any store: admin, dangerous, or a look at keys that are not its own.
FORBIDDEN = [
    ("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "GET", "maxmemory"), ("CONFIG", "SET", "maxmemory", "1"),
    ("KEYS", "*"), ("SCAN", "0"), ("RANDOMKEY",), ("DEBUG", "SLEEP", "0"), ("SHUTDOWN", "NOSAVE"),
    ("ACL", "LIST"), ("ACL", "SETUSER", "intruder", "on", ">x", "+@all", "~*"), ("MODULE", "LIST"),
    ("SCRIPT", "FLUSH"), ("FUNCTION", "FLUSH"), ("REPLICAOF", "NO", "ONE"), ("CLIENT", "LIST"),
    ("CLIENT", "KILL", "USER", "default"), ("SAVE",), ("BGREWRITEAOF",), ("INFO",), ("MONITOR",),
]
ON_THE_ONE_REDIS = ["redis-cart", "jwt-revocation", "flask-session"]
# Another family's keys and channel, with one command each that its owner is granted.
NOT_THEIRS = {
    "redis-cart": [("GET", "fs:planted"), ("SET", "fs:planted", "x"),
                   ("ZRANGE", "jwt:{revocations}:denylist", "0", "-1"),
                   ("ZADD", "jwt:{revocations}:denylist", "1", "sid"), ("PUBLISH", "jwt:revoked", "sid 1")],
    "jwt-revocation": [("GET", "fs:planted"), ("HMGET", "sl:{sid}:meta", "user"), ("DEL", "sl:{sid}:meta")],
    "flask-session": [("HMGET", "sl:{sid}:meta", "user"), ("DEL", "sl:{sid}:items"),
                      ("ZRANGE", "jwt:{revocations}:denylist", "0", "-1"), ("PUBLISH", "jwt:revoked", "sid 1")],
}


def as_user(port: int, user: str) -> redis.Redis:
    return redis.Redis(port=port, username=user, password=PASSWORDS[STORE_USERS[user]], decode_responses=True,
                       socket_timeout=2)


def refused(port: int, user: str, command: tuple) -> bool:
    """NOPERM, or refused to everyone (DEBUG: enable-debug-command is off by default)."""
    with as_user(port, user) as client:
        try:
            client.execute_command(*command)
        except redis.exceptions.NoPermissionError:
            return True
        except redis.ResponseError as exc:
            return "command not allowed" in str(exc)
    return False


def denials(admin: redis.Redis) -> list[str]:
    """What the store's ACL log holds: each command some user was refused."""
    return [f"{e['username']}: {e['object']} ({e['reason']})" for e in admin.acl_log()]


def use_every_way(send, strategy: str) -> None:
    """Login, add, read, logout: every command the strategy sends to its store in normal service."""
    alice = SessionClient(strategy, send)
    assert alice.login("alice").status == 200
    assert alice.add("apple").status == 200
    assert alice.cart().body["items"] == ["apple"]
    assert alice.logout().status == 200
    assert alice.cart().status == 401


# -- the one Redis: the `redis` strategy, jwt logouts, the flask-session peer -------------------------------

@pytest.mark.parametrize("user", ON_THE_ONE_REDIS)
@pytest.mark.parametrize("command", FORBIDDEN, ids=lambda c: " ".join(c[:2]))
def test_no_family_runs_an_admin_or_dangerous_command(redis_server, store, user, command):
    assert refused(redis_server.port, user, command)


@pytest.mark.parametrize("user", ON_THE_ONE_REDIS)
def test_no_family_reaches_another_familys_keys_or_channel(redis_server, store, user):
    for command in NOT_THEIRS[user]:
        assert refused(redis_server.port, user, command), command


def test_the_admin_password_opens_nothing_for_a_family_user(redis_server, store):
    """A node that somehow got REDIS_PASSWORD could not log in as a family's user with it."""
    with redis.Redis(port=redis_server.port, username="redis-cart", password=PASSWORDS["REDIS_PASSWORD"]) as c:
        with pytest.raises(redis.AuthenticationError):
            c.ping()


def test_every_strategy_on_the_one_redis_works_with_only_its_users_grants(make_settings, redis_server, store, clock):
    store.acl_log_reset()
    app = create_app(make_settings(REDIS_PORT=str(redis_server.port), **APP_PASSWORDS, JWT_REVOCATION_SYNC="true",
                                   SESSION_IDLE_TIMEOUT="60", SESSION_ABSOLUTE_TIMEOUT="300"), clock=clock)
    strategies = app.extensions["session_lab.strategies"]
    try:
        send = flask_sender(app)
        for strategy in ("redis", "flask-session", "jwt"):
            use_every_way(send, strategy)
        checks = app.test_client().get("/readyz").get_json()["checks"]
        assert checks["redis"] == "ok"
        wait_until(lambda: strategies["jwt"].check_ready()["jwt-revocations"] == "ok", "jwt logouts not shared")
        time.sleep(0.5)  # the revocation listener's pings meanwhile
        assert denials(store) == []
    finally:
        strategies["jwt"].revocations.stop()


def test_the_app_connects_as_each_familys_user_never_as_the_admin(make_settings, redis_server, store, clock):
    app = create_app(make_settings(REDIS_PORT=str(redis_server.port), **APP_PASSWORDS, JWT_REVOCATION_SYNC="true"),
                     clock=clock)
    strategies = app.extensions["session_lab.strategies"]
    try:
        for strategy in ("redis", "flask-session", "jwt"):
            use_every_way(flask_sender(app), strategy)
        with redis_server.client() as admin:  # this connection is the only admin one
            users = [c["user"] for c in admin.client_list()]
        assert users.count("default") == 1 and set(users) - {"default"} <= set(ON_THE_ONE_REDIS)
        assert {"redis-cart", "flask-session", "jwt-revocation"} <= set(users)
    finally:
        strategies["jwt"].revocations.stop()


# -- Sentinel and Cluster ------------------------------------------------------------------------------------

def every_denial(group) -> list[str]:
    found = []
    for node in group.nodes:
        with group.client(node.port) as admin:
            found += [f"{node.port} {d}" for d in denials(admin)]
    return found


def reset_logs(group) -> None:
    for node in group.nodes:
        with group.client(node.port) as admin:
            admin.acl_log_reset()


@pytest.mark.parametrize("kind", ["sentinel", "cluster"])
def test_sentinel_and_cluster_strategies_work_with_only_their_users_grants(make_settings, clock, sentinel_group,
                                                                           cluster_group, kind):
    sentinels, cluster = sentinel_group, cluster_group
    group = {"sentinel": sentinels, "cluster": cluster}[kind]
    reset_logs(group)
    app = create_app(make_settings(**{**sentinels.env(), **cluster.env()}, STORE_RETRY_BUDGET="2.0"), clock=clock)
    for strategy in (kind, f"{kind}-wait"):  # the -wait variants add WAIT
        use_every_way(flask_sender(app), strategy)
    assert app.test_client().get("/readyz").get_json()["checks"][kind] == "ok"
    assert every_denial(group) == []


@pytest.mark.parametrize("command", FORBIDDEN, ids=lambda c: " ".join(c[:2]))
def test_the_sentinel_and_cluster_users_run_no_admin_or_dangerous_command(sentinel_group, cluster_group, command):
    assert refused(sentinel_group.primary_port(), "sentinel-cart", command)
    assert refused(cluster_group.nodes[0].port, "cluster-cart", command)


@pytest.mark.parametrize("command", [
    ("SENTINEL", "RESET", "*"), ("SENTINEL", "FAILOVER", "lab-primary"), ("SENTINEL", "REMOVE", "lab-primary"),
    ("SENTINEL", "SET", "lab-primary", "down-after-milliseconds", "1"), ("SENTINEL", "CONFIG", "GET", "*"),
    ("SENTINEL", "FLUSHCONFIG"), ("SENTINEL", "DEBUG"), ("ACL", "LIST"), ("SHUTDOWN",),
], ids=lambda c: " ".join(c[:2]))
def test_the_sentinel_user_may_only_ask_where_the_primary_is(sentinel_group, command):
    port = sentinel_group.sentinels[0].port
    assert refused(port, "sentinel-cart", command)
    with as_user(port, "sentinel-cart") as client:
        assert client.sentinel_get_master_addr_by_name(SentinelGroup.SERVICE)[1] == sentinel_group.primary_port()


@pytest.mark.parametrize("command", [("CLUSTER", "FAILOVER"), ("CLUSTER", "RESET"), ("CLUSTER", "FORGET", "x"),
                                     ("CLUSTER", "MEET", "127.0.0.1", "1"), ("CLUSTER", "NODES")],
                         ids=lambda c: " ".join(c))
def test_the_cluster_user_changes_nothing_in_the_cluster(cluster_group, command):
    assert refused(cluster_group.nodes[0].port, "cluster-cart", command)
