"""shared.ratelimit on the real Redis: shared counts across limiter instances, 429 from the flags app."""

from __future__ import annotations

import httpx

from services.flags.app import create_app
from shared.ratelimit import RateLimiter, RateLimitSettings
from shared.settings import KafkaSettings
from tests.integration.flags.conftest import drop, flags_settings


async def test_two_instances_share_one_window_in_redis(redis_url: str, unique: str) -> None:
    settings = RateLimitSettings(default="3/minute", strategy="moving-window")
    a = RateLimiter.from_settings(settings, redis_url=redis_url)
    b = RateLimiter.from_settings(settings, redis_url=redis_url)
    key = f"it-{unique}"
    results = [(await a.hit(key)).allowed, (await b.hit(key)).allowed, (await a.hit(key)).allowed,
               (await b.hit(key)).allowed]
    assert results == [True, True, True, False]
    assert not a.degraded and not b.degraded


async def test_flags_app_answers_429_with_retry_after(unique: str, kafka_settings: KafkaSettings,
                                                      postgres_dsn: str, redis_url: str) -> None:
    settings = flags_settings(unique, kafka_settings, postgres_dsn, redis_url).model_copy(
        update={"rate_limit": "3/minute"})
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            # an unknown key counts in its address's bucket (shared in Redis): a loopback address of this test's own
            n = int(unique[:6], 16)
            transport = httpx.ASGITransport(app=app, client=(f"127.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255 or 1}", 1))
            async with httpx.AsyncClient(transport=transport, base_url="http://f") as c:
                headers = {"X-API-Key": f"client-{unique}"}
                codes = []
                for _ in range(4):
                    r = await c.post("/ofrep/v1/evaluate/flags/gamification", json={"context": {}}, headers=headers)
                    codes.append(r.status_code)
                assert codes == [200, 200, 200, 429]
                assert 1 <= int(r.headers["retry-after"]) <= 60
                assert r.headers["ratelimit-policy"] == '"default";q=3;w=60'
                assert (await c.get("/healthz")).status_code == 200  # exempt
    finally:
        await drop(settings, redis_url)


async def test_one_round_trip_hit_matches_limits_own_strategy(redis_url: str, unique: str) -> None:
    """The sliding-window hit is one Lua call; its decision must equal `limits`' hit + get_window_stats
    on the same keys, and both must count in one shared window."""
    from limits import parse
    from limits.aio.strategies import SlidingWindowCounterRateLimiter

    ours = RateLimiter.from_settings(RateLimitSettings(default="5/minute"), redis_url=redis_url)
    assert ours._one_trip is not None and ours._primary is not None
    theirs = SlidingWindowCounterRateLimiter(ours._primary.storage)
    item, key = parse("5/minute"), f"one-{unique}"
    decisions = []
    for i in range(7):
        if i % 2:  # alternate: limits' own strategy counts in the same window
            assert await theirs.hit(item, key) == (i < 5)
            continue
        d = await ours.hit(key)
        stats = await theirs.get_window_stats(item, key)
        assert d.remaining == stats.remaining
        assert d.limit == 5 and d.window_s == 60 and 0 <= d.reset_s <= 60
        decisions.append((d.allowed, d.remaining))
    assert decisions == [(True, 4), (True, 2), (True, 0), (False, 0)]
    refused = await ours.hit(key)
    assert not refused.allowed and refused.headers()["Retry-After"] == str(max(1, refused.reset_s))
    await theirs.clear(item, key)
    assert (await ours.hit(key)).remaining == 4


async def test_one_round_trip_hit_uses_one_redis_call(redis_url: str, unique: str) -> None:
    ours = RateLimiter.from_settings(RateLimitSettings(default="5/minute"), redis_url=redis_url)
    assert ours._one_trip is not None
    calls = 0
    script = ours._one_trip.script

    async def counting(*args: object, **kw: object) -> object:
        nonlocal calls
        calls += 1
        return await script(*args, **kw)

    ours._one_trip.script = counting  # type: ignore[assignment]
    primary = ours._primary
    assert primary is not None

    async def forbidden(*_: object, **__: object) -> object:
        raise AssertionError("second round trip")

    primary.get_window_stats = forbidden  # type: ignore[method-assign]
    primary.hit = forbidden  # type: ignore[method-assign]
    d = await ours.hit(f"calls-{unique}")
    assert d.allowed and d.remaining == 4 and calls == 1
    assert d.reset_s == 60  # a window opened by this hit resets in a full window, never "t=0"
