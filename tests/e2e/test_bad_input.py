"""Bad input through nginx: always a 4xx with a JSON body naming the problem."""

import pytest
import requests


@pytest.fixture(scope="module")
def names(stack):
    return [s["name"] for s in stack.strategies()]


def assert_json_error(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] and body["message"]


def test_bad_bodies_for_every_strategy(lab, names):
    for name in names:
        url = f"{lab.url}/api/{name}"
        assert_json_error(requests.post(f"{url}/login", data="{oops", headers={"Content-Type": "application/json"}), 400)
        assert_json_error(requests.post(f"{url}/login", json={}), 400)
        assert_json_error(requests.post(f"{url}/cart", json={"item": "x" * 1000}), 413)
        assert_json_error(requests.post(f"{url}/login", data="user=alice"), 415)


def test_tampered_credentials_are_401(lab):
    bad = {
        "memory": {"cookies": {"sl_memory": "A" * 43}},
        "redis": {"cookies": {"sl_redis": "B" * 43}},
        "jwt": {"headers": {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}},
        "client": {"headers": {"X-Client-Session": "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
    }
    for name, credentials in bad.items():
        assert_json_error(requests.get(f"{lab.url}/api/{name}/cart", timeout=10, **credentials), 401)


def test_unknown_strategy(lab):
    assert_json_error(lab.get("/api/does-not-exist/cart"), 404)


def test_what_nginx_refuses_is_json_too(lab):
    assert_json_error(requests.post(f"{lab.url}/api/jwt/login", data="x" * 20_000,
                                    headers={"Content-Type": "application/json"}), 413)
    assert_json_error(lab.get("/api/jwt/cart", headers={"Authorization": "Bearer " + "a" * 20_000}), 431)
