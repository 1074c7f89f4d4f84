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
- A copy carries the time its session was last seen, and the owner copies a use that slides the idle
  expiry (SESSION_REFRESH_AFTER) and every session its store evicts (expired, or beyond the cap): a copy is
  adopted only within the idle and the absolute lifetime, so a session that expired on its owner never comes
  back through its copy.
- A node that was frozen (paused) asks its buddy, before it serves again, which of its sessions the buddy
  adopted and changed or ended meanwhile, and drops its own stale versions (replication/wakeup.py): a user
  who logged out on the buddy during the freeze is not let in again by the thawed owner, however soon the
  user comes back to it.
- A copy always fits one channel message: a session that could not (only possible when MAX_CART_ITEMS or
  MAX_ITEM_LENGTH are raised far beyond their defaults, see copy_bytes_bound) is refused at the login or the
  add with a 413, before anything is acknowledged.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from typing import Callable, ClassVar

from flask import Request

from .. import session_format
from ..errors import ApiError, StateTooLarge
from ..limits import IDEMPOTENCY_KEY_MAX_CHARS
from ..replication.channel import MAX_CHAR_BYTES, MAX_COPY_BYTES, Peer, PeerUnreachable, ReplayGuard, Sender, encode
from ..replication.link import BuddyLink
from ..replication.ring import Ring
from ..replication.wakeup import WakeUp
from ..traits import Traits, Transport
from ._client_budget import ClientLedger, session_bytes
from .base import Session, looks_like_session_id, new_session_id
from .memory import Entry, MemoryStrategy, json_bytes

log = logging.getLogger(__name__)

TOMBSTONE_SECONDS = 60.0  # a logout outlives any copy still in flight (each is bounded by REPLICATION_TIMEOUT)
# Seconds the ward's last answer is trusted, so a miss under routing that spreads users costs no call.
WARD_CHECK_EVERY = 1.0
WARD_TIMEOUT = 0.5  # a live node answers a hello in milliseconds; a frozen one never does
COPY_SWEEP_EVERY = 10.0  # seconds between scans for expired copies (as memory.SWEEP_EVERY for sessions)


def copy_bytes_bound(settings) -> int:
    """The most one session's copy can weigh as it travels (channel.encode), whatever its characters: every
    character at channel.MAX_CHAR_BYTES, the cart full, every add with its own longest Idempotency-Key.
    With the defaults (MAX_CART_ITEMS 50, MAX_ITEM_LENGTH 64, MAX_USER_LENGTH 64, keys of 64):
    50 x (64 x 6 + 3) + 50 x (64 x 6 + 3) + 64 x 6 + frame (< 300) = 19,350 + 19,350 + 384 + 300 < 40 KB,
    about 1/26 of channel.MAX_COPY_BYTES (1,044,480 bytes): no session the defaults allow is ever refused.
    (With ASCII-only escapes, json.dumps's default, a 4-byte character such as U+1D11E would weigh 12 bytes,
    `\ud834\udd1e`; the channel sends UTF-8, so it weighs 4.)"""
    def strings(count: int, chars: int) -> int:  # quotes and a comma each
        return count * (chars * MAX_CHAR_BYTES + 3)

    widest = -1.7976931348623157e308  # the longest float repr there is
    frame = len(encode({"sid": new_session_id(), "user": "", "items": [], "created": widest, "version": -2 ** 63,
                        "keys": [], "seen": widest, session_format.FIELD: session_format.FORMAT}))
    return (frame + strings(1, settings.max_user_length) + strings(settings.max_cart_items, settings.max_item_length)
            + strings(settings.max_cart_items, IDEMPOTENCY_KEY_MAX_CHARS))


@dataclass
class Copy:
    snapshot: dict
    origin: str
    tick: int  # when it arrived, in this node's count of copies received (a transfer keeps what came after it began)

    def newer_than(self, other: "Copy") -> bool:
        """A later version, or the same one seen later (a use that slid its idle expiry)."""
        return (self.snapshot["version"], _seen(self.snapshot)) > (other.snapshot["version"], _seen(other.snapshot))


