"""Hostile telemetry through real Kafka and the Faust app (issue 10, findings 6 and 12).

A poison record among good ones goes to the DLQ with the reason while the rest is counted and
a real outage still fires; a trigger whose publish failed is sent after a restart, once; a
replay is not counted twice; Faust's own web views are not served.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaTimeoutError

from services.sla.agents import FaustPublisher
from shared import topics
from shared.events import Event, TriggerCleared, TriggerFired
from shared.kafka import KafkaPublisher
from shared.kafka.codec import header
from shared.settings import KafkaSettings
from tests.integration.sla.test_sla_kafka import create_topics, free_port, recent, running, wait_for
from tests.unit.sla.helpers import requests

YEAR = 365 * 86400


async def all_records(bootstrap: str, topic: str, *, settle: float = 2.0) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic`, read until nothing new came for `settle` seconds."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"all-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        quiet_until = asyncio.get_running_loop().time() + settle
        while asyncio.get_running_loop().time() < quiet_until:
            batches = await consumer.getmany(timeout_ms=200)
            new = [r for records in batches.values() for r in records]
            if new:
                found += new
                quiet_until = asyncio.get_running_loop().time() + settle
        return found
    finally:
        await consumer.stop()


def error_rate_fired(records: list[ConsumerRecord[bytes, bytes]]) -> list[TriggerFired]:
    events = [TriggerFired.model_validate_json(r.value) for r in records if header(r.headers, "ce_type") == "sla.trigger_fired"]
    return [e for e in events if e.trigger == "error_rate_high"]


def poisoned(event: Event, **update: Any) -> bytes:
    return json.dumps(event.model_dump(mode="json") | update).encode()


async def test_poison_records_go_to_the_dlq_and_a_real_outage_still_fires_once(kafka_settings: KafkaSettings, unique: str) -> None:
    await create_topics(kafka_settings)
    prefix, bootstrap = kafka_settings.topic_prefix, kafka_settings.bootstrap_servers
    source = prefix + topics.TELEMETRY_REQUESTS
    t0 = recent()
    good = [requests(s, errors=20 if s >= 20 else 0, t0=t0) for s in range(40)]
    poison = [
        poisoned(good[10], latency_buckets={"abc": 1}),
        poisoned(good[10], errors=500),
        poisoned(good[10], window_start=(t0.replace(year=t0.year + 10)).isoformat()),
        poisoned(good[10], window_start=(t0.replace(year=t0.year - 1)).isoformat()),
        poisoned(good[10], latency_sum_ms=1).replace(b'"latency_sum_ms": 1', b'"latency_sum_ms": Infinity'),
    ]
    async with running(kafka_settings, f"sla-{unique}") as sla, \
            KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
        for s, event in enumerate(good):
            if s == 10:
                for value in poison:  # in the same batch as the good records around them
                    await pub.publish_raw(source, key=b"shop", value=value, headers=[])
            await pub.publish(event)
        await wait_for(lambda: sla.counters["sla_events_total"][source] == 45)
        for event in good[30:]:  # a producer that replays: same instance and windows, new ids
            await pub.publish(event.model_copy(update={"id": uuid.uuid4()}))
        await wait_for(lambda: sla.counters["sla_duplicates_total"][source] == 10)
        hot = sla.tables.service_to_status["shop"]["seconds"]  # the last seconds, all of them replayed
    dead = await all_records(bootstrap, topics.dlq(source))
    reasons = [header(r.headers, "dlq_reason") or "" for r in dead]
    assert len(dead) == 5 and [r.value for r in dead] == poison
    assert "latency bucket 'abc'" in reasons[0] and "errors (500) exceed count (100)" in reasons[1]
    assert "ahead of now" in reasons[2] and "behind now" in reasons[3] and "latency_sum_ms" in reasons[4]
    assert all(header(r.headers, "dlq_topic") == source for r in dead)
    fired = error_rate_fired(await all_records(bootstrap, prefix + topics.SLA_TRIGGERS))
    assert len(fired) == 1 and fired[0].time == t0 + timedelta(seconds=23)
    assert fired[0].samples == 500 and abs(fired[0].value - 0.12) < 1e-9
    assert len(hot) >= 5 and all(entry[1] == 100 for entry in hot)  # no second counted twice


class TriggersRefused:
    """The real publisher, except that every trigger event fails as if the broker never acked it."""

    def __init__(self) -> None:
        self.inner: FaustPublisher | None = None
        self.refused = 0

    def attach(self, sla: Any, settings: KafkaSettings) -> None:
        self.inner = FaustPublisher(sla.app, topic_prefix=settings.topic_prefix)

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        assert self.inner is not None
        if isinstance(event, TriggerFired | TriggerCleared):
            self.refused += 1
            raise KafkaTimeoutError("no ack for the trigger")
        await self.inner.publish(event, topic=topic)

    async def dead_letter(self, record: Any, *, reason: str, group: str) -> None:
        assert self.inner is not None
        await self.inner.dead_letter(record, reason=reason, group=group)


async def test_a_trigger_whose_publish_failed_is_sent_once_after_a_restart(kafka_settings: KafkaSettings, unique: str) -> None:
    await create_topics(kafka_settings)
    prefix, bootstrap = kafka_settings.topic_prefix, kafka_settings.bootstrap_servers
    source, triggers = prefix + topics.TELEMETRY_REQUESTS, prefix + topics.SLA_TRIGGERS
    app_id, t0 = f"sla-{unique}", recent()
    refusing = TriggersRefused()
    async with KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
        async with running(kafka_settings, app_id, publisher=refusing) as first:
            for s in range(30):
                await pub.publish(requests(s, errors=20 if s >= 20 else 0, t0=t0))
            await wait_for(lambda: first.counters["sla_events_total"][source] == 30)
            status = first.tables.service_to_status["shop"]
            assert status["triggers"]["error_rate_high"]["phase"] == "firing"
            await wait_for(lambda: refusing.refused >= 4)  # the first send and at least one retry by the timer
            assert "error_rate_high" in {e["trigger"] for e in first.tables.service_to_status["shop"]["outbox"]}
            await asyncio.sleep(0.5)  # let the changelog flush
        assert error_rate_fired(await all_records(bootstrap, triggers, settle=1.0)) == []
        async with running(kafka_settings, app_id) as second:
            await wait_for(lambda: not second.tables.service_to_status["shop"]["outbox"])
            await asyncio.sleep(1.5)  # a few more timer rounds: nothing is sent twice
    fired = error_rate_fired(await all_records(bootstrap, triggers))
    assert len(fired) == 1 and fired[0].first_bad_at == t0 + timedelta(seconds=22)


async def test_only_our_views_are_served(kafka_settings: KafkaSettings, unique: str) -> None:
    await create_topics(kafka_settings)
    port = free_port()
    async with running(kafka_settings, f"sla-{unique}", port=port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            ours = {path: (await http.get(path)).status_code for path in ("/healthz", "/api/sla", "/metrics")}
            faust = {path: (await http.get(path)).status_code for path in (
                "/", "/table/", "/table/service_to_status/", "/router/", "/graph/", "/assignment/", "/performance/",
                "/stats/")}
    assert ours == {"/healthz": 200, "/api/sla": 200, "/metrics": 200}
    assert set(faust.values()) == {404}, faust
