"""Which client holds which node-local sessions, and what they take: the budget that keeps one client from
pushing other clients' sessions out of a node's memory (the memory and replicated strategies).

A client is the address nginx names (`$lab_client`, after ProxyFix: `request.remote_addr`). Beyond its own
quota (MEMORY_MAX_SESSIONS_PER_CLIENT) a login pushes out that client's own least recently used session,
never another client's. The store-wide limits (MEMORY_MAX_SESSIONS, MEMORY_MAX_MB) are the last resort, and
they too take from the client holding the most sessions first, so a client with a few is the last to lose one.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Iterable

from flask import has_request_context, request

# What a session costs beyond its strings, measured with tracemalloc on CPython 3.11: about 740 bytes for an
# empty one (the Entry, the Session, their dicts, the list, the set, the store's slot); a list slot is 8
# bytes, a set slot about 70.
SESSION_OVERHEAD = 800
LIST_SLOT, SET_SLOT = 8, 70


def requesting_client() -> str:
    """The client of the request being served ("" outside a request: tests calling a store directly)."""
    return (request.remote_addr or "") if has_request_context() else ""


def session_bytes(user: str | None, items: Iterable[str], keys: Iterable[str] = ()) -> int:
    """About what a session takes in the node's memory (sys.getsizeof counts a string's real width: an emoji
    makes the whole string 4 bytes a character)."""
    return (SESSION_OVERHEAD + sys.getsizeof(user or "") + sum(sys.getsizeof(i) + LIST_SLOT for i in items)
            + sum(sys.getsizeof(k) + SET_SLOT for k in keys))


class ClientLedger:
    """Sessions by client, least recently used first, with their sizes. Not thread-safe: the store's lock
    guards it, as it guards the store's own dict."""

    def __init__(self, per_client: int, max_sessions: int, max_bytes: int):
        self.per_client, self.max_sessions, self.max_bytes = per_client, max_sessions, max_bytes
        self._clients: dict[str, OrderedDict[str, int]] = {}  # client -> sid -> bytes
        self._owner: dict[str, str] = {}  # sid -> client
        self.bytes = 0

    def put(self, sid: str, client: str, size: int) -> None:
        """A session was created, changed or used: it is its client's most recently used, of `size` bytes."""
        self.discard(sid)
        self._clients.setdefault(client, OrderedDict())[sid] = size
        self._owner[sid] = client
        self.bytes += size

    def touch(self, sid: str) -> None:
        client = self._owner.get(sid)
        if client is not None:
            self._clients[client].move_to_end(sid)

    def discard(self, sid: str) -> None:
        client = self._owner.pop(sid, None)
        if client is None:
            return
        held = self._clients[client]
        self.bytes -= held.pop(sid)
        if not held:
            del self._clients[client]

    def over_budget(self, client: str) -> list[str]:
        """The sessions to drop now that `client` added one: its own oldest beyond its quota, then, while the
        store is over its limits, the oldest of whichever client holds the most. Forgotten here already."""
        victims = []
        held = self._clients.get(client)
        while held and len(held) > self.per_client:
            victims.append(self._drop_oldest(client))
            held = self._clients.get(client)
        while self._owner and (len(self._owner) > self.max_sessions or self.bytes > self.max_bytes):
            largest = max(self._clients, key=lambda c: len(self._clients[c]))
            victims.append(self._drop_oldest(largest))
        return victims

    def _drop_oldest(self, client: str) -> str:
        sid = next(iter(self._clients[client]))
        self.discard(sid)
        return sid
