"""The OPEN state shared between instances: the port, and its Redis store (atomic Lua, TTLs)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["SharedOpen", "SharedBreakerState", "RedisBreakerState"]

log = logging.getLogger(__name__)
Clock = Callable[[], float]


@dataclass(frozen=True)
class SharedOpen:
    remaining_s: float
    by: str
    reason: str
    forced: bool


class SharedBreakerState(Protocol):
    async def publish_open(self, name: str, *, duration_s: float, by: str, reason: str, forced: bool) -> None: ...
    async def read(self, name: str) -> SharedOpen | None: ...
    async def clear(self, name: str) -> None: ...


_OPEN_LUA = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'by', ARGV[2], 'reason', ARGV[3], 'forced', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

_READ_LUA = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return false end
local v = redis.call('HMGET', KEYS[1], 'by', 'reason', 'forced')
return {ttl, v[1] or '', v[2] or '', v[3] or '0'}
"""


class RedisBreakerState:
    """The OPEN state of a service's breakers in Redis: `<prefix><service>:<breaker>` with a TTL.

    Lua keeps "open for at least this long" atomic (a shorter open never shortens a longer
    one). Durations are relative (PTTL), so instances need no synchronised clocks. Any Redis
    error makes the store answer "nothing shared" for `retry_after_s`, and breakers run on
    their local state meanwhile.
    """

    def __init__(self, redis: Any, *, service: str, prefix: str = "safeguard:breaker:",
                 timeout_s: float = 0.25, retry_after_s: float = 5.0, clock: Clock = time.monotonic) -> None:
        self.redis = redis
        self.prefix = f"{prefix}{service}:"
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.clock = clock
        self._down_until = 0.0
        self._open = redis.register_script(_OPEN_LUA)
        self._read = redis.register_script(_READ_LUA)

    @property
    def available(self) -> bool:
        return self.clock() >= self._down_until

    async def _guard(self, op: Callable[[], Awaitable[Any]]) -> Any:
        if not self.available:
            return None
        try:
            return await asyncio.wait_for(op(), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - Redis down: local state only, retry later
            self._down_until = self.clock() + self.retry_after_s
            log.warning("breaker store unavailable, using local state for %.0f s: %s", self.retry_after_s,
                        type(exc).__name__)
            return None

    async def publish_open(self, name: str, *, duration_s: float, by: str, reason: str, forced: bool) -> None:
        ms = max(1, int(duration_s * 1000))
        await self._guard(lambda: self._open(keys=[self.prefix + name], args=[ms, by, reason[:300], int(forced)]))

    async def read(self, name: str) -> SharedOpen | None:
        raw = await self._guard(lambda: self._read(keys=[self.prefix + name]))
        if not raw:
            return None
        ttl, by, reason, forced = (x.decode() if isinstance(x, bytes) else x for x in raw)
        return SharedOpen(remaining_s=int(ttl) / 1000, by=str(by), reason=str(reason), forced=str(forced) == "1")

    async def clear(self, name: str) -> None:
        await self._guard(lambda: self.redis.delete(self.prefix + name))
