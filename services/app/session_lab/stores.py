"""Where a Redis-backed strategy's scripts run: one Redis, the primary that Sentinel names, or the Cluster
shard that owns the session's slot. Each store says how long a caller may keep retrying it, and what to
refresh between attempts.

redis-py's own retries are switched off for Sentinel and Cluster (its cluster client retries without any
backoff, burning its attempts in milliseconds against a dead node): `RedisCart._run` owns the one retry
budget, with backoff, and every connection keeps to the request's deadline (redis_client.DeadlineBound), so
redis-py's own loops (Sentinel discovery, a cluster client's slot-map refresh) end with it too.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    NoScriptError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.retry import Retry
from redis.sentinel import Sentinel

from . import deadline, redis_client
from .config import Settings

NO_RETRY = Retry(NoBackoff(), retries=0)


class NotConfirmed(Exception):
    """WAIT came back with fewer replicas than asked: applied on the primary, maybe on no replica."""

    def __init__(self, confirmed: int, wanted: int, timeout_ms: int):
        super().__init__(f"the change reached {confirmed} of {wanted} replicas within {timeout_ms} ms: applied on the "
                         "primary but not confirmed, so a failover could lose it; retry with the same Idempotency-Key")


class NoReplicas(ResponseError):
    """NOREPLICAS: the primary refuses writes because too few replicas acknowledged it lately
    (min-replicas-to-write); a primary that was paused and woke up after a failover says this."""


# What a retry can cure: a connection lost or timed out, a primary that just became a replica, a promotion
# still under way, a slot that moved or is not covered yet, a refused write until replicas catch up.
RETRYABLE = (redis.ConnectionError, redis.TimeoutError, ReadOnlyError, ClusterDownError, TryAgainError, AskError,
             RedisClusterException, NoReplicas, NotConfirmed)


def run_script(conn: redis.Redis, script, keys: list[str], args: list, replicas: int, timeout_ms: int):
    """EVALSHA, then WAIT on the same connection when `replicas` (WAIT only counts this connection's writes,
    and is a no-op inside MULTI or a script). A promoted replica may have an empty script cache: on
    NOSCRIPT nothing ran, so the same command(s) are sent again with the script's body.
    Returns (the script's reply, replicas that confirmed; 0 when none were asked)."""
    for by_sha in (True, False):
        try:
            if not replicas:  # one command, no pipeline to build and parse: a read's whole store round trip
                if by_sha:
                    return conn.evalsha(script.sha, len(keys), *keys, *args), 0
                return conn.eval(script.body, len(keys), *keys, *args), 0
            pipe = conn.pipeline(transaction=False)
            if by_sha:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            else:
                pipe.eval(script.body, len(keys), *keys, *args)
            pipe.execute_command("WAIT", replicas, timeout_ms)
            out = pipe.execute()
            return out[0], int(out[1])
        except NoScriptError:
            continue
        except ResponseError as exc:
            if str(exc).startswith("NOREPLICAS"):
                raise NoReplicas(str(exc)) from exc
            raise
    raise NoScriptError("the store refused the script twice")


class Store(ABC):
    name: str  # the dependency name /readyz reports
    retry_budget: float = 0.0  # seconds a request may spend retrying this store

    @abstractmethod
    def run(self, script, keys: list[str], args: list, replicas: int, timeout_ms: int): ...

    @abstractmethod
    def ping(self) -> None: ...

    def part_for(self, keys: list[str]) -> str:
        """The part of the store that fails as one for these keys (its circuit breaker, breaker.py)."""
        return self.name

    def recover(self) -> None:
        """Called between attempts: refresh whatever routing knowledge a failover made stale."""


class OneClient(Store):
    """A store reached through one redis.Redis client, whatever decides where its connections go."""

    client: redis.Redis

    def run(self, script, keys, args, replicas, timeout_ms):
        return run_script(self.client, script, keys, args, replicas, timeout_ms)

    def ping(self) -> None:
        self.client.ping()


class SingleRedis(OneClient):
    """One Redis: nothing to fail over to, so no budget beyond redis_client's one reconnect."""

    name = "redis"

    def __init__(self, settings: Settings, client: redis.Redis | None = None):
        self.client = client or redis_client.connect(settings, settings.redis_cart_user)


class SentinelPrimary(OneClient):
    """The primary the Sentinels name. A new connection asks the Sentinels where the primary is, so after a
    failover the next attempt lands on the promoted replica; a connection to a demoted primary is dropped
    (READONLY → "the previous master is now a slave")."""

    name = "sentinel"

    def __init__(self, settings: Settings):
        self.retry_budget = settings.store_retry_budget
        timeouts = {"socket_connect_timeout": settings.redis_connect_timeout,
                    "socket_timeout": settings.redis_socket_timeout, "retry": NO_RETRY}
        user = redis_client.as_user(settings.sentinel_cart_user)  # the same user on sentinels and data nodes
        self.sentinel = Sentinel(settings.sentinel_addresses, sentinel_kwargs={**user, **timeouts})
        # Discovery asks each sentinel in turn, each with its own timeouts: clients bounded by the deadline.
        self.sentinel.sentinels = [redis_client.client(host, port, **user, **timeouts)
                                   for host, port in settings.sentinel_addresses]
        self.client = self.sentinel.master_for(settings.sentinel_service, decode_responses=True,
                                               connection_class=redis_client.SentinelConnection, **user, **timeouts)


class ClusterShard(Store):
    """The Cluster master owning the session's slot (all of a session's keys share its `{sid}` tag). Scripts
    go straight to that node's connection, so WAIT follows the write on the same connection (redis-py's
    cluster client would send WAIT to a default node); MOVED, a dead node or CLUSTERDOWN refresh the slot map.
    Connecting is lazy: the cluster may still be forming when a node starts."""

    name = "cluster"
    REFRESH_EVERY = 0.2  # seconds: one slot-map refresh at a time per process, not one per waiting thread

    def __init__(self, settings: Settings):
        self.settings = settings
        self.retry_budget = settings.store_retry_budget
        self._cluster: RedisCluster | None = None
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._refreshed = 0.0

    def cluster(self) -> RedisCluster:
        # Connecting reads the slot map from each startup node in turn: bounded by the deadline of the request
        # that does it, and the others wait no longer than their own deadline for it.
        if not self._lock.acquire(timeout=-1 if (left := deadline.remaining()) is None else max(0.0, left)):
            raise deadline.DeadlinePassed("the request's deadline passed waiting for the cluster's slot map")
        try:
            if self._cluster is None:
                s = self.settings
                (first_host, first_port), *others = s.cluster_nodes
                self._cluster = RedisCluster(
                    # A url makes redis-py build each node's pool with our connection class (deadline-bound);
                    # without one it passes connection_class to redis.Redis, which refuses it (redis-py 8.1).
                    url=f"redis://{first_host}:{first_port}",
                    startup_nodes=[ClusterNode(host, port) for host, port in others],
                    **redis_client.as_user(s.cluster_cart_user), decode_responses=True,
                    socket_connect_timeout=s.redis_connect_timeout, socket_timeout=s.redis_socket_timeout,
                    # redis-py's default is True (its docstring says False): one lost shard would stop them all.
                    require_full_coverage=False, retry=NO_RETRY, connection_class=redis_client.Connection,
                )
                self._refreshed = time.monotonic()
            return self._cluster
        finally:
            self._lock.release()

    def run(self, script, keys, args, replicas, timeout_ms):
        cluster = self.cluster()
        node = cluster.get_node_from_key(keys[0])
        return run_script(cluster.get_redis_connection(node), script, keys, args, replicas, timeout_ms)

    def ping(self) -> None:
        cluster = self.cluster()
        for node in cluster.get_primaries():
            cluster.get_redis_connection(node).ping()

    def part_for(self, keys: list[str]) -> str:
        """The master that owns the keys' slot, as this process last saw the map: one paused master must not
        open the breaker of the other shards' sessions."""
        cluster = self._cluster
        if cluster is None:
            return self.name
        try:
            return f"{self.name} {cluster.get_node_from_key(keys[0]).name}"
        except (redis.RedisError, RedisClusterException):
            return self.name  # the slot is not covered in the map this process holds

    def recover(self) -> None:
        # One refresh at a time, and nobody waits for it: redis-py's initialize() takes a lock of its own and
        # asks each startup node in turn, so a second caller would wait past its own deadline.
        if not self._refreshing.acquire(blocking=False):
            return
        try:
            cluster = self._cluster
            if cluster is None or time.monotonic() - self._refreshed < self.REFRESH_EVERY:
                return
            self._refreshed = time.monotonic()
            cluster.nodes_manager.initialize()
        except (redis.RedisError, RedisClusterException):
            pass  # the next attempt fails the same way and is retried, or answers 503 when the budget is spent
        finally:
            self._refreshing.release()
