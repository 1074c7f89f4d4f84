"""The jwt strategy refuses every token it did not mint for this audience, unexpired."""

import base64
import json

import jwt
import pytest


@pytest.fixture
def alice(session_client):
    c = session_client("jwt")
    c.login("alice")
    c.add("apple")
    return c


def claims_of(token):
    return jwt.decode(token, options={"verify_signature": False})


def reuse(alice, token):
    alice.token = token
    return alice.cart()


def test_state_lives_in_the_claims(alice, settings):
    claims = claims_of(alice.token)
    assert claims["sub"] == "alice" and claims["items"] == ["apple"] and claims["ver"] == 1
    assert claims["iss"] == settings.jwt_issuer and claims["aud"] == settings.jwt_audience
    assert claims["exp"] - claims["iat"] == settings.idle_timeout


def test_each_change_mints_a_new_token(alice):
    before = alice.token
    alice.add("pear")
    assert alice.token != before and claims_of(alice.token)["items"] == ["apple", "pear"]


def test_tampered_payload_is_refused(alice):
    header, payload, signature = alice.token.split(".")
    claims = claims_of(alice.token) | {"items": ["diamond"]}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    reply = reuse(alice, f"{header}.{forged}.{signature}")
    assert reply.status == 401 and "invalid token" in reply.body["message"]


def test_alg_none_is_refused(alice):
    unsigned = jwt.encode(claims_of(alice.token), key=None, algorithm="none")
    assert reuse(alice, unsigned).status == 401


def test_another_secret_is_refused(alice):
    other = jwt.encode(claims_of(alice.token), "another-secret-that-is-also-32-bytes-long!", algorithm="HS256")
    assert reuse(alice, other).status == 401


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud"])
def test_required_claims(alice, settings, claim):
    claims = claims_of(alice.token)
    del claims[claim]
    reply = reuse(alice, jwt.encode(claims, settings.jwt_secret, algorithm="HS256"))
    assert reply.status == 401 and claim in reply.body["message"]


@pytest.mark.parametrize("claim, value", [("aud", "someone-else"), ("iss", "evil-issuer")])
def test_wrong_audience_or_issuer(alice, settings, claim, value):
    claims = claims_of(alice.token) | {claim: value}
    assert reuse(alice, jwt.encode(claims, settings.jwt_secret, algorithm="HS256")).status == 401


def test_leeway_is_small(alice, clock, settings):
    exp = claims_of(alice.token)["exp"]
    clock.now = exp + settings.jwt_leeway - 1
    assert alice.cart().status == 200
    alice.token = jwt.encode(claims_of(alice.token) | {"exp": exp}, settings.jwt_secret, algorithm="HS256")
    clock.now = exp + settings.jwt_leeway + 1
    reply = alice.cart()
    assert reply.status == 401 and reply.body["message"] == "token expired"


def test_token_from_the_future_is_refused(alice, clock, settings):
    claims = claims_of(alice.token) | {"iat": int(clock.now) + 3600}
    assert reuse(alice, jwt.encode(claims, settings.jwt_secret, algorithm="HS256")).status == 401


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer   ", "Bearer not.a.jwt", "Bearer " + "A" * 100])
def test_malformed_authorization_header(app, header):
    reply = app.test_client().get("/api/jwt/cart", headers={"Authorization": header})
    assert reply.status_code == 401 and reply.get_json()["error"] == "unauthorized"
