"""The one way the app connects to the single Redis, so every user of it (the `redis` strategy, the JWT
revocation list, the flask-session peer) shares the same timeouts and retry budget, each as its own ACL
user (stores/redis/redis.acl)."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from .config import Settings, StoreUser

# redis-py 8 retries a failed command 10 times by default: against a frozen Redis that is 15.8 s with our
# timeouts (measured), far past nginx's 5 s proxy_read_timeout. One quick retry, on connection errors
# only, reconnects a pooled connection that a Redis restart left dead; a timeout is not retried (the
# command may have run), so a frozen Redis costs 1 s and a 503.
RETRY = Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.1), retries=1, supported_errors=(redis.ConnectionError,))


def as_user(user: StoreUser) -> dict:
    """Connection arguments for one ACL user. redis-py 5+ also sends CLIENT SETINFO on every connect, which
    the users are not granted (Redis 7.0 does not know the subcommand, so no ACL rule names it for both 7.0
    and 7.4): driver_info=None leaves it out rather than have each connect logged as denied."""
    return {"username": user.name, "password": user.password, "driver_info": None}


def connect(settings: Settings, user: StoreUser, decode_responses: bool = True) -> redis.Redis:
    """A client of the lab's Redis as `user`; `decode_responses` False for a user that stores bytes
    (flask-session)."""
    return redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        **as_user(user),
        # A frozen Redis must not hold a gunicorn thread for long: fail fast, answer 503.
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_timeout=settings.redis_socket_timeout,
        retry=RETRY,
        decode_responses=decode_responses,
    )
