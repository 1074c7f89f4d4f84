"""Redis with Sentinel: one primary, two replicas, three sentinels that promote a replica when the primary
dies. Asynchronous replication by default; the `-wait` variant acknowledges a change only once a replica
has it (WAIT), and answers 503 when none confirms in time."""

from __future__ import annotations

from ..stores import SentinelPrimary
from ._redis_cart import RedisCart, cart_traits


class SentinelStrategy(RedisCart):
    traits = cart_traits(
        name="sentinel",
        summary=("Redis primary with two replicas and three sentinels; a failover costs seconds of latency. "
                 "Acknowledges before replicating: a failover may lose the last writes."),
        dependencies=("sentinel",),
    )
    position = 50

    @classmethod
    def open_store(cls, settings):
        return SentinelPrimary(settings)


class SentinelWaitStrategy(SentinelStrategy):
    traits = cart_traits(
        name="sentinel-wait",
        summary="As sentinel, but a change is acknowledged only once a replica confirms it (WAIT), else 503.",
        dependencies=("sentinel",),
        confirms_writes=True,
    )
    position = 51
