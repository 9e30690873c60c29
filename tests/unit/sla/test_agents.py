"""The Faust agents under `agent.test_context()`: parse, DLQ, publish, tables."""

from __future__ import annotations

from typing import Any

from services.sla.app import SlaApp, create_app
from services.sla.policy import SlaPolicy
from services.sla.settings import SlaSettings
from shared.events import TriggerFired
from shared.kafka.codec import encode
from shared.testing import InMemoryPublisher
from tests.unit.sla.helpers import process, requests


class Publisher(InMemoryPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.dead: list[tuple[Any, str]] = []

    async def dead_letter(self, record: Any, *, reason: str, group: str) -> None:
        self.dead.append((record, reason))


def build() -> tuple[SlaApp, Publisher]:
    pub = Publisher()
    sla = create_app(SlaSettings(app_id="sla-unit", web_enabled=False, policy_file=None, batch_within=0.01), policy=SlaPolicy(), publisher=pub)
    return sla, pub


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
