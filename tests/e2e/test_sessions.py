"""Each strategy under each routing mode, a node killed mid-session, and Redis stopped."""

import pytest

from tests.e2e.conftest import NODES


def shared_strategies(lab):
    """Strategies that keep state without tying it to a node: from the live registry, not a hand list."""
    return [s["name"] for s in lab.strategies() if s["keeps_state"] and not s["needs_sticky"]]


def sticky_strategies(lab):
    return [s["name"] for s in lab.strategies() if s["needs_sticky"]]


def lost_with_their_node(lab):
    """Sessions that live in one node only: node-local and without a replica on another node."""
    return [s["name"] for s in lab.strategies() if s["needs_sticky"] and not s["node_replica"]]


def shop(client, user, items=("apple", "pear")):
    assert client.login(user).status == 200
    for item in items:
        assert client.add(item).status == 200
    return list(items)


def test_memory_loses_the_session_under_round_robin(lab):
    for name in sticky_strategies(lab):
        c = lab.client(name)
        assert c.login("rr-user").status == 200
        statuses = [c.cart().status for _ in range(6)]
        # round-robin: two reads in three land on a node that never saw the login
        assert statuses.count(401) == 4 and statuses.count(200) == 2, f"{name}: {statuses}"


def test_memory_keeps_the_session_under_sticky(lab):
    lab.switch_mode("sticky")
    for name in sticky_strategies(lab):
        c = lab.client(name)
        items = shop(c, "sticky-user")
        for _ in range(10):
            reply = c.cart()
            assert reply.status == 200 and reply.body["items"] == items


@pytest.mark.parametrize("mode", ["round-robin", "sticky"])
def test_shared_strategies_keep_the_session_in_both_modes(lab, mode):
    lab.switch_mode(mode)
    for name in shared_strategies(lab):
        c = lab.client(name)
        items = shop(c, f"{mode}-user")
        nodes = set()
        for _ in range(9):
            reply = c.cart()
            assert reply.status == 200 and reply.body["items"] == items, (name, reply.body)
            nodes.add(reply.node)
        if mode == "round-robin":
            assert nodes == set(NODES), f"{name}: expected all nodes to serve the session, saw {nodes}"


def test_killing_a_node_mid_session(lab):
    """Sticky routing, users on every node, then `docker compose kill app2`."""
    lab.switch_mode("sticky")
    users = []  # (client, node it was stuck to, items)
    for name in [s["name"] for s in lab.strategies() if s["keeps_state"]]:
        for n in range(6):  # new users are spread round-robin, so two land on each node
            c = lab.client(name)
            items = shop(c, f"{name}-{n}", items=(f"{name}-{n}-a", f"{name}-{n}-b"))
            users.append((c, c.replies[-1].node, items))
    assert {node for _, node, _ in users} == set(NODES)

    lab.compose("kill", "app2")
    for c, node, items in users:
        reply = c.cart()
        assert reply.status < 500, f"{c.strategy} user of {node} got {reply.status}: {reply.body}"
        assert reply.node != "app2"
        if c.strategy in lost_with_their_node(lab) and node == "app2":
            assert reply.status == 401, "a memory session cannot outlive its node"
        else:  # the others, replicated ones included: app2's buddy serves them from its copy
            assert reply.status == 200 and reply.body["items"] == items, (c.strategy, node, reply.body)
            assert c.add("after-kill").status == 200

    # Once nginx has marked app2 down, nobody sees a 5xx.
    for _ in range(30):
        assert lab.get("/healthz").status_code == 200


def test_redis_stopped(lab):
    lab.switch_mode("sticky")  # so that memory, too, is a fair "other strategy"
    redis_user = lab.client("redis")
    shop(redis_user, "redis-user")
    others = {}
    for s in lab.strategies():
        if "redis" not in s["dependencies"]:
            others[s["name"]] = lab.client(s["name"])
            others[s["name"]].login("survivor")

    lab.compose("stop", "redis")
    for attempt in (redis_user.cart(), redis_user.add("x"), lab.client("redis").login("newcomer")):
        assert attempt.status == 503 and attempt.body["error"] == "store_unavailable", attempt.body
    ready = lab.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["redis"] != "ok"
    assert lab.get("/healthz").status_code == 200
    for name, c in others.items():
        assert c.add("apple").status == 200, name
        assert c.cart().status == 200, name
