"""The client strategy: state sealed with AES-GCM, carried by header or cookie, refused when too big."""

import base64

import pytest

from session_lab.strategies.client_state import COOKIE, HEADER


@pytest.fixture
def alice(session_client):
    c = session_client("client")
    c.login("alice")
    c.add("apple")
    return c


def flip_a_byte(blob: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(blob[3:] + "=" * (-len(blob[3:]) % 4)))
    raw[20] ^= 0x01
    return "v1." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def test_state_is_not_readable(alice):
    assert "apple" not in alice.client_state and "alice" not in alice.client_state


def test_every_response_returns_the_state_once_in_the_headers_and_once_in_the_body(app):
    http = app.test_client()
    reply = http.post("/api/client/login", json={"user": "alice"})
    state = reply.get_json()["client_session"]
    assert HEADER not in reply.headers  # once in the headers is enough: see limits.py
    assert f"{COOKIE}={state};" in reply.headers["Set-Cookie"] and "HttpOnly" in reply.headers["Set-Cookie"]
    # the cookie alone is enough: Flask's test client keeps it like a browser would
    added = http.post("/api/client/cart", json={"item": "apple"})
    assert added.status_code == 200 and added.get_json()["items"] == ["apple"]


@pytest.mark.parametrize(
    "forge",
    [flip_a_byte, lambda b: b[:-4], lambda b: "v2." + b[3:], lambda b: "v1.!!!", lambda b: "v1." + "A" * 5000],
    ids=["flipped-byte", "truncated", "unknown-version", "not-base64", "huge"],
)
def test_tampered_state_is_refused(alice, forge):
    alice.client_state = forge(alice.client_state)
    reply = alice.cart()
    assert reply.status == 401 and reply.body["error"] == "unauthorized"


def test_state_sealed_with_another_key_is_refused(alice, make_settings, clock):
    from session_lab import create_app
    from tests.conftest import flask_sender

    other_key = base64.urlsafe_b64encode(b"o" * 32).decode()
    other = create_app(make_settings(CLIENT_SESSION_KEY=other_key), clock=clock)
    reply = flask_sender(other)("GET", "/api/client/cart", headers={HEADER: alice.client_state})
    assert reply.status == 401 and "authentication" in reply.body["message"]


def test_too_large_state_is_refused_and_the_old_state_still_works(session_client, make_settings, clock):
    from session_lab import create_app
    from tests.conftest import flask_sender
    from tests.session_client import SessionClient

    app = create_app(make_settings(MAX_CART_ITEMS="500"), clock=clock)
    c = SessionClient("client", flask_sender(app))
    c.login("alice")
    added = []
    while True:
        item = f"{len(added):03d}-" + "x" * 60
        reply = c.add(item)
        if reply.status != 200:
            break
        added.append(item)
    assert reply.status == 413 and reply.body["error"] == "state_too_large"
    assert 20 < len(added) < 60
    assert c.cart().body["items"] == added  # the refused add changed nothing


def test_replaying_an_older_state_is_possible_but_visible_in_the_version(alice):
    old_state, old_version = alice.client_state, alice.replies[-1].body["version"]
    alice.add("pear")
    alice.client_state = old_state
    replayed = alice.cart()
    assert replayed.body["items"] == ["apple"] and replayed.body["version"] == old_version