@dataclass
class Staging:
    """A state transfer in progress from the ward: its copies wait here until its `end` swaps them in."""
    generation: str
    tick: int  # copies that arrive live after this one stay through the swap
    copies: OrderedDict[str, Copy] = field(default_factory=OrderedDict)
    received: int = 0


class Replicated(MemoryStrategy):
    traits = Traits(
        name="replicated",
        summary=("Server-side store inside each node; every change is copied to the next node before the answer, "
                 "and sticky routing sends a dead node's users to that copy."),
        transport=Transport(cookie="sl_replicated"),
        needs_sticky=True,
        node_replica=True,
        confirms_writes=True,
    )
    position = 11
    session_cookie = traits.transport.cookie
    synchronous: ClassVar[bool] = True

    def __init__(self, settings, **kwargs):
        super().__init__(settings, **kwargs)
        self.boot = secrets.token_hex(8)  # a new process, a new boot: the owner sees its buddy restarted empty
        self.ring = Ring(settings.node_name, settings.replication_peers)
        self.replay_guard = ReplayGuard()
        self._copies: OrderedDict[str, Copy] = OrderedDict()
        # The ward's clients get the same budgets here as there, so its copies cannot push out others either.
        self._copy_ledger = self._new_copy_ledger()
        self._staging: dict[str, Staging] = {}
        self._tick = 0
        self._next_copy_sweep = 0.0
        self._tombstones: OrderedDict[str, float] = OrderedDict()
        self._adopted_from: dict[str, tuple[str, int]] = {}  # sid -> (former owner, version when adopted)
        # Sessions adopted from the ward and ended here since: sid -> (former owner, when to forget it). The
        # ward may still hold its own version (it was frozen, not dead) and must learn they are over.
        self._ended_adopted: OrderedDict[str, tuple[str, float]] = OrderedDict()
        # The buddy adopts after WARD_TIMEOUT without an answer, so a freeze that short must be noticed.
        self.wakeup = WakeUp(frozen_after=0.8 * WARD_TIMEOUT)
        self.counters: Counter[str] = Counter()
        self._ward_answered = float("-inf")  # when the ward last answered a hello of ours
        self._ward_lock = threading.Lock()
        self._may_outgrow_a_message = copy_bytes_bound(settings) > MAX_COPY_BYTES
        self.link = self.ward = None
        if self.ring.buddy:
            sender = Sender(settings.node_name, self.boot)
            self.link = BuddyLink(Peer(*self.ring.buddy, settings.replication_secret, self.name, sender),
                                  settings.replication_timeout, self.synchronous, self._snapshot_all, self._drop)
            self.ward = Peer(*self.ring.ward, settings.replication_secret, self.name, sender)

    def start(self) -> None:
        if self.link:
            self.link.start()
            self.wakeup.start()

    def current(self, request: Request) -> Session:
        self._catch_up_if_woken()
        return super().current(request)

    def channel_handlers(self) -> dict[str, Callable[[dict], dict]]:
        """The verbs the channel (replication/channel.py) accepts for this strategy."""
        return {"hello": self.on_hello, "copy": self.on_copy, "handback": self.on_handback, "logout": self.on_logout,
                "adopted": self.on_adopted}

    # -- the memory store's hooks ------------------------------------------------------------------------

    def _changed(self, entry: Entry, session: Session) -> None:
        self._copy_out(entry)

    def _refreshed(self, entry: Entry) -> None:
        self._copy_out(entry)  # the copy learns the new last-seen time, so it expires no earlier than the session

    def _copy_out(self, entry: Entry) -> None:
        with self._lock:
            if self._entries.get(entry.session.sid) is not entry:
                return  # ended meanwhile
            snapshot = self._snapshot(entry)
        if self.link:
            self.link.send([snapshot])

    def _ended(self, sid: str) -> None:
        with self._lock:
            self._forget_adopted(sid)
        if self.link:
            self.link.send(ended=[sid], now=True)  # a logout queued when the node dies would come back to life

    def _evicted(self, sids: list[str]) -> None:
        """Gone from this node (expired, or beyond the cap): gone from the buddy too, or its copy would come
        back to life when this node dies."""
        if not sids:
            return
        with self._lock:
            for sid in sids:
                self._forget_adopted(sid)
        self.counters["evictions_copied"] += len(sids)
        if self.link:
            self.link.send(ended=sids)

    def _refuse_if_too_large(self, entry: Entry, item: str | None = None, key: str | None = None) -> None:
        if not self._may_outgrow_a_message:
            return  # copy_bytes_bound proves every session fits: no need to weigh it
        snapshot = self._snapshot(entry)
        if item is not None:
            snapshot["items"].append(item)
            snapshot["version"] += 1
        if key is not None:
            snapshot["keys"].append(key)
        size = len(encode(snapshot))
        if size > MAX_COPY_BYTES:
            raise StateTooLarge(f"this session would weigh {size} bytes, more than a copy to the buddy node may "
                                f"({MAX_COPY_BYTES}); nothing was changed")

    def end(self, request: Request) -> bool:
        """False when this node holds neither the session nor its copy, and its buddy did not adopt it from this
        node: then it has expired, or lives on elsewhere (in the lab's ring of three, on this node's buddy, with
        its copy on this node's ward). The logout is not forwarded: a session id does not name its owner."""
        self._catch_up_if_woken()
        sid = request.cookies.get(self.session_cookie)
        ended_copy = False
        if sid and looks_like_session_id(sid):
            with self._lock:
                owned, copy = sid in self._entries, self._copies.get(sid)
            if copy is not None and not owned:
                self._end_copy(sid)
                ended_copy = True
            elif not owned:
                self._take_back(sid)  # adopted by the buddy while this node was down: ended below, here
        return super().end(request) or ended_copy

    def _end_copy(self, sid: str) -> None:
        """A logout on the node holding only the copy: the owner (the ward) is stopping or the routing spreads
        users. The owner ends it if it answers; the copy goes either way, and its tombstone keeps it gone."""
        try:
            self.ward.call("logout", {"sid": sid}, self.settings.replication_timeout)
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
                self.ward.call("hello", {}, WARD_TIMEOUT)
            except PeerUnreachable:
                return False
            self._ward_answered = time.monotonic()
            return True

    def _adopt_all(self, origin: str) -> None:
        now = self.clock()
        adopted, evicted = [], []
        with self._lock:
            for sid in [sid for sid, c in self._copies.items() if c.origin == origin]:
                copy = self._forget_copy(sid)
                if sid in self._entries or self._expired(copy.snapshot, now):
                    continue  # idle or past its lifetime on the owner too: it must not come back
                entry = self._entry(copy.snapshot, now)
                self._hold(entry)
                self._adopted_from[sid] = (origin, entry.session.version)
                adopted.append(self._snapshot(entry))
                evicted += self._evict(now, entry.client)
        self._evicted(evicted)
        if not adopted:
            return
        self.counters["adopted"] += len(adopted)
        log.warning("%s: %s does not answer: adopted its %d sessions from their copies", self.name, origin,
                    len(adopted))
        if self.link:
            self.link.send(adopted)  # batched by bytes (link.batches)

    def _take_back(self, sid: str) -> Entry | None:
        """Ask the buddy for a session it adopted from this node while this node was down."""
        if self.link is None or self.link.state == BuddyLink.DOWN or not looks_like_session_id(sid):
            return None
        try:
            answer = self.link.peer.call("handback", {"sid": sid}, self.settings.replication_timeout)
        except PeerUnreachable:
            return None
        snapshot = answer.get("session")
        now = self.clock()
        if not self._valid(snapshot) or snapshot["sid"] != sid or self._expired(snapshot, now):
            return None
        with self._lock:
            entry, evicted = self._entries.get(sid), []
            if entry is None:
                entry = self._entry(snapshot, now)
                self._hold(entry)
                evicted = self._evict(now, entry.client)
        self._evicted(evicted)
        self.counters["taken_back"] += 1
        self._changed(entry, entry.session)  # the buddy holds it as a copy again
        return entry

    def _drop(self, sids: list[str]) -> None:
        """The buddy owns these now: this node's own versions are stale."""
        with self._lock:
            for sid in sids:
                if self._release(sid) is not None:
                    self.counters["dropped_stale"] += 1

    def _expired(self, snapshot: dict, now: float) -> bool:
        """The owner's rule, from what the copy knows: idle since it was last seen, or past its lifetime. A
        copy from a version that did not send `seen` (a rolling redeploy) knows its lifetime only."""
        if "seen" not in snapshot:
            return self.past_absolute(snapshot["created"], now)
        return now >= self.expires_at(snapshot["created"], snapshot["seen"])

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
        sessions, ended, transfer = _copy_message(payload)
        now = self.clock()
        with self._lock:
            staging = self._staging_for(origin, transfer, len(sessions))
            disowned = [sid for sid in (self._receive(snapshot, origin, staging) for snapshot in sessions) if sid]
            for sid in ended:
                if isinstance(sid, str) and sid not in self._entries:
                    self._forget_copy(sid)
                    self._bury(sid, now)
            answer = {"boot": self.boot, "disowned": disowned}
            if transfer is not None and transfer["phase"] == "end":
                answer["swapped"] = self._swap(origin, transfer)
            self._trim(now)
        return answer

    def _staging_for(self, origin: str, transfer: dict | None, count: int) -> Staging | None:
        """Where a message's copies go: the transfer's staging, or None (held at once, live copies). A batch
        of a generation this node does not stage (it restarted meanwhile) is held as live copies: they are."""
        if transfer is None:
            return None
        if transfer["phase"] == "begin":  # a new generation; one begun before and never ended is dropped
            self._staging[origin] = Staging(transfer["gen"], self._tick)
        staging = self._staging.get(origin)
        if staging is None or staging.generation != transfer["gen"]:
            return None
        staging.received += count
        return staging

    def _receive(self, snapshot, origin: str, staging: Staging | None) -> str | None:
        """Holds one copy (or refuses it); the session id when this node owns the session and the ward's
        version is the stale one (`disowned`)."""
        if not self._valid(snapshot):
            self.counters["copies_refused"] += 1
            return None
        sid = snapshot["sid"]
        self._tick += 1
        if sid in self._entries:
            return self._owned_here(snapshot, origin)
        if sid in self._tombstones:
            # Ended already; when this node had adopted it from the sender, the sender's version is stale.
            return sid if self._ended_adopted.get(sid, ("",))[0] == origin else None
        held = (staging.copies if staging else self._copies)
        copy = Copy(snapshot, origin, self._tick)
        if sid in held and not copy.newer_than(held[sid]):
            return None  # a replay, or an older copy overtaken
        if staging:
            held[sid] = copy
            held.move_to_end(sid)
        else:
            self._keep_copy(copy)
        return None

    def _owned_here(self, snapshot: dict, origin: str) -> str | None:
        sid = snapshot["sid"]
        version = self._entries[sid].session.version
        if self._adopted_from.get(sid) == (origin, version) and snapshot["version"] >= version:
            # Adopted from the ward, untouched since, and the ward still writes it: it lives.
            self._release(sid)
            del self._adopted_from[sid]
            self._keep_copy(Copy(snapshot, origin, self._tick))
            self.counters["released"] += 1
            return None
        return sid  # this node changed it since: the ward's copy is the stale one

    def _swap(self, origin: str, transfer: dict) -> bool:
        """The transfer's last message: its copies replace the ward's old ones, with what arrived live while
        it ran. Only a generation received whole is swapped in; anything else leaves the old copies."""
        staging = self._staging.get(origin)
        if staging is None or staging.generation != transfer["gen"]:
            return False
        del self._staging[origin]
        if staging.received != transfer["count"]:
            self.counters["transfers_incomplete"] += 1
            return False
        kept = OrderedDict((sid, c) for sid, c in self._copies.items() if c.origin != origin or c.tick > staging.tick)
        for sid, copy in staging.copies.items():
            if sid not in self._tombstones and sid not in self._entries and (sid not in kept
                                                                             or copy.newer_than(kept[sid])):
                kept[sid] = copy
        self._copies, self._copy_ledger = OrderedDict(), self._new_copy_ledger()
        for copy in kept.values():  # in their order, each budgeted by its client as it comes in
            self._keep_copy(copy)
        self.counters["transfers_received"] += 1
        return True

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
                self._forget_adopted(sid)
        if ended:
            self.counters["logged_out_by_buddy"] += 1
        return {"ended": ended}

    def on_adopted(self, payload: dict) -> dict:
        """Our ward woke up from a freeze: the sessions of its that this node adopted and changed since, or
        ended. Its own versions of them are stale (those adopted and untouched it may keep: _owned_here)."""
        origin = payload["from"]
        with self._lock:
            changed = [sid for sid, (former, version) in self._adopted_from.items()
                       if former == origin and sid in self._entries and self._entries[sid].session.version != version]
            ended = [sid for sid, (former, _) in self._ended_adopted.items() if former == origin]
        return {"stale": changed + ended}

    def _catch_up_if_woken(self) -> None:
        """Before serving after a freeze: drop this node's versions its buddy has overtaken meanwhile."""
        if self.link is None or not self.wakeup.woke_up():
            return
        with self._ward_lock:  # one question per thaw, whichever request comes first
            if not self.wakeup.woke_up():
                return
            try:
                answer = self.link.peer.call("adopted", {}, self.settings.replication_timeout)
            except PeerUnreachable:
                answer = {}  # a buddy that does not answer adopted nothing it can serve either
            stale = [sid for sid in answer.get("stale", ()) if isinstance(sid, str)]
            self._drop(stale)
            self.wakeup.settled()
        self.counters["woke_up"] += 1
        if stale:
            log.warning("%s: woke up from a freeze; %d of its sessions were overtaken on its buddy: dropped",
                        self.name, len(stale))

    def _forget_adopted(self, sid: str) -> None:
        """`sid` ended here (the lock held): if it was adopted, remember from whom until no copy is in flight."""
        former = self._adopted_from.pop(sid, None)
        if former is not None:
            now = self.clock()
            self._ended_adopted[sid] = (former[0], now + TOMBSTONE_SECONDS)
            self._ended_adopted.move_to_end(sid)
            self._bury(sid, now)

    def on_handback(self, payload: dict) -> dict:
        sid = payload.get("sid")
        with self._lock:
            former = self._adopted_from.get(sid, ("",))[0] if isinstance(sid, str) else ""
            if former != payload["from"] or sid not in self._entries:
                return {"session": None}
            snapshot = self._snapshot(self._release(sid))
            del self._adopted_from[sid]  # handed back, not ended: _ended below must not bury it
        self.counters["handed_back"] += 1
        self._ended(sid)  # our buddy's copy of it is stale now; the asker copies it to us afresh
        return {"session": snapshot}

    # -- reporting -------------------------------------------------------------------------------------

    def report(self) -> dict:
        with self._lock:
            copies = [c.snapshot for c in self._copies.values()]
            staged = sum(len(s.copies) for s in self._staging.values())
        return {
            **super().report(), "copies": len(copies), "copy_bytes": json_bytes(copies), "staged": staged,
            "boot": self.boot, "ward": self.ring.ward and self.ring.ward[0],
            "buddy": self.link.report() if self.link else None,
            **self.counters,
        }

    # -- snapshots ---------------------------------------------------------------------------------------

    @staticmethod
    def _snapshot(entry: Entry) -> dict:
        """A copy: the session as the memory store measures it, and when it was last seen (its idle expiry)."""
        return {**MemoryStrategy._snapshot(entry), "seen": entry.refreshed_at}

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
                and _number(snapshot.get("created")) and _number(snapshot.get("seen", 0))
                and type(snapshot.get("version")) is int)

    def _bury(self, sid: str, now: float) -> None:
        self._tombstones[sid] = now + TOMBSTONE_SECONDS
        self._tombstones.move_to_end(sid)

    def _new_copy_ledger(self) -> ClientLedger:
        s = self.settings
        return ClientLedger(s.memory_max_sessions_per_client, s.memory_max_sessions, s.memory_max_mb * 2**20)

    def _keep_copy(self, copy: Copy) -> None:
        """Hold `copy` as its client's most recent; over the budgets, copies go as sessions do (_evict)."""
        sid, client, snapshot = copy.snapshot["sid"], _client_of(copy.snapshot), copy.snapshot
        self._copies[sid] = copy
        self._copies.move_to_end(sid)
        self._copy_ledger.put(sid, client, session_bytes(snapshot["user"], snapshot["items"], snapshot["keys"]))
        for victim in self._copy_ledger.over_budget(client):
            del self._copies[victim]

    def _forget_copy(self, sid: str) -> Copy | None:
        self._copy_ledger.discard(sid)
        return self._copies.pop(sid, None)

    def _trim(self, now: float) -> None:
        """Expired copies go every COPY_SWEEP_EVERY seconds; a transfer's staged copies beyond the store's size
        limit, least recently copied first (live copies keep to the client budgets as they come in, _keep_copy);
        tombstones once expired."""
        if now >= self._next_copy_sweep:
            self._next_copy_sweep = now + COPY_SWEEP_EVERY
            for sid in [sid for sid, c in self._copies.items() if self._expired(c.snapshot, now)]:
                self._forget_copy(sid)
        for staging in self._staging.values():  # live copies keep to the budgets as they come in (_keep_copy)
            while len(staging.copies) > self.settings.memory_max_sessions:
                staging.copies.popitem(last=False)
        while self._tombstones and (next(iter(self._tombstones.values())) <= now
                                    or len(self._tombstones) > self.settings.memory_max_sessions):
            self._tombstones.popitem(last=False)
        while self._ended_adopted and (next(iter(self._ended_adopted.values()))[1] <= now
                                       or len(self._ended_adopted) > self.settings.memory_max_sessions):
            self._ended_adopted.popitem(last=False)


