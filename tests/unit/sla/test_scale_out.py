"""Scale-out and the speed paths: two workers, each with the services of its partitions, publish what one
worker does; a budget report whose ack never comes does not hold a batch; the quantile shortcut."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from services.sla.outbox import partition_of
from services.sla.policy import SlaPolicy
from services.sla.seconds import quantile
from services.sla.service import SlaCore
from shared.events import BudgetReported, Event, TriggerFired
from shared.histogram import MAX_BUCKET, LatencySketch
from shared.kafka.codec import encode
from shared.testing import FakeClock
from tests.unit.sla.helpers import T0, requests
from tests.unit.sla.test_agents import Publisher, build_at

PARTITIONS = 6
SERVICES = [f"svc-{i}" for i in range(12)]


def _input() -> list[Any]:
    """Two minutes of reports of 12 services, one report per service and second; a third of the services
    turn 20 % errors for 30 s, a third get slow."""
    events = []
    for second in range(120):
        for i, svc in enumerate(SERVICES):
            bad = 40 <= second < 70
            events.append(requests(second, service=svc, errors=20 if bad and i % 3 == 0 else 0,
                                   ms=9000.0 if bad and i % 3 == 1 else 40.0))
    return events


def _run(events: list[Any]) -> tuple[set[str], dict[str, Any]]:
    """(outputs as JSON, without budget ids; the final status of each service) of one core fed `events` in order."""
    clock = FakeClock(start=T0.timestamp() + 130)
    core = SlaCore(policy=SlaPolicy(), buckets={}, status={}, clock=clock)
    out: list[Event] = []
    for event in events:
        out += core.observe_requests(event)
    return {_canonical(e) for e in out}, {svc: core.status[svc] for svc in core.services()}


def _canonical(event: Event) -> str:
    value = event.model_dump(mode="json")
    if isinstance(event, BudgetReported):
        value.pop("id")
    return json.dumps(value, sort_keys=True)


def test_two_workers_each_with_its_partitions_publish_what_one_worker_does() -> None:
    events = _input()
    one_out, one_state = _run(events)
    halves = [[e for e in events if (partition_of(e.service, partitions=PARTITIONS) < PARTITIONS // 2) == first]
              for first in (True, False)]
    assert all(halves), "both workers get services"
    (a_out, a_state), (b_out, b_state) = _run(halves[0]), _run(halves[1])
    assert not a_out & b_out and not a_state.keys() & b_state.keys()  # nothing shared between the workers
    assert a_out | b_out == one_out
    assert a_state | b_state == one_state
    fired = [json.loads(e) for e in one_out if '"sla.trigger_fired"' in e]
    assert {f["trigger"] for f in fired} >= {"error_rate_high", "latency_high"}  # the comparison covers triggers


async def test_a_budget_report_whose_ack_never_comes_does_not_hold_the_batch() -> None:
    sla, pub = build_at(40)
    never = asyncio.Event()
    publish = pub.publish

    async def hanging(event: Event, **kwargs: Any) -> None:
        if isinstance(event, BudgetReported):
            await never.wait()
        await publish(event, **kwargs)

    pub.publish = hanging  # type: ignore[method-assign]
    async with sla.agents["observe_requests"].test_context() as agent:
        async def feed() -> None:
            for s in range(30):
                key, value, _ = encode(requests(s, errors=20 if s >= 20 else 0), source="/test")
                await agent.put(value, key=key)

        await asyncio.wait_for(feed(), 10)  # a batch waiting for the report's ack would never end
        assert sla.counters["sla_events_total"]["telemetry.requests"] == 30
        assert "error_rate_high" in {e.trigger for e in pub.of_type(TriggerFired)}  # triggers still wait for their ack
        assert not pub.of_type(BudgetReported) and not sla.counters["sla_published_total"]["sla.budget_reported"]
        never.set()
        for _ in range(10):
            await asyncio.sleep(0)
    assert pub.of_type(BudgetReported)
    assert sla.counters["sla_published_total"]["sla.budget_reported"] == len(pub.of_type(BudgetReported))


def test_the_quantile_of_a_merged_wire_is_the_sketch_quantile() -> None:
    rng = random.Random(7)
    for _ in range(200):
        wire = {str(rng.randrange(0, MAX_BUCKET + 1)): rng.randrange(0, 50) for _ in range(rng.randrange(0, 12))}
        for q in (0.0, 0.5, 0.95, 0.99, 1.0):
            assert quantile(wire, q) == LatencySketch.from_wire(wire).quantile(q), (wire, q)
