"""With Redis out of reach, the strategies on it answer 503 JSON and nothing else is affected."""

import pytest

from session_lab import strategies


@pytest.fixture
def http(app):  # the unit settings point Redis at 127.0.0.1:1, where nothing listens
    return app.test_client()


ON_REDIS = [c for c in strategies.classes() if c.dependencies == ("redis",)]


@pytest.mark.parametrize("cls", ON_REDIS, ids=lambda c: c.name)
def test_a_strategy_on_redis_answers_503_json(http, cls):
    reply = http.post(f"/api/{cls.name}/login", json={"user": "alice"})
    assert reply.status_code == 503 and reply.get_json()["error"] == "store_unavailable"
    http.set_cookie(cls.session_cookie, "A" * 43)
    for method, action in [("GET", "cart"), ("POST", "logout")]:
        reply = http.open(f"/api/{cls.name}/{action}", method=method, json={} if method == "POST" else None)
        assert reply.status_code == 503, "never a fresh anonymous session when the store is down"
        assert reply.get_json()["error"] == "store_unavailable"


def test_liveness_stays_green_and_readiness_names_redis(http):
    assert http.get("/healthz").status_code == 200
    ready = http.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["redis"] != "ok"


@pytest.mark.parametrize("strategy", [c.name for c in strategies.classes() if not c.dependencies])
def test_other_strategies_carry_on(session_client, strategy):
    c = session_client(strategy)
    assert c.login("alice").status == 200
    assert c.add("apple").status == 200
    assert c.cart().status == 200
