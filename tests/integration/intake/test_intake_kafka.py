"""The intake against real Kafka and Redis: an OTLP POST and a beacon become events on the topics."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from shared import topics
from shared.events import PageLoadObserved, ProcessStatsReported, RequestsObserved
from shared.ratelimit import RateLimitSettings
from shared.settings import KafkaSettings, RedisSettings
from shared.testing.kafka import expect_events

RECORDED = Path(__file__).resolve().parents[2] / "contract" / "otlp"
PAGE = "http://127.0.0.1:8200"


@pytest.fixture
async def client(kafka_settings: KafkaSettings, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = IntakeSettings(kafka=kafka_settings, redis=RedisSettings(url=redis_url), beacon_origins=[PAGE],
                              beacon_rate="3/minute", ratelimit=RateLimitSettings())
    app = create_app(settings)  # the real KafkaPublisher and the Redis-backed rate limiter
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8006") as c:
            yield c


async def test_an_otlp_export_yields_requests_and_process_stats(client: httpx.AsyncClient,
                                                                kafka_settings: KafkaSettings) -> None:
    body = gzip.compress((RECORDED / "python-sdk-1.binpb").read_bytes())
    r = await client.post("/v1/metrics", content=body,
                          headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"})
    assert r.status_code == 200, r.content
    assert not ExportMetricsServiceResponse.FromString(r.content).HasField("partial_success")
    prefix = kafka_settings.topic_prefix
    [requests] = await expect_events(kafka_settings, prefix + topics.TELEMETRY_REQUESTS, count=1)
    assert isinstance(requests, RequestsObserved)
    assert (requests.service, requests.count, requests.errors, requests.client_errors) == ("shop-python", 10, 3, 2)
    [stats] = await expect_events(kafka_settings, prefix + topics.HEALTH_CHECKS, count=1)
    assert isinstance(stats, ProcessStatsReported) and stats.memory_limit_bytes == 512 * 1024**2


async def test_a_beacon_yields_a_page_load_and_the_rate_limit_holds(client: httpx.AsyncClient,
                                                                    kafka_settings: KafkaSettings,
                                                                    unique: str) -> None:
    # a client address of its own (X-Forwarded-For from a trusted proxy), so no other test shares the bucket
    headers = {"content-type": "text/plain", "origin": PAGE, "x-forwarded-for": f"client-{unique}"}
    beacon = b'{"service": "shop-node", "page": "/cart", "lcp_ms": 1900.5, "load_ms": 2100, "ttfb_ms": 80}'
    codes = [(await client.post("/api/beacon", content=beacon, headers=headers)).status_code for _ in range(4)]
    assert codes == [204, 204, 204, 429]
    refused = await client.post("/api/beacon", content=beacon, headers=headers)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    events = await expect_events(kafka_settings, kafka_settings.topic_prefix + topics.TELEMETRY_PAGELOADS, count=3)
    assert all(isinstance(e, PageLoadObserved) for e in events)
    assert {(e.service, e.page, e.load_ms, e.ttfb_ms) for e in events} == {("shop-node", "/cart", 2100.0, 80.0)}  # type: ignore[attr-defined]
