"""What real nginx does with the project's balancer config (loadbalancer/), in round-robin mode.

The passive health check (max_fails=1 fail_timeout=5s, render-mode.sh) takes a node away after ONE failed
attempt, so it matters which answers nginx counts as failures: a node's own 4xx/5xx are not, a hang-up
or a header block over proxy_buffer_size are. The nginx rules pinned here:
https://nginx.org/en/docs/http/ngx_http_upstream_module.html#max_fails and
https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_next_upstream
"""

from __future__ import annotations

import json
import shutil

import pytest

from session_lab.limits import CREDENTIAL_MAX_BYTES, RESPONSE_HEADERS_MAX
from tests.conftest import require
from tests.integration.balancer import NODE_NAMES, Answer, Balancer, Node, directive, malformed_answer, nginx_size

pytestmark = pytest.mark.integration

EVEN = {name: 10 for name in NODE_NAMES}  # 30 requests over three healthy nodes
WITHOUT_APP1 = {"app2": 15, "app3": 15}  # 30 requests while app1 is marked failed


@pytest.fixture
def nodes():
    nodes = [Node(name) for name in NODE_NAMES]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture
def balancer(tmp_path, nodes):
    """A fresh nginx per test: a node marked failed stays failed for fail_timeout (5 s)."""
    require(shutil.which("nginx") is not None, "nginx is not installed (apt-get install nginx-light)")
    lb = Balancer(tmp_path, nodes)
    try:
        lb.start()
        yield lb
    finally:
        lb.stop()


def reply_once_reached(lb: Balancer, node: Node, answer: Answer, send=Balancer.get):
    """Queue `answer` on node, then send GETs until one reaches it (round robin: within one per node)."""
    node.once(answer)
    for _ in range(len(lb.nodes)):
        before = node.received
        reply = send(lb)
        if node.received > before:
            return reply
    raise AssertionError(f"{node.name} got none of {len(lb.nodes)} requests")


def test_round_robin_spreads_requests_evenly(balancer):
    """Round robin (nginx's default balancing) sends each request to the next node in turn."""
    assert balancer.served_by(30) == EVEN


@pytest.mark.parametrize("status", [409, 413, 500, 503])
def test_a_nodes_own_error_answer_is_passed_on_and_does_not_fail_the_node(balancer, nodes, status):
    """A node's own 4xx/5xx goes to the client as is, is not retried elsewhere, and is no failed attempt:
    http_5xx count as failures only when proxy_next_upstream names them, and proxy.conf does not."""
    app1 = nodes[0]
    reply = reply_once_reached(balancer, app1, Answer("status", status))
    assert reply.status == status and reply.headers["x-served-by"] == "app1"
    # app1's own body, not the balancer's error_page JSON (proxy_intercept_errors is off).
    assert json.loads(reply.body) == {"error": "node_error", "node": "app1"}
    assert reply.headers["x-upstream-addr"] == app1.address  # one attempt, no replay on another node
    assert balancer.served_by(30) == EVEN


def test_a_header_block_at_the_apps_budget_passes_intact(balancer, nodes):
    """An answer whose header block is RESPONSE_HEADERS_MAX bytes fits proxy_buffer_size and arrives whole."""
    app1 = nodes[0]
    reply = reply_once_reached(balancer, app1, Answer("headers", 200, RESPONSE_HEADERS_MAX))
    assert reply.status == 200 and reply.headers["x-served-by"] == "app1"
    assert reply.headers["x-padding"] == app1.last_headers["X-Padding"]
    assert json.loads(reply.body) == {"node": "app1"}


def test_a_header_block_over_proxy_buffer_size_is_a_502_and_fails_the_node(balancer, nodes):
    """A header block over proxy_buffer_size is invalid_header: a 502 and a failed attempt whatever proxy_next_upstream
    says ("error, timeout and invalid_header are always considered unsuccessful attempts")."""
    buffer = nginx_size(directive("proxy_buffer_size")[0])
    reply = reply_once_reached(balancer, nodes[0], Answer("headers", 200, buffer + 4096))
    assert reply.status == 502
    assert json.loads(reply.body)["error"] == "bad_gateway"  # the balancer's own JSON (error_page 502)
    assert "upstream sent too big header" in balancer.log()
    assert balancer.served_by(30) == WITHOUT_APP1


def test_a_node_that_hangs_up_is_replayed_elsewhere_and_fails(balancer, nodes):
    """A connection closed without an answer is `error`: the GET is replayed on the next node
    (proxy_next_upstream error) and the attempt counts as failed, so app1 is out for fail_timeout."""
    app1 = nodes[0]
    reply = reply_once_reached(balancer, app1, Answer("close"))
    assert reply.status == 200 and reply.headers["x-served-by"] != "app1"
    assert reply.headers["x-upstream-addr"].startswith(f"{app1.address}, ")  # tried app1 first
    assert "upstream prematurely closed connection" in balancer.log()
    assert balancer.served_by(30) == WITHOUT_APP1


def test_a_malformed_status_line_is_relayed_raw_and_does_not_fail_the_node(balancer, nodes):
    """Without a valid status line nginx takes the answer for an HTTP/0.9 body ("upstream sent no valid
    HTTP/1.0 header"): it relays the node's bytes untouched, status line of its own none, and counts no failure."""
    raw = reply_once_reached(balancer, nodes[0], Answer("malformed"), send=Balancer.get_raw)
    # Byte for byte what app1 sent: none of proxy.conf's add_header lines (X-Upstream-Addr, X-LB-Mode) either.
    assert raw == malformed_answer("app1")
    assert "upstream sent no valid HTTP/1.0 header" in balancer.log()
    # Not an unsuccessful attempt: a node sending garbage keeps its share of the traffic.
    assert balancer.served_by(30) == EVEN


def test_the_balancers_buffers_follow_the_apps_budget():
    """nginx.conf's sizes keep the relations limits.py states: proxy_buffer_size >= 2 x RESPONSE_HEADERS_MAX,
    one large_client_header_buffers buffer >= 4 x CREDENTIAL_MAX_BYTES."""
    assert nginx_size(directive("proxy_buffer_size")[0]) >= 2 * RESPONSE_HEADERS_MAX
    _count, size = directive("large_client_header_buffers")
    assert nginx_size(size) >= 4 * CREDENTIAL_MAX_BYTES
