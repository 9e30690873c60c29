"""Issue 15, a truthful first minute: the health service app with real HTTP targets and real
Kafka. A service that answers a moment after the health service starts is never `fail`; one
that never answers is `fail` after `down_after` fast probes, not after a 30 s interval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.health.app import create_app
from services.health.config import parse_config
from services.health.settings import HealthSettings
from shared.events import HealthCheckCompleted
from shared.settings import KafkaSettings
from shared.testing.kafka import expect_events
from shared.topics import HEALTH_CHECKS, create_topics
from tests.integration.health.test_health_service import TinyHttp, client_for


def config_for(**ports: int) -> Any:
    return parse_config({"interval_seconds": 30, "down_after": 3, "up_after": 2, "settle_interval_seconds": 1,
                         "targets": [{"name": name, "kind": "http", "url": f"http://127.0.0.1:{port}/healthz"}
                                     for name, port in ports.items()]}, env={})


@pytest.fixture
async def servers() -> AsyncIterator[tuple[TinyHttp, TinyHttp]]:
    """`up` answers from the start; `later` has a port but is not listening yet."""
    up, later = TinyHttp(), TinyHttp()
    await up.start()
    await later.start()
    await later.stop()
    yield up, later
    for s in (up, later):
        if s.server is not None and s.server.is_serving():
            await s.stop()


async def watch(client: Any, *, until: str, timeout: float) -> tuple[float, list[str]]:
    """Polls /api/health every 50 ms until its status is `until`: (seconds taken, statuses seen)."""
    loop = asyncio.get_running_loop()
    start, seen = loop.time(), []
    while loop.time() - start < timeout:
        r = await client.get("/api/health")
        assert (r.status_code == 503) == (r.json()["status"] == "fail")
        seen.append(r.json()["status"])
        if seen[-1] == until:
            return loop.time() - start, seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"/api/health not {until} within {timeout} s: saw {sorted(set(seen))}")


async def test_a_service_answering_after_the_health_service_starts_is_never_fail(
        kafka_settings: KafkaSettings, servers: tuple[TinyHttp, TinyHttp]) -> None:
    up, later = servers
    await create_topics(kafka_settings, partitions=1)
    app = create_app(HealthSettings(kafka=kafka_settings, status_feed=False),
                     config=config_for(up=up.port, later=later.port))
    async with app.router.lifespan_context(app), client_for(app) as client:
        asyncio.get_running_loop().call_later(0.5, lambda: asyncio.ensure_future(later.start()))
        taken, seen = await watch(client, until="pass", timeout=2.5)
        assert "fail" not in seen
        assert taken >= 0.4  # `later` was not listening before
        body = (await client.get("/api/system/status")).json()
        assert body["status"] == "operational" and body["services"]["later"]["state"] == "up"
    events = await expect_events(kafka_settings, kafka_settings.topic_prefix + HEALTH_CHECKS, count=2,
                                 where=lambda e: isinstance(e, HealthCheckCompleted))
    assert {(e.target, e.state) for e in events} == {("up", "up"), ("later", "up")}  # type: ignore[attr-defined]


async def test_a_service_down_from_the_start_is_fail_after_down_after_fast_probes(
        kafka_settings: KafkaSettings, servers: tuple[TinyHttp, TinyHttp]) -> None:
    up, dead = servers
    await create_topics(kafka_settings, partitions=1)
    app = create_app(HealthSettings(kafka=kafka_settings, status_feed=False),
                     config=config_for(up=up.port, dead=dead.port))
    async with app.router.lifespan_context(app), client_for(app) as client:
        taken, seen = await watch(client, until="fail", timeout=6)
        assert 1.5 <= taken  # three probes one second apart, not the first one
        assert set(seen[:-1]) == {"warn"}
        r = await client.get("/api/health")
        check = r.json()["checks"]["dead:responseTime"][0]
        assert check["state"] == "down" and check["consecutive"] == 3
        assert (await client.get("/api/system/status")).json()["status"] == "major_outage"
    events = await expect_events(kafka_settings, kafka_settings.topic_prefix + HEALTH_CHECKS, count=1,
                                 where=lambda e: isinstance(e, HealthCheckCompleted) and e.target == "dead")
    assert events[0].state == "down" and events[0].consecutive == 3  # type: ignore[attr-defined]
