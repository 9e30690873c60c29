"""Rate-limit decisions in process (GCRA), reconciled with the shared Redis window in the background.

`RateLimiter(local=True)` (`RATELIMIT_LOCAL=true`) answers every hit from this module: no request waits on
Redis. Each bucket keeps a GCRA theoretical arrival time (`tat`): one hit moves it `window / limit`
later, and a hit is refused when that would put it more than one window ahead of now. The hits allowed
here are added, in the background and at most every `sync_interval_s`, to the same Redis sliding-window
keys `limits` uses (one Lua call per bucket); what Redis answers (the hits of every instance in the
window) moves `tat` forward, so instances together hold the limit, each overshooting at most by what
the others allowed within one interval. While Redis fails, buckets count per instance.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from limits import RateLimitItem

from shared.tasks import cancel_and_wait

__all__ = ["LocalWindows", "Sync"]

logger = logging.getLogger(__name__)
# (item, key, hits allowed here since the last call) -> every instance's weighted count in the window now
Sync = Callable[[RateLimitItem, str, int], Awaitable[float]]
_MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    item: RateLimitItem
    key: str
    tat: float = 0.0
    pending: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    remaining: int
    reset_s: int


class LocalWindows:
    """GCRA buckets by (limit, key) in this process; `sync` reconciles them with the shared window."""

    def __init__(self, *, sync: Sync | None = None, interval_s: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[tuple[RateLimitItem, str], _Bucket] = {}
        self._sync = sync
        self._interval = interval_s
        self._clock = clock
        self._flushing: asyncio.Task[None] | None = None

    def hit(self, item: RateLimitItem, key: str, cost: int = 1) -> Verdict:
        now, window = self._clock(), item.get_expiry()
        step = window / item.amount
        b = self._buckets.get((item, key))  # a limit is hashable by its figures: no key string built per hit
        if b is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._prune()
            b = self._buckets[(item, key)] = _Bucket(item, key, tat=now)
        tat = max(b.tat, now) + step * cost
        if cost > item.amount or tat - now > window:
            remaining = max(0, math.floor(item.amount - (b.tat - now) / step + 1e-9))
            return Verdict(False, remaining, max(1, math.ceil(tat - window - now)))
        b.tat = tat
        if self._sync is not None:
            b.pending += cost
            self._schedule()
        remaining = max(0, math.floor(item.amount - (tat - now) / step + 1e-9))
        return Verdict(True, remaining, max(0, min(window, math.ceil(tat - now))))

    def _schedule(self) -> None:
        task = self._flushing
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        while any(b.pending for b in self._buckets.values()):
            await asyncio.sleep(self._interval)
            await self.flush()
        if len(self._buckets) > _MAX_BUCKETS // 10:
            self._prune()

    async def flush(self) -> None:
        """Send the hits allowed here to the shared window and take in what the other instances used."""
        due = [b for b in self._buckets.values() if b.pending]
        sent = [b.pending for b in due]
        for b in due:
            b.pending = 0
        results = await asyncio.gather(*(self._reconcile(b, n) for b, n in zip(due, sent, strict=True)),
                                       return_exceptions=True)
        failed = sum(isinstance(r, BaseException) for r in results)
        if failed:
            logger.warning("rate limit sync to Redis failed for %d bucket(s); counting per instance", failed)

    async def _reconcile(self, b: _Bucket, sent: int) -> None:
        assert self._sync is not None
        used = await self._sync(b.item, b.key, sent)
        step = b.item.get_expiry() / b.item.amount
        b.tat = max(b.tat, self._clock() + (used + b.pending) * step)

    def _prune(self) -> None:
        """Forget buckets that are full again (nothing pending, `tat` passed): memory stays bounded."""
        now = self._clock()
        self._buckets = {k: b for k, b in self._buckets.items() if b.pending or b.tat > now}

    async def aclose(self) -> None:
        """Send what is pending and stop the background sync."""
        task, self._flushing = self._flushing, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            await cancel_and_wait([task])  # it talks to Redis, whose client can swallow one cancel
        if self._sync is not None and any(b.pending for b in self._buckets.values()):
            await self.flush()
