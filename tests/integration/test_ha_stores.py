"""sentinel, cluster and their -wait variants against real Sentinel and Cluster topologies of redis-server
processes (tests/integration/topologies.py): the shared contract, then failovers, NOSCRIPT, lost shards
and unconfirmed writes, each provoked for real."""

from __future__ import annotations

import time

import pytest

from session_lab import create_app, strategies
from tests.conftest import flask_sender
from tests.integration.topologies import wait_until
from tests.session_client import SessionClient
from tests.strategy_contract import CONTRACT

ON = {store: [c.name for c in strategies.classes() if c.dependencies == (store,)] for store in ("sentinel", "cluster")}
BUDGET = 2.0  # STORE_RETRY_BUDGET's default


def healed(group):
    """Bring back whatever an earlier test killed or paused, and wait until the topology is whole again."""
    for node in group.nodes:
        if node.process.poll() is not None:
            node.start()
        else:
            node.resume()
    group.wait_healthy(timeout=60)
    return group


@pytest.fixture
def sentinels(sentinel_group):
    return healed(sentinel_group)


@pytest.fixture
def cluster(cluster_group):
    return healed(cluster_group)


def app_for(make_settings, clock, *groups, **overrides):
    env = {"SESSION_IDLE_TIMEOUT": "60", "SESSION_ABSOLUTE_TIMEOUT": "300", "MAX_CART_ITEMS": "5",
           "STORE_RETRY_BUDGET": str(BUDGET), "REDIS_CONNECT_TIMEOUT": "0.5", "REDIS_SOCKET_TIMEOUT": "1.0"}
    for group in groups:
        env.update(group.env())
    env.update(overrides)
    return create_app(make_settings(**env), clock=clock)


@pytest.fixture
def client_for(make_settings, clock, sentinels, cluster):
    app = app_for(make_settings, clock, sentinels, cluster)
    return lambda strategy: SessionClient(strategy, flask_sender(app))


@pytest.mark.parametrize("strategy", ON["sentinel"] + ON["cluster"])
@pytest.mark.parametrize("check", CONTRACT, ids=lambda f: f.__name__)
def test_contract(client_for, clock, make_settings, strategy, check):
    settings = make_settings(SESSION_IDLE_TIMEOUT="60", SESSION_ABSOLUTE_TIMEOUT="300", MAX_CART_ITEMS="5")
    check(lambda: client_for(strategy), clock, settings)


def test_readiness_names_both_stores(make_settings, clock, sentinels, cluster):
    checks = app_for(make_settings, clock, sentinels, cluster).test_client().get("/readyz").get_json()["checks"]
    assert checks["sentinel"] == "ok" and checks["cluster"] == "ok"


@pytest.mark.parametrize("strategy", ON["sentinel"])
def test_sentinel_primary_killed_costs_latency_not_the_session(client_for, sentinels, strategy):
    alice = client_for(strategy)
    alice.login("alice")
    acked = [f"before-{i}" for i in range(2) if alice.add(f"before-{i}").status == 200]
    old = sentinels.primary()
    old.kill()
    started = time.monotonic()
    answers = [alice.add(f"during-{i}") for i in range(3)]  # MAX_CART_ITEMS is 5
    assert {a.status for a in answers} <= {200, 503}, "a failover is latency or 503, never a 500 or a lost session"
    acked += [f"during-{i}" for i, a in enumerate(answers) if a.status == 200]
    wait_until(lambda: alice.cart().status == 200, "no good answer", BUDGET * 3)
    assert sentinels.primary() is not old
    assert alice.cart().body["items"] == acked, "every acknowledged item survives the failover"
    assert time.monotonic() - started < 4 * (BUDGET + 1.5)


def test_sentinel_primary_without_its_script_cache(client_for, sentinels):
    """A promoted replica may have an empty script cache: NOSCRIPT is answered by sending the body."""
    alice = client_for("sentinel")
    alice.login("alice")
    sentinels.client(sentinels.primary_port()).script_flush()
    assert alice.add("apple").body["items"] == ["apple"]


