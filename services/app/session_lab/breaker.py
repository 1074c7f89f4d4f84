"""A circuit breaker and a bulkhead per store, per node (Nygard, "Release It!", the stability patterns).

Breaker: after BREAKER_FAILURES store calls in a row have failed, the store is known down: for
BREAKER_OPEN_SECONDS every call fails at once (503 store_unavailable with Retry-After) instead of spending the
request's deadline on a frozen socket. Then it is half-open: one request at a time probes the store, the
others still fail fast; a probe that succeeds closes it, one that fails opens it again.

Bulkhead: at most STORE_MAX_CONCURRENT requests of one node are inside one store at once. gunicorn serves a
node's every strategy with GUNICORN_THREADS threads (16); without it, a store that answers nothing would hold
every thread until its timeouts end, and `none` or `memory` users would wait behind it. A request that finds
the bulkhead full waits a little (BULKHEAD_WAIT), then 503. A healthy store frees a place in milliseconds, but
on a saturated 2-core host a thread inside it can sit descheduled for tens of milliseconds: `make bench` at
saturation met a full bulkhead of 8 places with a 0.1 s wait 3 times in 1,500 adds (a 503 from a healthy
store), and none with 12 places and 0.5 s.

"A store" is what fails as one: one Redis, the Sentinel group's primary, one Cluster master (a paused master
must not fail-fast the sessions of the other shards). Calls that only confirm a write (WAIT short of
replicas) count as the store answering.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from contextlib import contextmanager
from typing import Callable

from . import deadline
from .errors import StoreUnavailable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
BULKHEAD_WAIT = 0.5  # seconds a request may wait for a place in a full bulkhead (see above)


class Breaker:
    def __init__(self, failures: int, open_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.failures_to_open, self.open_seconds, self.clock = failures, open_seconds, clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None  # None: closed
        self._probing = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        return OPEN if self._probing or self.clock() - self._opened_at < self.open_seconds else HALF_OPEN

    def retry_after(self) -> int:
        """Whole seconds until a probe may be let through (Retry-After), at least 1."""
        with self._lock:
            left = 0.0 if self._opened_at is None else self.open_seconds - (self.clock() - self._opened_at)
        return max(1, math.ceil(left))

    def allow(self) -> bool:
        """True: go ahead (closed, or this caller is the half-open probe). False: fail fast."""
        with self._lock:
            state = self._state()
            if state == HALF_OPEN:
                self._probing = True
            return state != OPEN

    def succeeded(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._probing = 0, None, False

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self.failures_to_open:
                self._opened_at, self._probing = self.clock(), False


class Guard:
    """One store's breaker and bulkhead."""

    def __init__(self, name: str, breaker: Breaker, max_concurrent: int):
        self.name, self.breaker = name, breaker
        self._places = threading.BoundedSemaphore(max_concurrent)
        self.refused: Counter[str] = Counter()  # fail-fast answers, by why: the breaker open, the bulkhead full

    @contextmanager
    def call(self, is_store_failure: Callable[[BaseException], bool]):
        """Run the block inside the store: refused at once (503) while the breaker is open or the bulkhead
        full; an exception the block raises counts as a store failure when `is_store_failure` says so."""
        if self.breaker.state == OPEN:
            raise self._known_down()
        left = deadline.remaining()
        wait = BULKHEAD_WAIT if left is None else min(BULKHEAD_WAIT, max(0.0, left))
        if not self._places.acquire(timeout=wait):
            self.refused["bulkhead_full"] += 1
            raise StoreUnavailable(f"too many requests of this node are waiting on store {self.name}", retry_after=1)
        if not self.breaker.allow():  # half-open, and another request is the probe
            self._places.release()
            raise self._known_down()
        try:
            yield
        except BaseException as exc:
            if is_store_failure(exc):
                self.breaker.failed()
            else:
                self.breaker.succeeded()
            raise
        else:
            self.breaker.succeeded()
        finally:
            self._places.release()

    def _known_down(self) -> StoreUnavailable:
        self.refused["circuit_open"] += 1
        return StoreUnavailable(f"store {self.name} is known down (circuit open); retry shortly",
                                retry_after=self.breaker.retry_after())


class Guards:
    """Every store's guard in this process, made on first use with the same settings."""

    def __init__(self, failures: int, open_seconds: float, max_concurrent: int):
        self.failures, self.open_seconds, self.max_concurrent = failures, open_seconds, max_concurrent
        self._lock = threading.Lock()
        self._guards: dict[str, Guard] = {}

    def __call__(self, name: str) -> Guard:
        with self._lock:
            guard = self._guards.get(name)
            if guard is None:
                guard = self._guards[name] = Guard(name, Breaker(self.failures, self.open_seconds),
                                                   self.max_concurrent)
            return guard

    def states(self) -> dict[str, str]:
        with self._lock:
            guards = dict(self._guards)
        return {name: guard.breaker.state for name, guard in sorted(guards.items())}

    def refusals(self) -> dict[str, dict[str, int]]:
        """Fail-fast answers so far, per store and why: what the breaker and the bulkhead cost the users."""
        with self._lock:
            guards = dict(self._guards)
        return {name: dict(guard.refused) for name, guard in sorted(guards.items()) if guard.refused}


_registry: dict[int, tuple[object, Guards]] = {}  # id(settings) -> (settings, kept so the id stays its own)
_registry_lock = threading.Lock()


def guards_for(settings) -> Guards:
    """The guards of the app built with `settings`: every strategy on one store shares its breaker and bulkhead
    (the `redis` strategy, flask-session and jwt's revocations all use the one Redis). One app per process in
    a node; tests build many apps, each with its own settings and so its own guards."""
    with _registry_lock:
        found = _registry.get(id(settings))
        if found is None:
            guards = Guards(settings.breaker_failures, settings.breaker_open_seconds, settings.store_max_concurrent)
            found = _registry[id(settings)] = (settings, guards)
        return found[1]
