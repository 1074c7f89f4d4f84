"""Logout is a state-changing POST like the others: it needs a JSON body, so a cross-site form cannot log a
user out; and it answers `logged_out: true` only when the session really ended, not when it lives on in
another node's memory (docs/hardening.md, "Logout")."""

import pytest

from session_lab import create_app, strategies
from tests.conftest import flask_sender
from tests.session_client import SessionClient

ALL = strategies.names()
# Sessions in one node's memory: a node that does not hold one cannot end it.
NODE_LOCAL = [c.name for c in strategies.classes() if c.needs_sticky or c.node_replica]
# The session is the client's credential or lives in a store every node reaches (none Redis in unit tests).
ANY_NODE = [c.name for c in strategies.classes() if not c.dependencies and c.name not in NODE_LOCAL]

# What an HTML form on another site can send without a CORS preflight (the "simple" content types).
FORM_BODIES = [
    ("text/plain", "{}"),
    ("application/x-www-form-urlencoded", "x=1"),
    ("multipart/form-data; boundary=b", '--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n'),
    (None, ""),
]


def node(make_settings, clock, name):
    return create_app(make_settings(NODE_NAME=name), clock=clock)


def holding(app, alice: SessionClient):
    """A test client of `app` that holds alice's credential: her cookie, or her headers (returned)."""
    http = app.test_client()
    headers = {"Authorization": f"Bearer {alice.token}"} if alice.token else {}
    if alice.client_state:
        headers["X-Client-Session"] = alice.client_state
    set_cookie = next((r.headers["set-cookie"] for r in reversed(alice.replies) if "set-cookie" in r.headers), "")
    if set_cookie:
        name, value = set_cookie.split(";")[0].split("=", 1)
        http.set_cookie(name, value)
    return http, headers


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize("content_type, data", FORM_BODIES)
def test_a_logout_without_a_json_body_is_refused_and_ends_nothing(app, strategy, content_type, data):
    """Refused before any store is asked: the strategies whose store the unit tests do not run (their login is a
    503 here) are refused alike; the others show the session unchanged afterwards."""
    alice = SessionClient(strategy, flask_sender(app))
    logged_in = alice.login("alice").status == 200
    if logged_in:
        alice.add("apple")
    http, headers = holding(app, alice)
    response = http.post(f"/api/{strategy}/logout", data=data, headers=headers,
                         **({"content_type": content_type} if content_type else {}))
    assert response.status_code == 415, response.get_data(as_text=True)
    assert response.get_json()["error"] == "unsupported_media_type"
    assert "Set-Cookie" not in response.headers  # nothing told the browser to drop its credential
    if logged_in:
        again = http.get(f"/api/{strategy}/cart", headers=headers).get_json()
        assert again["items"] == (["apple"] if again["user"] else [])  # `none` keeps nothing to lose


@pytest.mark.parametrize("strategy", NODE_LOCAL)
def test_a_node_that_does_not_hold_the_session_does_not_claim_to_have_logged_it_out(make_settings, clock, strategy):
    app1, app2 = node(make_settings, clock, "app1"), node(make_settings, clock, "app2")
    alice = SessionClient(strategy, flask_sender(app1))
    alice.login("alice")
    alice.add("apple")
    http, _ = holding(app2, alice)

    elsewhere = http.post(f"/api/{strategy}/logout", json={})
    assert elsewhere.status_code == 409, elsewhere.get_data(as_text=True)
    body = elsewhere.get_json()
    assert body["logged_out"] is False and body["error"] == "session_not_here" and body["node"] == "app2"
    assert "app2 holds no" in body["message"]
    assert "Set-Cookie" not in elsewhere.headers  # the client keeps the credential that can still end it
    assert alice.cart().body["items"] == ["apple"]  # the session lives on where it was

    home = alice.logout()  # on the node that holds it
    assert home.status == 200 and home.body["logged_out"] is True
    assert alice.cart().status == 401


@pytest.mark.parametrize("strategy", ANY_NODE)
def test_a_session_every_node_can_end_is_logged_out_by_any_node(make_settings, clock, strategy):
    app1, app2 = node(make_settings, clock, "app1"), node(make_settings, clock, "app2")
    alice = SessionClient(strategy, flask_sender(app1))
    alice.login("alice")
    elsewhere = SessionClient(strategy, flask_sender(app2), token=alice.token, client_state=alice.client_state)
    reply = elsewhere.logout()
    assert reply.status == 200 and reply.body["logged_out"] is True and reply.body["node"] == "app2"


@pytest.mark.parametrize("strategy", NODE_LOCAL)
def test_a_logout_without_a_session_cookie_ends_nothing_and_says_so_honestly(app, strategy):
    """No credential names a session: there is nothing that could live on, so the logout has nothing to refuse."""
    response = app.test_client().post(f"/api/{strategy}/logout", json={})
    assert response.status_code == 200 and response.get_json()["logged_out"] is True
