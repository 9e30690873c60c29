"""A change made in a traced request is published (by the outbox relay, later, in another task) in that
request's trace: the FlagChanged and FlagSnapshot records carry its trace id in `traceparent`."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.kafka.codec import header
from shared.testing.kafka import expect_records
from shared.topics import FLAGS_CHANGES, FLAGS_STATE
from tests.integration.flags.conftest import ADMIN, Flags

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_a_kill_publishes_in_the_callers_trace(flags: Flags, span_exporter: InMemorySpanExporter) -> None:
    prefix, boot = flags.settings.kafka.topic_prefix, flags.settings.kafka.bootstrap_servers
    assert (await flags.client.post("/api/flags/gamification/enable", headers=ADMIN, json={})).status_code == 200
    killed = await flags.client.post("/api/flags/_kill-new", headers={**ADMIN, "traceparent": CALLER},
                                     json={"reason": "recovery: error rate"})
    assert killed.json() == {"killed": ["gamification"]}
    [changed] = await expect_records(boot, prefix + FLAGS_CHANGES, count=1, timeout=20,
                                     where=lambda r: b'"action":"killed"' in r.value)
    [snapshot] = await expect_records(boot, prefix + FLAGS_STATE, count=1, timeout=20,
                                      where=lambda r: b'"version":3' in (r.value or b""))  # seeded, enabled, killed
    for record in (changed, snapshot):
        assert (header(record.headers, "traceparent") or "").split("-")[1] == CALLER.split("-")[1]
    spans = await _trace_with(span_exporter, CALLER.split("-")[1], "flags outbox relay")
    [relay] = [s for s in spans.values() if s.name == "flags outbox relay"]
    ancestors = []
    while relay.parent is not None and relay.parent.span_id in spans:
        relay = spans[relay.parent.span_id]
        ancestors.append(relay.name)
    assert ancestors[-1] == "POST /api/flags/_kill-new" and relay.parent is not None
    assert format(relay.parent.span_id, "016x") == CALLER.split("-")[2]  # the caller's span


async def _trace_with(exporter: InMemorySpanExporter, trace_id: str, name: str) -> dict[int, ReadableSpan]:
    """The finished spans of `trace_id` by span id, once one named `name` has ended (the record is on Kafka a
    moment before its span ends)."""
    for _ in range(100):
        spans = {s.context.span_id: s for s in exporter.get_finished_spans()
                 if format(s.context.trace_id, "032x") == trace_id}
        if any(s.name == name for s in spans.values()):
            return spans
        await asyncio.sleep(0.05)
    raise AssertionError(f"no span {name!r} in trace {trace_id}")
