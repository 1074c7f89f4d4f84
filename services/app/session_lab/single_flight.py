"""An answer that one request at a time refreshes, for the lab's instruments (/readyz, /api/lab).

Their checks ask every store, and a paused store makes a check last until its timeouts end it. Without this,
a flood of them (a room of demo pages, a monitoring loop, anyone at the published port) would hold every
gunicorn thread while a store is paused, and the node would stop serving everybody. With it, one request
refreshes the answer once it is older than `max_age`; the others, meanwhile, get the last one as it was.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self, max_age: float, clock: Callable[[], float] = time.monotonic):
        self.max_age, self.clock = max_age, clock
        self._refreshing = threading.Lock()
        self._lock = threading.Lock()
        self._answer: tuple[float, T] | None = None  # (when it was made, the answer)

    def get(self, refresh: Callable[[], T], unknown: Callable[[], T]) -> tuple[T, float]:
        """(answer, its age in seconds). Refreshes it here when it is stale and nobody else is; while another
        request refreshes it, the last answer (or `unknown()` before the first) without waiting."""
        with self._lock:
            last = self._answer
        if last is not None and self.clock() - last[0] < self.max_age:
            return last[1], self.clock() - last[0]
        if not self._refreshing.acquire(blocking=False):
            return (unknown(), 0.0) if last is None else (last[1], self.clock() - last[0])
        try:
            made_at, answer = self.clock(), refresh()
            with self._lock:
                self._answer = (made_at, answer)
            return answer, self.clock() - made_at
        finally:
            self._refreshing.release()
