"""The one interface every session strategy implements.

A strategy answers four questions for the API: how a login starts a session, how a request finds its
session (or fails with `Unauthorized`), how an item is added, and how the credential travels back to the
client. Everything else (routes, validation, JSON shapes, headers) is shared and lives in `api.py`.
"""

from __future__ import annotations

import secrets
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, ClassVar

from flask import Request, Response

from ..config import Settings
from ..errors import CartFull, Unauthorized
from ..traits import Traits


@dataclass
class Session:
    user: str | None
    items: list[str] = field(default_factory=list)
    created_at: float = 0.0
    sid: str = ""
    version: int = 0  # bumped on every change, so a client can tell a rolled-back state
    # False when this use neither changed the session nor refreshed its idle expiry (SESSION_REFRESH_AFTER):
    # the credential the client holds is still right, so none is sent (a cookie) or the one presented is
    # handed back as it came (`presented`: a token or a sealed state), with no signing or sealing.
    refreshed: bool = True
    presented: str | None = None

    def as_dict(self) -> dict:
        return {"user": self.user, "items": list(self.items), "version": self.version}


class _Trait:
    """A strategy's trait read from its `traits`, on the class (`MemoryStrategy.needs_sticky`, as the load test and
    the tests read them) and on an instance alike."""

    def __set_name__(self, owner, name: str) -> None:
        self.field = name

    def __get__(self, _instance, owner):
        return getattr(owner.traits, self.field)


class Strategy(ABC):
    traits: ClassVar[Traits]  # what the strategy is (traits.py): every concrete strategy declares its own
    position: ClassVar[int] = 100  # display order in listings
    session_cookie: ClassVar[str] = ""  # the cookie holding a server-side session's id, if that is the credential

    name = _Trait()
    summary = _Trait()
    transport = _Trait()
    credential = _Trait()
    keeps_state = _Trait()
    needs_sticky = _Trait()
    dependencies = _Trait()
    revocable = _Trait()
    revocation_via = _Trait()
    confirms_writes = _Trait()
    node_replica = _Trait()
    refreshes_every_use = _Trait()
    concurrent_adds = _Trait()

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.clock = clock

    # -- what each strategy implements -------------------------------------------------------------

    @abstractmethod
    def login(self, user: str) -> Session:
        """Start a fresh session (always a new id) for `user`."""

    @abstractmethod
    def current(self, request: Request) -> Session:
        """The request's session; raises Unauthorized when there is no valid one."""

    @abstractmethod
    def add_item(self, session: Session, item: str, key: str | None = None) -> Session:
        """Append one item; returns the updated session. Raises CartFull at the limit.

        `key` is the request's Idempotency-Key: an add repeated with the same key changes nothing (nginx
        may replay a POST on another node when the first one failed). A strategy storing state on the
        server remembers the keys it applied; a stateless one is idempotent already, because a replayed
        request carries the same old state."""

    @abstractmethod
    def end(self, request: Request) -> None:
        """Forget the request's session where it is stored; a stateless strategy may revoke it instead
        (jwt), or have nothing to do (client, none)."""

    @abstractmethod
    def issue(self, session: Session, body: dict, response: Response) -> str | None:
        """Hand the session's credential back (a cookie, a token in `body`, or the state itself) and
        return it: the API refuses, with 413 and nothing changed, one over limits.CREDENTIAL_MAX_BYTES."""

    def log_out(self, request: Request) -> bool:
        """End the request's session for a logout; False when this node cannot, because the session may live on
        where this node does not see it (a node-local store that does not hold it: memory.py). A shared store,
        a revocation or a state the client carries ends it from any node."""
        self.end(request)
        return True

    def clear_credential(self, response: Response) -> None:
        """Tell the client to drop its credential after a logout: the cookie it travels in, if any (a token or a
        state the client holds in a header is the client's to forget). Server-side invalidation is the
        `revocable` trait's business, not this."""
        if self.transport.cookie:
            self.delete_cookie(response, self.transport.cookie)

    def check_ready(self) -> dict[str, str]:
        """Names of the dependencies this strategy needs, mapped to "ok"; raises when one is down."""
        return {}

    def init_app(self, app) -> None:
        """Set up what the strategy needs of the Flask app (a wrapped extension's settings), once, when the app
        is made."""

    def start(self) -> None:
        """Start background work; called on every request, so it must be cheap once started. (gunicorn
        builds the app before it forks the worker, and threads do not survive a fork.)"""

    def report(self) -> dict | None:
        """What /readyz shows beyond ok/not ok (a replica's state, say), or None."""
        return None

    def describe(self) -> dict:
        """The API's listing of this strategy (GET /api/strategies)."""
        return self.traits.to_json()

    # -- shared helpers ---------------------------------------------------------------------------

    def expires_at(self, created_at: float, now: float | None = None) -> float:
        """Sliding idle expiry, capped by the absolute lifetime counted from login."""
        now = self.clock() if now is None else now
        return min(now + self.settings.idle_timeout, created_at + self.settings.absolute_timeout)

    def refresh_due(self, refreshed_at: float, now: float | None = None) -> bool:
        """A use at `now` refreshes the idle expiry last refreshed at `refreshed_at` (SESSION_REFRESH_AFTER)."""
        now = self.clock() if now is None else now
        return now - refreshed_at >= self.settings.refresh_after

    def past_absolute(self, created_at: float, now: float | None = None) -> bool:
        now = self.clock() if now is None else now
        return now >= created_at + self.settings.absolute_timeout

    def set_cookie(self, response: Response, name: str, value: str, expires_at: float) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max(0, int(expires_at - self.clock())),
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self.settings.cookie_secure,
        )

    def refuse_if_full(self, items: list[str]) -> None:
        """CartFull (409) when the cart already holds MAX_CART_ITEMS; checked before anything changes."""
        if len(items) >= self.settings.max_cart_items:
            raise CartFull(f"the cart already holds {self.settings.max_cart_items} items")

    def session_id_from_cookie(self, request: Request, cookie: str) -> str:
        """The session id a server-side strategy keeps in `cookie`; 401 when it is missing or malformed."""
        sid = request.cookies.get(cookie)
        if sid is None:
            raise Unauthorized(f"no session cookie {cookie}; log in first")
        if not looks_like_session_id(sid):
            raise Unauthorized("malformed session id")
        return sid

    def delete_cookie(self, response: Response, name: str) -> None:
        response.delete_cookie(
            name, path="/", httponly=True, samesite="Lax", secure=self.settings.cookie_secure
        )


SESSION_ID_BYTES = 32  # 256 bits from the OS CSPRNG; OWASP asks for at least 64 bits of entropy
_SID_LENGTH = len(secrets.token_urlsafe(SESSION_ID_BYTES))
_SID_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def new_session_id() -> str:
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def looks_like_session_id(value: str | None) -> bool:
    """Cheap shape check before a store lookup, so junk never reaches Redis as a key."""
    return bool(value) and len(value) == _SID_LENGTH and set(value) <= _SID_ALPHABET
