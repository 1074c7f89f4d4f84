"""Tells a node that was frozen (SIGSTOP, the cgroup freezer, a VM paused) that it was, before it serves.

A frozen node's clock stops for nobody: CLOCK_MONOTONIC goes on while its threads stand still. A thread
that ticks every TICK seconds finds, on waking, that far more time has passed; a request thread that runs
before it finds the last tick too old. Either way `woke_up()` says so under one lock, so no request can slip
between the thaw and the flag. Meanwhile its buddy may have adopted its sessions and ended some of them
(replicated.py): the node must ask before it serves its own, now stale, versions.

A false alarm (a loaded host starving the ticking thread for a second) costs one question to the buddy.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

TICK = 0.1  # s between ticks
FROZEN_AFTER = 1.0  # s without a tick: the process stood still (the caller may ask for less)


class WakeUp:
    def __init__(self, clock: Callable[[], float] = time.monotonic, frozen_after: float = FROZEN_AFTER):
        self.clock, self.frozen_after = clock, frozen_after
        self._lock = threading.Lock()
        self._last = clock()
        self._woke = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._tick_forever, name="wakeup", daemon=True)
            self._thread.start()

    def tick(self) -> None:
        with self._lock:
            now = self.clock()
            if now - self._last > self.frozen_after:
                self._woke = True
            self._last = now

    def woke_up(self) -> bool:
        """True from the first moment after a freeze until `settled()` (never before `start()`)."""
        if self._thread is None:
            return False
        with self._lock:
            return self._woke or self.clock() - self._last > self.frozen_after

    def settled(self) -> None:
        """The node has caught up with what happened while it stood still."""
        with self._lock:
            self._woke = False
            self._last = self.clock()

    def _tick_forever(self) -> None:
        while True:
            time.sleep(TICK)
            self.tick()
