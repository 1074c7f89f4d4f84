"""The copy stream from one node to its buddy.

Synchronous: a change is copied before the request answers, so an acknowledged change is on two nodes.
Asynchronous: the change is queued and a background thread ships it just after the answer; what is queued
when the node dies is lost (the window the experiment counts). Either way, when the buddy does not answer
the node keeps serving without a copy and counts every change made so (`unprotected`); a watcher asks the
buddy every HEARTBEAT seconds and, once it answers again or answers as a new process (it restarted
empty), sends it everything this node owns (state transfer), so protection returns without a restart.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import Counter, deque
from typing import Callable

from .channel import Peer, PeerUnreachable

log = logging.getLogger(__name__)

HEARTBEAT = 1.0  # seconds: how soon a buddy that came back gets its copies, and a restart is noticed
# Sessions per message. A full cart (50 items and 50 idempotency keys of 64 characters) is about 7 KB of
# JSON, so 100 stay under channel.MAX_MESSAGE_BYTES (1 MiB) whatever the carts hold.
BATCH_SESSIONS = 100
FLUSH_TIMEOUT = 5.0  # seconds a stopping node spends shipping its queue (gunicorn's graceful stop allows 10)


class BuddyLink:
    UP, DOWN, UNKNOWN = "up", "down", "unknown"

    def __init__(self, peer: Peer, me: str, boot: str, timeout: float, synchronous: bool,
                 snapshot_all: Callable[[], list[dict]], disowned: Callable[[list[str]], None]):
        self.peer, self.me, self.boot, self.timeout = peer, me, boot, timeout
        self.synchronous = synchronous
        self._snapshot_all = snapshot_all  # every session this node owns, as copies
        self._disowned = disowned  # the buddy owns these now (it adopted them): drop ours
        self.state = self.UNKNOWN
        self.since = time.time()
        self.reason = "not contacted yet"
        self.buddy_boot: str | None = None  # the buddy process we last began a state transfer to
        self.filled: str | None = None  # the buddy process that has received one in full
        self.counters: Counter[str] = Counter()
        self._resync = threading.Event()
        self._queue: deque[dict] = deque()
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
        """Copy changes to the buddy: at once (synchronous, or `now`; True when the buddy has them) or queued.
        A message sent now may overtake queued ones; the buddy keeps the newest version and its tombstones."""
        message = {"sessions": list(sessions), "ended": list(ended)}
        if self.synchronous or now:
            return self._deliver(message)
        with self._ready:
            self._queue.append(message)
            self._ready.notify()
        return False

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while self._queue and time.monotonic() < deadline and self.state != self.DOWN:
            self._deliver(self._take())

    def report(self) -> dict:
        return {"buddy": self.peer.name, "state": self.state, "since": round(self.since, 3), "filled": self.filled,
                "reason": self.reason if self.state != self.UP else "", "mode": "sync" if self.synchronous else "async",
                "queued": len(self._queue), **self.counters}

    # -- delivery -------------------------------------------------------------------------------------------

    def _deliver(self, message: dict, reset: bool = False) -> bool:
        changes = len(message["sessions"]) + len(message["ended"])
        if self.state == self.DOWN and not reset:
            self.counters["unprotected"] += changes
            return False
        try:
            answer = self.peer.call("copy", {"from": self.me, "boot": self.boot, "reset": reset, **message},
                                    self.timeout)
        except PeerUnreachable as exc:
            self.counters["unprotected"] += changes
            self._down(str(exc))
            return False
        self.counters["copied"] += changes
        if answer.get("disowned"):
            self._disowned(answer["disowned"])
        if self.buddy_boot is not None and answer.get("boot") != self.buddy_boot:
            self._resync.set()  # the buddy restarted since we filled it: it holds nothing of ours
        return True

    def _take(self) -> dict:
        with self._ready:
            merged = {"sessions": [], "ended": []}
            while self._queue and len(merged["sessions"]) < BATCH_SESSIONS:
                message = self._queue.popleft()
                merged["sessions"] += message["sessions"]
                merged["ended"] += message["ended"]
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
                answer = self.peer.call("hello", {"from": self.me, "boot": self.boot}, self.timeout)
                if self.state != self.UP or answer.get("boot") != self.buddy_boot or self._resync.is_set():
                    self._transfer(answer.get("boot"))
            except PeerUnreachable as exc:
                self._down(str(exc))
            except Exception:  # a bug must not end the watcher: the link would stay down for good
                log.exception("%s: the watch on buddy %s failed; trying again", self.peer.strategy, self.peer.name)
                self._down("watcher error (see the log)")
            time.sleep(HEARTBEAT)

    def _transfer(self, buddy_boot: str | None) -> None:
        """Everything this node owns, to a buddy that lacks it. The reset goes first and the snapshot is taken
        after it, while live changes are copied again: so the buddy ends with every change, whichever way
        a live copy and a batch cross."""
        self._resync.clear()
        was = self.state
        self.state, self.buddy_boot = self.UP, buddy_boot
        if not self._deliver({"sessions": [], "ended": []}, reset=True):
            return
        sessions = self._snapshot_all()
        for first in range(0, len(sessions), BATCH_SESSIONS):
            if not self._deliver({"sessions": sessions[first:first + BATCH_SESSIONS], "ended": []}):
                return
        self.filled = buddy_boot
        self.counters["transfers"] += 1
        self.since = time.time() if was != self.UP else self.since
        log.info("%s: buddy %s has a copy of all %d sessions of this node (state transfer)",
                 self.peer.strategy, self.peer.name, len(sessions))

    def _down(self, reason: str) -> None:
        self.reason = reason
        if self.state != self.DOWN:
            self.state, self.since = self.DOWN, time.time()
            log.warning("%s: buddy %s unreachable (%s): serving without a copy until it is back",
                        self.peer.strategy, self.peer.name, reason)
