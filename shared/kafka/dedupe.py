"""Remember which event ids a consumer group has handled, so redeliveries are skipped."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

__all__ = ["Dedupe", "MemoryDedupe", "RedisDedupe"]


class Dedupe(Protocol):
    async def seen(self, event_id: str) -> bool: ...
    async def mark(self, event_id: str) -> None: ...


class MemoryDedupe:
    """Bounded LRU of ids; enough when redeliveries come from the same process."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    async def seen(self, event_id: str) -> bool:
        return event_id in self._ids

    async def mark(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)


class RedisDedupe:
    """Ids in Redis with a TTL, shared by every instance of a group and kept across restarts."""

    def __init__(self, redis: Any, *, namespace: str, ttl_s: int = 7 * 24 * 3600) -> None:
        self.redis = redis
        self.prefix = f"safeguard:dedupe:{namespace}:"
        self.ttl_s = ttl_s

    async def seen(self, event_id: str) -> bool:
        return bool(await self.redis.exists(self.prefix + event_id))

    async def mark(self, event_id: str) -> None:
        await self.redis.set(self.prefix + event_id, b"1", ex=self.ttl_s)
