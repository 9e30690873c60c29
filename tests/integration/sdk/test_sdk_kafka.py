"""The SDK with real Kafka and Postgres: request numbers on the wire, commands obeyed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException

from sdk.breakers import BreakerRegistry, GuardedPool
from sdk.commands import CommandHandlers, CommandListener
from sdk.middleware import RequestRecorder, RequestsMiddleware
from sdk.circuit import BreakerConfig, BreakerState
from shared.events import OpenCircuitBreaker, RequestsObserved, RestartConnectionPool
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings
from shared.testing.kafka import expect_events
from shared.topics import create_topics


async def test_requests_observed_on_kafka_match_requests_sent(kafka_settings: KafkaSettings, unique: str) -> None:
    recorder = RequestRecorder(service=f"shop-{unique}", instance="i1", window_seconds=0.2)
    app = FastAPI()
    app.add_middleware(RequestsMiddleware, recorder=recorder)

    @app.get("/x/{code}")
    async def x(code: int) -> dict[str, int]:
        if code != 200:
            raise HTTPException(code)
        return {"code": code}

    async with KafkaPublisher.start(kafka_settings, source="/tests") as pub, recorder.running(pub):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            for i in range(120):
                await client.get(f"/x/{500 if i % 10 == 0 else 404 if i % 10 == 1 else 200}")
    topic = kafka_settings.topic_prefix + "telemetry.requests"
    events: list[Any] = []
    total = 0
    while total < 120:
        events = await expect_events(kafka_settings.bootstrap_servers, topic, count=len(events) + 1, timeout=10)
        total = sum(e.count for e in events)
    assert total == 120
    assert sum(e.errors for e in events) == 12 and sum(e.client_errors for e in events) == 12
    assert all(isinstance(e, RequestsObserved) and e.instance == "i1" for e in events)


async def test_command_listener_restarts_the_pool_and_opens_the_breaker(
        kafka_settings: KafkaSettings, postgres_dsn: str, unique: str) -> None:
    await create_topics(kafka_settings, partitions=1)
    service = f"shop-{unique}"
    registry = BreakerRegistry(service=service, instance="blue")
    db = GuardedPool(dsn=postgres_dsn, breaker=registry.breaker("postgres", BreakerConfig.for_database()))
    handlers = CommandHandlers(service=service, instance="blue", pools={"postgres": db}, breakers=registry)
    async with db, CommandListener(handlers=handlers, kafka=kafka_settings).running() as listener:
        await listener.consumer.wait_assigned()
        await asyncio.sleep(1.0)  # 'latest' is resolved once partitions are assigned
        await db.drop()
        assert db.stats().connected is False
        async with KafkaPublisher.start(kafka_settings, source="/tests") as pub:
            await pub.publish(RestartConnectionPool(service=service, reason="db_connection_lost"))
            await pub.publish(OpenCircuitBreaker(service=service, breaker="postgres", duration_seconds=30))
        deadline = asyncio.get_running_loop().time() + 20
        while len(handlers.done) < 2:
            assert asyncio.get_running_loop().time() < deadline, f"commands not handled: {handlers.done}"
            await asyncio.sleep(0.1)
        assert db.stats().connected is True and db.restarts == 1
        assert registry.breakers["postgres"].state is BreakerState.FORCED_OPEN
        registry.breakers["postgres"].reset()
        assert await db.fetchval("SELECT 41 + 1") == 42
