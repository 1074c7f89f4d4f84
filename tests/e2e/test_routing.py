"""The balancer's routing modes, through the published port."""

from collections import Counter

import pytest

from tests.e2e.conftest import NODES


def served_by(lab, n=30, cookies=None):
    import requests

    http = requests.Session()
    seen = Counter()
    for _ in range(n):
        r = http.get(lab.url + "/healthz", timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        seen[r.headers["X-Served-By"]] += 1
    return seen


def test_round_robin_spreads_over_all_three_nodes(lab):
    seen = served_by(lab)
    assert set(seen) == set(NODES) and all(count == 10 for count in seen.values())


def test_sticky_keeps_a_user_on_one_node_and_spreads_new_users(lab):
    lab.switch_mode("sticky")
    first_nodes = set()
    for _ in range(6):
        seen = served_by(lab, n=10)
        assert len(seen) == 1, f"one user was served by several nodes: {seen}"
        first_nodes |= set(seen)
    assert first_nodes == set(NODES), "new users are not balanced over the nodes"


def test_ip_hash_sends_everyone_to_one_node_unless_the_trusted_proxy_names_the_client(lab):
    import requests

    lab.switch_mode("ip-hash")
    assert len(served_by(lab)) == 1  # every connection comes from the Docker bridge's host end
    # With the proxy secret (LB_PROXY_SECRET), the client address the request forwards is hashed: each client
    # stays on its node, the clients spread over all three. Without it, the header changes nothing.
    for headers_of, spread in ((lab.as_proxy, True), (lambda address: {"X-Forwarded-For": address}, False)):
        node_of = {}
        for client in range(30):
            address = f"198.18.{client}.7"  # one /24 each: ip-hash hashes three octets
            served = {requests.get(lab.url + "/healthz", headers=headers_of(address), timeout=10)
                      .headers["X-Served-By"] for _ in range(3)}
            assert len(served) == 1, f"{address} was served by {served}"
            node_of[address] = served.pop()
        assert len(set(node_of.values())) == (len(NODES) if spread else 1)


def test_least_conn_uses_every_node(lab):
    lab.switch_mode("least-conn")
    assert set(served_by(lab)) == set(NODES)


def test_switching_mode_restarts_no_node(lab):
    before = {node: lab.started_at(node) for node in NODES}
    for mode in ["sticky", "ip-hash", "least-conn", "round-robin"]:
        assert f"routing mode: {mode}" in lab.switch_mode(mode)
        assert lab.mode() == mode
    assert {node: lab.started_at(node) for node in NODES} == before


def test_unknown_mode_is_refused_and_the_current_one_kept(lab):
    with pytest.raises(RuntimeError, match="unknown routing mode 'bogus'"):
        lab.switch_mode("bogus")
    assert lab.mode() == "round-robin"


def test_balancer_answers_its_own_health_check(lab):
    r = lab.get("/nginx-health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "mode": "round-robin"}


def test_a_node_killed_and_back_keeps_its_sticky_users(lab):
    """A killed node's connections vanish with it, no FIN or RST reaching nginx; had nginx kept one alive,
    the first request on it after the node's return would meet a reset, and nginx would send the node's users
    to its buddy for fail_timeout (5 s), where their node-local sessions are unknown."""
    import requests

    lab.switch_mode("sticky")
    pinned = requests.Session()
    pinned.cookies.set("sl_route", "app2")
    for _ in range(10):
        assert pinned.get(lab.url + "/healthz", timeout=10).headers["X-Served-By"] == "app2"
    lab.compose("kill", "app2")
    lab.up("app2")
    seen = [pinned.get(lab.url + "/healthz", timeout=10).headers["X-Served-By"] for _ in range(10)]
    assert seen == ["app2"] * 10
