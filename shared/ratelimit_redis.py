"""The sliding-window counter on Redis in ONE round trip (`shared.ratelimit`'s default path): a Lua script that
does what `limits`' acquire script does on the same keys and also returns the window it saw, from which the
RateLimit headers are computed as `limits`' `get_window_stats` would."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from limits import RateLimitItem
from limits.aio.storage import RedisStorage, Storage

__all__ = ["OneTripSlidingWindow", "Window"]


class Window(NamedTuple):
    """One sliding window after a hit: whether it was allowed, the previous and current counts and the
    seconds until each expires."""

    allowed: bool
    prev: int
    prev_expires_in: float
    cur: int
    cur_expires_in: float


# `limits`' acquire_sliding_window.lua (same keys, same counting), returning the window it saw after the
# hit as well, as one string (cheaper to parse than an array in redis-py):
# "allowed previous_count previous_ttl_ms current_count current_ttl_ms".
_ACQUIRE_AND_STATS = """
local limit = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2]) * 1000
local amount = tonumber(ARGV[3])
local current_ttl = tonumber(redis.call('pttl', KEYS[2]))
if current_ttl > 0 and current_ttl < expiry then
    redis.call('rename', KEYS[2], KEYS[1])
    redis.call('set', KEYS[2], 0, 'PX', current_ttl + expiry)
end
local previous_count = tonumber(redis.call('get', KEYS[1])) or 0
local previous_ttl = tonumber(redis.call('pttl', KEYS[1])) or 0
local current_count = tonumber(redis.call('get', KEYS[2])) or 0
current_ttl = tonumber(redis.call('pttl', KEYS[2])) or 0
if previous_ttl <= 0 then previous_ttl = 0 end
if current_ttl <= 0 then current_ttl = 0 end
local allowed = 0
if amount <= limit and math.floor(previous_count * previous_ttl / expiry) + current_count + amount <= limit then
    allowed = 1
    if redis.call('exists', KEYS[2]) == 1 then
        current_count = tonumber(redis.call('incrby', KEYS[2], amount))
    else
        redis.call('set', KEYS[2], amount, 'PX', expiry * 2)
        current_count = amount
        current_ttl = expiry * 2
    end
end
return string.format('%d %d %d %d %d', allowed, previous_count, previous_ttl, current_count, current_ttl)
"""


class OneTripSlidingWindow:
    """Sliding-window counter hit + window stats in one Redis round trip, on a `limits` RedisStorage
    (redis-py): its keys, its prefix, its connection pool, so it stays interchangeable with
    `limits`' own SlidingWindowCounterRateLimiter on the same Redis (another instance, `clear`)."""

    def __init__(self, storage: RedisStorage) -> None:
        self.storage = storage
        self.bridge: Any = cast(Any, storage.bridge)  # a RedispyBridge (checked in for_storage)
        self.script = self.bridge.get_connection().register_script(_ACQUIRE_AND_STATS)

    @classmethod
    def for_storage(cls, storage: Storage | None) -> OneTripSlidingWindow | None:
        from limits.aio.storage.redis.redispy import RedispyBridge
        if (isinstance(storage, RedisStorage) and type(storage.bridge) is RedispyBridge
                and hasattr(storage, "_current_window_key") and hasattr(storage, "_previous_window_key")):
            return cls(storage)
        return None

    async def add(self, item: RateLimitItem, key: str, amount: int) -> float:
        """Count `amount` hits allowed elsewhere (never refused); the weighted count in the window after."""
        raw = await self._call(item, key, amount, limit=2 ** 52)
        _, prev, prev_ttl, cur, _ = map(int, raw.split())
        return prev * max(0, prev_ttl) / (item.get_expiry() * 1000) + cur

    async def hit(self, item: RateLimitItem, key: str, cost: int) -> Window:
        raw = await self._call(item, key, cost, limit=item.amount)
        allowed, prev, prev_ttl, cur, cur_ttl = map(int, raw.split())
        return Window(allowed == 1, prev, max(0.0, prev_ttl / 1000), cur, max(0.0, cur_ttl / 1000))

    async def _call(self, item: RateLimitItem, key: str, amount: int, *, limit: int) -> str:
        base = item.key_for(key)
        keys = [self.bridge.prefixed_key(self.storage._previous_window_key(base)),
                self.bridge.prefixed_key(self.storage._current_window_key(base))]
        try:
            raw = await self.script(keys, [limit, item.get_expiry(), amount])
        except self.bridge.base_exceptions as exc:
            if self.storage.wrap_exceptions:
                from limits.errors import StorageError
                raise StorageError(exc) from exc
            raise
        return raw.decode() if isinstance(raw, bytes) else str(raw)
