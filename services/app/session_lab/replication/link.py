"""The copy stream from one node to its buddy.

Synchronous: a change is copied before the request answers, so an acknowledged change is on two nodes.
Asynchronous: the change is queued and a background thread ships it just after the answer; what is queued
when the node dies is lost (the window the experiment counts). Either way, when the buddy does not answer
the node keeps serving without a copy and counts every change made so (`unprotected`); a watcher asks the
buddy every HEARTBEAT seconds and, once it answers again or answers as a new process (it restarted
empty), sends it everything this node owns (state transfer), so protection returns without a restart.

Copies travel encoded (channel.encode) and are weighed in bytes as they travel: a message holds as many as
fit in BATCH_BYTES, whatever their characters, so no message can exceed what the buddy reads
(channel.MAX_MESSAGE_BYTES). A state transfer is a generation: `begin`, batches, `end` with the count sent.
The buddy stages the batches beside the copies it holds and swaps them in only when `end` arrives with
everything; an interrupted transfer leaves the buddy's old copies in place, and a replayed message is refused
by the channel (channel.ReplayGuard).
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable

from .channel import ENVELOPE_BYTES, MAX_MESSAGE_BYTES, Peer, PeerUnreachable, encode

log = logging.getLogger(__name__)

HEARTBEAT = 1.0  # seconds: how soon a buddy that came back gets its copies, and a restart is noticed
BATCH_BYTES = MAX_MESSAGE_BYTES - ENVELOPE_BYTES  # encoded copies and ends in one message, commas included
FLUSH_TIMEOUT = 5.0  # seconds a stopping node spends shipping its queue (gunicorn's graceful stop allows 10)


@dataclass
class Batch:
    """Copies and ends, each encoded once; `size` is what they add to a message."""
    sessions: list[bytes] = field(default_factory=list)
    ended: list[bytes] = field(default_factory=list)
    size: int = 0

    def fits(self, piece: bytes) -> bool:
        return self.size + len(piece) + 1 <= BATCH_BYTES  # + 1: the comma before it

    def add(self, piece: bytes, ended: bool = False) -> None:
        (self.ended if ended else self.sessions).append(piece)
        self.size += len(piece) + 1

    def __len__(self) -> int:
        return len(self.sessions) + len(self.ended)


def batches(sessions: list[dict] = (), ended: list[str] = ()) -> list[Batch]:
    """Copies and ends in as few messages as their encoded bytes allow. A copy larger than BATCH_BYTES
    cannot exist (the API refuses the change that would make it: replicated.py, MAX_COPY_BYTES); were one
    made by a bug, it is left out and logged, never sent, for the buddy would refuse the whole message and
    the link would go down with every other copy in it."""
    found = [Batch()]
    pieces = [(encode(s), False) for s in sessions] + [(encode(sid), True) for sid in ended]
    for piece, is_end in pieces:
        if len(piece) + 1 > BATCH_BYTES:
            log.error("a copy of %d bytes cannot travel (at most %d): not sent", len(piece), BATCH_BYTES)
            continue
        if not found[-1].fits(piece) and len(found[-1]):
            found.append(Batch())
        found[-1].add(piece, is_end)
    return found


class BuddyLink:
    UP, DOWN, UNKNOWN = "up", "down", "unknown"

    def __init__(self, peer: Peer, timeout: float, synchronous: bool,
                 snapshot_all: Callable[[], list[dict]], disowned: Callable[[list[str]], None]):
        self.peer, self.timeout = peer, timeout
        self.synchronous = synchronous
        self._snapshot_all = snapshot_all  # every session this node owns, as copies
        self._disowned = disowned  # the buddy owns these now (it adopted them): drop ours
        self.state = self.UNKNOWN
        self.since = time.time()
        self.reason = "not contacted yet"
        self.buddy_boot: str | None = None  # the buddy process we last began a state transfer to
        self.filled: str | None = None  # the buddy process that has received one in full
        self.buddy_copies: int | None = None  # copies of ours the buddy held at its last heartbeat answer
        self.counters: Counter[str] = Counter()
        self._resync = threading.Event()
        self._queue: deque[Batch] = deque()
        self._ready = threading.Condition()
        self._pid: int | None = None

    # -- what the strategy calls --------------------------------------------------------------------------

    def start(self) -> None:
        if self._pid == os.getpid():
            return
        with self._ready:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
        threading.Thread(target=self._watch, name=f"buddy-watch-{self.peer.strategy}", daemon=True).start()
        if not self.synchronous:
            threading.Thread(target=self._ship, name=f"buddy-ship-{self.peer.strategy}", daemon=True).start()
            atexit.register(self.flush)  # a graceful stop ships what is queued; a SIGKILL loses it

    def send(self, sessions: list[dict] = (), ended: list[str] = (), now: bool = False) -> bool:
        """Copy changes to the buddy: at once (synchronous, or `now`; True when the buddy has them all) or
        queued. A message sent now may overtake queued ones; the buddy keeps the newest version and its
        tombstones."""
        parts = batches(sessions, ended)
        if self.synchronous or now:
            answers = [self._deliver(batch) for batch in parts]  # every batch is tried, as before
            return all(answer is not None for answer in answers)
        with self._ready:
            self._queue.extend(parts)
            self._ready.notify()
        return False

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while self._queue and time.monotonic() < deadline and self.state != self.DOWN:
            self._deliver(self._take())

    def report(self) -> dict:
        return {"buddy": self.peer.name, "state": self.state, "since": round(self.since, 3), "filled": self.filled,
                "reason": self.reason if self.state != self.UP else "", "mode": "sync" if self.synchronous else "async",
                "queued": len(self._queue), "buddy_copies": self.buddy_copies, **self.counters}

    # -- delivery -------------------------------------------------------------------------------------------

    def _deliver(self, batch: Batch, transfer: dict | None = None) -> dict | None:
        """The buddy's answer, or None (counted unprotected, the link down) when it has not got the batch."""
        if self.state == self.DOWN and transfer is None:
            self.counters["unprotected"] += len(batch)
            return None
        fields = {"transfer": transfer} if transfer else {}
        try:
            answer = self.peer.call("copy", fields, self.timeout, sessions=batch.sessions, ended=batch.ended)
        except PeerUnreachable as exc:
            self.counters["unprotected"] += len(batch)
            self._down(str(exc))
            return None
        self.counters["copied"] += len(batch)
        if isinstance(answer.get("disowned"), list) and answer["disowned"]:
            self._disowned([sid for sid in answer["disowned"] if isinstance(sid, str)])
        if self.buddy_boot is not None and answer.get("boot") != self.buddy_boot:
            self._resync.set()  # the buddy restarted since we filled it: it holds nothing of ours
        return answer

    def _take(self) -> Batch:
        """Queued batches merged while they fit one message."""
        with self._ready:
            merged = self._queue.popleft()
            while self._queue and merged.size + self._queue[0].size <= BATCH_BYTES:
                following = self._queue.popleft()
                merged = Batch(merged.sessions + following.sessions, merged.ended + following.ended,
                               merged.size + following.size)
            return merged

    def _ship(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
            try:
                self._deliver(self._take())
            except Exception:  # as in _watch: the shipper must outlive a bug, its copies are counted lost
                log.exception("%s: shipping to buddy %s failed", self.peer.strategy, self.peer.name)
                self._down("shipper error (see the log)")

    # -- the watcher: down, up, state transfer ---------------------------------------------------------

    def _watch(self) -> None:
        while True:
            try:
                answer = self.peer.call("hello", {}, self.timeout)
                copies = answer.get("copies")
                self.buddy_copies = copies if isinstance(copies, int) else None
                if self.state != self.UP or answer.get("boot") != self.buddy_boot or self._resync.is_set():
                    self._transfer(answer.get("boot"))
            except PeerUnreachable as exc:
                self._down(str(exc))
            except Exception:  # a bug must not end the watcher: the link would stay down for good
                log.exception("%s: the watch on buddy %s failed; trying again", self.peer.strategy, self.peer.name)
                self._down("watcher error (see the log)")
            time.sleep(HEARTBEAT)

    def _transfer(self, buddy_boot: str | None) -> None:
        """Everything this node owns, to a buddy that lacks it, as one generation. `begin` goes first and the
        snapshot is taken after it, while live changes are copied as usual: the buddy keeps what arrives live
        during the transfer beside what the batches bring, so it ends with every change, whichever way a live
        copy and a batch cross. Its old copies stay until `end` swaps the new generation in."""
        self._resync.clear()
        was = self.state
        self.state, self.buddy_boot = self.UP, buddy_boot
        generation = secrets.token_hex(8)
        if self._deliver(Batch(), {"gen": generation, "phase": "begin"}) is None:
            return
        parts = batches(self._snapshot_all())
        for batch in parts:
            if len(batch) and self._deliver(batch, {"gen": generation, "phase": "batch"}) is None:
                return
        sent = sum(len(batch.sessions) for batch in parts)
        done = self._deliver(Batch(), {"gen": generation, "phase": "end", "count": sent})
        if done is None or done.get("swapped") is not True:
            self._resync.set()  # the buddy lost the generation (it restarted meanwhile): again, next heartbeat
            return
        self.filled = buddy_boot
        self.counters["transfers"] += 1
        self.since = time.time() if was != self.UP else self.since
        log.info("%s: buddy %s has a copy of all %d sessions of this node (state transfer)",
                 self.peer.strategy, self.peer.name, sent)

    def _down(self, reason: str) -> None:
        self.reason = reason
        if self.state != self.DOWN:
            self.state, self.since = self.DOWN, time.time()
            log.warning("%s: buddy %s unreachable (%s): serving without a copy until it is back",
                        self.peer.strategy, self.peer.name, reason)
