"""A central Redis store: any node can serve any request, as long as Redis answers.

The cart is a Redis list changed one RPUSH at a time inside a Lua script, so two concurrent adds to one
session both survive (no read-modify-write of a blob), and an add can never resurrect an expired session.
Keys carry the session id as a hash tag (`{sid}`) so both keys of a session share a Redis Cluster slot.
"""

from __future__ import annotations

from contextlib import contextmanager

import redis
from flask import Request, Response

from .. import redis_client
from ..errors import CartFull, StoreUnavailable, Unauthorized
from .base import Session, Strategy, looks_like_session_id, new_session_id

COOKIE = "sl_redis"

# Shared by both scripts: the session must exist, be inside its absolute lifetime and have been used
# within the idle timeout (checked against the app's clock too, not only by Redis' TTL, so every strategy
# expires by the same rule); then its TTL is refreshed, capped by the absolute lifetime.
# KEYS: meta, items, keys. ARGV: now_ms, idle_ms, absolute_ms.
_TOUCH = """
local times = redis.call('HMGET', KEYS[1], 'created', 'seen')
local created, seen = tonumber(times[1]), tonumber(times[2])
if not created then return {0} end
local now, idle, absolute = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local left = created + absolute - now
if left <= 0 or now - (seen or created) >= idle then redis.call('DEL', unpack(KEYS)); return {-1} end
local ttl = math.min(idle, left)
redis.call('HSET', KEYS[1], 'seen', now)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
"""
# The session's state, as both scripts answer it: status 1, [user, created, version], items.
_STATE = "return {1, redis.call('HMGET', KEYS[1], 'user', 'created', 'version'), redis.call('LRANGE', KEYS[2], 0, -1)}"
_READ = _TOUCH + _STATE
# ARGV[4]: the item, ARGV[5]: the cart limit, ARGV[6]: the idempotency key ("" for none). KEYS[3] holds
# the keys already applied, so a replayed add returns the state without adding again.
# Status 2 means "cart full, nothing added".
# `ttl` is _TOUCH's: the keys an add may create (the key set, the list) get the session's expiry too.
_ADD = _TOUCH + """
if ARGV[6] ~= '' then
  if redis.call('SADD', KEYS[3], ARGV[6]) == 0 then
    """ + _STATE + """
  end
  redis.call('PEXPIRE', KEYS[3], ttl)
end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[5]) then
  if ARGV[6] ~= '' then redis.call('SREM', KEYS[3], ARGV[6]) end
  return {2}
end
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('HINCRBY', KEYS[1], 'version', 1)
""" + _STATE
_MISSING, _EXPIRED, _OK, _FULL = 0, -1, 1, 2


def _keys(sid: str) -> list[str]:
    """meta (hash), items (list), applied idempotency keys (set): one hash tag, one cluster slot."""
    return [f"sl:{{{sid}}}:meta", f"sl:{{{sid}}}:items", f"sl:{{{sid}}}:keys"]


class RedisStore(Strategy):
    name = "redis"
    summary = "Central Redis store; any node serves any request while Redis answers."
    position = 20
    credential = f"cookie {COOKIE}"
    dependencies = ("redis",)

    def __init__(self, settings, client: redis.Redis | None = None, **kwargs):
        super().__init__(settings, **kwargs)
        self.redis = client or redis_client.connect(settings)
        self._read = self.redis.register_script(_READ)
        self._add = self.redis.register_script(_ADD)

    def login(self, user: str) -> Session:
        now = self.clock()
        session = Session(user=user, created_at=now, sid=new_session_id())
        meta = _keys(session.sid)[0]
        with store_errors():
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(meta, mapping={"user": user, "created": int(now * 1000), "seen": int(now * 1000), "version": 0})
            pipe.pexpire(meta, int((self.expires_at(now, now) - now) * 1000))
            pipe.execute()
        return session

    def current(self, request: Request) -> Session:
        sid = self.session_id_from_cookie(request, COOKIE)
        with store_errors():
            reply = self._read(keys=_keys(sid), args=self._clock_args())
        return self._session(sid, reply)

    def add_item(self, session: Session, item: str, key: str | None = None) -> Session:
        with store_errors():
            reply = self._add(
                keys=_keys(session.sid), args=[*self._clock_args(), item, self.settings.max_cart_items, key or ""]
            )
        if reply[0] == _FULL:
            raise CartFull(f"the cart already holds {self.settings.max_cart_items} items")
        return self._session(session.sid, reply)

    def end(self, request: Request) -> None:
        sid = request.cookies.get(COOKIE)
        if looks_like_session_id(sid):
            with store_errors():
                self.redis.delete(*_keys(sid))

    def issue(self, session: Session, body: dict, response: Response) -> str:
        self.set_cookie(response, COOKIE, session.sid, self.expires_at(session.created_at))
        return session.sid

    def revoke(self, response: Response) -> None:
        self.delete_cookie(response, COOKIE)

    def check_ready(self) -> dict[str, str]:
        with store_errors():
            self.redis.ping()
        return {"redis": "ok"}

    def _clock_args(self) -> list[int]:
        s = self.settings
        return [int(self.clock() * 1000), s.idle_timeout * 1000, s.absolute_timeout * 1000]

    @staticmethod
    def _session(sid: str, reply: list) -> Session:
        if reply[0] == _MISSING:
            raise Unauthorized("unknown session (expired, logged out, or the store lost it)")
        if reply[0] == _EXPIRED:
            raise Unauthorized("session expired")
        user, created, version = reply[1]
        return Session(user, list(reply[2]), int(created) / 1000, sid, int(version))


@contextmanager
def store_errors():
    """Any Redis failure becomes a 503 JSON answer: never a fresh anonymous session, never a 500."""
    try:
        yield
    except redis.RedisError as exc:
        raise StoreUnavailable(f"session store unreachable: {type(exc).__name__}") from exc
