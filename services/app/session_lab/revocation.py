"""Logout for stateless tokens: a denylist of session ids that every node holds in its own memory.

A JWT is verified by any node alone; checking a store on every request would bring back the round trip
the strategy exists to avoid. So revocations are pushed instead:

- logout adds the session id to this node's denylist at once, then writes it to a Redis sorted set
  (score = when the entry may be forgotten) and PUBLISHes it in the same MULTI;
- a background thread on every node is SUBSCRIBEd to the channel and adds what it hears; on every
  (re)connect it subscribes first and then reads the whole sorted set, so nothing published while it was
  away is missed;
- each entry lives until the last token of that session could have expired, then is dropped, so the
  denylist is bounded by (logouts per second) x (idle timeout).

A Redis outage never stops a request: checks are local. Logouts made while Redis is unreachable, or
refusing the write (out of memory, a timeout), are kept in a pending list (counted in the log and in
/readyz) that the listener publishes as soon as Redis takes it: retried while it is connected, not only
when it reconnects, since a Redis that answers but refuses writes never drops the connection. Until then
other nodes still accept those tokens. That window is the documented gap.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

import redis

log = logging.getLogger(__name__)

# Under their own prefix, apart from the carts' sl:*: the jwt-revocation ACL user may touch only jwt:* keys
# and channels, and no other user these (stores/redis/redis.acl).
CHANNEL = "jwt:revoked"  # pub/sub channel: "<sid> <forget_at>"
ZSET = "jwt:{revocations}:denylist"  # sid -> forget_at (epoch seconds); one hash slot on a Cluster
# A node that has not heard of a logout yet (at most about a second, or for a whole Redis outage) may
# still mint a token for that session; the entry outlives such a token by this much.
PROPAGATION_SLACK = 60.0
# A cut network closes nothing: the subscriber would wait forever on a connection that carries no message
# (the full experiment's `disconnect` caught a node accepting a token revoked while it was cut off). So the
# listener PINGs and counts a connection that has not answered for STALE_AFTER as dead: it reconnects and
# reads the whole set again, within about a second of the network coming back.
PING_EVERY = 0.25
STALE_AFTER = 1.0
RECONNECT_BACKOFF = (0.05, 0.1, 0.2, 0.5)  # seconds between reconnect attempts, the last one repeated
LISTEN_POLL = PING_EVERY  # seconds a get_message() waits, so the thread notices stop() and silence


class RevocationList:
    def __init__(self, client: redis.Redis | None, token_lifetime: float, clock: Callable[[], float] = time.time):
        self.redis = client  # None: this node's denylist only (tests, or JWT_REVOCATION_SYNC=false)
        self.token_lifetime = token_lifetime  # the longest a token minted now stays valid (idle + leeway)
        self.clock = clock
        self._lock = threading.Lock()
        self._denied: dict[str, float] = {}  # sid -> forget_at
        self._pending: dict[str, float] = {}  # sid -> session end; revoked here while Redis was unreachable
        self._connected = False  # Redis answered last time we asked: publish at once, else defer
        self._thread: threading.Thread | None = None
        self._owner_pid: int | None = None  # the thread runs in the process that serves (gunicorn forks)
        self._stop = threading.Event()
        self._next_trim = 0.0
        self._next_flush = 0.0  # monotonic time of the listener's next try at the pending logouts
        self._flush_failures = 0

    # -- what the strategy asks --------------------------------------------------------------------

    def is_revoked(self, sid: str) -> bool:
        self._ensure_listening()
        with self._lock:
            forget_at = self._denied.get(sid)
        return forget_at is not None and forget_at > self.clock()

    def revoke(self, sid: str, session_ends_at: float) -> None:
        """Deny `sid` here now, and on every node as soon as Redis carries the message. `session_ends_at`
        is the absolute end of the session: no token of it is valid after that, whatever happens."""
        self._ensure_listening()
        self._trim()
        forget_at = self._forget_at(session_ends_at)
        self._remember(sid, forget_at)
        if self.redis is None:
            return
        if not self._connected:  # known down: do not make the user wait for a connect timeout
            self._defer(sid, session_ends_at, "Redis is unreachable")
            return
        try:
            self._publish(sid, forget_at)
        except redis.RedisError as exc:
            self._defer(sid, session_ends_at, type(exc).__name__)

    def status(self) -> str:
        if self.redis is None:
            return "ok"  # JWT_REVOCATION_SYNC=false: nothing to propagate by design
        # A node asked before it verified any token has no listener yet: start it, so readiness reports
        # what the node will do, not that nobody has asked it anything.
        self._ensure_listening()
        with self._lock:
            pending = len(self._pending)
        if self._connected and not pending:
            return "ok"
        return (f"not propagating: {pending} logout(s) known to this node only (Redis unreachable or refusing "
                "writes)")

    def __len__(self) -> int:
        return len(self._denied)

    # -- the listener ------------------------------------------------------------------------------

    def _ensure_listening(self) -> None:
        """Start the listener in the serving process (gunicorn forks after loading the app). The first
        caller also reads the whole denylist before it answers: a node just (re)started must not accept a
        token revoked while it was down."""
        if self.redis is None or self._owner_pid == os.getpid():
            return
        with self._lock:
            if self._owner_pid == os.getpid():
                return
            try:
                self._merge(self._fetch_all())  # under the lock on purpose: nobody is answered before it
                self._connected = True
            except redis.RedisError as exc:
                log.warning("jwt revocations: Redis unreachable at start (%s); the listener keeps trying",
                            type(exc).__name__)
            self._owner_pid = os.getpid()
            self._thread = threading.Thread(target=self._listen_forever, name="jwt-revocations", daemon=True)
        self._thread.start()

    def _fetch_all(self) -> list[tuple[str, float]]:
        """Every revocation Redis still holds."""
        return self.redis.zrangebyscore(ZSET, self.clock(), "+inf", withscores=True)

    def _merge(self, entries) -> None:
        """Add entries to the denylist; the caller holds the lock."""
        for sid, forget_at in entries:
            self._denied[sid] = max(float(forget_at), self._denied.get(sid, 0.0))

    def stop(self) -> None:
        """End the listener and close the connections (tests; a node simply exits)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=LISTEN_POLL + 2)
        if self.redis is not None:
            self.redis.close()

    def _listen_forever(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            # Every reply counts as a sign of life, so none may be dropped: redis-py 8.1 with decode_responses
            # turns the bare PONG of pubsub.ping() into a message of type 'P' (PubSub.handle_message compares
            # the str "PONG" with b"PONG"), which ignore_subscribe_messages=True would swallow.
            pubsub = self.redis.pubsub()
            try:
                pubsub.subscribe(CHANNEL)  # first subscribe, then read the set: no gap between the two
                entries = self._fetch_all()  # outside the lock: requests never wait on Redis
                with self._lock:
                    self._merge(entries)
                self._connected = True
                attempt = 0
                self._next_flush = 0.0  # publish what is pending at once
                heard_at = next_ping = time.monotonic()
                while not self._stop.is_set():
                    if time.monotonic() >= next_ping:
                        pubsub.ping()  # answered as a `pong` message on this connection
                        next_ping = time.monotonic() + PING_EVERY
                    message = pubsub.get_message(timeout=LISTEN_POLL)
                    if message:
                        heard_at = time.monotonic()
                        if message.get("type") == "message":
                            self._heard(message["data"])
                    elif time.monotonic() - heard_at > STALE_AFTER:
                        raise redis.ConnectionError(f"Redis has not answered for {STALE_AFTER:g} s")
                    self._retry_pending()
                    self._trim()
            except (redis.RedisError, OSError, ValueError) as exc:
                if self._connected:
                    log.warning("jwt revocations: lost Redis (%s: %s); checks go on with this node's list",
                                type(exc).__name__, exc)
                self._connected = False
            finally:
                try:
                    pubsub.close()
                except (redis.RedisError, OSError):
                    pass
            self._stop.wait(RECONNECT_BACKOFF[min(attempt, len(RECONNECT_BACKOFF) - 1)])
            attempt += 1

    # -- internals ---------------------------------------------------------------------------------

    def _forget_at(self, session_ends_at: float) -> float:
        """When the last token of the session can have expired, counted from now (a token minted now by a
        node that has not heard yet lives token_lifetime), never past the session's absolute end."""
        return min(self.clock() + self.token_lifetime + PROPAGATION_SLACK, session_ends_at)

    def _remember(self, sid: str, forget_at: float) -> None:
        with self._lock:
            self._merge([(sid, forget_at)])

    def _heard(self, data: str) -> None:
        sid, _, forget_at = data.partition(" ")
        self._remember(sid, float(forget_at))

    def _publish(self, sid: str, forget_at: float) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(ZSET, {sid: forget_at}, gt=True)
        pipe.zremrangebyscore(ZSET, "-inf", self.clock())
        pipe.publish(CHANNEL, f"{sid} {forget_at}")
        pipe.execute()

    def _defer(self, sid: str, session_ends_at: float, why: str) -> None:
        with self._lock:
            self._pending[sid] = session_ends_at
            pending = len(self._pending)
        log.warning("jwt revocations: logout of one session not propagated (%s); %d pending, other nodes "
                    "accept those tokens until Redis returns", why, pending)

    def _retry_pending(self) -> None:
        """Publish the pending logouts, backing off (RECONNECT_BACKOFF) while Redis refuses them; the
        subscription stays up meanwhile, and every node hears them once Redis takes them."""
        now = time.monotonic()
        if not self._pending or now < self._next_flush:
            return
        try:
            self._flush_pending()
            self._flush_failures = 0
        except redis.RedisError as exc:
            if not self._flush_failures:
                log.warning("jwt revocations: Redis refused the pending logouts (%s); retrying until it takes them",
                            type(exc).__name__)
            self._next_flush = now + RECONNECT_BACKOFF[min(self._flush_failures, len(RECONNECT_BACKOFF) - 1)]
            self._flush_failures += 1

    def _flush_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        for sid, session_ends_at in pending.items():
            try:
                # Counted from now: other nodes kept minting tokens of this session during the outage.
                self._publish(sid, self._forget_at(session_ends_at))
            except redis.RedisError:
                with self._lock:
                    self._pending.update({s: f for s, f in pending.items() if s not in self._pending})
                raise
        log.warning("jwt revocations: propagated %d logout(s) made while Redis was unreachable or refusing writes",
                    len(pending))

    def _trim(self) -> None:
        """Forget entries whose tokens have all expired (at most once a second: a full scan)."""
        now = self.clock()
        if now < self._next_trim:
            return
        self._next_trim = now + 1.0
        with self._lock:
            for sid in [s for s, forget_at in self._denied.items() if forget_at <= now]:
                del self._denied[sid]
