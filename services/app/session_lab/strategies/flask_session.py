"""The peer baseline: Flask-Session, the extension most Flask apps reach for, with its Redis backend.

It is configured the way its documentation shows (a `redis.Redis` client, permanent sessions whose lifetime
is Flask's PERMANENT_SESSION_LIFETIME, msgpack, no signer, Flask's default SESSION_REFRESH_EACH_REQUEST), so
the lab measures what a team gets out of the box, beside its own strategies. What that is:

- the whole session is one blob: every request GETs it, and every request (a read too, because the session
  refreshes on each request) SETs it back with its TTL: a write per read, and a round trip more than `redis`;
- two requests of one session that run at once both read the old blob and both write theirs back, so the
  last one wins and the other's change is lost without an error (pallets-eco/flask-session #71, #149). The
  bench's race measures it;
- no retries: the Redis backend's methods do not retry (0.8.0), so a store hiccup is a 503 at once.

`Session(app)` would make Flask-Session the app's only session interface, for every URL; the lab has one
per strategy, so this strategy holds a `RedisSessionInterface` of its own and calls its storage methods and
`save_session` itself, under its own cookie. Around it, the lab's rules that every strategy keeps (the
contract tests): the session's times are stored in it and checked against the app's clock (idle and
absolute timeouts), the Idempotency-Keys of its adds are kept in it, a request without a valid session
is a 401, never the fresh anonymous session Flask-Session would open, and one client's sessions in Redis
are counted as the lab's Redis strategies count them (docs/hardening.md). Adds need no counter per second
here: a refused add writes nothing (the blob is saved only with a successful answer), and a cart takes at
most MAX_CART_ITEMS.

One change to Flask-Session's own behaviour, for safety: its serializer falls back to `pickle.loads` for a
value that is neither msgpack nor JSON ("old sessions", flask_session/base.py, MsgSpecSerializer.decode, to
be removed in 1.0), so whoever can write a key under its prefix runs code on every node. This strategy's
serializer keeps both decoders and drops the pickle fallback: such a value is an unreadable session, a 401.
The Redis ACL user of this strategy (stores/redis/redis.acl) also keeps every other client off `fs:*`.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import timedelta

import msgspec
from flask import Request, Response, current_app, g
from flask_session.base import MsgSpecSerializer
from flask_session.redis import RedisSessionInterface

from .. import redis_client
from ..breaker import guards_for
from ..errors import Unauthorized
from ..traits import Traits, Transport
from ._client_budget import requesting_client
from ._redis_cart import claim_session, client_key, guarded, release_session, store_errors
from .base import Session, Strategy, looks_like_session_id

COOKIE = "sl_flask_session"
KEY_PREFIX = "fs:"  # Flask-Session's keys, apart from the lab's own (sl:{sid}:...)

# What login writes into every stored session; a value without these fields of these types was planted or
# corrupted, and is answered 401 rather than crash a request.
FIELD_TYPES = {"user": str, "created": (int, float), "seen": (int, float), "version": int, "items": list,
               "keys": list}


def _written_by_us(data) -> bool:
    return (isinstance(data, dict) and all(isinstance(data.get(name), kind) for name, kind in FIELD_TYPES.items())
            and all(isinstance(item, str) for item in data["items"]))


class UnreadableSession(ValueError):
    """A stored value that is neither msgpack nor JSON: never unpickled, answered as no session."""


class _NoPickleSerializer(MsgSpecSerializer):
    """Flask-Session's serializer (msgpack, then JSON) without its `pickle.loads` fallback."""

    def decode(self, serialized_data: bytes) -> dict:
        for decoder in (self.decoder, self.alternate_decoder):
            with suppress(msgspec.DecodeError):
                return decoder.decode(serialized_data)
        raise UnreadableSession("the stored session is neither msgpack nor JSON")


class _Interface(RedisSessionInterface):
    """Flask-Session's Redis interface, writing the strategy's cookie instead of the app-wide one, with a
    serializer that never unpickles."""

    def __init__(self, app, **kwargs):
        super().__init__(app, **kwargs)
        self.serializer = _NoPickleSerializer(app, kwargs.get("serialization_format", "msgpack"))

    def get_cookie_name(self, app) -> str:
        return COOKIE


