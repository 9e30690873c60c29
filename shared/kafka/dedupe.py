"""Remember which event ids a consumer group has handled, so redeliveries are skipped."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from shared.kafka.retry import RetriesExhausted, retry

__all__ = ["Dedupe", "MemoryDedupe", "RedisDedupe", "TolerantDedupe"]

T = TypeVar("T")
log = logging.getLogger(__name__)


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


class TolerantDedupe:
    """A `Dedupe` whose store may fail without stopping or skipping anything.

    Each call is retried (`attempts`, each cut at `timeout_s`); when the store still fails, `seen`
    answers False, so the record is handled again (at-least-once: handlers are idempotent), and `mark`
    is dropped. After such a failure the store is left alone for `rest_s`, so an outage costs one
    slow record, not one per record. `on_fallback` is told of each fallback.
    """

    def __init__(self, inner: Dedupe, *, attempts: int = 2, timeout_s: float = 1.0, rest_s: float = 5.0,
                 on_fallback: Callable[[str, BaseException], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.rest_s = rest_s
        self.on_fallback = on_fallback
        self.clock = clock
        self.fallbacks = 0
        self._rest_until = float("-inf")

    async def seen(self, event_id: str) -> bool:
        return await self._call("dedupe seen", lambda: self.inner.seen(event_id), fallback=False)

    async def mark(self, event_id: str) -> None:
        await self._call("dedupe mark", lambda: self.inner.mark(event_id), fallback=None)

    async def _call(self, what: str, call: Callable[[], Awaitable[T]], *, fallback: T) -> T:
        if self.clock() < self._rest_until:
            self.fallbacks += 1
            return fallback
        try:
            return await retry(what, call, attempts=self.attempts, initial_s=0.05, max_s=0.2,
                               timeout_s=self.timeout_s)
        except RetriesExhausted as exc:
            self.fallbacks += 1
            self._rest_until = self.clock() + self.rest_s
            log.warning("%s; handling without the dedupe store for %.0f s (a redelivery may run twice)",
                        exc, self.rest_s)
            if self.on_fallback is not None:
                self.on_fallback(what, exc.last)
            return fallback
