"""JWT logout through a real Redis: pushed to every node's own denylist, no store read per request, and a
Redis outage that stops no jwt request (its logouts reach the other nodes when Redis returns)."""

import logging
import select
import socket
import threading
import time

import pytest

from session_lab import create_app
from session_lab.revocation import STALE_AFTER, ZSET
from tests.conftest import flask_sender
from tests.integration.acl import APP_PASSWORDS
from tests.integration.topologies import wait_until
from tests.session_client import SessionClient

BOUND = 1.0  # seconds: the lab's claim for a logout to reach every node


@pytest.fixture
def node(make_settings, redis_server, store, clock):
    """node(port) -> the send function of a new app node sharing the test's Redis (through `port`, a relay,
    when given), with revocation sync on."""
    made = []

    def build(port=None):
        app = create_app(make_settings(REDIS_PORT=str(port or redis_server.port), **APP_PASSWORDS,
                                       JWT_REVOCATION_SYNC="true"), clock=clock)
        made.append(app.extensions["session_lab.strategies"])
        return flask_sender(app)

    build.made = made  # each node's strategies, for tests that look inside
    yield build
    for strategies in made:
        strategies["jwt"].revocations.stop()
        strategies["redis"].store.client.close()


def refused_within(send, token, seconds):
    """Poll one node with `token` until it answers 401; how long that took, or None."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if SessionClient("jwt", send, token=token).cart().status == 401:
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def test_logout_on_one_node_is_refused_by_the_others_within_a_second(node):
    a, b, c = node(), node(), node()
    alice = SessionClient("jwt", a)
    alice.login("alice")
    alice.add("apple")
    token = alice.token
    for other in (b, c):  # every node knows the session before the logout (and has its listener running)
        assert SessionClient("jwt", other, token=token).cart().status == 200
    assert alice.logout().status == 200
    for other in (a, b, c):
        assert refused_within(other, token, BOUND) is not None


def test_a_node_started_after_the_logout_refuses_the_token_at_once(node):
    a = node()
    alice = SessionClient("jwt", a)
    alice.login("alice")
    token = alice.token
    alice.logout()
    late = node()  # a node (re)started later reads the whole denylist before its first answer
    reply = SessionClient("jwt", late, token=token).cart()
    assert reply.status == 401 and "revoked" in reply.body["message"]


def test_no_redis_read_per_request(node, store):
    a = node()
    alice = SessionClient("jwt", a)
    alice.login("alice")
    alice.cart()  # the listener is running from here on
    before = calls_per_command(store)
    for _ in range(20):
        assert alice.cart().status == 200
    grew = {name: calls - before.get(name, 0) for name, calls in calls_per_command(store).items()}
    # A read per request would add 20 calls of one command. The listener's own pings and health checks add
    # a few, more on a loaded host where 20 requests take longer, so the total is no measure.
    assert not {name: n for name, n in grew.items() if n >= 20}, grew


def calls_per_command(store) -> dict[str, int]:
    return {name: stats["calls"] for name, stats in store.info("commandstats").items()}


def test_jwt_serves_through_a_redis_outage_and_its_logouts_propagate_when_redis_returns(node, redis_server):
    a, b = node(), node()
    alice, bob = SessionClient("jwt", a), SessionClient("jwt", b)
    alice.login("alice")
    bob.login("bob")
    assert SessionClient("jwt", b, token=alice.token).cart().status == 200  # b listens too

    redis_server.stop()
    assert bob.add("apple").status == 200 and bob.cart().status == 200  # no Redis needed to serve
    token = alice.token
    started = time.monotonic()
    assert alice.logout().status == 200
    assert time.monotonic() - started < 1.0  # the logout does not wait for a dead Redis
    assert SessionClient("jwt", a, token=token).cart().status == 401  # the node that saw it refuses at once
    assert SessionClient("jwt", b, token=token).cart().status == 200  # the documented gap

    redis_server.start()
    assert refused_within(b, token, 10) is not None  # the pending logout is published on reconnect
    assert bob.cart().status == 200


class Relay:
    """A TCP relay to Redis that can drop everything without closing a connection: a cut network, as
    seen by both ends (no FIN, no RST, just silence)."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut = threading.Event()
        self.done = threading.Event()
        self.sockets: list[socket.socket] = [self.listener]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.done.is_set():
            ready, _, _ = select.select([self.listener], [], [], 0.1)
            if ready:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
                self.sockets += [client, upstream]
                self.threads.append(threading.Thread(target=self._pump, args=(client, upstream), daemon=True))
                self.threads[-1].start()

    def _pump(self, a, b):
        peer = {a: b, b: a}
        while not self.done.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.1)
            for s in ready:
                try:
                    data = s.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if not self.cut.is_set():  # cut: the bytes are lost, the connection stays open
                    peer[s].sendall(data)

    def close(self):
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=2)
        for s in self.sockets:
            s.close()


