"""A loop that calls real Redis always stops when cancelled, though redis-py sometimes swallows a cancel.

Found in CI: a flags app's refresh loop (a Redis GET every 0.2 s) ran on after its lifespan cancelled it, and the
lifespan waited on it for 300 s. redis-py (8.1 here) can finish a command normally when a cancel lands in it
(redis/redis-py#2028 is the same family): here a third of the cancels that land in a tight GET loop are lost.
`cancel_and_wait` keeps the cancel in force until the task ends."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import redis.asyncio as aioredis

from shared.tasks import cancel_and_wait, every

ROUNDS = 100


async def test_a_redis_loop_cancelled_anywhere_always_stops(redis_url: str) -> None:
    client: Any = aioredis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    lost = 0  # rounds where the first cancel was swallowed: a plain cancel-and-gather would wait for ever there
    try:
        for i in range(ROUNDS):
            task = asyncio.create_task(every(0, lambda: client.get("safeguard:test:revision"), what="refresh"),
                                       name=f"refresh-{i}")
            await asyncio.sleep(random.uniform(0, 0.004))  # the cancel lands anywhere: in a GET or between two
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=0.05)
            lost += not done
            assert await cancel_and_wait([task], grace_s=5, again_s=0.05) == set(), f"round {i}: still running"
            assert task.cancelled()
    finally:
        await client.aclose()
    print(f"{lost} of {ROUNDS} first cancels swallowed by the Redis client; every loop stopped")
