"""The one size budget (session_lab/limits.py) holds in the app and in gunicorn's settings."""

import runpy
from pathlib import Path

import pytest

from session_lab.limits import CREDENTIAL_MAX_BYTES, RESPONSE_HEADERS_MAX, header_block_bytes

ROOT = Path(__file__).resolve().parents[2]

NGINX_HEADER_LINE = 16 * 1024  # large_client_header_buffers 4 16k (tests/integration checks nginx.conf)


def test_gunicorn_accepts_whatever_nginx_lets_through():
    conf = runpy.run_path(str(ROOT / "services" / "app" / "gunicorn.conf.py"))
    assert conf["limit_request_line"] == 0  # no limit of its own: nginx bounds the line at 16k
    assert conf["limit_request_field_size"] > NGINX_HEADER_LINE
    shortest_line = len("a:\r\n")
    assert conf["limit_request_fields"] >= 4 * NGINX_HEADER_LINE // shortest_line  # all nginx's 64k can hold


@pytest.mark.parametrize("strategy", ["jwt", "client"])
@pytest.mark.parametrize("alphabet", ["x", "é", "\U0001F600"], ids=["ascii", "latin", "emoji"])
def test_the_largest_answer_fits_the_budget(make_settings, clock, strategy, alphabet):
    """Grow a cart of maximum-length items until the API refuses: every answer given fits."""
    from session_lab import create_app

    app = create_app(make_settings(MAX_CART_ITEMS="500"), clock=clock)
    http = app.test_client()
    login = http.post(f"/api/{strategy}/login", json={"user": "u" * 64}).get_json()
    credential = login.get("token") or login["client_session"]
    for n in range(500):
        headers = {"Authorization": f"Bearer {credential}"} if strategy == "jwt" else {"X-Client-Session": credential}
        reply = http.post(f"/api/{strategy}/cart", headers=headers, json={"item": f"{n:03d}" + alphabet * 61})
        assert header_block_bytes(reply.status, reply.headers.items()) <= RESPONSE_HEADERS_MAX
        if reply.status_code != 200:
            break
        body = reply.get_json()
        credential = body.get("token") or body["client_session"]
        assert len(credential) <= CREDENTIAL_MAX_BYTES
    assert reply.status_code == 413 and reply.get_json()["error"] == "state_too_large"
    assert n > 0


def test_an_answer_over_the_header_budget_never_leaves_the_node(app):
    """The guard behind the budget: were a strategy to break it, nginx would mark the node failed."""

    @app.get("/test-oversized")
    def oversized():
        return {"ok": True}, 200, {"X-Big": "b" * RESPONSE_HEADERS_MAX}

    reply = app.test_client().get("/test-oversized")
    assert reply.status_code == 500 and reply.get_json()["error"] == "response_too_large"
    assert "X-Big" not in reply.headers and reply.headers["X-Served-By"] == "test-node"
