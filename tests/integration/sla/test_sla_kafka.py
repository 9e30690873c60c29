"""The SLA processor through real Kafka: a traffic pattern, a worker restart, the HTTP API."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.sla.app import SlaApp, create_app
from services.sla.settings import SlaSettings
from shared import topics
from shared.events import TriggerCleared, TriggerFired
from shared.kafka import KafkaPublisher
from shared.kafka.codec import header
from shared.settings import KafkaSettings
from shared.testing.kafka import expect_records
from tests.unit.sla.helpers import requests

INPUTS = (topics.TELEMETRY_REQUESTS, topics.TELEMETRY_PAGELOADS, topics.HEALTH_CHECKS)


async def create_topics(settings: KafkaSettings) -> None:
    """The SLA processor's topics (its inputs, triggers, budgets) under the test's prefix, 3 partitions each."""
    await topics.create_topics(settings, names=[*INPUTS, topics.SLA_TRIGGERS, topics.SLA_BUDGETS])


def recent(seconds_ago: int = 120) -> datetime:
    """A start for a test's event times: real, since the processor refuses events far from its clock."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds_ago)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def running(settings: KafkaSettings, app_id: str, *, port: int | None = None, publisher: Any = None,
                  **sla_settings: Any) -> AsyncIterator[SlaApp]:
    """A started SLA worker with its partitions and recovered tables; `publisher.attach(sla, settings)` is
    called before the start when `publisher` is given (to wrap the real one); `sla_settings` go to SlaSettings."""
    sla = create_app(SlaSettings(app_id=app_id, kafka=settings, policy_file=None, web_enabled=port is not None,
                                 port=port or 8003, data_dir="/tmp/safeguard-sla-tests", **sla_settings),
                     publisher=publisher)
    if publisher is not None:
        publisher.attach(sla, settings)
    await sla.app.start()
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not sla.app.consumer.assignment() or not sla.app.tables.recovery.completed.is_set():
            assert asyncio.get_running_loop().time() < deadline, "the SLA worker got no partitions"
            await asyncio.sleep(0.05)
        yield sla
    finally:
        await sla.app.stop()


async def wait_for(cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_clean_errors_clean_gives_exactly_one_fired_and_one_cleared(
    kafka_settings: KafkaSettings, unique: str, span_exporter: InMemorySpanExporter,
) -> None:
    await create_topics(kafka_settings)
    triggers = kafka_settings.topic_prefix + topics.SLA_TRIGGERS
    port = free_port()
    T0 = recent()
    async with running(kafka_settings, f"sla-{unique}", port=port) as sla:
        async with KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
            for s in range(70):
                with trace.get_tracer("tests").start_as_current_span(f"second {s}") as span:
                    await pub.publish(requests(s, errors=20 if 20 <= s < 40 else 0, t0=T0))
                if s == 22:
                    cause = span.get_span_context().trace_id
            await pub.publish_raw(kafka_settings.topic_prefix + topics.TELEMETRY_REQUESTS, key=b"shop", value=b"{oops", headers=[])
        await wait_for(lambda: sla.counters["sla_events_total"][kafka_settings.topic_prefix + topics.TELEMETRY_REQUESTS] == 71)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            snap = (await http.get("/api/sla/shop")).json()
            overview = (await http.get("/api/sla")).json()
            missing = await http.get("/api/sla/nobody")
            metrics = await http.get("/metrics")
    records = await expect_records(kafka_settings.bootstrap_servers, triggers, count=2,
                                   where=lambda r: b'"error_rate_high"' in r.value)
    await asyncio.sleep(1.0)
    records = await expect_records(kafka_settings.bootstrap_servers, triggers, count=2,
                                   where=lambda r: b'"error_rate_high"' in r.value)
    events = [TriggerFired.model_validate_json(records[0].value), TriggerCleared.model_validate_json(records[1].value)]
    fired, cleared = events
    assert fired.time == T0 + timedelta(seconds=23) and fired.first_bad_at == T0 + timedelta(seconds=22)
    assert T0 + timedelta(seconds=40) < cleared.time <= T0 + timedelta(seconds=56)
    assert cleared.episode_id == fired.episode_id and cleared.fired_at == fired.time
    assert all(r.key == b"shop" for r in records)
    assert header(records[0].headers, "ce_type") == "sla.trigger_fired"
    assert header(records[0].headers, "ce_id") == str(fired.id)
    assert header(records[0].headers, "ce_source") == "/safeguard/sla"
    # The trigger continues the trace of the RequestsObserved that tipped it over.
    assert (header(records[0].headers, "traceparent") or "").split("-")[1] == format(cause, "032x")
    dead = await expect_records(kafka_settings.bootstrap_servers, topics.dlq(kafka_settings.topic_prefix + topics.TELEMETRY_REQUESTS), count=1)
    assert (header(dead[0].headers, "dlq_reason") or "").startswith("invalid event: ValidationError")
    budgets = await expect_records(kafka_settings.bootstrap_servers, kafka_settings.topic_prefix + topics.SLA_BUDGETS, count=1)
    assert header(budgets[0].headers, "ce_type") == "sla.budget_reported"
    assert snap["service"] == "shop" and snap["requests"]["error_rate"] == 0.0 and snap["active_triggers"] == ["budget_burn"]
    assert snap["requests"]["latency_ms"]["p95"] is not None and snap["budgets"]["requests"]["total"] >= 6000  # reported every 10 s of event time
    assert [s["service"] for s in overview["services"]] == ["shop"]
    assert missing.status_code == 404
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert 'sla_trigger_active{service="shop",trigger="budget_burn"} 1.0' in metrics.text
    assert 'sla_error_ratio{service="shop"} 0.0' in metrics.text


async def test_restart_mid_episode_keeps_window_and_hold_state(kafka_settings: KafkaSettings, unique: str) -> None:
    await create_topics(kafka_settings)
    source = kafka_settings.topic_prefix + topics.TELEMETRY_REQUESTS
    app_id = f"sla-{unique}"
    T0 = recent()
    async with KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
        async with running(kafka_settings, app_id) as first:
            for s in range(22):  # bad from 20 s: the window crosses 5 % at 22 s and the 1 s hold starts
                await pub.publish(requests(s, errors=20 if s >= 20 else 0, t0=T0))
            await wait_for(lambda: first.counters["sla_events_total"][source] == 22)
            state = first.tables.service_to_status["shop"]["triggers"]["error_rate_high"]
            assert state["phase"] == "pending"
            await asyncio.sleep(0.5)  # let the changelog flush
        async with running(kafka_settings, app_id) as second:
            restored = second.tables.service_to_status["shop"]["triggers"]["error_rate_high"]
            assert restored["phase"] == "pending" and restored["first_bad_at"] == state["first_bad_at"]
            for s in range(22, 30):
                await pub.publish(requests(s, errors=20, t0=T0))
            await wait_for(lambda: second.counters["sla_events_total"][source] >= 8)
    records = await expect_records(kafka_settings.bootstrap_servers, kafka_settings.topic_prefix + topics.SLA_TRIGGERS,
                                   count=1, where=lambda r: b'"error_rate_high"' in r.value)
    fired = TriggerFired.model_validate_json(records[0].value)
    # Window state survived: at 23 s the 5 s window still holds 3 clean seconds from before the restart.
    assert fired.time == T0 + timedelta(seconds=23) and fired.first_bad_at == T0 + timedelta(seconds=22)
    assert fired.samples == 500 and abs(fired.value - 0.12) < 1e-9
