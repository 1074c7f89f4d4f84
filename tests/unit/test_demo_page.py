"""The demo page's files, GET /api/lab and the credential's size in the API's answers (Flask test client)."""

from __future__ import annotations

import re
import socket
import time

import pytest

from session_lab import create_app, lab


def test_the_page_and_its_assets_are_served_with_their_types(client):
    with client.get("/") as page:  # a file answer: closed, or its file is left open
        assert page.status_code == 200 and page.mimetype == "text/html"
        html = page.get_data(as_text=True)
    assets = re.findall(r'(?:href|src)="(/[^"]+)"', html)
    assert sorted(assets) == ["/demo/demo.css", "/demo/demo.js"]
    for path, mimetype in (("/demo/demo.css", "text/css"), ("/demo/demo.js", "text/javascript")):
        with client.get(path) as answer:
            assert answer.status_code == 200 and answer.mimetype == mimetype, path
            assert answer.headers["X-Served-By"] == "test-node"
    assert client.get("/demo/missing.js").status_code == 404


def test_the_page_needs_nothing_from_outside():
    from session_lab.demo import STATIC

    for asset in STATIC.iterdir():
        text = asset.read_text().replace("http://www.w3.org/2000/svg", "")  # a namespace name, nothing is fetched
        outside = re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.IGNORECASE)
        assert not outside, f"{asset.name} loads from outside"
    html = (STATIC / "index.html").read_text()
    assert 'rel="icon" href="data:,"' in html  # no /favicon.ico request, so no 404 in the console


def test_the_page_writes_no_markup_from_data():
    """Answers and user input reach the page as text (textContent), never as HTML."""
    from session_lab.demo import STATIC

    script = (STATIC / "demo.js").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script)


def test_the_page_needs_nothing_the_balancers_content_security_policy_refuses():
    """script-src and style-src 'self' (loadbalancer/security-headers.conf): no inline script, event handler,
    <style> element or style attribute; colours change through the CSSOM (el.style.setProperty), which CSP allows.
    The browser tests (tests/integration/browser) load the page under the real header and fail on a violation."""
    from session_lab.demo import STATIC

    html = (STATIC / "index.html").read_text()
    assert all(re.search(r'\bsrc="/', tag) for tag in re.findall(r"<script\b[^>]*>", html)), "an inline script"
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", html, re.IGNORECASE)
    script = (STATIC / "demo.js").read_text()
    assert not re.search(r"""setAttribute\(\s*["'](style|on[a-z]+)|\.cssText|\beval\(|new Function\(""", script)


@pytest.fixture
def client(app):
    return app.test_client()


def test_credential_bytes_is_the_size_of_what_was_issued(session_client):
    jwt = session_client("jwt")
    answer = jwt.login("alice")
    assert list(answer.body)[:5] == ["user", "items", "version", "strategy", "node"]  # the fields before, in order
    assert answer.body["credential_bytes"] == len(answer.body["token"].encode())
    client = session_client("client")
    answer = client.add("apple") if client.login("bob").status == 200 else None
    assert answer.body["credential_bytes"] == len(answer.body["client_session"])
    memory = session_client("memory")
    assert memory.login("carol").body["credential_bytes"] == len(memory.session_id())
    assert "credential_bytes" not in session_client("none").login("dave").body  # nothing issued


def test_lab_names_the_node_and_each_store(client):
    answer = client.get("/api/lab")
    assert answer.status_code == 200
    body = answer.get_json()
    assert list(body) == ["node", "nodes", "stores", "probe_timeout", "took_ms", "age_ms"]
    assert body["node"] == "test-node"
    assert body["nodes"] == [{"name": "test-node", "state": "up", "detail": "serving this answer", "ms": 0.0}]
    # Nothing listens for the unit tests' stores: each one is named, and down, none crashes the answer.
    stores = {s["name"]: s for s in body["stores"]}
    assert {"redis", "sentinel", "cluster"} <= set(stores)
    assert all(s["state"] == "down" and s["detail"] for n, s in stores.items() if n in {"redis", "sentinel", "cluster"})


@pytest.fixture
def frozen_peer():
    """Accepts connections (the kernel's backlog) and never answers, like a paused container."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def refusing_peer():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    return address  # closed: connections are refused


def test_lab_answers_in_bounded_time_with_a_dead_and_a_frozen_peer(make_settings, clock, frozen_peer, refusing_peer):
    peers = f"test-node=127.0.0.1:1 app2={refusing_peer} app3={frozen_peer}"
    settings = make_settings(REPLICATION_PEERS=peers, REPLICATION_SECRET="r" * 32)
    client = create_app(settings, clock=clock).test_client()
    started = time.monotonic()
    answer = client.get("/api/lab")
    took = time.monotonic() - started
    assert answer.status_code == 200
    assert took < lab.DEADLINE + 0.5, f"/api/lab took {took:.2f} s"
    nodes = {n["name"]: n for n in answer.get_json()["nodes"]}
    assert list(nodes) == ["test-node", "app2", "app3"]  # the ring's order
    assert nodes["test-node"]["state"] == "up"
    assert nodes["app2"]["state"] == "down" and nodes["app2"]["detail"] == "connection refused"
    assert nodes["app3"]["state"] == "no-answer"
    # A second look within CACHE_SECONDS reuses the answer instead of probing again.
    started = time.monotonic()
    again = client.get("/api/lab").get_json()
    assert time.monotonic() - started < 0.2 and again["took_ms"] == answer.get_json()["took_ms"]


def test_probe_reports_a_live_peer_that_names_itself(make_settings, clock):
    """probe_node against a real /healthz answer (werkzeug's server on a free port)."""
    import threading

    from werkzeug.serving import make_server

    peer = create_app(make_settings(NODE_NAME="app2"), clock=clock)
    server = make_server("127.0.0.1", 0, peer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        address = f"127.0.0.1:{server.server_port}"
        assert lab.probe_node("app2", address)["state"] == "up"
        wrong = lab.probe_node("app9", address)  # someone answers, but not the node we asked for
        assert wrong["state"] == "down" and "200" in wrong["detail"]
    finally:
        server.shutdown()
        thread.join(timeout=5)
