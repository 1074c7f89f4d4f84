"""Sessions in the node's memory, each change copied to the node's buddy (the next node in the ring), as
Tomcat's BackupManager does. With sticky routing a user stays on the node that owns the session; when that
node dies, nginx sends its users to its buddy first (loadbalancer/modes/sticky.conf), which serves them from
its copy and becomes their owner.

The rules, each for a failure the experiment provokes:
- A request for a session this node holds only as a copy is served from it only once the owner (this node's
  ward) does not answer: then this node adopts every copy of the ward's at once and copies them on to its own
  buddy, so a second failure later loses nothing. While the ward answers, the user is on the wrong node
  (routing that spreads users), and gets the 401 the memory strategy gives.
- A copy from the ward for a session this node owns now is refused and the ward told to drop its own, stale
  one (a frozen node that wakes up after its users moved on).
- A node that restarted empty asks its buddy for a session it does not know: the buddy hands back what it
  adopted from it (a user who made no request while the node was down), and keeps nothing else's.
- A logout leaves a tombstone on the buddy, so a copy still in flight cannot bring the session back. It is
  copied before the answer in both variants, and it ends the session wherever a copy of it could come back
  from: a logout that reaches the node holding only the copy (the owner was stopping) ends it on the owner
  too and drops the copy; one that reaches a node back empty first takes the session back from the buddy
  that adopted it, then ends it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import ClassVar

from flask import Request

from .. import session_format
from ..errors import ApiError
from ..replication.channel import Peer, PeerUnreachable
from ..replication.link import BATCH_SESSIONS, BuddyLink
from ..replication.ring import Ring
from ._client_budget import ClientLedger, session_bytes
from .base import Session, looks_like_session_id
from .memory import Entry, MemoryStore, json_bytes

log = logging.getLogger(__name__)

TOMBSTONE_SECONDS = 60.0  # a logout outlives any copy still in flight (each is bounded by REPLICATION_TIMEOUT)
WARD_CHECK_EVERY = 1.0  # seconds the ward's last answer is trusted, so a miss under routing that spreads users costs no call
WARD_TIMEOUT = 0.5  # a live node answers a hello in milliseconds; a frozen one never does


@dataclass
class Copy:
    snapshot: dict
    origin: str
    expires_at: float  # the session's absolute lifetime: the owner's reads, which slide its idle expiry, are not copied


class Replicated(MemoryStore):
    name = "replicated"
    summary = ("Server-side store inside each node; every change is copied to the next node before the answer, "
               "and sticky routing sends a dead node's users to that copy.")
    position = 11
    credential = "cookie sl_replicated"
    session_cookie = "sl_replicated"
    node_replica = True
    confirms_writes = True
    synchronous: ClassVar[bool] = True

    def __init__(self, settings, **kwargs):
        super().__init__(settings, **kwargs)
        self.boot = secrets.token_hex(8)  # a new process, a new boot: the owner sees its buddy restarted empty
        self.ring = Ring(settings.node_name, settings.replication_peers)
        self._copies: OrderedDict[str, Copy] = OrderedDict()
        # The ward's clients get the same budgets here as there, so its copies cannot push out others either.
        self._copy_ledger = ClientLedger(settings.memory_max_sessions_per_client, settings.memory_max_sessions,
                                         settings.memory_max_mb * 2**20)
        self._tombstones: OrderedDict[str, float] = OrderedDict()
        self._adopted_from: dict[str, tuple[str, int]] = {}  # sid -> (former owner, version when adopted)
        self.counters: Counter[str] = Counter()
        self._ward_answered = float("-inf")  # when the ward last answered a hello of ours
        self._ward_lock = threading.Lock()
        self.link = self.ward = None
        if self.ring.buddy:
            self.link = BuddyLink(Peer(*self.ring.buddy, settings.replication_secret, self.name), settings.node_name,
                                  self.boot, settings.replication_timeout, self.synchronous, self._snapshot_all,
                                  self._drop)
            self.ward = Peer(*self.ring.ward, settings.replication_secret, self.name)

    def start(self) -> None:
        if self.link:
            self.link.start()

    # -- the memory store's hooks ------------------------------------------------------------------------

    def _changed(self, entry: Entry, session: Session) -> None:
        with self._lock:
            if self._entries.get(session.sid) is not entry:
                return  # ended meanwhile
            snapshot = self._snapshot(entry)
        if self.link:
            self.link.send([snapshot])

    def _ended(self, sid: str) -> None:
        with self._lock:
            self._adopted_from.pop(sid, None)
        if self.link:
            self.link.send(ended=[sid], now=True)  # a logout queued when the node dies would come back to life

    def end(self, request: Request) -> None:
        sid = request.cookies.get(self.session_cookie)
        if sid and looks_like_session_id(sid):
            with self._lock:
                owned, copy = sid in self._entries, self._copies.get(sid)
            if copy is not None and not owned:
                self._end_copy(sid)
            elif not owned:
                self._take_back(sid)  # adopted by the buddy while this node was down: ended below, here
        super().end(request)

    def _end_copy(self, sid: str) -> None:
        """A logout on the node holding only the copy: the owner (the ward) is stopping or the routing spreads
        users. The owner ends it if it answers; the copy goes either way, and its tombstone keeps it gone."""
        try:
            self.ward.call("logout", {"from": self.settings.node_name, "sid": sid}, self.settings.replication_timeout)
        except PeerUnreachable:
            pass  # gone or frozen: the copy was the session's only future
        with self._lock:
            self._forget_copy(sid)
            self._bury(sid, self.clock())
        self.counters["copies_logged_out"] += 1

    def _missing(self, sid: str) -> Entry | None:
        with self._lock:
            copy = self._copies.get(sid)
        if copy is not None:
            if self._ward_alive():
                self.counters["refused_owner_alive"] += 1
                return None
            self._adopt_all(copy.origin)
            with self._lock:
                return self._entries.get(sid)
        return self._take_back(sid)

    # -- failover ------------------------------------------------------------------------------------------

    def _ward_alive(self) -> bool:
        """Only "alive" is reused for a while: a node that just came back must not be taken for dead."""
        with self._ward_lock:
            if time.monotonic() - self._ward_answered < WARD_CHECK_EVERY:
                return True
            try:
                self.ward.call("hello", {"from": self.settings.node_name, "boot": self.boot}, WARD_TIMEOUT)
            except PeerUnreachable:
                return False
            self._ward_answered = time.monotonic()
            return True

    def _adopt_all(self, origin: str) -> None:
        now = self.clock()
        adopted = []
        with self._lock:
            for sid in [sid for sid, c in self._copies.items() if c.origin == origin]:
                copy = self._forget_copy(sid)
                if sid in self._entries or now >= copy.expires_at:
                    continue
                entry = self._entry(copy.snapshot, now)
                self._hold(entry)
                self._adopted_from[sid] = (origin, entry.session.version)
                adopted.append(self._snapshot(entry))
                self._evict(now, entry.client)
        if not adopted:
            return
        self.counters["adopted"] += len(adopted)
        log.warning("%s: %s does not answer: adopted its %d sessions from their copies", self.name, origin,
                    len(adopted))
        if self.link:
            for first in range(0, len(adopted), BATCH_SESSIONS):
                self.link.send(adopted[first:first + BATCH_SESSIONS])

    def _take_back(self, sid: str) -> Entry | None:
        """Ask the buddy for a session it adopted from this node while this node was down."""
        if self.link is None or self.link.state == BuddyLink.DOWN or not looks_like_session_id(sid):
            return None
        try:
            answer = self.link.peer.call("handback", {"from": self.settings.node_name, "sid": sid},
                                         self.settings.replication_timeout)
        except PeerUnreachable:
            return None
        snapshot = answer.get("session")
        if not self._valid(snapshot) or snapshot["sid"] != sid:
            return None
        now = self.clock()
        with self._lock:
            entry = self._entries.get(sid)
            if entry is None:
                entry = self._entry(snapshot, now)
                self._hold(entry)
                self._evict(now, entry.client)
        self.counters["taken_back"] += 1
        self._changed(entry, entry.session)  # the buddy holds it as a copy again
        return entry

    def _drop(self, sids: list[str]) -> None:
        """The buddy owns these now: this node's own versions are stale."""
        with self._lock:
            for sid in sids:
                if self._release(sid) is not None:
                    self.counters["dropped_stale"] += 1

    # -- the channel's verbs (replication/channel.py) ------------------------------------------------

    def on_hello(self, payload: dict) -> dict:
        with self._lock:
            held = sum(1 for c in self._copies.values() if c.origin == payload["from"])
        return {"boot": self.boot, "copies": held}

    def on_copy(self, payload: dict) -> dict:
        origin = payload["from"]
        if self.ring.ward is None or origin != self.ring.ward[0]:
            raise ApiError(f"{self.settings.node_name} keeps copies of {self.ring.ward and self.ring.ward[0]}, "
                           f"not of {origin[:40]!r}", status=409, code="not_my_ward")
        sessions, ended = payload.get("sessions", []), payload.get("ended", [])
        if not isinstance(sessions, list) or not isinstance(ended, list):
            raise ApiError("`sessions` and `ended` must be lists", code="malformed_message")
        now = self.clock()
        disowned = []
        with self._lock:
            if payload.get("reset") is True:  # a state transfer starts: what we held of the ward is stale
                for sid in [sid for sid, c in self._copies.items() if c.origin == origin]:
                    self._forget_copy(sid)
            for snapshot in sessions:
                if not self._valid(snapshot):
                    self.counters["copies_refused"] += 1
                    continue
                sid = snapshot["sid"]
                held = self._copies.get(sid)
                if sid in self._entries:
                    version = self._entries[sid].session.version
                    if self._adopted_from.get(sid) == (origin, version) and snapshot["version"] >= version:
                        # Adopted from the ward, untouched since, and the ward still writes it: it lives.
                        self._release(sid)
                        del self._adopted_from[sid]
                        self._keep_copy(Copy(snapshot, origin, snapshot["created"] + self.settings.absolute_timeout))
                        self.counters["released"] += 1
                    else:
                        disowned.append(sid)  # this node changed it since: the ward's copy is the stale one
                elif sid in self._tombstones or (held and held.snapshot["version"] >= snapshot["version"]):
                    continue  # ended already, or a replay or an older copy overtaken by a newer one
                else:
                    self._keep_copy(Copy(snapshot, origin, snapshot["created"] + self.settings.absolute_timeout))
            for sid in ended:
                if isinstance(sid, str) and sid not in self._entries:
                    self._forget_copy(sid)
                    self._bury(sid, now)
            self._trim(now)
        return {"boot": self.boot, "disowned": disowned}

    def on_logout(self, payload: dict) -> dict:
        """Our buddy saw the logout of a session of ours (see _end_copy). It keeps the tombstone, so this
        node tells it nothing back: a call back into a node that is waiting on us."""
        if self.ring.buddy is None or payload["from"] != self.ring.buddy[0]:
            raise ApiError(f"{self.settings.node_name} takes logouts from its buddy "
                           f"{self.ring.buddy and self.ring.buddy[0]}, not from {payload['from'][:40]!r}",
                           status=409, code="not_my_buddy")
        sid = payload.get("sid")
        with self._lock:
            ended = isinstance(sid, str) and self._release(sid) is not None
            if ended:
                self._adopted_from.pop(sid, None)
        if ended:
            self.counters["logged_out_by_buddy"] += 1
        return {"ended": ended}

    def on_handback(self, payload: dict) -> dict:
        sid = payload.get("sid")
        with self._lock:
            former = self._adopted_from.get(sid, ("",))[0] if isinstance(sid, str) else ""
            if former != payload["from"] or sid not in self._entries:
                return {"session": None}
            snapshot = self._snapshot(self._release(sid))
        self.counters["handed_back"] += 1
        self._ended(sid)  # our buddy's copy of it is stale now; the asker copies it to us afresh
        return {"session": snapshot}

    # -- reporting -------------------------------------------------------------------------------------

    def report(self) -> dict:
        with self._lock:
            copies = [c.snapshot for c in self._copies.values()]
        return {
            **super().report(), "copies": len(copies), "copy_bytes": json_bytes(copies),
            "boot": self.boot, "ward": self.ring.ward and self.ring.ward[0],
            "buddy": self.link.report() if self.link else None,
            **self.counters,
        }

    # -- snapshots ---------------------------------------------------------------------------------------

    def _snapshot_all(self) -> list[dict]:
        with self._lock:
            return [self._snapshot(e) for e in self._entries.values()]

    def _entry(self, snapshot: dict, now: float) -> Entry:
        session = Session(snapshot["user"], list(snapshot["items"]), snapshot["created"], snapshot["sid"],
                          snapshot["version"])
        return Entry(session, self.expires_at(session.created_at, now), set(snapshot["keys"]), refreshed_at=now,
                     client=_client_of(snapshot))

    @staticmethod
    def _valid(snapshot) -> bool:
        """A copy this version can hold: the right shape, in a format it reads (session_format.py)."""
        try:
            session_format.check(snapshot.get(session_format.FIELD))
        except ApiError:
            return False
        except AttributeError:
            return False
        return (looks_like_session_id(snapshot.get("sid")) and isinstance(snapshot.get("user"), str)
                and _strings(snapshot.get("items")) and _strings(snapshot.get("keys"))
                and isinstance(snapshot.get("created"), (int, float)) and isinstance(snapshot.get("version"), int))

    def _bury(self, sid: str, now: float) -> None:
        self._tombstones[sid] = now + TOMBSTONE_SECONDS
        self._tombstones.move_to_end(sid)

    def _keep_copy(self, copy: Copy) -> None:
        """Hold `copy` as its client's most recent; over the budgets, copies go as sessions do (_evict)."""
        sid, client = copy.snapshot["sid"], _client_of(copy.snapshot)
        self._copies[sid] = copy
        self._copies.move_to_end(sid)
        snapshot = copy.snapshot
        self._copy_ledger.put(sid, client, session_bytes(snapshot["user"], snapshot["items"], snapshot["keys"]))
        for victim in self._copy_ledger.over_budget(client):
            del self._copies[victim]

    def _forget_copy(self, sid: str) -> Copy | None:
        self._copy_ledger.discard(sid)
        return self._copies.pop(sid, None)

    def _trim(self, now: float) -> None:
        """Tombstones go once expired, or beyond the store's size limit."""
        while self._tombstones and (next(iter(self._tombstones.values())) <= now
                                    or len(self._tombstones) > self.settings.memory_max_sessions):
            self._tombstones.popitem(last=False)


def _client_of(snapshot: dict) -> str:
    """The client a copy belongs to; "" from a node of a version that did not send it."""
    client = snapshot.get("client", "")
    return client if isinstance(client, str) else ""


def _strings(values) -> bool:
    return isinstance(values, list) and all(isinstance(v, str) for v in values)


class ReplicatedAsync(Replicated):
    name = "replicated-async"
    summary = ("As replicated, but the copy leaves just after the answer: faster writes, and what is in flight "
               "when a node dies is lost.")
    position = 12
    credential = "cookie sl_replicated-async"
    session_cookie = "sl_replicated-async"
    confirms_writes = False
    synchronous = False
