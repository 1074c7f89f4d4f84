"""The one way the app connects to Redis, so every user of it (the `redis` strategy, the JWT revocation
list) shares the same timeouts and retry budget."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from .config import Settings

# redis-py 8 retries a failed command 10 times by default: against a frozen Redis that is 15.8 s with our
# timeouts (measured), far past nginx's 5 s proxy_read_timeout. One quick retry, on connection errors
# only, reconnects a pooled connection that a Redis restart left dead; a timeout is not retried (the
# command may have run), so a frozen Redis costs 1 s and a 503.
RETRY = Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.1), retries=1, supported_errors=(redis.ConnectionError,))


def connect(settings: Settings, decode_responses: bool = True) -> redis.Redis:
    """A client of the lab's Redis; `decode_responses` False for a user that stores bytes (flask-session)."""
    return redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        password=settings.redis_password,
        # A frozen Redis must not hold a gunicorn thread for long: fail fast, answer 503.
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_timeout=settings.redis_socket_timeout,
        retry=RETRY,
        decode_responses=decode_responses,
    )