def _client_of(snapshot: dict) -> str:
    """The client a copy belongs to; "" from a node of a version that did not send it."""
    client = snapshot.get("client", "")
    return client if isinstance(client, str) else ""


def _seen(snapshot: dict) -> float:
    """When the owner last saw the session, to order copies of one version; one that did not say: its login."""
    return snapshot.get("seen", snapshot["created"])


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # NaN != NaN


def _strings(values) -> bool:
    return isinstance(values, list) and all(isinstance(v, str) for v in values)


def _copy_message(payload: dict) -> tuple[list, list, dict | None]:
    """A copy message's parts (400 when malformed): copies, ends, and its place in a state transfer."""
    sessions, ended, transfer = payload.get("sessions", []), payload.get("ended", []), payload.get("transfer")
    if not isinstance(sessions, list) or not isinstance(ended, list):
        raise ApiError("`sessions` and `ended` must be lists", code="malformed_message")
    if transfer is not None and not _valid_transfer(transfer):
        raise ApiError("`transfer` is {gen, phase: begin|batch|end, count (at the end)}", code="malformed_message")
    return sessions, ended, transfer


def _valid_transfer(transfer) -> bool:
    return (isinstance(transfer, dict) and isinstance(transfer.get("gen"), str)
            and transfer.get("phase") in ("begin", "batch", "end")
            and (transfer["phase"] != "end" or type(transfer.get("count")) is int))


class ReplicatedAsync(Replicated):
    traits = replace(
        Replicated.traits,
        name="replicated-async",
        summary=("As replicated, but the copy leaves just after the answer: faster writes, and what is in flight "
                 "when a node dies is lost."),
        transport=Transport(cookie="sl_replicated-async"),
        confirms_writes=False,
    )
    position = 12
    session_cookie = traits.transport.cookie
    synchronous = False
