"""The client session pattern: the client keeps the whole state and sends it with every request.

The state is encrypted and authenticated with AES-GCM under a key every node shares, so a client can
neither read nor forge it, and any node can serve any request with no store at all. It carries its own
version counter (bumped on every change) and expiry. What it cannot stop is a client replaying an older
state it once held (a logout included): the version counter lets a careful client notice, the server
cannot.

The state travels back once in the headers (the `sl_client` cookie, for browsers) and once in the JSON
body (`client_session`, for API clients, who send it back in the X-Client-Session header). Sending it in
a response header as well, as this strategy first did, doubled the header block: past nginx's upstream
buffer that is "upstream sent too big header", which nginx counts as a node failure (docs/strategies.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Request, Response

from ..errors import Unauthorized
from ..limits import CREDENTIAL_MAX_BYTES
from ..traits import Traits, Transport
from .base import Session, Strategy, new_session_id

COOKIE = "sl_client"
HEADER = "X-Client-Session"
BODY_FIELD = "client_session"
PREFIX = "v1."  # format version, so a future format can be told apart
AAD = b"session-lab/client-session/v1"  # binds the ciphertext to this purpose
NONCE_BYTES = 12  # AES-GCM's standard nonce; random nonces are safe far beyond this app's volumes


class ClientState(Strategy):
    traits = Traits(
        name="client",
        summary="Client-side state: the whole session travels encrypted with every request and response.",
        transport=Transport(cookie=COOKIE, body_field=BODY_FIELD, header=HEADER),
        concurrent_adds="last-wins",  # each add seals a new state from the one presented
        revocable=False,  # the client can replay any state it once held, logged out or not
    )
    position = 40

    def __init__(self, settings, **kwargs):
        super().__init__(settings, **kwargs)
        self._aead = AESGCM(settings.client_session_key)

    def login(self, user: str) -> Session:
        return Session(user=user, created_at=self.clock(), sid=new_session_id())

    def current(self, request: Request) -> Session:
        blob = request.headers.get(HEADER) or request.cookies.get(COOKIE)
        if not blob:
            raise Unauthorized(f"no client session: send the {HEADER} header or the {COOKIE} cookie")
        state = self.decode(blob)
        try:
            session = Session(
                user=str(state["u"]),
                items=[str(i) for i in state["i"]],
                created_at=float(state["c"]),
                sid=str(state["s"]),
                version=int(state["v"]),
            )
            expires = float(state["e"])
        except (KeyError, TypeError, ValueError):
            raise Unauthorized("client session is malformed") from None
        now = self.clock()
        if now >= expires or self.past_absolute(session.created_at, now):
            raise Unauthorized("client session expired")
        # Sealed when its idle expiry was set: a read hands the same state back, with no sealing.
        if not self.refresh_due(expires - self.settings.idle_timeout, now):
            session.refreshed, session.presented = False, blob
        return session

    def add_item(self, session: Session, item: str, key: str | None = None) -> Session:
        self.refuse_if_full(session.items)
        session.items.append(item)
        session.version += 1
        session.refreshed = True
        return session  # the API refuses it (413) if the sealed state outgrows the credential budget

    def end(self, request: Request) -> None:
        pass  # nothing stored server-side; the client drops its state

    def issue(self, session: Session, body: dict, response: Response) -> str:
        if not session.refreshed and session.presented:
            body[BODY_FIELD] = session.presented  # unchanged and fresh: the cookie held is still right
            return session.presented
        blob = self.encode(session)
        body[BODY_FIELD] = blob
        if len(blob) <= CREDENTIAL_MAX_BYTES:  # else the API answers 413 instead, and no cookie is sent
            self.set_cookie(response, COOKIE, blob, self.expires_at(session.created_at))
        return blob

    def encode(self, session: Session) -> str:
        plain = self._plaintext(session)
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain, AAD)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def _plaintext(self, session: Session) -> bytes:
        state = {
            "u": session.user,
            "i": session.items,
            "c": session.created_at,
            "e": self.expires_at(session.created_at),
            "s": session.sid,
            "v": session.version,
        }
        # UTF-8, not \u escapes: a non-ASCII item costs 2-4 bytes instead of 6-12.
        return json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()

    def decode(self, blob: str) -> dict:
        if not blob.startswith(PREFIX) or len(blob) > CREDENTIAL_MAX_BYTES:
            raise Unauthorized("client session is malformed")
        raw = blob[len(PREFIX):]
        try:
            data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            plain = self._aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], AAD)
            state = json.loads(plain)
        except (binascii.Error, ValueError, InvalidTag):
            raise Unauthorized("client session failed authentication (tampered, or sealed with another key)") from None
        if not isinstance(state, dict):
            raise Unauthorized("client session is malformed")
        return state