class FlaskSessionPeer(Strategy):
    traits = Traits(
        name="flask-session",
        summary=("Peer baseline: Flask-Session's Redis backend as its docs configure it (one blob, read and written "
                 "back)."),
        transport=Transport(cookie=COOKIE),
        concurrent_adds="may-drop",  # read the whole blob, written back at the end of the request
        dependencies=("redis",),
        refreshes_every_use=True,  # SESSION_REFRESH_EACH_REQUEST, Flask's default
    )
    position = 25
    session_cookie = COOKIE

    def __init__(self, settings, **kwargs):
        super().__init__(settings, **kwargs)
        # msgpack blobs are bytes
        self.client = redis_client.connect(settings, settings.flask_session_user, decode_responses=False)
        self.interface: _Interface | None = None
        self.guard = guards_for(settings)("redis")  # the one Redis, shared with the `redis` strategy

    def init_app(self, app) -> None:
        # Flask's settings that Flask-Session reads: the Redis TTL and the cookie's lifetime come from
        # PERMANENT_SESSION_LIFETIME (31 days by default; here the lab's idle timeout, as every strategy's),
        # the cookie's attributes from SESSION_COOKIE_*. Nothing else in the app uses Flask's session.
        app.config.update(PERMANENT_SESSION_LIFETIME=timedelta(seconds=self.settings.idle_timeout),
                          SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=self.settings.cookie_secure)
        self.interface = _Interface(app, client=self.client, key_prefix=KEY_PREFIX)

    def login(self, user: str) -> Session:
        now = self.clock()
        client = requesting_client()
        claim_session(self._run_on, client_key(client, KEY_PREFIX), self.settings)
        stored = self.interface.session_class(sid=self.interface._generate_sid(self.interface.sid_length),
                                              permanent=True)
        stored.update(user=user, items=[], version=0, created=now, seen=now, keys=[], client=client)
        g.flask_session = stored
        return self._session(stored)

    def current(self, request: Request) -> Session:
        sid = self.session_id_from_cookie(request, COOKIE)
        store_id = self.interface._get_store_id(sid)
        stored = self.interface.session_class(self._load(store_id), sid=sid)
        now = self.clock()
        if now - stored["seen"] >= self.settings.idle_timeout or self.past_absolute(stored["created"], now):
            with guarded(self.guard):
                self.interface._delete_session(store_id)
            raise Unauthorized("session expired")
        stored["seen"] = now
        g.flask_session = stored
        return self._session(stored)

    def add_item(self, session: Session, item: str, key: str | None = None) -> Session:
        stored = g.flask_session
        if key is not None and key in stored["keys"]:
            return self._session(stored)  # a replay of an add already applied
        self.refuse_if_full(stored["items"])
        # Reassigned, not appended: Flask-Session notices only assignments (its ServerSideSession docstring).
        stored["items"] = [*stored["items"], item]
        stored["version"] = stored["version"] + 1
        if key is not None:
            stored["keys"] = [*stored["keys"], key][-self.settings.max_cart_items:]
        return self._session(stored)

    def end(self, request: Request) -> None:
        sid = request.cookies.get(COOKIE)
        if looks_like_session_id(sid):
            store_id = self.interface._get_store_id(sid)
            with guarded(self.guard):
                try:
                    data = self.interface._retrieve_session_data(store_id)
                except UnreadableSession:
                    data = None  # a value this strategy never wrote: deleted, nothing to count down
                self.interface._delete_session(store_id)
            if isinstance(data, dict) and data.get("client") is not None:
                release_session(self._run_on, client_key(data["client"], KEY_PREFIX))

    def issue(self, session: Session, body: dict, response: Response) -> str:
        with guarded(self.guard):
            self.interface.save_session(current_app, g.flask_session, response)  # SET of the whole blob, TTL, cookie
        return session.sid

    def check_ready(self) -> dict[str, str]:
        with store_errors():
            self.client.ping()
        return {"redis": "ok"}

    def _load(self, store_id: str) -> dict:
        """The stored session's fields; 401 when there is none, or when the value is not one this strategy
        wrote (not msgpack or JSON, a pickle above all, or missing fields): never a 500, never unpickled."""
        with guarded(self.guard):
            try:
                data = self.interface._retrieve_session_data(store_id)
            except UnreadableSession:
                data = b""  # not None: answered below as a value this strategy never wrote
        if data is None:
            raise Unauthorized("unknown session (expired, logged out, or the store lost it)")
        if not _written_by_us(data):
            raise Unauthorized("unreadable session: the store holds a value this strategy never wrote")
        return data

    def _run_on(self, script, keys: list[str], args: list):
        """One of _redis_cart's small scripts (CLAIM, RELEASE) on this strategy's Redis client."""
        return self.client.eval(script.body, len(keys), *keys, *args)

    @staticmethod
    def _session(stored) -> Session:
        return Session(stored["user"], list(stored["items"]), stored["created"], stored.sid, stored["version"])
