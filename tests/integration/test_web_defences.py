"""The security headers real nginx sends with the project's balancer config (loadbalancer/security-headers.conf)
on everything it serves: what it proxies (the page, its assets, the API, a node's own errors) and the JSON errors
it makes itself. nginx's add_header is not inherited by a level with add_header lines of its own
(https://nginx.org/r/add_header), so each kind of answer is read here, not assumed."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import require
from tests.integration.balancer import LB, MODES, NODE_NAMES, Answer, Balancer, Reply
from tests.security_headers import PLAIN_HEADERS, assert_defended

pytestmark = pytest.mark.integration

class StrictLogins(Balancer):
    """One login a minute per address and a burst of one (nginx refuses burst=0), so the third login meets
    nginx's own 429."""

    def render(self) -> None:
        super().render()
        env = {**os.environ, "LOGIN_RATE_LIMIT": "1r/m", "LOGIN_BURST": "1"}
        subprocess.run(["sh", str(LB / "render-limits.sh"), str(self.tmp)], env=env, check=True, timeout=30)


def running(balancer: Balancer):
    require(shutil.which("nginx") is not None, "nginx is not installed (apt-get install nginx-light)")
    try:
        balancer.start()
        yield balancer
    finally:
        balancer.stop()


@pytest.fixture(params=MODES)
def balancer(request, tmp_path, nodes):
    yield from running(Balancer(tmp_path, nodes, request.param))


@pytest.fixture
def strict(tmp_path, nodes):
    yield from running(StrictLogins(tmp_path, nodes))


@pytest.mark.parametrize("path", ["/", "/demo/demo.js", "/demo/demo.css", "/api/strategies", "/api/redis/cart"])
def test_what_nginx_proxies_carries_the_security_headers_in_every_mode(balancer, path):
    reply = balancer.get(path)
    assert reply.status == 200 and reply.headers["x-served-by"] in NODE_NAMES
    assert_defended(reply.headers, f"{balancer.mode} GET {path}")


def test_a_login_and_a_nodes_own_error_answer_carry_them(balancer, nodes):
    login = balancer.request("POST", "/api/redis/login", b'{"user":"alice"}', {"Content-Type": "application/json"})
    assert_defended(login.headers, "a login (its own location, with the rate limit)")
    for node in nodes:
        node.once(Answer("status", 409))
    refused = balancer.get("/api/memory/cart")
    assert refused.status == 409
    assert_defended(refused.headers, "a node's 409")


def test_each_header_is_sent_once(balancer):
    """Not twice (the server level and proxy.conf both add them): a proxied answer and one of nginx's own."""
    for raw in (balancer.get_raw("/"), balancer.get_raw("/nginx-health")):
        head = raw.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
        for name in ("content-security-policy", *PLAIN_HEADERS):
            assert head.count(f"\r\n{name}:") == 1, f"{name} in:\n{head}"


def test_nginxs_own_answers_carry_them(balancer, nodes):
    answers = {
        "its health check": balancer.get("/nginx-health"),
        "the refused replication path (404)": balancer.get("/internal/copy"),
        "a body over 16 KB (413)": balancer.request("POST", "/api/redis/cart", b"x" * 20_000,
                                                    {"Content-Type": "application/json"}),
        "a malformed request line (400)": Reply.parse(balancer.send_raw(b"GET /a b c\r\n\r\n")),
        "a URI over a header buffer (431)": Reply.parse(balancer.get_raw("/" + "u" * 17_000)),
    }
    for node in nodes:
        node.stop()
    answers["no live node (502)"] = balancer.get("/api/redis/cart")
    for what, reply in answers.items():
        assert reply.headers.get("content-type") == "application/json", f"{what}: {reply.status} {reply.body!r}"
        assert_defended(reply.headers, what)


def test_the_login_limits_429_carries_them_beside_retry_after(strict):
    def login():
        return strict.request("POST", "/api/redis/login", b'{"user":"a"}', {"Content-Type": "application/json"})

    assert [login().status for _ in range(2)] == [200, 200]
    limited = login()
    assert limited.status == 429 and limited.headers["retry-after"] == "1"
    assert_defended(limited.headers, "the login limit's 429")
