"""The one way the app connects to Redis, so every user of the single Redis (the `redis` strategy, the JWT
revocation list, the flask-session peer) shares the same timeouts and retry budget, each as its own ACL user
(stores/redis/redis.acl), and every connection, whatever store it reaches, keeps to the request's deadline
(deadline.py)."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry
from redis.sentinel import SentinelManagedConnection

from . import deadline
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


class DeadlineBound:
    """A redis-py connection whose connect and read timeouts shrink to what is left of the request's
    deadline, and which sends nothing once it has passed. redis-py sets a socket's timeout when it connects
    only, so a pooled connection's is set again before every command."""

    @property
    def socket_timeout(self):
        return deadline.bounded(self._socket_timeout)

    @socket_timeout.setter
    def socket_timeout(self, value):
        self._socket_timeout = value

    @property
    def socket_connect_timeout(self):
        return deadline.bounded(self._socket_connect_timeout)

    @socket_connect_timeout.setter
    def socket_connect_timeout(self, value):
        self._socket_connect_timeout = value

    def connect_check_health(self, *args, **kwargs):
        deadline.check()
        return super().connect_check_health(*args, **kwargs)

    def send_packed_command(self, command, check_health=True):
        deadline.check()
        if self._sock is not None:
            self._sock.settimeout(self.socket_timeout)
        return super().send_packed_command(command, check_health)


class Connection(DeadlineBound, redis.Connection):
    """To one Redis, a Cluster node or a sentinel."""


class SentinelConnection(DeadlineBound, SentinelManagedConnection):
    """To the primary the Sentinels name (asking them goes through `Connection`s, bounded the same way)."""


def client(host: str, port: int, **kwargs) -> redis.Redis:
    """A redis.Redis whose connections keep to the request's deadline (redis.Redis takes no connection class
    of its own: its pool does)."""
    return redis.Redis(connection_pool=redis.ConnectionPool(host=host, port=port, connection_class=Connection,
                                                            **kwargs))


def connect(settings: Settings, user: StoreUser, decode_responses: bool = True) -> redis.Redis:
    """A client of the lab's Redis as `user`; `decode_responses` False for a user that stores bytes
    (flask-session)."""
    return client(
        settings.redis_host,
        settings.redis_port,
        **as_user(user),
        # A frozen Redis must not hold a gunicorn thread for long: fail fast, answer 503.
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_timeout=settings.redis_socket_timeout,
        retry=RETRY,
        decode_responses=decode_responses,
    )
