"""One deadline per request, shared by every store call the request makes.

nginx replays a request that has not answered within its proxy_read_timeout on another node, and counts the
first node failed (loadbalancer/proxy.conf). So whatever a store does (frozen, failing over, cut off), a
request must answer, 503 at worst, well before that: the app starts a deadline when a request arrives
(REQUEST_DEADLINE, config.py) and every retry, backoff, slot-map refresh, connect, read and WAIT of that
request takes its time from what is left. redis_client.py's connections read their timeouts from here, so
redis-py's own internals (Sentinel discovery asking each sentinel in turn, a cluster client connecting to
each startup node in turn) are bounded too.

Work outside a request (background threads, start-up) has no deadline: its own timeouts apply.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar, Token

import redis

_ends_at: ContextVar[float | None] = ContextVar("session_lab_request_deadline", default=None)

# The least time an I/O is given once the deadline is near: a zero timeout would make a socket non-blocking.
MIN_TIMEOUT = 0.001


class DeadlinePassed(redis.TimeoutError):
    """The request's deadline passed before this store call could start: nothing was sent."""


def start(seconds: float) -> Token:
    return _ends_at.set(time.monotonic() + seconds)


def clear(token: Token) -> None:
    _ends_at.reset(token)


@contextmanager
def within(seconds: float):
    """A deadline for the block (tests, and work that runs outside a request's hooks)."""
    token = start(seconds)
    try:
        yield
    finally:
        clear(token)


def remaining() -> float | None:
    """Seconds left for this request; None outside a request."""
    ends_at = _ends_at.get()
    return None if ends_at is None else ends_at - time.monotonic()


def check() -> None:
    """Raise DeadlinePassed when the request has no time left for another store call."""
    left = remaining()
    if left is not None and left <= 0:
        raise DeadlinePassed("the request's deadline passed (REQUEST_DEADLINE)")


def bounded(timeout: float | None) -> float | None:
    """`timeout`, shrunk to what is left of the request's deadline."""
    left = remaining()
    if left is None:
        return timeout
    left = max(left, MIN_TIMEOUT)
    return left if timeout is None else min(timeout, left)
