"""Stateless signed tokens: the session's whole state lives in the JWT's claims.

Any node can verify a token with the shared secret and no store, so nothing is lost when a node dies.
The price: logout cannot revoke a token (it stays valid until `exp`), and every change mints a new one.
"""

from __future__ import annotations

import jwt
from flask import Request, Response

from ..errors import Unauthorized
from .base import Session, Strategy, new_session_id

ALGORITHMS = ["HS256"]  # an allow-list: never trust the token's own `alg` header (no "none", no RS/HS mix-up)
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]


class JwtToken(Strategy):
    name = "jwt"
    summary = "Stateless signed JWT; the cart lives in the token's claims and each change returns a new token."
    position = 30
    credential = "Authorization: Bearer <token> (token returned in the JSON field `token`)"

    def login(self, user: str) -> Session:
        return Session(user=user, created_at=self.clock(), sid=new_session_id())

    def current(self, request: Request) -> Session:
        header = request.headers.get("Authorization")
        if header is None:
            raise Unauthorized("no Authorization header; log in and send `Authorization: Bearer <token>`")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization header must be `Bearer <token>`")
        s = self.settings
        try:
            claims = jwt.decode(
                token.strip(),
                s.jwt_secret,
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
            session = Session(
                user=str(claims["sub"]),
                items=[str(i) for i in claims["items"]],
                created_at=float(claims["auth_time"]),
                sid=str(claims["sid"]),
                version=int(claims["ver"]),
            )
        except (KeyError, TypeError, ValueError):
            raise Unauthorized("invalid token: session claims missing or malformed") from None
        if self.past_absolute(session.created_at):
            raise Unauthorized("session expired (absolute lifetime reached)")
        return session

    def _check_times(self, claims: dict) -> None:
        now, leeway = self.clock(), self.settings.jwt_leeway
        try:
            exp, iat = float(claims["exp"]), float(claims["iat"])
            nbf = float(claims.get("nbf", iat))
        except (TypeError, ValueError):
            raise Unauthorized("invalid token: exp, iat and nbf must be numbers") from None
        if now > exp + leeway:
            raise Unauthorized("token expired")
        if min(iat, nbf) > now + leeway:
            raise Unauthorized("invalid token: issued in the future")

    def add_item(self, session: Session, item: str, key: str | None = None) -> Session:
        self.refuse_if_full(session.items)
        session.items.append(item)
        session.version += 1
        return session

    def end(self, request: Request) -> None:
        pass  # nothing stored server-side; the client drops the token

    def issue(self, session: Session, body: dict, response: Response) -> None:
        body["token"] = self.encode(session)

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
        return jwt.encode(claims, s.jwt_secret, algorithm=ALGORITHMS[0])
