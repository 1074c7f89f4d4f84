"""Stateless signed tokens: the session's whole state lives in the JWT's claims.

Any node verifies a token with the shared keys and no store, so nothing is lost when a node dies.
Logout revokes the session on every node through a denylist pushed over Redis pub/sub (revocation.py):
no store round trip per request, and a Redis outage stops no request (logouts made during it reach the
other nodes only when Redis returns). Several keys verify, named by `kid`; one signs (key rotation).
"""

from __future__ import annotations

import json

import jwt
import redis
from flask import Request, Response

from .. import redis_client
from ..errors import Unauthorized
from ..revocation import RevocationList
from ..traits import Traits, Transport
from .base import Session, Strategy, new_session_id

ALGORITHMS = ["HS256"]  # an allow-list: never trust the token's own `alg` header (no "none", no RS/HS mix-up)
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
# RFC 8725 §3.11 explicit typing: a token of another kind signed with the same key is not a session.
TOKEN_TYPE = "sl-session+jwt"


class _Utf8Claims(json.JSONEncoder):
    """Claims as UTF-8, not \\u escapes: a non-ASCII item costs 2-4 bytes in the token instead of 6-12."""

    def __init__(self, **kwargs):
        super().__init__(**{**kwargs, "ensure_ascii": False})


class JwtToken(Strategy):
    traits = Traits(
        name="jwt",
        summary="Stateless signed JWT; the cart lives in the token's claims and each change returns a new token.",
        transport=Transport(body_field="token", header="Authorization", scheme="Bearer"),
        concurrent_adds="last-wins",  # each add signs a new token from the one presented
        revocation_via=("redis",),
    )
    position = 30

    def __init__(self, settings, revocation_client: redis.Redis | None = None, **kwargs):
        super().__init__(settings, **kwargs)
        self.keys = dict(settings.jwt_keys)
        client = revocation_client
        if client is None and settings.jwt_revocation_sync:
            client = redis_client.connect(settings, settings.jwt_revocation_user)
        self.revocations = RevocationList(client, settings.idle_timeout + settings.jwt_leeway, clock=self.clock)

    def login(self, user: str) -> Session:
        return Session(user=user, created_at=self.clock(), sid=new_session_id())

    def current(self, request: Request) -> Session:
        token = self._bearer(request)
        session, issued_at, kid = self._verified(token)
        if self.revocations.is_revoked(session.sid):
            raise Unauthorized("token revoked: the session was logged out")
        if self.past_absolute(session.created_at):
            raise Unauthorized("session expired (absolute lifetime reached)")
        # A read hands the same token back, with no signing, while it is fresh and of the signing key (after a
        # rotation the next use moves it to the new key).
        if not self.refresh_due(issued_at) and kid == self.settings.jwt_signing_kid:
            session.refreshed, session.presented = False, token
        return session

    def add_item(self, session: Session, item: str, key: str | None = None) -> Session:
        self.refuse_if_full(session.items)
        session.items.append(item)
        session.version += 1
        session.refreshed = True
        return session

    def end(self, request: Request) -> None:
        """Revoke the presented token's session on every node (no token, or one that fails to verify: none)."""
        try:
            session, _, _ = self._verified(self._bearer(request))
        except Unauthorized:
            return
        self.revocations.revoke(session.sid, session.created_at + self.settings.absolute_timeout
                                + self.settings.jwt_leeway)

    def issue(self, session: Session, body: dict, response: Response) -> str:
        token = session.presented if not session.refreshed and session.presented else self.encode(session)
        body["token"] = token
        return token

    def check_ready(self) -> dict[str, str]:
        return {"jwt-revocations": self.revocations.status()}

    def encode(self, session: Session) -> str:
        s, now = self.settings, self.clock()
        claims = {
            "iss": s.jwt_issuer,
            "aud": s.jwt_audience,
            "sub": session.user,
            "iat": int(now),
            "exp": int(self.expires_at(session.created_at, now)),
            "auth_time": session.created_at,
            "sid": session.sid,
            "items": session.items,
            "ver": session.version,
        }
        return jwt.encode(claims, self.keys[s.jwt_signing_kid], algorithm=ALGORITHMS[0],
                          headers={"kid": s.jwt_signing_kid, "typ": TOKEN_TYPE}, json_encoder=_Utf8Claims)

    # -- verification ------------------------------------------------------------------------------

    @staticmethod
    def _bearer(request: Request) -> str:
        header = request.headers.get("Authorization")
        if header is None:
            raise Unauthorized("no Authorization header; log in and send `Authorization: Bearer <token>`")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization header must be `Bearer <token>`")
        return token.strip()

    def _verified(self, token: str) -> tuple[Session, float, str]:
        """The token's session, when it was issued and the key that signed it; Unauthorized when it fails
        any check."""
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        # RFC 7515 §4.1.11: a recipient must reject a `crit` extension it does not understand; it
        # understands none.
        if "crit" in header:
            raise Unauthorized("invalid token: unsupported critical header parameters (crit)")
        if header.get("typ") != TOKEN_TYPE:
            raise Unauthorized(f"invalid token: typ must be {TOKEN_TYPE!r}")
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthorized("invalid token: unknown key id (kid)")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                # Times are checked below against the strategy's clock (the same one that minted them).
                options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        self._check_times(claims)
        try:
            return Session(
                user=str(claims["sub"]),
                items=[str(i) for i in claims["items"]],
                created_at=float(claims["auth_time"]),
                sid=str(claims["sid"]),
                version=int(claims["ver"]),
            ), claims["iat"], kid
        except (KeyError, TypeError, ValueError):
            raise Unauthorized("invalid token: session claims missing or malformed") from None

    def _check_times(self, claims: dict) -> None:
        now, leeway = self.clock(), self.settings.jwt_leeway
        exp, iat, nbf = (claims.get(name) for name in ("exp", "iat", "nbf"))
        if not all(_is_time(t) for t in (exp, iat)) or not (nbf is None or _is_time(nbf)):
            raise Unauthorized("invalid token: exp, iat and nbf must be numbers")
        if now > exp + leeway:
            raise Unauthorized("token expired")
        if iat > now + leeway:
            raise Unauthorized("invalid token: issued in the future (iat)")
        if nbf is not None and nbf > now + leeway:
            raise Unauthorized("invalid token: not valid yet (nbf)")


def _is_time(value) -> bool:
    """A JSON number that is a real time (not a bool, not NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e12
