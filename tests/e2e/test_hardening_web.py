"""Web defences through the compose stack's nginx: the security headers on the page, its assets, the API and
nginx's own errors; a logout only with a JSON body (no cross-site form can send one); and a logout that a node
without the session refuses honestly instead of claiming it (docs/hardening.md, "Web defences", "Logout")."""

from __future__ import annotations

import pytest
import requests

from tests.security_headers import assert_defended

# What an HTML form on another site can post without a CORS preflight.
FORM_BODIES = {
    "text/plain": ("text/plain", "{}"),
    "form-urlencoded": ("application/x-www-form-urlencoded", "x=1"),
    "multipart": ("multipart/form-data; boundary=b",
                  '--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n'),
}


def lower(response: requests.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items()}


@pytest.mark.parametrize("path", ["/", "/demo/demo.js", "/demo/demo.css", "/api/strategies", "/api/redis/cart",
                                  "/nginx-health", "/internal/copy"])
def test_every_answer_through_nginx_carries_the_security_headers(lab, path):
    response = lab.get(path)
    assert response.status_code in (200, 401, 404), (path, response.status_code, response.text[:200])
    assert_defended(lower(response), f"GET {path} ({response.status_code})")


def test_the_demo_page_loads_nothing_inline_and_nothing_from_elsewhere(lab):
    page = lab.get("/").text
    assert '<script src="/demo/demo.js"' in page and "<style" not in page and " style=" not in page
    assert "http://" not in page and "https://" not in page


@pytest.mark.parametrize("content_type, data", FORM_BODIES.values(), ids=FORM_BODIES.keys())
def test_a_logout_a_cross_site_form_could_send_is_refused_and_the_session_lives(lab, content_type, data):
    alice = lab.client("redis")
    assert alice.login("alice").status == 200 and alice.add("apple").status == 200
    cookie = alice.session_id()
    refused = requests.post(f"{lab.url}/api/redis/logout", data=data, timeout=10,
                            headers={"Content-Type": content_type, "Cookie": f"sl_redis={cookie}"})
    assert refused.status_code == 415 and refused.json()["error"] == "unsupported_media_type", refused.text
    assert_defended(lower(refused), "the refused logout")
    assert alice.cart().body["items"] == ["apple"]
    assert alice.logout().status == 200  # with a JSON body
    assert alice.cart().status == 401


def test_a_memory_logout_on_a_node_without_the_session_says_it_did_not_end_it(lab):
    """Round-robin: the next request goes to another node, which does not hold the memory session."""
    for _ in range(10):  # bounded: round-robin alternates, so the first tries already land elsewhere
        alice = lab.client("memory")
        home = alice.login("alice").node
        reply = alice.logout()
        if reply.node != home:
            break
    else:
        pytest.fail("ten logouts in a row reached the node that made the session")
    assert reply.status == 409, reply.body
    assert reply.body["error"] == "session_not_here" and reply.body["logged_out"] is False
    assert "set-cookie" not in reply.headers  # the browser keeps the cookie that can still end it at home
    for _ in range(6):  # bounded: three nodes in turn
        answer = alice.cart()
        if answer.node == home:
            assert answer.status == 200 and answer.body["user"] == "alice"
            return
    pytest.fail(f"no request reached {home} again")
