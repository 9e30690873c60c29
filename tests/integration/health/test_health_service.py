"""The health service against real Kafka, Postgres and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.health.app import create_app
from services.health.config import parse_config
from services.health.settings import HealthSettings
from shared.events import (
    CircuitBreakerStateChanged, FlagSnapshot, HealthCheckCompleted, IncidentOpened, PoolStats, ProcessStatsReported,
    TriggerFired,
)
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings
from shared.testing.kafka import expect_events
from shared.topics import create_topics


class TinyHttp:
    """A real HTTP server on loopback that answers 200 until stopped."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:  # the tcp probe connects and leaves
            writer.close()
            return
        body = b'{"status":"pass"}'
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                     b"connection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def client_for(app: Any) -> httpx.AsyncClient:
    """ASGITransport runs no lifespan: the test enters it, which sets app.state."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def until(cond: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


@pytest.fixture
async def apps() -> AsyncIterator[tuple[TinyHttp, TinyHttp]]:
    a, b = TinyHttp(), TinyHttp()
    await a.start()
    await b.start()
    yield a, b
    for s in (a, b):
        if s.server is not None and s.server.is_serving():
            await s.stop()


async def test_probes_publish_and_status_survives_a_stopped_service(
        kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str, apps: tuple[TinyHttp, TinyHttp]) -> None:
    shop, billing = apps
    await create_topics(kafka_settings, partitions=1)
    config = parse_config({"interval_seconds": 0.3, "down_after": 2, "up_after": 2, "targets": [
        {"name": "shop", "kind": "http", "url": f"http://127.0.0.1:{shop.port}/healthz", "json_field": "status",
         "json_equals": "pass"},
        {"name": "billing", "kind": "http", "url": f"http://127.0.0.1:{billing.port}/healthz"},
        {"name": "billing-port", "service": "billing", "kind": "tcp", "port": billing.port, "critical": False},
        {"name": "postgres", "kind": "postgres"},
        {"name": "redis", "kind": "redis"},
        {"name": "kafka", "kind": "kafka"},
    ]}, env={})
    settings = HealthSettings(kafka=kafka_settings, postgres=PostgresSettings(dsn=postgres_dsn),
                              redis=RedisSettings(url=redis_url))
    app = create_app(settings, config=config)
    async with app.router.lifespan_context(app), client_for(app) as client:
        await asyncio.wait_for(app.state.feed.ready.wait(), 20)
        async with KafkaPublisher.start(kafka_settings, source="/tests") as pub:
            await pub.publish(FlagSnapshot(flag_key="gamification", version=2, definition={"state": "ENABLED"}))
            await pub.publish(IncidentOpened(service="shop", incident_id="inc-7", title="error rate high"))
            await pub.publish(TriggerFired(service="shop", trigger="error_rate_high", episode_id="ep-1", value=0.2,
                                           threshold=0.05, window_seconds=60))
            await pub.publish(ProcessStatsReported(service="shop", instance="shop-blue", pid=1, rss_bytes=10,
                                                   memory_limit_bytes=100, memory_percent=10.0,
                                                   pools=[PoolStats(size=1, idle=1, max_size=5, connected=True)]))
            await pub.publish(CircuitBreakerStateChanged(service="shop", instance="shop-blue", breaker="postgres",
                                                         from_state="closed", to_state="open", reason="slow"))

        async def all_up() -> bool:
            doc = (await client.get("/api/health")).json()
            return doc["status"] == "pass" and len(doc["checks"]) == 6

        await until(all_up)
        await billing.stop()

        async def billing_down() -> bool:
            body = (await client.get("/api/system/status")).json()
            return body["services"].get("billing", {}).get("state") == "down"

        await until(billing_down)
        r = await client.get("/api/health")
        assert r.status_code == 503 and r.headers["content-type"] == "application/health+json"
        assert r.json()["checks"]["billing:responseTime"][0]["status"] == "fail"
        assert r.json()["checks"]["postgres:responseTime"][0]["componentType"] == "datastore"
        body = (await client.get("/api/system/status")).json()
        assert body["services"]["shop"]["state"] == "up"
        assert body["dependencies"]["postgres"]["state"] == "up"
        assert body["dependencies"]["kafka"]["checks"]["kafka"]["observed_value"] >= 1
        assert body["status"] == "major_outage"
        assert any(n.startswith("billing") for n in body["notes"])
        assert body["feed"]["connected"] is True
        assert body["flags"]["gamification"]["state"] == "ENABLED"
        assert [i["incident_id"] for i in body["incidents"]["open"]] == ["inc-7"]
        assert body["sla"]["active_triggers"][0]["trigger"] == "error_rate_high"
        assert body["breakers"]["shop"]["postgres"]["state"] == "open"
        assert body["apps"]["shop"]["instances"]["shop-blue"]["pools"][0]["connected"] is True

    events = await expect_events(kafka_settings.bootstrap_servers, kafka_settings.topic_prefix + "health.checks",
                                 count=1, where=lambda e: isinstance(e, HealthCheckCompleted)
                                 and e.target == "billing" and e.state == "down")
    assert all(e.consecutive >= 2 for e in events)  # type: ignore[attr-defined]
