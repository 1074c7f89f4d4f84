"""Bad input always gets a 4xx JSON error naming the problem, for every strategy, and changes nothing."""

import pytest

from session_lab import strategies

ALL = strategies.names()


@pytest.fixture
def http(app):
    return app.test_client()


def assert_json_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == code and body["message"], body
    assert response.headers["X-Served-By"] == "test-node"


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize("action", ["login", "cart"])
@pytest.mark.parametrize(
    "data, content_type, status, code",
    [
        ("{not json", "application/json", 400, "malformed_json"),
        ("[1, 2]", "application/json", 400, "malformed_json"),
        ("{}", "application/json", 400, "missing_field"),
        ('{"user": 7, "item": 7}', "application/json", 400, "invalid_field"),
        ('{"user": "", "item": ""}', "application/json", 400, "invalid_field"),
        ('{"user": "a\\u0000b", "item": "a\\nb"}', "application/json", 400, "invalid_field"),
        ('{"user": "alice", "item": "apple"}', "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_malformed_bodies(http, strategy, action, data, content_type, status, code):
    response = http.post(f"/api/{strategy}/{action}", data=data, content_type=content_type)
    assert_json_error(response, status, code)


@pytest.mark.parametrize("strategy", ALL)
def test_oversized_fields(http, strategy):
    assert_json_error(http.post(f"/api/{strategy}/login", json={"user": "u" * 65}), 413, "field_too_long")
    assert_json_error(http.post(f"/api/{strategy}/cart", json={"item": "i" * 65}), 413, "field_too_long")


def test_oversized_body(http):
    assert_json_error(http.post("/api/jwt/login", json={"user": "x" * 20_000}), 413, "request_entity_too_large")


@pytest.mark.parametrize("method, path", [("GET", "/api/nope/cart"), ("POST", "/api/nope/login")])
def test_unknown_strategy(http, method, path):
    response = http.open(path, method=method, json={"user": "alice"})
    assert_json_error(response, 404, "unknown_strategy")
    assert "memory" in response.get_json()["message"]  # the answer lists the real choices


def test_unknown_route_and_method(http):
    assert_json_error(http.get("/nowhere"), 404, "not_found")
    assert_json_error(http.get("/api/jwt/login"), 405, "method_not_allowed")


@pytest.mark.parametrize("strategy", [s for s in ALL if s != "none"])
def test_no_credentials_is_401(http, strategy):
    assert_json_error(http.get(f"/api/{strategy}/cart"), 401, "unauthorized")
    assert_json_error(http.post(f"/api/{strategy}/cart", json={"item": "apple"}), 401, "unauthorized")


@pytest.mark.parametrize("strategy", [c.name for c in strategies.classes() if c.keeps_state and not c.dependencies])
def test_rejected_add_loses_nothing(session_client, strategy):
    c = session_client(strategy)
    c.login("alice")
    c.add("apple")
    assert c.add("").status == 400
    assert c.add("x" * 500).status == 413
    assert c.cart().body["items"] == ["apple"]


@pytest.mark.parametrize("key", ["", " padded ", "k" * 65, "tab\tinside"])
def test_bad_idempotency_key(session_client, key):
    c = session_client("jwt")
    c.login("alice")
    reply = c.send("POST", "/api/jwt/cart", json={"item": "apple"},
                   headers={"Authorization": f"Bearer {c.token}", "Idempotency-Key": key})
    assert reply.status == 400 and reply.body["error"] == "invalid_idempotency_key"
