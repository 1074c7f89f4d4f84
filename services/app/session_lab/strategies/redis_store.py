"""A central Redis store: any node can serve any request, as long as the one Redis answers."""

from __future__ import annotations

from ..stores import SingleRedis
from ._redis_cart import RedisCart, cart_traits


class RedisStrategy(RedisCart):
    traits = cart_traits(
        name="redis",
        summary="Central Redis store; any node serves any request while Redis answers.",
        dependencies=("redis",),
    )
    position = 20

    @classmethod
    def open_store(cls, settings):
        return SingleRedis(settings)
