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
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
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
