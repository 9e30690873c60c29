"""shared.ratelimit with local decisions on the real Redis: instances reconcile through the shared window (the
same keys `limits` reads), and a Redis that stops answering never holds a request."""

from __future__ import annotations

import time

from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from shared.ratelimit import RateLimiter, RateLimitSettings
from tests.faults import PrivateRedis

LOCAL = RateLimitSettings(default="10/minute", local=True, sync_interval_s=0.02)


async def test_two_local_instances_hold_one_limit_through_redis(redis_url: str, unique: str) -> None:
    a = RateLimiter.from_settings(LOCAL, redis_url=redis_url)
    b = RateLimiter.from_settings(LOCAL, redis_url=redis_url)
    key = f"local-{unique}"
    assert all([(await a.hit(key)).allowed for _ in range(6)])
    await a.aclose()  # a's 6 hits are in Redis now
    assert await _remaining(a, key) == 4  # read by `limits` itself
    assert (await b.hit(key)).allowed
    await b.aclose()  # b learns the shared count (7)
    assert [(await b.hit(key)).allowed for _ in range(4)] == [True, True, True, False]
    await b.aclose()
    assert await _remaining(b, key) == 0
    assert not a.degraded and not b.degraded


async def _remaining(limiter: RateLimiter, key: str) -> int:
    """What `limits`' own strategy reads from the same Redis keys."""
    assert limiter._primary is not None
    theirs = SlidingWindowCounterRateLimiter(limiter._primary.storage)
    return (await theirs.get_window_stats(parse("10/minute"), key)).remaining


async def test_paused_redis_never_holds_a_hit(private_redis: PrivateRedis, unique: str) -> None:
    limiter = RateLimiter.from_settings(LOCAL, redis_url=private_redis.url)
    key = f"paused-{unique}"
    assert (await limiter.hit(key)).allowed
    await limiter.aclose()
    private_redis.pause()
    try:
        t0 = time.perf_counter()
        decisions = [await limiter.hit(key) for _ in range(10)]
        elapsed = time.perf_counter() - t0
        assert [d.allowed for d in decisions] == [True] * 9 + [False]
        assert decisions[-1].headers()["Retry-After"] == str(decisions[-1].reset_s)
        assert elapsed < 0.05, f"hits waited on a paused Redis: {elapsed:.3f} s"
        await limiter.aclose()  # the sync times out in the background
        assert limiter.degraded
    finally:
        private_redis.resume()
