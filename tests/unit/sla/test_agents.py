"""The Faust agents under `agent.test_context()`: parse, DLQ, publish, tables."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from services.sla import metrics
from services.sla.app import SlaApp, create_app
from services.sla.policy import SlaPolicy
from services.sla.settings import SlaSettings
from shared.events import TriggerFired
from shared.kafka.codec import encode
from shared.testing import FakeClock, InMemoryPublisher
from tests.unit.sla.helpers import T0, process, requests


class Publisher(InMemoryPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.dead: list[tuple[Any, str]] = []

    async def dead_letter(self, record: Any, *, reason: str, group: str) -> None:
        self.dead.append((record, reason))


def build() -> tuple[SlaApp, Publisher]:
    return build_at(86400)


async def test_requests_agent_fires_and_keeps_state_in_the_tables() -> None:
    sla, pub = build()
    async with sla.agents["observe_requests"].test_context() as agent:
        for s in range(30):
            key, value, _ = encode(requests(s, errors=20 if s >= 10 else 0), source="/test")
            await agent.put(value, key=key)
    fired = [e for e in pub.of_type(TriggerFired) if e.trigger == "error_rate_high"]
    assert len(fired) == 1 and fired[0].service == "shop"
    status = sla.tables.service_to_status["shop"]
    assert status["triggers"]["error_rate_high"]["phase"] == "firing"
    assert [s[0] for s in status["seconds"]][-1] == int(requests(29).window_start.timestamp())  # the hot window
    assert status["open"]["rm"][1][1] == 30 * 100  # the open minute: 30 reports of 100 requests
    assert sla.counters["sla_events_total"]["telemetry.requests"] == 30


async def test_bad_records_go_to_the_dlq_with_the_reason() -> None:
    sla, pub = build()
    async with sla.agents["observe_health"].test_context() as agent:
        await agent.put(b"{not json", key=b"shop")
        await agent.put(b'{"type": "telemetry.requests_observed", "service": "shop"}', key=b"shop")
        _, value, _ = encode(process(1, memory=50), source="/test")
        await agent.put(value, key=b"shop")
    reasons = [reason for _, reason in pub.dead]
    assert len(reasons) == 2
    assert reasons[0].startswith("invalid event: ValidationError") and "Invalid JSON" in reasons[0]
    assert "does not match any of the expected tags" in reasons[1] or "type" in reasons[1]
    assert "shop" in sla.core.services()
    assert sla.counters["sla_dead_lettered_total"]["health.checks"] == 2


def build_at(second: float, *, acks: list[Any] | None = None) -> tuple[SlaApp, Publisher]:
    """Under `test_context` Faust's producer does not run, so no changelog write would ever be acked (and a batch
    waits for those acks): each is acked at once, or, with `acks`, kept there for the test to ack."""
    pub = Publisher()
    clock = FakeClock(start=T0.timestamp() + second)
    sla = create_app(SlaSettings(app_id="sla-unit", web_enabled=False, policy_file=None, batch_within=0.01),
                     policy=SlaPolicy(), publisher=pub, clock=clock)
    sla.app.producer.send_soon = (lambda fut: fut.set_result(None)) if acks is None else acks.append  # type: ignore[method-assign]
    return sla, pub


async def test_a_batch_is_acked_only_once_its_changelog_writes_are() -> None:
    """Faust commits the offsets of acked records; its producer flush before a commit gives up after 0.1 s
    without a send, so offsets could run ahead of the changelog and a killed worker lost those counts."""
    acks: list[Any] = []
    sla, _ = build_at(40, acks=acks)
    async with sla.agents["observe_requests"].test_context() as agent:
        key, value, _ = encode(requests(1), source="/test")
        put = asyncio.ensure_future(agent.put(value, key=key))
        await asyncio.sleep(0.5)
        assert acks and not put.done()  # the changelog writes are out, not acked: the record is not either
        assert not sla.counters["sla_events_total"]["telemetry.requests"]
        for fut in acks:
            fut.set_result(None)
        await asyncio.wait_for(put, 5)
    assert sla.counters["sla_events_total"]["telemetry.requests"] == 1


def hostile(second: int, **update: Any) -> bytes:
    event = requests(second)
    return json.dumps(event.model_dump(mode="json") | update).encode()


async def test_poison_records_in_a_batch_go_to_the_dlq_and_the_rest_is_counted() -> None:
    sla, pub = build_at(40)
    poison = [hostile(12, latency_buckets={"abc": 1}), hostile(12, errors=500), hostile(10 * 365 * 86400),
              hostile(12, latency_sum_ms=float("inf")).replace(b"Infinity", b"1e999")]
    async with sla.agents["observe_requests"].test_context() as agent:
        for s in range(30):
            if s == 12:
                for value in poison:
                    await agent.put(value, key=b"shop")
                await agent.put(hostile(13, service="cart"), key=b"shop")  # a key that is not its service
            key, value, _ = encode(requests(s, errors=20 if s >= 20 else 0), source="/test")
            await agent.put(value, key=key)
    reasons = [reason for _, reason in pub.dead]
    assert len(reasons) == 5, reasons
    assert "latency bucket 'abc'" in reasons[0] and "errors (500) exceed count (100)" in reasons[1]
    assert "ahead of now" in reasons[2] and "latency_sum_ms" in reasons[3] and "does not match" in reasons[4]
    assert all(r.startswith("rejected: ") for r in reasons)
    fired = [e for e in pub.of_type(TriggerFired) if e.trigger == "error_rate_high"]
    assert len(fired) == 1 and fired[0].time == T0 + timedelta(seconds=23)
    assert sla.counters["sla_events_total"]["telemetry.requests"] == 35
    assert sla.counters["sla_dead_lettered_total"]["telemetry.requests"] == 5
    assert sla.tables.service_to_status["shop"]["seconds"][-1][1] == 100  # good seconds counted once


async def test_a_trigger_whose_publish_failed_is_published_later_exactly_once() -> None:
    sla, pub = build_at(40)
    pub.fail_with = ConnectionError("broker gone")
    async with sla.agents["observe_requests"].test_context() as agent:
        for s in range(30):
            key, value, _ = encode(requests(s, errors=20 if s >= 20 else 0), source="/test")
            await agent.put(value, key=key)
    assert not pub.of_type(TriggerFired)
    status = sla.tables.service_to_status["shop"]
    assert status["triggers"]["error_rate_high"]["phase"] == "firing"
    assert sorted(e["trigger"] for e in status["outbox"]) == ["budget_burn", "error_rate_high"]
    text = metrics.render([], sla.counters, unpublished={s: len(sla.core.pending(s)) for s in sla.core.services_pending()})
    assert 'sla_triggers_unpublished{service="shop"} 2.0' in text
    assert 'sla_publish_failures_total{type="sla.trigger_fired"}' in text
    pub.fail_with = None
    assert await sla.republish() == 2
    assert await sla.republish() == 0
    fired = pub.of_type(TriggerFired)
    assert sorted(e.trigger for e in fired) == ["budget_burn", "error_rate_high"]
    assert sla.tables.service_to_status["shop"]["outbox"] == []


async def test_a_replayed_batch_is_dropped_as_duplicates() -> None:
    sla, pub = build_at(40)
    records = [encode(requests(s, errors=20 if s >= 20 else 0), source="/test") for s in range(30)]
    async with sla.agents["observe_requests"].test_context() as agent:
        for key, value, _ in records + records[-10:]:
            await agent.put(value, key=key)
    assert sla.counters["sla_duplicates_total"]["telemetry.requests"] == 10
    assert [e.trigger for e in pub.of_type(TriggerFired)] == ["budget_burn", "error_rate_high"] and not pub.dead
    assert sum(s[1] for s in sla.tables.service_to_status["shop"]["seconds"]) <= 8 * 100
