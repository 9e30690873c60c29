"""OFREP through real HTTP (uvicorn, h11) on real Postgres and Redis: the plain request answered by the edge
ahead of FastAPI, a sampled one (the caller's traceparent) through the full app, and what the guard refuses,
give the answers they gave before the edge: the same bytes, the RateLimit headers, 403 / 400 / 413."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from services.flags.app import create_app
from shared.settings import KafkaSettings
from tests.integration.flags.conftest import ADMIN, ThreadServer, drop, flags_settings

BODY = b'{"context":{"targetingKey":"u-1","email":"u-1@example.com"}}'
SAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
NOT_SAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"


@pytest.fixture
def server(unique: str, kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str) -> Iterator[str]:
    settings = flags_settings(unique, kafka_settings, postgres_dsn, redis_url).model_copy(
        update={"rate_limit": "50/minute"})
    srv = ThreadServer(create_app(settings)).start()
    try:
        yield srv.url
    finally:
        srv.stop()
        asyncio.run(drop(settings, redis_url))


async def test_sampled_and_unsampled_answers_are_the_same_bytes(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as c:
        assert (await c.post("/api/flags/gamification/enable", headers=ADMIN)).status_code == 200
        for path in ("/ofrep/v1/evaluate/flags/gamification", "/ofrep/v1/evaluate/flags"):
            plain = await c.post(path, content=BODY, headers={"traceparent": NOT_SAMPLED})
            sampled = await c.post(path, content=BODY, headers={"traceparent": SAMPLED})
            for r in (plain, sampled):
                assert r.status_code == 200 and r.headers["content-type"] == "application/json"
                assert r.headers["ratelimit-policy"] == '"default";q=50;w=60'
            assert plain.content == sampled.content
        assert (await c.post("/ofrep/v1/evaluate/flags/nope", content=BODY)).status_code == 404


async def test_the_guard_still_answers_what_it_refuses(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as c:
        single = "/ofrep/v1/evaluate/flags/gamification"
        cross = await c.post(single, content=BODY, headers={"Origin": "https://evil.example.com"})
        assert cross.status_code == 403 and cross.json()["errorCode"] == "CROSS_SITE"
        deep = b'{"context":{"a":' + b"[" * 100 + b"]" * 100 + b"}}"
        assert (await c.post(single, content=deep)).json()["errorCode"] == "JSON_TOO_DEEP"
        big = await c.post(single, content=b'{"context":{"x":"' + b"a" * (2 * 1024 * 1024) + b'"}}')
        assert big.status_code == 413
        wide = await c.post(single, content=b'{"context":{"x":"' + b"a" * (70 * 1024) + b'"}}')
        assert wide.status_code == 400 and wide.json()["errorCode"] == "INVALID_CONTEXT"


async def test_the_limit_is_counted_once_per_request(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as c:
        answers = await asyncio.gather(*(c.post("/ofrep/v1/evaluate/flags/gamification", content=BODY,
                                                headers={"traceparent": SAMPLED if i % 2 else NOT_SAMPLED})
                                         for i in range(60)))
    refused = [r for r in answers if r.status_code == 429]
    assert 9 <= len(refused) <= 11, [r.status_code for r in answers]  # counted twice: 30 more
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)


async def test_the_routes_stream_is_the_edges_stream(unique: str, kafka_settings: KafkaSettings, postgres_dsn: str,
                                                    redis_url: str) -> None:
    """What the edge leaves reaches the FastAPI route, which sends the same `sse.serve` as its response."""
    settings = flags_settings(unique, kafka_settings, postgres_dsn, redis_url)
    app = create_app(settings)
    app.edge = None  # every request through the full app
    srv = await asyncio.to_thread(ThreadServer(app).start)
    try:
        async with httpx.AsyncClient(base_url=srv.url, timeout=5) as c:
            async with c.stream("GET", "/api/flags/_stream") as r:
                assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream; charset=utf-8"
                assert "ratelimit" in r.headers
                lines = r.aiter_lines()
                assert (await anext(lines)) == "event: snapshot"
                assert (await c.post("/api/flags/gamification/enable", headers=ADMIN)).status_code == 200
                while (line := await anext(lines)) != "event: flag":
                    pass
            slots = app.state.flags_edge.slots
            for _ in range(50):
                if slots.total == 0:
                    break
                await asyncio.sleep(0.05)
            assert slots.total == 0
    finally:
        await asyncio.to_thread(srv.stop)
        await drop(settings, redis_url)
