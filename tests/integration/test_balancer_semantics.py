"""What real nginx does with the project's balancer config (loadbalancer/): mostly in round-robin mode, then
sticky mode's fallback (a node's users go to its buddy, then to any live node) and what holds in every mode.

The passive health check (max_fails=1 fail_timeout=5s, render-mode.sh) takes a node away after ONE failed
attempt, so it matters which answers nginx counts as failures: a node's own 4xx/5xx are not, a hang-up
or a header block over proxy_buffer_size are. The nginx rules pinned here:
https://nginx.org/en/docs/http/ngx_http_upstream_module.html#max_fails and
https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_next_upstream
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from session_lab.limits import CREDENTIAL_MAX_BYTES, RESPONSE_HEADERS_MAX
from tests.conftest import require
from tests.integration import acl
from tests.integration.balancer import (
    LB,
    MODES,
    NODE_NAMES,
    PROXY_SECRET,
    Answer,
    Balancer,
    Node,
    Reply,
    directive,
    malformed_answer,
    nginx_size,
    render_mode,
)

pytestmark = pytest.mark.integration

EVEN = {name: 10 for name in NODE_NAMES}  # 30 requests over three healthy nodes
WITHOUT_APP1 = {"app2": 15, "app3": 15}  # 30 requests while app1 is marked failed


@pytest.fixture
def balancer(request, tmp_path, nodes):
    """A fresh nginx per test: a node marked failed stays failed for fail_timeout (5 s). Round-robin mode,
    unless the test names others with in_modes(...)."""
    require(shutil.which("nginx") is not None, "nginx is not installed (apt-get install nginx-light)")
    lb = Balancer(tmp_path, nodes, getattr(request, "param", "round-robin"))
    try:
        lb.start()
        yield lb
    finally:
        lb.stop()


def in_modes(*modes: str):
    """Run the test once per routing mode, each with its own nginx (the `balancer` fixture)."""
    return pytest.mark.parametrize("balancer", modes, indirect=True)


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


# --- sticky mode: a node's users go to its buddy, then to any live node ---------------------------------------

BAD_GATEWAY = {"error": "bad_gateway", "message": "no app node gave a usable answer (the balancer logs why)"}


def user_of(name: str) -> dict[str, str]:
    """The headers of a user the balancer stuck to node `name`."""
    return {"Cookie": f"sl_route={name}"}


def test_each_sticky_node_group_backs_its_node_up_with_its_buddy_only():
    """render-mode.sh: node_X holds X and, as its only backup, the next node in APP_NODES; the last node's
    buddy is the first (a ring, in APP_NODES order however the nodes are named)."""
    rendered = render_mode("sticky", "c=10.0.0.3:80 a=10.0.0.1:80 d=10.0.0.4:80 b=10.0.0.2:80")
    groups = {name: re.findall(r"server (\S+) [^;]*?(backup)?;", body)
              for name, body in re.findall(r"upstream node_(\w+) \{(.*?)\}", rendered, re.DOTALL)}
    assert groups == {
        "c": [("10.0.0.3:80", ""), ("10.0.0.1:80", "backup")],
        "a": [("10.0.0.1:80", ""), ("10.0.0.4:80", "backup")],
        "d": [("10.0.0.4:80", ""), ("10.0.0.2:80", "backup")],
        "b": [("10.0.0.2:80", ""), ("10.0.0.3:80", "backup")],
    }


@in_modes("sticky")
@pytest.mark.parametrize(("down", "buddy"), [("app1", "app2"), ("app3", "app1")])  # app3 -> app1: the ring wraps
def test_a_down_nodes_users_all_go_to_its_buddy(balancer, nodes, down, buddy):
    """While a user's node is down, every one of its requests goes to the node's buddy, none to the third node
    (before the buddy, the node's group had every other node as backup and nginx spread them over both)."""
    by_name = {node.name: node for node in nodes}
    assert balancer.served_by(5, headers=user_of(down)) == {down: 5}  # stuck, with keep-alive connections open
    by_name[down].stop()
    assert balancer.served_by(30, headers=user_of(down)) == {buddy: 30}
    reply = balancer.get(headers=user_of(down))
    assert reply.headers["set-cookie"].startswith(f"sl_route={buddy};")  # and re-stuck there
    assert reply.headers["x-lb-mode"] == "sticky"


@in_modes("sticky")
@pytest.mark.parametrize("size", [100, 15 * 1024])  # past the 8k client_body_buffer_size: a temp file
def test_when_node_and_buddy_are_down_a_post_reaches_the_last_live_node_intact(balancer, nodes, size):
    """app1 and its buddy app2 down: an app1 user's POST goes on to the whole pool (error_page to @any_node,
    which keeps the method and the body), reaches app3 once, and the answer re-sticks the user to app3."""
    app1, app2, app3 = nodes
    app1.stop()
    app2.stop()
    body = json.dumps({"item": "tea", "note": "n" * size}).encode()
    reply = balancer.request("POST", "/api/memory/cart?from=test", body=body,
                             headers={**user_of("app1"), "Content-Type": "application/json"})
    assert reply.status == 200 and reply.headers["x-served-by"] == "app3", (reply.status, reply.body)
    assert [(seen.method, seen.path, seen.body) for seen in app3.seen] == [("POST", "/api/memory/cart?from=test", body)]
    assert reply.headers["set-cookie"].startswith("sl_route=app3;")
    # Two server groups, separated by " : " in $upstream_addr: the node's own, then app_pool ending on app3.
    first_round, second_round = reply.headers["x-upstream-addr"].split(" : ")
    assert app3.address not in first_round and second_round.endswith(app3.address)


@in_modes("sticky")
def test_when_the_buddy_times_out_the_request_still_reaches_a_live_node(balancer, nodes):
    """The node group's last failure a timeout (a killed container's address stops answering; a frozen node):
    its 504 goes on to the pool as a 502 does. Takes proxy_read_timeout (5 s)."""
    app1, app2, _app3 = nodes
    app1.stop()
    app2.once(Answer("hang"))
    reply = balancer.get("/api/memory/cart", headers=user_of("app1"))
    assert reply.status == 200 and reply.headers["x-served-by"] in ("app2", "app3"), (reply.status, reply.body)
    assert "upstream timed out" in balancer.log() and " : " in reply.headers["x-upstream-addr"]


@in_modes("sticky")
def test_a_nodes_own_answer_from_the_second_round_is_passed_on(balancer, nodes):
    """The pool's answer goes to the client with its own status (error_page's "=" form): here app3's 401."""
    app1, app2, app3 = nodes
    app1.stop()
    app2.stop()
    app3.once(Answer("status", 401))
    reply = balancer.get("/api/memory/cart", headers=user_of("app1"))
    assert reply.status == 401 and json.loads(reply.body) == {"error": "node_error", "node": "app3"}


@in_modes("sticky")
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_with_every_node_down_a_sticky_user_gets_the_json_502(balancer, nodes, method):
    """Both rounds fail: the second error still reaches the JSON error page (recursive_error_pages), never
    nginx's HTML one."""
    for node in nodes:
        node.stop()
    reply = balancer.request(method, "/api/memory/cart", body=b'{"item":"tea"}' if method == "POST" else None,
                             headers={**user_of("app1"), "Content-Type": "application/json"})
    assert reply.status == 502 and reply.headers["content-type"] == "application/json"
    assert json.loads(reply.body) == BAD_GATEWAY
    # It did try the pool: 2 refused connections in node_app1 (app1, its buddy app2), then 3 in app_pool.
    assert balancer.log().count("Connection refused") == 5


@in_modes("round-robin", "ip-hash", "least-conn")
def test_outside_sticky_mode_a_failed_request_gets_no_second_round(balancer, nodes):
    """A 502 of nginx's own is the JSON page at once, even for a client with a sl_route cookie: a header block
    over proxy_buffer_size (not retried, proxy_next_upstream has no invalid_header) reaches one node only."""
    too_big = Answer("headers", 200, nginx_size(directive("proxy_buffer_size")[0]) + 4096)
    for node in nodes:
        node.once(too_big)
    reply = balancer.get("/api/memory/cart", headers=user_of("app1"))
    assert reply.status == 502 and json.loads(reply.body) == BAD_GATEWAY
    assert sum(node.received for node in nodes) == 1


# --- ip-hash behind a proxy -------------------------------------------------------------------------------------


@pytest.fixture
def lb_factory(tmp_path, nodes):
    """Balancer(mode, trusted_proxy=..., login_limit=...) over the three nodes, started; stopped after the test."""
    require(shutil.which("nginx") is not None, "nginx is not installed (apt-get install nginx-light)")
    started = []

    def start(mode: str, **kwargs) -> Balancer:
        lb = Balancer(tmp_path / f"lb{len(started)}", nodes, mode, **kwargs)
        lb.tmp.mkdir()
        started.append(lb)
        lb.start()
        return lb

    yield start
    for lb in started:
        lb.stop()


def nodes_of_clients(lb: Balancer, extra: dict[str, str]) -> dict[str, str]:
    """Thirty clients behind a proxy, one /24 each (ip-hash hashes three octets): the node of each, which
    must not change between its requests."""
    nodes_of = {}
    for client in range(30):
        address = f"198.18.{client}.7"  # RFC 2544's benchmarking range
        served = {lb.get("/api/memory/cart", headers={"X-Forwarded-For": address, **extra}).headers["x-served-by"]
                  for _ in range(3)}
        assert len(served) == 1, f"{address} was served by {served}"
        nodes_of[address] = served.pop()
    return nodes_of


WITH_SECRET = {"X-Lab-Proxy-Secret": PROXY_SECRET}


@pytest.mark.parametrize(("trusted_proxy", "extra", "spread"), [
    ("", WITH_SECRET, True),  # the lab's load users: the secret names them as the proxy
    ("127.0.0.1", {}, True),  # a real proxy, trusted by its address (the test runs on 127.0.0.1)
    ("10.9.9.0/24", {}, False),  # a proxy elsewhere: this connection is not it
    ("", {}, False),  # the default: trust no address
    ("", {"X-Lab-Proxy-Secret": PROXY_SECRET[:-1] + "x"}, False),  # a wrong secret
    ("", {"X-Lab-Proxy-Secret": PROXY_SECRET.upper()}, False),  # the secret's letters in another case
])
def test_ip_hash_hashes_the_forwarded_address_only_through_the_trusted_proxy(lb_factory, trusted_proxy, extra,
                                                                             spread):
    """Through the trusted proxy (the secret header, or LB_TRUSTED_PROXY's address) each client keeps one
    node and the clients spread over all three; otherwise the header is ignored, so everyone shares the
    connection's one node, ip-hash's pitfall."""
    nodes_of = nodes_of_clients(lb_factory("ip-hash", trusted_proxy=trusted_proxy), extra)
    assert set(nodes_of.values()) == (set(NODE_NAMES) if spread else {nodes_of["198.18.0.7"]})


def login(lb: Balancer, headers: dict[str, str]) -> Reply:
    return lb.request("POST", "/api/memory/login", b'{"user":"ada"}', {"Content-Type": "application/json", **headers})


def test_a_forged_forwarded_address_changes_neither_the_node_nor_the_login_limit(lb_factory, nodes):
    """From the one address every lab client shares, the load users (with the secret) spread over the nodes
    by /24, while an ordinary client writing X-Forwarded-For (a new address each time) is still the
    connection's address: one node, one login budget (2 at once here), and the nodes are told its address."""
    lb = lb_factory("ip-hash", login_limit=("1r/m", "1"))
    assert set(nodes_of_clients(lb, WITH_SECRET).values()) == set(NODE_NAMES)
    same_network = {lb.get("/healthz", headers={"X-Forwarded-For": f"198.18.5.{host}", **WITH_SECRET})
                    .headers["x-served-by"] for host in (1, 77, 254)}
    assert len(same_network) == 1  # ip_hash's three octets: one /24, one node
    for node in nodes:
        node.seen.clear()
    replies = [login(lb, {"X-Forwarded-For": f"198.18.{n}.7"}) for n in range(4)]
    assert [r.status for r in replies] == [200, 200, 429, 429]
    assert json.loads(replies[-1].body)["error"] == "too_many_logins"
    assert len({r.headers["x-served-by"] for r in replies[:2]}) == 1
    seen = [s for node in nodes for s in node.seen]
    assert [s.headers["x-forwarded-for"] for s in seen] == ["127.0.0.1", "127.0.0.1"]


def test_through_the_trusted_proxy_each_forwarded_client_has_its_own_login_limit(lb_factory, nodes):
    """With the secret, the LAST address in X-Forwarded-For (the one the proxy appended; what came before is
    the client's own word) is the client: its own budget, and what the nodes are told. The secret itself
    never reaches a node."""
    lb = lb_factory("round-robin", login_limit=("1r/m", "1"))
    forged_then_real = [f"6.6.6.6, 198.18.{n}.7" for n in range(4)]
    replies = [login(lb, {"X-Forwarded-For": xff, **WITH_SECRET}) for xff in forged_then_real for _ in range(2)]
    assert [r.status for r in replies] == [200, 200] * 4  # each client: the rate's one plus the burst's one
    assert login(lb, {"X-Forwarded-For": "6.6.6.6, 198.18.0.7", **WITH_SECRET}).status == 429
    seen = [s for node in nodes for s in node.seen]
    assert sorted({s.headers["x-forwarded-for"] for s in seen}) == [f"198.18.{n}.7" for n in range(4)]
    assert not any("x-lab-proxy-secret" in s.headers for s in seen)


def test_the_proxy_secret_must_be_set_and_plain(tmp_path):
    """render-client.sh refuses to start the balancer without a usable LB_PROXY_SECRET or with a bad
    LB_TRUSTED_PROXY."""
    for secret, trusted, message in [("", "", "LB_PROXY_SECRET is not set"), ("short", "", "at least 32"),
                                     ('a"; default 1; "' + "x" * 32, "", "only letters"),
                                     (PROXY_SECRET, "any", "LB_TRUSTED_PROXY must be")]:
        env = {**os.environ, "LB_PROXY_SECRET": secret, "LB_TRUSTED_PROXY": trusted}
        done = subprocess.run(["sh", str(LB / "render-client.sh"), str(tmp_path)], env=env, capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 2 and message in done.stderr, (secret, done.stderr)


# --- every mode -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_renders_a_config_nginx_accepts(tmp_path, nodes, mode):
    """`nginx -t`, as switch-mode.sh runs it before a reload, on nginx.conf with each mode's upstreams.conf."""
    require(shutil.which("nginx") is not None, "nginx is not installed (apt-get install nginx-light)")
    lb = Balancer(tmp_path, nodes, mode)
    lb.render()
    checked = lb.check_config()
    assert checked.returncode == 0, checked.stderr


INTERNAL_PATHS = ["/internal", "/internal/", "/internal/sessions/abc", "/internal/x?y=1",
                  "/%69nternal/sessions", "/api/../internal/sessions", "//internal/sessions"]


@in_modes(*MODES)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_the_internal_channel_is_not_reachable_through_the_balancer(balancer, nodes, method):
    """/internal/ is the nodes' replication channel: any method, any spelling nginx normalises to it, answers
    the balancer's 404 JSON and reaches no node. A path that only starts alike still reaches one."""
    for path in INTERNAL_PATHS:
        reply = balancer.request(method, path, body=b'{"session":"x"}', headers={"Content-Type": "application/json"})
        assert reply.status == 404 and reply.headers["content-type"] == "application/json", (path, reply)
        assert json.loads(reply.body) == {"error": "not_found", "message": "no such path on the balancer"}
    assert [node.seen for node in nodes] == [[], [], []]
    assert balancer.request(method, "/internals").headers["x-served-by"] in NODE_NAMES


@in_modes(*MODES)
@pytest.mark.parametrize("path", ["/api/memory/cart", "/api/memory/login"])  # location / and the login location
def test_what_nginx_refuses_stays_json_in_every_mode(balancer, nodes, path):
    """The proxying locations inherit every server-level error_page (they define none of their own), so a
    body over client_max_body_size and a header over large_client_header_buffers are JSON, in any mode."""
    too_large = balancer.request("POST", path, body=b"x" * (nginx_size(directive("client_max_body_size")[0]) + 1),
                                 headers={**user_of("app1"), "Content-Type": "application/json"})
    assert too_large.status == 413 and json.loads(too_large.body)["error"] == "request_too_large"
    _count, size = directive("large_client_header_buffers")
    header_too_large = balancer.get(path, headers={**user_of("app1"), "X-Big": "b" * nginx_size(size)})
    assert header_too_large.status == 431 and json.loads(header_too_large.body)["error"] == "header_too_large"
    assert [node.seen for node in nodes] == [[], [], []]


# --- requests nginx refuses itself: JSON however early it refuses them -----------------------------------------

BAD_REQUEST = {"error": "bad_request", "message": "the balancer could not parse the request"}
HEADER_TOO_LARGE = {"error": "header_too_large", "message": "a request header or the URL is over 16 KB"}
_COUNT, HEADER_BUFFER = directive("large_client_header_buffers")


def json_bytes(body: dict[str, str]) -> bytes:
    """A body as nginx.conf spells it: compact JSON and a newline."""
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def assert_json_error(lb: Balancer, request: bytes, status: int, body: dict[str, str]) -> None:
    reply = Reply.parse(lb.send_raw(request))
    assert (reply.status, reply.headers.get("content-type"), reply.body) == (status, "application/json",
                                                                             json_bytes(body)), reply


# Refused before the URI exists (ngx_http_process_request_line): error_page to a named location fails there
# ("empty URI in redirect to named location") and nginx falls back to its HTML 500.
EARLY = {
    "malformed-request-line": (b"GARBAGE\r\n\r\n", 400, BAD_REQUEST),
    "control-byte-in-uri": (b"GET /a\x00b HTTP/1.1\r\nHost: lb\r\n\r\n", 400, BAD_REQUEST),
    "path-above-the-root": (b"GET /../../etc HTTP/1.1\r\nHost: lb\r\n\r\n", 400, BAD_REQUEST),
    "uri-over-a-header-buffer": (b"GET /" + b"u" * nginx_size(HEADER_BUFFER) + b" HTTP/1.1\r\nHost: lb\r\n\r\n",
                                 431, HEADER_TOO_LARGE),
}


@pytest.mark.parametrize(("request_bytes", "status", "body"), EARLY.values(), ids=EARLY.keys())
def test_a_request_refused_before_its_uri_is_parsed_gets_the_json_error(balancer, nodes, request_bytes, status,
                                                                       body):
    """A malformed request line, a path escaping the root and a URI over one large_client_header_buffers buffer
    answer the same JSON as the errors nginx meets later, and never reach a node."""
    assert_json_error(balancer, request_bytes, status, body)
    assert "empty URI in redirect" not in balancer.log()
    assert [node.seen for node in nodes] == [[], [], []]


def chunked_post(path: str) -> bytes:
    """A POST whose chunked body is broken ("ZZ" is no chunk size): a 400 from the location proxying it."""
    return (f"POST {path} HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
            "Connection: close\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n").encode()


# Refused once the URI is known: while the headers are read, or inside a proxying location (the body).
LATE = {
    "no-host-header": (b"GET /api/memory/cart HTTP/1.1\r\nConnection: close\r\n\r\n", 400, BAD_REQUEST),
    "nul-in-a-header-name": (b"GET /api/memory/cart HTTP/1.1\r\nHost: lb\r\nX-A\x00b: c\r\nConnection: close\r\n\r\n",
                             400, BAD_REQUEST),
    "bad-chunked-body": (chunked_post("/api/memory/cart"), 400, BAD_REQUEST),  # in location /
    "bad-chunked-login": (chunked_post("/api/memory/login"), 400, BAD_REQUEST),  # in the login location
    "header-line-over-a-buffer": (b"GET /api/memory/cart HTTP/1.1\r\nHost: lb\r\nX-Big: "
                                  + b"b" * nginx_size(HEADER_BUFFER) + b"\r\nConnection: close\r\n\r\n",
                                  431, HEADER_TOO_LARGE),
}


@pytest.mark.parametrize(("request_bytes", "status", "body"), LATE.values(), ids=LATE.keys())
def test_a_request_refused_after_its_uri_is_parsed_gets_the_same_json_error(balancer, nodes, request_bytes, status,
                                                                           body):
    """The early errors' internal URIs serve the later 400 and 494 too: the same status and bytes as before."""
    assert_json_error(balancer, request_bytes, status, body)
    assert [node.seen for node in nodes] == [[], [], []]


def test_the_error_pages_uris_are_not_reachable_from_outside(balancer, nodes):
    """The error pages' URIs are `internal`: asked for directly, the balancer's 404 JSON, and no node reached."""
    for path in ("/.lab-errors/400", "/.lab-errors/431", "/.lab-errors/505"):
        reply = balancer.get(path)
        assert (reply.status, json.loads(reply.body)) == (404, {"error": "not_found",
                                                               "message": "no such path on the balancer"}), path
    assert [node.seen for node in nodes] == [[], [], []]


@pytest.mark.parametrize("method", ["TRACE", "CONNECT"])
def test_the_methods_nginx_refuses_get_a_json_405(balancer, nodes, method):
    """nginx refuses TRACE and CONNECT itself (a 405) whatever the location; without an error_page for 405 that
    was its HTML page."""
    request = f"{method} /api/memory/cart HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n".encode()
    assert_json_error(balancer, request, 405, {"error": "method_not_allowed",
                                               "message": "the balancer does not accept TRACE or CONNECT"})
    assert [node.seen for node in nodes] == [[], [], []]


@in_modes(*MODES)
def test_every_attempt_of_one_request_carries_nginxs_one_request_id(balancer, nodes):
    """The nodes' operation key for an add without an Idempotency-Key (api.py): nginx's $request_id, the same on
    every upstream attempt of one client request (the sticky second round through @any_node included), and never
    the one a client sent."""
    for node in nodes:
        node.once(Answer("close"))  # every node hangs up once: the request is tried on each in turn
    forged = "f" * 32
    reply = balancer.request("POST", "/api/memory/cart", b'{"item":"x"}',
                             {"Content-Type": "application/json", "Cookie": "sl_route=app1", "X-Request-Id": forged})
    attempts = [seen for node in nodes for seen in node.seen]
    ids = {seen.request_id for seen in attempts}
    assert len(attempts) >= 2 and len(ids) == 1, (reply.status, attempts)
    request_id = ids.pop()
    assert re.fullmatch(r"[0-9a-f]{32}", request_id) and request_id != forged, "nginx's own id, not the client's"


# --- real app nodes: a stalled store, and replays of applied adds (issue 16) ---------------------------------


@pytest.fixture
def cluster_lab(tmp_path):
    """Three real app nodes behind the real nginx (round-robin: app_pool, max_fails=1) and a real Cluster."""
    from tests.integration.stalled_stores import StallLab

    lab = StallLab(tmp_path, stores=("cluster",)).start()
    yield lab
    lab.stop()


def test_a_nodes_paused_store_never_costs_none_and_memory_users_a_502_or_504(cluster_lab):
    """A Cluster master paused while the cluster-wait users of its shard keep adding (the stores suite's defect:
    the shard fails over, and the promoted replica has no replica left to confirm a WAIT): their requests are
    answered by the app within its deadline, so nginx never times out on a node, never counts one failed, and
    `none` and `memory` users never meet its 502 (no live upstreams) or 504. Before issue 16, a cluster-wait
    add outlived proxy_read_timeout and ejected node after node."""
    from session_lab.strategies._redis_cart import keys_of
    from tests.integration.stalled_stores import keep_sending

    answers = []
    clients = cluster_lab.clients(answers, ["cluster-wait"] * 18 + ["none"] * 3 + ["memory"] * 3)
    by_master = {}
    for key, client in clients.items():
        if key.startswith("cluster-wait"):
            master = cluster_lab.cluster.master_of(keys_of(client.session_id())[0])
            by_master.setdefault(master, {})[key] = client
    master, stalled_clients = max(by_master.items(), key=lambda found: len(found[1]))
    others = {key: client for key, client in clients.items() if not key.startswith("cluster-wait")}
    answers.clear()
    master.pause()
    keep_sending({**stalled_clients, **others}, 7.0)  # longer than nginx's 5 s read timeout
    served = [a for a in answers if a.strategy in ("none", "memory")]
    assert served and not [a for a in served if a.status in (502, 504) or not a.served_by], \
        [a for a in served if a.status in (502, 504)][:5]
    assert all(a.status == 200 for a in served if a.strategy == "none")
    stalled = [a for a in answers if a.strategy == "cluster-wait"]
    assert stalled and all(a.served_by and a.status in (200, 503) for a in stalled), stalled[:5]
    # The cause, whether or not it ejected every node this time: nginx timed out on a node that was alive.
    assert "upstream timed out" not in cluster_lab.balancer.log()


@pytest.fixture
def relay_lab(tmp_path, redis_server, store):
    """nginx over a relay (it hands each request to the real app2, then hangs up: applied, answer lost) and the
    real app2 and app3, on one Redis."""
    from tests.integration.app_nodes import Ring

    require(shutil.which("nginx") is not None, "nginx is not installed (apt-get install nginx-light)")
    ring = Ring(tmp_path, REDIS_HOST="127.0.0.1", REDIS_PORT=str(redis_server.port),
                **acl.APP_PASSWORDS).start()
    relay = Node("app1")
    relay.start()
    lb = Balancer(tmp_path, [relay, ring["app2"], ring["app3"]])
    try:
        lb.start()
        yield lb, relay, ring
    finally:
        lb.stop()
        relay.stop()
        ring.stop()


@pytest.mark.parametrize("strategy", ["redis", "flask-session"])
def test_an_add_a_node_applied_but_never_answered_is_applied_once_when_nginx_replays_it(relay_lab, strategy):
    """A plain client (no Idempotency-Key): nginx replays the add on the next node (proxy_next_upstream error,
    non_idempotent) with the same X-Request-Id, which the nodes take as the operation key."""
    lb, relay, ring = relay_lab
    status, _, headers = ring["app2"].request("POST", f"/api/{strategy}/login", {"user": "alice"})
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    relay.once(Answer("relay", target=ring["app2"].address))
    sent = []
    for attempt in range(len(lb.nodes)):  # round robin reaches the relay within one request per node
        sent.append(f"item-{attempt}")
        reply = lb.request("POST", f"/api/{strategy}/cart", json.dumps({"item": sent[-1]}).encode(),
                           {"Content-Type": "application/json", "Cookie": cookie})
        assert reply.status == 200, reply.body
        if relay.received:
            break
    assert relay.received == 1, "no add reached the relay"
    _, cart, _ = ring["app3"].request("GET", f"/api/{strategy}/cart", cookie=cookie)
    assert cart["items"] == sent, "an add nginx replayed was applied twice (or lost)"
