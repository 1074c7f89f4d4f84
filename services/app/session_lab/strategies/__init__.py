"""The strategy registry, found by discovery: a new strategy is one new module in this package.

The API, the tests, the load test and the docs all iterate over `names()` / `classes()`; none of them
lists strategies by hand.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from functools import lru_cache
from typing import Callable

from ..config import Settings
from .base import Session, Strategy

__all__ = ["Session", "Strategy", "classes", "names", "build_all"]


def _concrete(cls: type[Strategy]):
    for sub in cls.__subclasses__():
        if "traits" in vars(sub):  # an abstract family (RedisCart) declares none
            yield sub
        yield from _concrete(sub)


@lru_cache(maxsize=None)
def classes() -> tuple[type[Strategy], ...]:
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_") and module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")
    found = sorted(_concrete(Strategy), key=lambda c: (c.position, c.name))
    seen = [c.name for c in found]
    duplicates = {n for n in seen if seen.count(n) > 1}
    if duplicates:
        raise RuntimeError(f"two strategies share a name: {sorted(duplicates)}")
    return tuple(found)


def names() -> list[str]:
    return [cls.name for cls in classes()]


def build_all(settings: Settings, clock: Callable[[], float] = time.time) -> dict[str, Strategy]:
    return {cls.name: cls(settings, clock=clock) for cls in classes()}