def test_a_node_cut_off_from_redis_catches_up_within_a_second_of_the_network_returning(node, redis_server):
    relay = Relay(redis_server.port)
    try:
        a, b = node(), node(relay.port)
        alice = SessionClient("jwt", a)
        alice.login("alice")
        token = alice.token
        assert SessionClient("jwt", b, token=token).cart().status == 200  # starts b's listener, via the relay
        listening = node.made[-1]["jwt"].revocations
        deadline = time.monotonic() + 5
        while listening.status() != "ok" and time.monotonic() < deadline:  # subscribed, set read: idle
            time.sleep(0.02)
        assert listening.status() == "ok"
        time.sleep(0.3)
        relay.cut.set()
        assert alice.logout().status == 200  # published while b hears nothing, and is not told so
        time.sleep(2)
        relay.cut.clear()
        assert refused_within(b, token, BOUND + 0.5) is not None
    finally:
        relay.close()


def test_the_listener_stays_on_one_connection_while_redis_answers(node, store, caplog):
    """Its pings must count as signs of life: redis-py 8.1 with decode_responses splits a bare PONG into a
    message of type 'P', which ignore_subscribe_messages would drop, and the listener reconnected every
    STALE_AFTER seconds."""
    alice = SessionClient("jwt", node())
    alice.login("alice")
    alice.cart()  # the listener runs from here on
    clients_before = int(store.info("stats")["total_connections_received"])
    with caplog.at_level(logging.WARNING, logger="session_lab.revocation"):
        time.sleep(3 * STALE_AFTER)
    assert not [r for r in caplog.records if "lost Redis" in r.getMessage()]
    assert int(store.info("stats")["total_connections_received"]) - clients_before <= 1  # the INFO call's own


def test_a_logout_redis_refused_reaches_every_node_once_redis_takes_writes_again(node, store):
    """Redis answers but refuses the write (out of memory: maxmemory below what it holds, noeviction): the
    listener stays connected, so a logout kept for its next reconnect would never propagate. It is retried
    until Redis takes it, and then every node refuses the token."""
    a, b = node(), node()
    alice = SessionClient("jwt", a)
    alice.login("alice")
    token = alice.token
    for other in (a, b):  # both listeners connected and idle before Redis starts refusing
        assert SessionClient("jwt", other, token=token).cart().status == 200
    wait_until(lambda: all(n["jwt"].check_ready()["jwt-revocations"] == "ok" for n in node.made), "not listening")
    store.config_set("maxmemory-policy", "noeviction")
    store.config_set("maxmemory", "1")  # every write is refused with OOM from here on
    try:
        assert alice.logout().status == 200
        assert SessionClient("jwt", a, token=token).cart().status == 401  # the node that served it, at once
        readiness = node.made[0]["jwt"].check_ready()["jwt-revocations"]
        assert readiness.startswith("not propagating"), readiness  # and /readyz says the logout is not shared
        time.sleep(1)  # a few retries, all refused
        assert not store.exists(ZSET)
    finally:
        store.config_set("maxmemory", "0")
    for other in (a, b):
        assert refused_within(other, token, 5) is not None
    assert node.made[0]["jwt"].check_ready()["jwt-revocations"] == "ok"
