"""Any app with an OpenTelemetry SDK feeds Safeguard: the real Python SDK exports to 127.0.0.1:4318 (HAProxy's
`otlp` frontend -> intake, logged in to Kafka as `intake`), and a page-load beacon goes through the front door."""

from __future__ import annotations

import os

import httpx
import pytest

from shared import topics
from shared.events import PageLoadObserved, RequestsObserved
from shared.testing.kafka import expect_events

pytestmark = pytest.mark.e2e

FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")
OTLP = f"http://127.0.0.1:{os.environ.get('OTLP_HTTP_PORT', '4318')}"
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def _export_with_the_sdk(service: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{OTLP}/v1/metrics"),
                                          export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource.create({"service.name": service, "service.instance.id": "e2e-1"}),
                             metric_readers=[reader])
    duration = provider.get_meter("e2e").create_histogram("http.server.request.duration", unit="s")
    for seconds, status in [(0.02, 200), (0.03, 200), (0.2, 404), (6.0, 503)]:
        duration.record(seconds, {"http.request.method": "GET", "http.response.status_code": status})
    assert reader.force_flush(timeout_millis=10_000)
    provider.shutdown()


async def test_an_otel_sdk_pointed_at_4318_feeds_telemetry_requests(unique: str) -> None:
    service = f"e2e-otel-{unique}"
    _export_with_the_sdk(service)
    [event] = await expect_events(KAFKA, topics.TELEMETRY_REQUESTS, count=1, timeout=20,
                                  where=lambda e: getattr(e, "service", None) == service)
    assert isinstance(event, RequestsObserved)
    assert (event.count, event.errors, event.client_errors, event.instance) == (4, 1, 1, "e2e-1")


async def test_a_beacon_through_the_front_door(unique: str) -> None:
    """(OTLP traces on the same port go to the trace view: tests/e2e/test_trace_view.py.)"""
    service = f"e2e-page-{unique}"
    async with httpx.AsyncClient(timeout=5) as http:
        beacon = await http.post(f"{FRONT}/api/beacon", content=f'{{"service": "{service}", "page": "/", "lcp_ms": 640}}',
                                 headers={"content-type": "text/plain;charset=UTF-8", "origin": "http://127.0.0.1:8200"})
    assert beacon.status_code == 204, beacon.text
    [event] = await expect_events(KAFKA, topics.TELEMETRY_PAGELOADS, count=1, timeout=20,
                                  where=lambda e: getattr(e, "service", None) == service)
    assert isinstance(event, PageLoadObserved) and event.load_ms == 640.0
