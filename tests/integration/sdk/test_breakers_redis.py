"""Breakers against a real Redis: OPEN is shared between instances; Redis down -> local state."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from sdk.breakers import BreakerRegistry, GuardedRedis
from sdk.circuit import BreakerConfig, BreakerState, CallNotPermittedError, RedisBreakerState

CFG = BreakerConfig(sliding_window_size=4, minimum_number_of_calls=4, wait_duration_in_open_state_s=2.0,
                    permitted_number_of_calls_in_half_open_state=2)


class Boom(Exception):
    pass


async def broken() -> None:
    raise Boom()


async def fine() -> str:
    return "ok"


def instance(redis: Any, service: str, name: str) -> BreakerRegistry:
    return BreakerRegistry(service=service, instance=name, shared=RedisBreakerState(redis, service=service),
                           sync_interval_s=0.05)


async def test_open_in_one_instance_is_seen_open_in_another(redis_client: Any, unique: str) -> None:
    service = f"svc-{unique}"
    a = instance(redis_client, service, "a").breaker("postgres", CFG)
    b = instance(redis_client, service, "b").breaker("postgres", CFG)
    assert await b.call(fine) == "ok"
    for _ in range(4):
        with pytest.raises(Boom):
            await a.call(broken)
    assert a.state is BreakerState.OPEN
    ttl = await redis_client.pttl(f"safeguard:breaker:{service}:postgres")
    assert 0 < ttl <= 2000
    await asyncio.sleep(0.06)
    with pytest.raises(CallNotPermittedError):
        await b.call(fine)  # b's own window is clean: the OPEN came through Redis
    assert b.state is BreakerState.OPEN and b.snapshot().failure_rate == 0.0
    await asyncio.sleep(2.1)  # the shared OPEN expires with its TTL; both half-open
    assert a.state is BreakerState.HALF_OPEN and b.state is BreakerState.HALF_OPEN
    assert await b.call(fine) == "ok"


async def test_forced_open_by_command_reaches_every_instance(redis_client: Any, unique: str) -> None:
    service = f"svc-{unique}"
    reg_a, reg_b = instance(redis_client, service, "a"), instance(redis_client, service, "b")
    reg_a.breaker("postgres", CFG)
    b = reg_b.breaker("postgres", CFG)
    assert await reg_a.force_open("postgres", 30, reason="response time > 5 s")
    await asyncio.sleep(0.06)
    with pytest.raises(CallNotPermittedError):
        await b.call(fine)
    assert b.state is BreakerState.FORCED_OPEN


async def test_a_shorter_open_never_shortens_a_longer_one(redis_client: Any, unique: str) -> None:
    store = RedisBreakerState(redis_client, service=f"svc-{unique}")
    await store.publish_open("db", duration_s=30, by="a", reason="long", forced=True)
    await store.publish_open("db", duration_s=1, by="b", reason="short", forced=False)
    found = await store.read("db")
    assert found is not None and found.by == "a" and found.remaining_s > 25 and found.forced


async def test_redis_down_breakers_still_work_locally(unique: str) -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    try:
        registry = instance(dead, f"svc-{unique}", "a")
        cb = registry.breaker("redis", CFG)
        assert await cb.call(fine) == "ok"  # the store is down: the call still goes through
        assert cb.shared is not None and not cb.shared.available  # type: ignore[attr-defined]
        for _ in range(3):  # with the success before: 3 of 4 failed = 75 % >= 50 %
            with pytest.raises(Boom):
                await cb.call(broken)
        assert cb.state is BreakerState.OPEN
        with pytest.raises(CallNotPermittedError):
            await cb.call(fine)
    finally:
        await dead.aclose()


async def test_guarded_redis_opens_when_redis_goes_away(unique: str) -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.1, socket_timeout=0.1)
    try:
        cache = GuardedRedis(dead, breaker=BreakerRegistry(service=f"svc-{unique}", instance="a").breaker("redis", CFG))
        for _ in range(4):
            with pytest.raises(redis.exceptions.ConnectionError):
                await cache.get("k")
        with pytest.raises(CallNotPermittedError):
            await cache.get("k")  # fails fast now, no connect timeout
    finally:
        await dead.aclose()
