"""Server-side sessions in the node's own memory: fast, and gone when the user lands on another node.

One gunicorn worker process per node makes this one store per node. With several worker processes each
would hold its own dict, and a user would lose the session between workers of the same node too.

Every change goes through `_changed` / `_ended`, which do nothing here: `replicated` (replicated.py) is this
store plus a copy of each change on the node's buddy, made there.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from flask import Request, Response

from .. import session_format
from ..errors import Unauthorized
from ..traits import Traits, Transport
from ._client_budget import ClientLedger, requesting_client, session_bytes
from .base import Session, Strategy, looks_like_session_id, new_session_id

SWEEP_EVERY = 10.0  # seconds between scans for expired sessions


@dataclass
class Entry:
    session: Session
    expires_at: float
    keys: set[str] = field(default_factory=set)  # idempotency keys of the adds applied
    refreshed_at: float = 0.0  # when a use last slid the idle expiry (SESSION_REFRESH_AFTER)
    client: str = ""  # the address that logged in (_client_budget.py)

    def size(self) -> int:
        return session_bytes(self.session.user, self.session.items, self.keys)


class MemoryStrategy(Strategy):
    traits = Traits(
        name="memory",
        summary="Server-side store inside each node; survives only while the user keeps hitting that node.",
        transport=Transport(cookie="sl_memory"),
        needs_sticky=True,
    )
    position = 10
    session_cookie = traits.transport.cookie

    def __init__(self, settings, **kwargs):
        super().__init__(settings, **kwargs)
        self._lock = threading.Lock()
        # Least recently used first, so the oldest idle sessions go first when the store is full.
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        # Who holds what: one client's logins push out its own sessions, not other clients' (_client_budget.py).
        self._ledger = ClientLedger(settings.memory_max_sessions_per_client, settings.memory_max_sessions,
                                    settings.memory_max_mb * 2**20)
        self._next_sweep = 0.0

    def login(self, user: str) -> Session:
        now = self.clock()
        session = Session(user=user, created_at=now, sid=new_session_id())
        entry = Entry(session, self.expires_at(now, now), refreshed_at=now, client=requesting_client())
        self._refuse_if_too_large(entry)
        with self._lock:
            self._hold(entry)
            evicted = self._evict(now, entry.client)
            copied = self._copy(session)
        self._evicted(evicted)
        self._changed(entry, copied)
        return copied

    def current(self, request: Request) -> Session:
        sid = self.session_id_from_cookie(request, self.session_cookie)
        now = self.clock()
        with self._lock:
            entry = self._entries.get(sid)
        if entry is None:
            entry = self._missing(sid)  # outside the lock: a subclass may ask another node
        with self._lock:
            if entry is None or self._entries.get(sid) is not entry:
                raise Unauthorized("unknown session (it may live on another node, or have expired)")
            expired = now >= entry.expires_at
            if expired:
                self._release(sid)
            else:
                refreshed = self.refresh_due(entry.refreshed_at, now)
                if refreshed:
                    entry.expires_at = self.expires_at(entry.session.created_at, now)
                    entry.refreshed_at = now
                self._entries.move_to_end(sid)
                self._ledger.touch(sid)
                session = self._copy(entry.session)
                session.refreshed = refreshed
        if expired:
            self._ended(sid)
            raise Unauthorized("session expired")
        if refreshed:
            self._refreshed(entry)
        return session

    def add_item(self, session: Session, item: str, key: str | None = None) -> Session:
        with self._lock:
            entry = self._entries.get(session.sid)
            if entry is None:
                raise Unauthorized("session ended while the request was running")
            stored = entry.session
            if key is not None and key in entry.keys:
                return self._copy(stored)  # a replay of an add already applied
            self.refuse_if_full(stored.items)
            self._refuse_if_too_large(entry, item, key)
            stored.items.append(item)
            stored.version += 1
            entry.expires_at, entry.refreshed_at = self.expires_at(stored.created_at), self.clock()
            if key is not None:
                entry.keys.add(key)
            self._hold(entry)  # its new size
            evicted = self._evict(self.clock(), entry.client)
            copied = self._copy(stored)
        self._evicted(evicted)
        self._changed(entry, copied)
        return copied

    def end(self, request: Request) -> bool:
        """False when the request names a session this node does not hold: it may live on another node."""
        sid = request.cookies.get(self.session_cookie)
        if not looks_like_session_id(sid):
            return True  # names no session that could live anywhere
        with self._lock:
            found = self._release(sid)
        if found is None:
            return False
        self._ended(sid)
        return True

    def log_out(self, request: Request) -> bool:
        return self.end(request)

    def issue(self, session: Session, body: dict, response: Response) -> str:
        if session.refreshed:  # else the client's cookie expires with the session already
            self.set_cookie(response, self.session_cookie, session.sid, self.expires_at(session.created_at))
        return session.sid

    # -- where a subclass copies changes elsewhere (replicated.py) -----------------------------------

    def _changed(self, entry: Entry, session: Session) -> None:
        """A session was created or changed; `session` is a copy of its new state."""

    def _ended(self, sid: str) -> None:
        """A session was logged out."""

    def _refreshed(self, entry: Entry) -> None:
        """A use slid the session's idle expiry (SESSION_REFRESH_AFTER): its last-seen time moved on."""

    def _evicted(self, sids: list[str]) -> None:
        """Sessions dropped by the store itself (expired, or beyond MEMORY_MAX_SESSIONS)."""

    def _refuse_if_too_large(self, entry: Entry, item: str | None = None, key: str | None = None) -> None:
        """Refuse (413, before anything changes) a session, or an add to it, the store could not keep."""

    def _missing(self, sid: str) -> Entry | None:
        """A request named a session this node does not hold: an Entry now held, or None (401)."""
        return None

    def __len__(self) -> int:
        """Sessions held (the tests count the store's bound by it)."""
        return len(self._entries)

    def report(self) -> dict:
        with self._lock:
            owned = [self._snapshot(e) for e in self._entries.values()]
        return {"owned": len(owned), "owned_bytes": json_bytes(owned)}

    @staticmethod
    def _snapshot(entry: Entry) -> dict:
        """The session as JSON-ready data: what replicated.py copies, and what the memory figures measure."""
        s = entry.session
        return {"sid": s.sid, "user": s.user, "items": list(s.items), "created": s.created_at,
                "version": s.version, "keys": sorted(entry.keys), "client": entry.client,
                session_format.FIELD: session_format.FORMAT}

    def _hold(self, entry: Entry) -> None:
        """Keep `entry` (new or changed) as its client's most recently used session. Under the lock."""
        self._entries[entry.session.sid] = entry
        self._ledger.put(entry.session.sid, entry.client, entry.size())

    def _release(self, sid: str) -> Entry | None:
        """Forget a session, if held. Under the lock."""
        self._ledger.discard(sid)
        return self._entries.pop(sid, None)

    def _evict(self, now: float, client: str = "") -> list[str]:
        """Drop expired sessions (a full scan, so at most every SWEEP_EVERY seconds), then what is over the
        budgets after `client` added to its sessions: its own least recently used beyond its quota, then the
        least recently used of the client holding the most, while the store is over its size limits. The ids
        dropped, for `_evicted` once the lock is free."""
        evicted = []
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_EVERY
            evicted = [sid for sid, e in self._entries.items() if now >= e.expires_at]
            for sid in evicted:
                self._release(sid)
        for sid in self._ledger.over_budget(client):
            del self._entries[sid]
            evicted.append(sid)
        return evicted

    @staticmethod
    def _copy(session: Session) -> Session:
        return Session(session.user, list(session.items), session.created_at, session.sid, session.version)


def json_bytes(snapshots: list[dict]) -> int:
    """What sessions take as compact JSON: a stand-in for their memory, comparable across strategies."""
    return sum(len(json.dumps(s, separators=(",", ":"))) for s in snapshots)
