"""A stalled SLA agent is seen: /healthz answers 503 while a batch waits on the broker past `stall_after`.

The agents hand each batch's changelog writes to the broker and wait for its acks before the next batch (at-least-
once, test_sla_changelog.py). When the broker keeps refusing those writes (here a real refusal: the changelog
topic's message size limit lowered under them), the batch never ends and every later record of its topic waits
behind it: no trigger is computed from them. The process and its web server were fine, and /healthz said "pass",
so the health service's watchdog (which restarts a hung SLA processor and opens an incident) never knew."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx

from shared.events import MaintenanceWindowScheduled
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings
from tests.integration.sla.test_sla_changelog import _changelog_limit
from tests.integration.sla.test_sla_maintenance import create_window_topic
from tests.integration.sla.test_sla_kafka import create_topics, free_port, recent, running, wait_for
from tests.unit.sla.helpers import requests

STALL_AFTER = 3.0


async def _health(port: int) -> tuple[int, dict[str, str]]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        r = await http.get("/healthz")
        return r.status_code, r.json()


async def _health_until(port: int, status: int, *, timeout: float) -> tuple[int, dict[str, str]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while (answer := await _health(port))[0] != status:
        assert asyncio.get_running_loop().time() < deadline, f"/healthz still {answer} after {timeout} s"
        await asyncio.sleep(0.25)
    return answer


async def test_healthz_fails_while_a_batch_waits_on_the_broker_and_passes_once_it_is_acked(
        kafka_settings: KafkaSettings, unique: str) -> None:
    await create_topics(kafka_settings)
    app_id, port = f"sla-{unique}", free_port()
    changelog = f"{app_id}-service_to_status-changelog"
    t0 = recent(20)
    async with running(kafka_settings, app_id, port=port, stall_after=STALL_AFTER) as sla, \
            KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
        topic = kafka_settings.topic_prefix + "telemetry.requests"
        await pub.publish(requests(0, t0=t0))
        await wait_for(lambda: sla.counters["sla_events_total"][topic] == 1, timeout=60)
        assert await _health(port) == (200, {"status": "pass", "service": "sla"})
        await _changelog_limit(kafka_settings, changelog, 64)
        try:
            await asyncio.sleep(1.0)
            for s in range(1, 4):
                await pub.publish(requests(s, t0=t0))
            status, body = await _health_until(port, 503, timeout=STALL_AFTER + 20)
            assert body["status"] == "fail", body
            assert topic in body["output"] and "has not acked" in body["output"], body
            assert sla.counters["sla_events_total"][topic] == 1  # the stalled batch is not counted as done
        finally:
            await _changelog_limit(kafka_settings, changelog, None)
        await wait_for(lambda: sla.counters["sla_events_total"][topic] == 4, timeout=60)
        assert await _health(port) == (200, {"status": "pass", "service": "sla"})


async def test_the_maintenance_agents_stall_is_seen_too(kafka_settings: KafkaSettings, unique: str) -> None:
    """The agents beside the batches (flag changes, maintenance windows) also wait for the broker per record."""
    await create_topics(kafka_settings)
    await create_window_topic(kafka_settings)
    app_id, port = f"sla-{unique}", free_port()
    changelog = f"{app_id}-service_to_maintenance-changelog"
    now = datetime.now().astimezone()
    window = MaintenanceWindowScheduled(window_id=f"mw-{unique}", components=["shop"], starts_at=now,
                                        ends_at=now + timedelta(hours=1), by="tests", title="stall")
    async with running(kafka_settings, app_id, port=port, stall_after=STALL_AFTER) as sla, \
            KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
        await _changelog_limit(kafka_settings, changelog, 64)
        try:
            await asyncio.sleep(1.0)
            await pub.publish(window)
            status, body = await _health_until(port, 503, timeout=STALL_AFTER + 20)
            assert f"{app_id}-maintenance" in body["output"], body
        finally:
            await _changelog_limit(kafka_settings, changelog, None)
        assert await _health_until(port, 200, timeout=60) == (200, {"status": "pass", "service": "sla"})
        assert window.window_id in (sla.core.maintenance.get("shop") or {})
