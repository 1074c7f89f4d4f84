"""One client cannot exhaust what everybody shares, and cannot forge its address (issue 16), through the
published port, where every connection comes from the Docker bridge's one address:

- an X-Forwarded-For that an ordinary client writes changes neither its node (ip-hash) nor its login limit;
  the trusted proxy's (the X-Lab-Proxy-Secret header, as the load users send it) names a client of its own;
- one client trying to fill node memory and Redis, with the limits scaled down (SCALED: the stack's nodes and
  Redis are recreated with them for this module, then given the defaults back), leaves other clients
  logging in and adding.
"""

from __future__ import annotations

import time

import pytest
import requests

from tests.e2e.conftest import NODES

# Limits small enough to reach through nginx in a minute. Without the per-client budgets, the flood below
# passes MEMORY_MAX_SESSIONS on every node (and the old store evicted the least recently used sessions of
# anyone) and fills REDIS_MAXMEMORY (4 MB: a full session is ~21 KB, so ~150 of them, 503 for everyone).
SCALED = {"MEMORY_MAX_SESSIONS": "100", "MEMORY_MAX_SESSIONS_PER_CLIENT": "30",
          "REDIS_MAX_SESSIONS_PER_CLIENT": "20", "REDIS_MAXMEMORY": "4mb"}
EMOJI_ITEM = "\U0001F600" * 62  # with a two-digit prefix: MAX_ITEM_LENGTH (64) characters of 4 bytes


def login_through_the_limit(url: str, strategy: str, user: str, headers: dict[str, str],
                            cookies: requests.Session | None = None) -> requests.Response:
    """One login, waited through nginx's login limit (429 too_many_logins; it refills at 50/s)."""
    http = cookies or requests
    for _ in range(20):  # bounded: the limit lets one through within a second
        r = http.post(f"{url}/api/{strategy}/login", json={"user": user}, headers=headers, timeout=10)
        if r.status_code != 429 or r.json()["error"] != "too_many_logins":
            return r
        time.sleep(0.5)
    raise AssertionError(f"{strategy} login of {user} still refused by the login limit after 10 s")


# --- the client's address -------------------------------------------------------------------------------------


def test_a_forged_forwarded_for_changes_neither_the_node_nor_the_login_limit(lab):
    lab.switch_mode("ip-hash")
    plain = {requests.get(lab.url + "/healthz", timeout=10).headers["X-Served-By"] for _ in range(3)}
    assert len(plain) == 1
    forged = {requests.get(lab.url + "/healthz", headers={"X-Forwarded-For": f"198.18.{n}.7"}, timeout=10)
              .headers["X-Served-By"] for n in range(30)}
    assert forged == plain  # every forged address still lands on the connection's one node
    forwarded = {requests.get(lab.url + "/healthz", headers=lab.as_proxy(f"198.18.{n}.7"), timeout=10)
                 .headers["X-Served-By"] for n in range(30)}
    assert forwarded == set(NODES)  # the trusted proxy's clients spread

    # `none` keeps no session: the logins cost nothing but the limit (LOGIN_RATE_LIMIT 50r/s, LOGIN_BURST 100).
    # Logins with a new forged address each, until the limit refuses one: had each address a budget of its
    # own, none would be refused, however fast they went.
    forged_statuses = []
    deadline = time.monotonic() + 60
    for n in range(2000):  # bounded in count and time
        forged_statuses.append(requests.post(
            f"{lab.url}/api/none/login", json={"user": "forger"}, timeout=10,
            headers={"X-Forwarded-For": f"198.19.{n % 256}.{n // 256 + 1}"}).status_code)
        if forged_statuses[-1] != 200 or time.monotonic() > deadline:
            break
    assert forged_statuses[-1] == 429, f"{len(forged_statuses)} forged logins, none limited"
    time.sleep(2.5)  # the host's budget refills (50/s) for the tests after this one
    forwarded_statuses = [requests.post(f"{lab.url}/api/none/login", json={"user": "forwarded"}, timeout=10,
                                        headers=lab.as_proxy(f"198.19.{n % 256}.{n // 256 + 1}")).status_code
                          for n in range(300)]
    assert set(forwarded_statuses) == {200}  # 300 clients behind the proxy, one login each: none limited


