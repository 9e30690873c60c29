"""Inbound edge: raw records -> shared pydantic events -> SlaCore -> published events.

Each topic has one agent, which processes records in batches (see `register_agents`); a
record that does not parse goes to `<topic>.dlq` with the reason in its headers (the same
headers as `shared.kafka.EventConsumer`), and the stream moves on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import faust
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from services.sla.service import SlaCore
from services.sla.tables import Tables
from shared import topics
from shared.events import Event, HealthCheckCompleted, PageLoadObserved, ProcessStatsReported, RequestsObserved
from shared.kafka.codec import decode, encode
from shared.telemetry import extract_context, inject_headers

__all__ = ["FaustPublisher", "Counters", "register_agents", "SOURCE"]

SOURCE = "/safeguard/sla"
log = logging.getLogger(__name__)
_tracer = trace.get_tracer("safeguard.sla")

Counters = dict[str, Counter[str]]


class FaustPublisher:
    """Publishes events on `<prefix><event.topic>` with CloudEvents headers and traceparent."""

    def __init__(self, app: faust.App, *, topic_prefix: str) -> None:
        self.app = app
        self.topic_prefix = topic_prefix
        self._topics: dict[str, Any] = {}

    def topic(self, name: str) -> Any:
        if name not in self._topics:
            self._topics[name] = self.app.topic(name, key_serializer="raw", value_serializer="raw", partitions=3)
        return self._topics[name]

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        key, value, headers = encode(event, source=SOURCE)
        await self.topic(topic or self.topic_prefix + event.topic).send(key=key, value=value, headers=headers + inject_headers())

    async def dead_letter(self, record: Any, *, reason: str, group: str) -> None:
        msg = record.message
        headers = list(msg.headers or ()) if not isinstance(msg.headers, dict) else list(msg.headers.items())
        headers += [
            ("dlq_reason", reason.encode()), ("dlq_topic", msg.topic.encode()),
            ("dlq_partition", str(msg.partition).encode()), ("dlq_offset", str(msg.offset).encode()),
            ("dlq_group", group.encode()),
        ]
        await self.topic(topics.dlq(msg.topic)).send(key=msg.key, value=msg.value, headers=headers)


def register_agents(
    app: faust.App, *, core: SlaCore, tables: Tables, publisher: Any, topic_prefix: str, counters: Counters,
    batch_size: int = 1000, batch_within: float = 0.05,
) -> dict[str, Any]:
    """Define one agent per input topic, each taking up to `batch_size` records or what came within
    `batch_within` seconds. `publisher` has `publish(event)` and `dead_letter(record, ...)`.

    Per batch: every record is parsed and run through the core (state in `tables`' write-back
    overlays), then the changed table keys go to the changelogs once, then the outputs and dead
    letters are sent; the records are acked after that (Faust's `take_events`), so offsets never
    run ahead of the state on the changelog.
    """
    handlers: dict[type[Event], Callable[[Any], list[Event]]] = {
        RequestsObserved: core.observe_requests,
        PageLoadObserved: core.observe_page_load,
        HealthCheckCompleted: core.observe_probe,
        ProcessStatsReported: core.observe_process,
    }
    group = app.conf.id

    async def handle_batch(records: Sequence[Any]) -> None:
        emitted: list[tuple[Any, list[Event]]] = []
        dead: list[tuple[Any, str]] = []
        topic = records[0].message.topic
        try:
            for record in records:
                msg = record.message
                try:
                    event = decode(msg.topic, record.value)
                except (ValidationError, ValueError, KeyError) as exc:
                    dead.append((record, f"invalid event: {_first_line(exc)}"))
                    continue
                handler = handlers.get(type(event))
                if handler is None:
                    continue
                tables.set_partition(msg.partition)
                out = handler(event)
                if out:
                    emitted.append((record, out))
        finally:
            tables.flush()  # the state of every record handled so far, also when one raised
        for record, reason in dead:
            counters["sla_dead_lettered_total"][record.message.topic] += 1
            log.warning("dead-lettered", extra={"topic": record.message.topic, "offset": record.message.offset})
            await publisher.dead_letter(record, reason=reason, group=group)
        for record, outputs in emitted:
            msg = record.message
            headers = msg.headers.items() if isinstance(msg.headers, dict) else msg.headers
            # The span of the record that tipped a trigger, so the trigger continues its trace.
            with _tracer.start_as_current_span(f"{msg.topic} process", context=extract_context(headers), kind=SpanKind.CONSUMER):
                for output in outputs:
                    counters["sla_published_total"][str(getattr(output, "type"))] += 1
                    await publisher.publish(output)
        counters["sla_events_total"][topic] += len(records)

    def source(name: str) -> Any:
        return app.topic(topic_prefix + name, key_serializer="raw", value_serializer="raw", partitions=3)

    def agent(name: str, topic: str) -> Callable[[Callable[..., Any]], Any]:
        return app.agent(source(topic), name=f"sla.{name}")

    async def consume(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for records in stream.take_events(batch_size, within=batch_within):  # type: ignore[attr-defined]
            await handle_batch(records)
            yield None

    @agent("observe_requests", topics.TELEMETRY_REQUESTS)
    async def observe_requests(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for _ in consume(stream):
            yield None

    @agent("observe_page_loads", topics.TELEMETRY_PAGELOADS)
    async def observe_page_loads(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for _ in consume(stream):
            yield None

    @agent("observe_health", topics.HEALTH_CHECKS)
    async def observe_health(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for _ in consume(stream):
            yield None

    return {"observe_requests": observe_requests, "observe_page_loads": observe_page_loads, "observe_health": observe_health}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {' '.join(t.strip() for t in text[:3])}"[:500]
