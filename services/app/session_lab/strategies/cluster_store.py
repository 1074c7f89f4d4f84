"""Redis Cluster as the distributed session cache: sessions spread over three shards by the slot of their
id, each shard a master with one replica that takes over when the master dies. A shard's failure touches
only its own sessions. The `-wait` variant acknowledges a change only once the shard's replica has it."""

from __future__ import annotations

from ..stores import ClusterShard
from ._redis_cart import RedisCart, cart_traits


class ClusterStrategy(RedisCart):
    traits = cart_traits(
        name="cluster",
        summary=("Redis Cluster, 3 masters with a replica each; sessions spread by slot, a shard's failover "
                 "touches only its sessions. Acknowledges before replicating."),
        dependencies=("cluster",),
    )
    position = 52

    @classmethod
    def open_store(cls, settings):
        return ClusterShard(settings)


class ClusterWaitStrategy(ClusterStrategy):
    traits = cart_traits(
        name="cluster-wait",
        summary="As cluster, but a change is acknowledged only once the shard's replica confirms it (WAIT), else 503.",
        dependencies=("cluster",),
        confirms_writes=True,
    )
    position = 53