def test_paused_primary_wakes_up_refusing_writes(sentinels):
    """The primary frozen past a failover wakes up believing it is primary; min-replicas-to-write makes it
    refuse writes (NOREPLICAS) instead of acknowledging ones the new primary never sees."""
    old = sentinels.primary()
    old.pause()
    wait_until(lambda: sentinels.primary_port() != old.port, "no replica was promoted", 15)
    time.sleep(3)  # past min-replicas-max-lag: the replicas' last acknowledgements are now stale
    old.resume()
    with sentinels.client(old.port) as c:
        try:
            c.set("written-to-the-old-primary", "1")
            refused = False
        except Exception as exc:  # noqa: BLE001 - NOREPLICAS or READONLY, whichever came first
            refused = str(exc).startswith(("NOREPLICAS", "READONLY", "You can't write against a read only"))
        assert refused, "the old primary acknowledged a write after the failover"


@pytest.mark.parametrize("strategy", ON["cluster"])
def test_cluster_master_killed_touches_only_its_shard(client_for, cluster, strategy):
    users = [client_for(strategy) for _ in range(12)]
    for i, u in enumerate(users):
        u.login(f"user{i}")
        assert u.add("first").status == 200
    master_of = {id(u): cluster.master_of(f"sl:{{{u.session_id()}}}:meta") for u in users}
    victim = master_of[id(users[0])]
    elsewhere = [u for u in users if master_of[id(u)] is not victim]
    on_victim = [u for u in users if master_of[id(u)] is victim]
    assert elsewhere, "twelve random sessions all on one shard"
    victim.kill()
    for u in elsewhere:  # the other shards answer at once, during the failover
        assert u.add("second").status == 200 and u.replies[-1].body["items"] == ["first", "second"]
    answers = [u.add("second") for u in on_victim]
    assert {a.status for a in answers} <= {200, 503}
    wait_until(lambda: all(u.cart().status == 200 for u in on_victim), "no good answer", BUDGET * 3)
    for u, a in zip(on_victim, answers):
        items = u.cart().body["items"]
        assert set(items) <= {"first", "second"}, "nothing applied twice, nothing foreign"
        if strategy == "cluster-wait":  # confirmed by the replica that took over: nothing acknowledged is lost
            assert "first" in items and (a.status != 200 or "second" in items)


def test_wait_variant_refuses_what_no_replica_confirms(client_for, cluster):
    """With the shard's replica gone, cluster-wait answers 503 write_not_confirmed; cluster acknowledges."""
    careful, quick = client_for("cluster-wait"), client_for("cluster")
    careful.login("careful")
    quick.login("quick")
    shard = cluster.master_of(f"sl:{{{careful.session_id()}}}:meta")
    cluster.replica_of(shard).kill()
    refused = careful.add("apple")
    assert refused.status == 503 and refused.body["error"] == "write_not_confirmed"
    assert "Idempotency-Key" in refused.body["message"]
    if cluster.master_of(f"sl:{{{quick.session_id()}}}:meta") is shard:
        assert quick.add("apple").status == 200


def test_lost_shard_is_503_for_its_sessions_only(client_for, cluster):
    users = [client_for("cluster") for _ in range(12)]
    for i, u in enumerate(users):
        u.login(f"user{i}")
    master_of = {id(u): cluster.master_of(f"sl:{{{u.session_id()}}}:meta") for u in users}
    victim = master_of[id(users[0])]
    replica = cluster.replica_of(victim)
    victim.kill()
    replica.kill()
    for u in users:
        reply = u.add("apple")
        if master_of[id(u)] is victim:
            assert reply.status == 503 and reply.body["error"] == "store_unavailable"
        else:
            assert reply.status == 200


def test_whole_store_down_is_503_within_the_budget(client_for, sentinels):
    alice = client_for("sentinel")
    alice.login("alice")
    for node in sentinels.data:
        node.kill()
    started = time.monotonic()
    reply = alice.cart()
    assert reply.status == 503 and reply.body["error"] == "store_unavailable"
    assert time.monotonic() - started < BUDGET + 2, "the budget bounds the wait, inside nginx's 5 s"
