"""The jwt strategy refuses every token it did not mint for this audience, unexpired."""

import base64
import json

import jwt
import pytest

from session_lab.strategies.jwt_token import TOKEN_TYPE


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


def sign(settings, claims, kid=None, **header):
    """A token signed with one of the node's own keys: only what the test changes can make it fail."""
    kid = kid or settings.jwt_signing_kid
    headers = {"kid": kid, "typ": TOKEN_TYPE, **header}
    return jwt.encode(claims, dict(settings.jwt_keys)[kid], algorithm="HS256", headers=headers)


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
    reply = reuse(alice, sign(settings, claims))
    assert reply.status == 401 and claim in reply.body["message"]


@pytest.mark.parametrize("claim, value", [("aud", "someone-else"), ("iss", "evil-issuer")])
def test_wrong_audience_or_issuer(alice, settings, claim, value):
    claims = claims_of(alice.token) | {claim: value}
    assert reuse(alice, sign(settings, claims)).status == 401


def test_leeway_is_small(alice, clock, settings):
    exp = claims_of(alice.token)["exp"]
    clock.now = exp + settings.jwt_leeway - 1
    assert alice.cart().status == 200
    alice.token = sign(settings, claims_of(alice.token) | {"exp": exp})
    clock.now = exp + settings.jwt_leeway + 1
    reply = alice.cart()
    assert reply.status == 401 and reply.body["message"] == "token expired"


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_a_token_from_the_future_is_refused(alice, clock, settings, claim):
    claims = claims_of(alice.token) | {claim: int(clock.now) + 3600}
    reply = reuse(alice, sign(settings, claims))
    assert reply.status == 401 and claim in reply.body["message"]


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_a_time_within_the_leeway_is_accepted(alice, clock, settings, claim):
    claims = claims_of(alice.token) | {claim: int(clock.now) + settings.jwt_leeway - 1}
    assert reuse(alice, sign(settings, claims)).status == 200


@pytest.mark.parametrize("value", ["soon", True, None, 1e300])
def test_a_time_that_is_not_a_number_is_refused(alice, settings, value):
    assert reuse(alice, sign(settings, claims_of(alice.token) | {"exp": value})).status == 401


@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["x-unknown"], []])
def test_any_crit_header_is_refused(alice, settings, crit):
    reply = reuse(alice, sign(settings, claims_of(alice.token), crit=crit))
    assert reply.status == 401 and "crit" in reply.body["message"].lower()


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "", None])
def test_a_token_of_another_type_is_refused(alice, settings, typ):
    reply = reuse(alice, sign(settings, claims_of(alice.token), typ=typ))
    assert reply.status == 401 and "typ" in reply.body["message"]


@pytest.mark.parametrize("kid", ["retired", "../../etc/passwd", "http://evil.example/key", ""])
def test_an_unknown_kid_is_refused_without_a_lookup(alice, settings, kid):
    claims = claims_of(alice.token)
    token = jwt.encode(claims, dict(settings.jwt_keys)[settings.jwt_signing_kid], algorithm="HS256",
                       headers={"kid": kid, "typ": TOKEN_TYPE})
    reply = reuse(alice, token)
    assert reply.status == 401 and "kid" in reply.body["message"]


def test_a_missing_kid_is_refused(alice, settings):
    token = jwt.encode(claims_of(alice.token), dict(settings.jwt_keys)[settings.jwt_signing_kid],
                       algorithm="HS256", headers={"typ": TOKEN_TYPE})
    assert reuse(alice, token).status == 401


def test_a_second_key_verifies_and_the_signing_key_signs(make_settings, clock):
    """Rotation: every listed key verifies, JWT_SIGNING_KEY_ID signs, and a dropped key stops verifying."""
    from session_lab import create_app
    from tests.conftest import flask_sender
    from tests.session_client import SessionClient

    old, new = "old:" + "o" * 40, "new:" + "n" * 40

    def node(keys, signer):
        app = create_app(make_settings(JWT_KEYS=keys, JWT_SIGNING_KEY_ID=signer), clock=clock)
        return flask_sender(app)

    before = SessionClient("jwt", node(old, "old"))
    before.login("alice")
    assert jwt.get_unverified_header(before.token)["kid"] == "old"
    overlap = node(f"{new} {old}", "new")
    after = SessionClient("jwt", overlap, token=before.token)
    reply = after.add("apple")  # an old-key token is accepted; the answer is signed with the new key
    assert reply.status == 200 and jwt.get_unverified_header(after.token)["kid"] == "new"
    retired = SessionClient("jwt", node(new, "new"), token=before.token)
    assert retired.cart().status == 401
    assert SessionClient("jwt", node(new, "new"), token=after.token).cart().status == 200


def test_logout_revokes_the_token_on_this_node(alice):
    token = alice.token
    assert alice.logout().status == 200
    reply = reuse(alice, token)
    assert reply.status == 401 and "revoked" in reply.body["message"]


def test_logout_revokes_every_token_of_the_session(alice):
    older = alice.token
    alice.add("pear")
    alice.logout()
    assert reuse(alice, older).status == 401


def test_logout_of_another_session_revokes_nothing_else(session_client):
    alice, bob = session_client("jwt"), session_client("jwt")
    alice.login("alice")
    bob.login("bob")
    alice.logout()
    assert bob.cart().status == 200


def test_the_denylist_forgets_a_session_once_its_tokens_have_expired(app, alice, session_client, clock, settings):
    revocations = app.extensions["session_lab.strategies"]["jwt"].revocations
    alice.logout()
    assert len(revocations) == 1
    clock.advance(settings.idle_timeout + settings.jwt_leeway + 61)  # + revocation.PROPAGATION_SLACK
    bob = session_client("jwt")
    bob.login("bob")
    bob.logout()
    assert len(revocations) == 1  # alice's entry is gone, bob's is there: bounded by the idle window