# --- budgets --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scaled(stack):
    """The nodes and the single Redis recreated with SCALED limits for this module, then with the defaults."""
    saved = dict(stack.env)
    stack.env.update(SCALED)
    try:
        recreate(stack)
        yield stack
    finally:
        stack.env.clear()
        stack.env.update(saved)
        recreate(stack)


def recreate(stack) -> None:
    """The single Redis and the nodes recreated with the stack's env. Once, compose's `up --wait` failed with
    "No such container" for a container it had just replaced itself (compose 2.40, while the dependencies it
    starts first were starting): one more `up` then finds everything in place."""
    try:
        stack.up("redis", *NODES)
    except RuntimeError as exc:
        if "No such container" not in str(exc):
            raise
        stack.up("redis", *NODES)
    wait_for_every_node(stack)


def wait_for_every_node(stack) -> None:
    """Recreated nodes are healthy (`up --wait`), but nginx learns it from requests: until each has answered,
    in round-robin (a test before may have left ip-hash, where this host's requests all reach one node)."""
    if stack.mode() != "round-robin":
        stack.switch_mode("round-robin")
    seen = set()
    for _ in range(120):  # bounded: 60 s at most
        try:
            seen.add(requests.get(stack.url + "/healthz", timeout=5).headers.get("X-Served-By", ""))
        except requests.RequestException:
            pass
        if set(NODES) <= seen:
            return
        time.sleep(0.5)
    raise AssertionError(f"the balancer reached only {sorted(seen)} after the nodes were recreated")


@pytest.fixture
def scaled_lab(scaled, lab):
    return lab


def others(lab, strategy: str, count: int) -> list:
    """`count` clients behind the trusted proxy, each with a session of one item."""
    users = []
    for n in range(count):
        user = lab.forwarded_client(strategy, f"203.0.113.{n + 1}")
        assert user.login(f"other-{n}").status == 200 and user.add("kept").status == 200
        users.append(user)
    return users


def test_one_client_filling_node_memory_leaves_other_clients_sessions_alive(scaled_lab):
    lab = scaled_lab
    lab.switch_mode("sticky")  # node-local sessions: each user stays on its node
    users = others(lab, "memory", 9)
    assert {u.replies[-1].node for u in users} == set(NODES)
    # 400 logins without a cookie (round-robin over the nodes: ~133 a node, past MEMORY_MAX_SESSIONS), each
    # with a fresh forged X-Forwarded-For, which makes it no other client.
    for n in range(400):
        r = login_through_the_limit(lab.url, "memory", f"flood-{n}", {"X-Forwarded-For": f"198.18.{n % 256}.9"})
        assert r.status_code == 200, r.text
    for user in users:
        reply = user.cart()
        assert reply.status == 200 and reply.body["items"] == ["kept"], reply.body
        assert user.add("more").status == 200
    late = lab.forwarded_client("memory", "203.0.113.200")
    assert late.login("late").status == 200 and late.add("kept").status == 200 and late.cart().status == 200


@pytest.mark.parametrize("strategy", ["redis", "flask-session"])
def test_one_client_trying_to_fill_redis_leaves_other_clients_logging_in_and_adding(scaled_lab, strategy):
    lab = scaled_lab
    users = others(lab, strategy, 5)
    statuses = []
    for n in range(200):  # bounded: past the quota (20), and past what 4 MB hold without it (~150 full carts)
        http = requests.Session()
        r = login_through_the_limit(lab.url, strategy, f"fill-{n}", {"X-Forwarded-For": f"198.18.{n}.9"}, http)
        statuses.append(r.status_code)
        if r.status_code != 200:
            assert r.json()["error"] == "too_many_sessions", r.text
            continue
        for i in range(50):
            added = http.post(f"{lab.url}/api/{strategy}/cart", json={"item": f"{i:02d}{EMOJI_ITEM}"}, timeout=10)
            assert added.status_code == 200, added.text
    assert statuses == [200] * 20 + [429] * 180
    for user in users:
        assert user.add("more").status == 200 and user.cart().body["items"] == ["kept", "more"]
    for n in range(10):  # and new clients still log in and add
        late = lab.forwarded_client(strategy, f"203.0.113.{100 + n}")
        assert late.login(f"late-{n}").status == 200 and late.add("kept").status == 200
