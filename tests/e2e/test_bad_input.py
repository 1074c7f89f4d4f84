"""Bad input through nginx: always a 4xx with a JSON body naming the problem."""

import json

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
        malformed = requests.post(f"{url}/login", data="{oops", headers={"Content-Type": "application/json"})
        assert_json_error(malformed, 400)
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


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /api/redis/cart HTTP/1.1\r\nHost: lab\r\nX-Thing: a\x01b\r\n", 400),  # control character
    (b"POST /api/redis/login HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\n"
     b"Content-Type: text/plain\r\nContent-Length: 2\r\n", 400),  # a repeated Content-Type
    (b"GET /api/red\xc3\xa9is/cart HTTP/1.1\r\nHost: lab\r\n", 400),  # raw non-ASCII in the path
    (b"POST /api/redis/login HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: identity\r\n", 501),
    (b"GET /api/redis/cart HTTP/2.5\r\nHost: lab\r\n", 505),
], ids=["control-character", "repeated-content-type", "non-ascii-path", "transfer-encoding", "http-version"])
def test_requests_nginx_passes_but_gunicorn_refuses_are_json_too(lab, request_bytes, status):
    """Malformed requests that nginx forwards and gunicorn's parser refuses, or nginx refuses itself."""
    import socket

    with socket.create_connection(("127.0.0.1", int(lab.url.rsplit(":", 1)[1])), timeout=10) as s:
        s.sendall(request_bytes + b"Connection: close\r\n\r\n" + (b"{}" if b"Length: 2" in request_bytes else b""))
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == str(status).encode(), answer[:300]
    parsed = json.loads(body)
    assert parsed["error"] and parsed["message"], parsed
