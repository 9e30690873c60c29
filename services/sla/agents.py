"""Inbound edge: raw records -> shared pydantic events -> SlaCore -> published events.

Each topic has one agent, which processes records in batches (`Batches`). Every
record is judged on its own: one that does not parse, whose key is not its service, or that the
core rejects (`validation.Rejected`) goes to `<topic>.dlq` with the reason in its headers (the
same headers as `shared.kafka.EventConsumer`); a replay of a record already counted is dropped
(`validation.Duplicate`); the rest of the batch goes on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import faust
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from services.sla.outbox import Outbox
from services.sla.service import SlaCore
from services.sla.tables import Tables
from services.sla.validation import Duplicate, Rejected
from shared import topics
from shared.events import (
    Event, HealthCheckCompleted, PageLoadObserved, ProcessStatsReported, RequestsObserved, TriggerCleared, TriggerFired,
)
from shared.kafka.codec import decode, encode
from shared.kafka.dlq import dlq_headers, first_line
from shared.telemetry import extract_context, inject_headers

__all__ = ["FaustPublisher", "Counters", "Batches", "Progress", "register_agents", "refuse", "decode_or_refuse", "SOURCE"]

SOURCE = "/safeguard/sla"
log = logging.getLogger(__name__)
_tracer = trace.get_tracer("safeguard.sla")

Counters = dict[str, Counter[str]]


class Progress:
    """The batches in hand, and since when. An agent handles its batches one after another, and a batch ends only
    once the broker has acked its writes: one held past `stall_after` (a changelog write the broker keeps refusing,
    a broker that accepts connections and answers nothing) holds back every later record of its topic, so no
    trigger is computed from them, while the process and its web server look fine. `stalled()` says so, and
    /healthz answers 503 with it: the health service's watchdog then fires `unresponsive` and recovery restarts
    the worker, as for a hung process."""

    def __init__(self, *, stall_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after, self.clock = stall_after, clock
        self._since: dict[int, tuple[float, str]] = {}  # batch -> (started, its topic)
        self._count = 0

    @contextmanager
    def batch(self, topic: str) -> Iterator[None]:
        self._count += 1
        token = self._count
        self._since[token] = (self.clock(), topic)
        try:
            yield
        finally:
            del self._since[token]

    def stalled(self) -> str | None:
        """Why the agents are stalled, or None."""
        if not self._since:
            return None
        started, topic = min(self._since.values())
        held = self.clock() - started
        if held <= self.stall_after:
            return None
        return (f"an SLA agent has been on one batch of {topic} for {held:.0f} s (more than {self.stall_after:g} s): "
                "the broker has not acked its writes, and the topic's later records wait behind it")


class FaustPublisher:
    """Publishes events on `<prefix><event.topic>` with CloudEvents headers and traceparent.

    `publish` and `dead_letter` return once the broker acked the record (or raise after `timeout_s`)."""

    def __init__(self, app: faust.App, *, topic_prefix: str, timeout_s: float = 10.0, partitions: int = 3) -> None:
        self.app = app
        self.partitions = partitions
        self.topic_prefix = topic_prefix
        self.timeout_s = timeout_s
        self._topics: dict[str, Any] = {}

    def topic(self, name: str) -> Any:
        if name not in self._topics:
            self._topics[name] = self.app.topic(name, key_serializer="raw", value_serializer="raw", partitions=self.partitions)
        return self._topics[name]

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        topic = topic or self.topic_prefix + event.topic
        key, value, headers = encode(event, source=SOURCE)
        with _tracer.start_as_current_span(f"{topic} publish", kind=SpanKind.PRODUCER, attributes={
                "messaging.system": "kafka", "messaging.destination.name": topic,
                "messaging.message.id": str(event.id)}):
            await self._send(topic, key=key, value=value, headers=headers + inject_headers())

    async def dead_letter(self, record: Any, *, reason: str, group: str) -> None:
        msg = record.message
        headers = dlq_headers(_headers(record), reason=reason, topic=msg.topic, partition=msg.partition, offset=msg.offset,
                              group=group)
        await self._send(topics.dlq(msg.topic), key=msg.key, value=msg.value, headers=headers)

    async def _send(self, topic: str, *, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        acked = await self.topic(topic).send(key=key, value=value, headers=headers)
        await asyncio.wait_for(asyncio.shield(acked), self.timeout_s)


_SOURCES = (  # agent name -> input topic
    ("observe_requests", topics.TELEMETRY_REQUESTS),
    ("observe_page_loads", topics.TELEMETRY_PAGELOADS),
    ("observe_health", topics.HEALTH_CHECKS),
)


def register_agents(
    app: faust.App, *, core: SlaCore, tables: Tables, publisher: Any, outbox: Outbox, topic_prefix: str,
    counters: Counters, batch_size: int = 1000, batch_within: float = 0.05, partitions: int = 3,
    max_in_flight: int = 10_000, progress: Progress | None = None,
) -> dict[str, Any]:
    """Define one agent per input topic (`_SOURCES`), each taking up to `batch_size` records or what came
    within `batch_within` seconds and handing them to one `Batches`. `publisher` has `publish(event)` and
    `dead_letter(record, ...)`; `progress` follows the batches in hand. Returns the agents by name."""
    batches = Batches(core=core, tables=tables, publisher=publisher, outbox=outbox, counters=counters,
                      group=app.conf.id, max_in_flight=max_in_flight, progress=progress)

    def consumer() -> Callable[[faust.StreamT[bytes]], AsyncIterator[None]]:
        async def consume(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
            async for records in stream.take_events(batch_size, within=batch_within):  # type: ignore[attr-defined]
                await batches.handle_batch(records)
                yield None
        return consume

    agents: dict[str, Any] = {}
    for name, topic in _SOURCES:
        source = app.topic(topic_prefix + topic, key_serializer="raw", value_serializer="raw", partitions=partitions)
        agents[name] = app.agent(source, name=f"sla.{name}")(consumer())
    return agents


class Batches:
    """One batch of records, from any input topic, through the core and out.

    Per batch: every record is parsed and run through the core (state in `tables`' write-back
    overlays), then the changed table keys go to the changelogs once, then the dead letters, the
    budget reports and (through `outbox`, which marks them sent) the trigger events are sent; the
    batch then waits for the broker's acks of its changelog writes (`Tables.written`), and the
    records are acked after that (Faust's `take_events`), so offsets never run ahead of the state
    on the changelog, and a trigger not yet sent is still in the outbox after a crash. The batch
    waits for the broker's acks of its dead letters and triggers, not of its budget reports (up to
    `max_in_flight` of those may be unacked).
    """

    def __init__(self, *, core: SlaCore, tables: Tables, publisher: Any, outbox: Outbox, counters: Counters,
                 group: str, max_in_flight: int, progress: Progress | None = None) -> None:
        self.handlers: dict[type[Event], Callable[[Any], list[Event]]] = {
            RequestsObserved: core.observe_requests,
            PageLoadObserved: core.observe_page_load,
            HealthCheckCompleted: core.observe_probe,
            ProcessStatsReported: core.observe_process,
        }
        self.tables, self.publisher, self.outbox, self.counters = tables, publisher, outbox, counters
        self.group, self.max_in_flight = group, max_in_flight
        self.in_flight: set[asyncio.Future[Any]] = set()
        self.progress = progress or Progress(stall_after=float("inf"))

    async def handle_batch(self, records: Sequence[Any]) -> None:
        with self.progress.batch(records[0].message.topic):
            await self._handle_batch(records)

    async def _handle_batch(self, records: Sequence[Any]) -> None:
        emitted: list[tuple[Any, list[Event]]] = []
        dead: list[tuple[Any, str]] = []
        try:
            for record in records:
                out = self.handle(record, dead)
                if out:
                    emitted.append((record, out))
        finally:
            self.tables.flush()  # the state of every record handled so far, also when one raised
        await self.dead_letter(dead)
        await self.publish_reports(emitted)
        await self.publish_triggers(emitted)
        await self.tables.written()  # sent with the outputs above; all acked before the batch's records are
        self.counters["sla_events_total"][records[0].message.topic] += len(records)

    def handle(self, record: Any, dead: list[tuple[Any, str]]) -> list[Event]:
        """The outputs of one record; a record the core must not count lands in `dead` with the reason."""
        msg = record.message
        try:
            event = decode(msg.topic, record.value)
        except (ValidationError, ValueError, KeyError) as exc:
            dead.append((record, f"invalid event: {first_line(exc)}"))
            return []
        handler = self.handlers.get(type(event))
        if handler is None:
            return []
        if msg.key != event.key.encode():
            dead.append((record, f"rejected: record key {msg.key!r} does not match service {event.key!r}"))
            return []
        self.tables.set_partition(msg.partition)
        try:
            return handler(event)
        except Duplicate:
            self.counters["sla_duplicates_total"][msg.topic] += 1
        except Rejected as exc:
            dead.append((record, f"rejected: {exc}"[:500]))
        except Exception as exc:  # noqa: BLE001 - a record the core cannot handle must not stop the stream
            log.exception("sla core failed on a record", extra={"topic": msg.topic, "offset": msg.offset})
            dead.append((record, f"processing failed: {first_line(exc)}"))
        return []

    async def dead_letter(self, dead: list[tuple[Any, str]]) -> None:
        """All sent at once, all acked before the batch's offsets are."""
        await asyncio.gather(*(refuse(record, reason, publisher=self.publisher, counters=self.counters, group=self.group)
                               for record, reason in dead))

    async def publish_triggers(self, emitted: list[tuple[Any, list[Event]]]) -> None:
        triggers = [(r, e) for r, out in emitted for e in out if isinstance(e, _TRIGGERS)]
        if not triggers:
            return
        touched = {getattr(e, "service"): r.message.partition for r, e in triggers}
        await self.outbox.publish(sorted(touched), headers={str(e.id): _headers(r) for r, e in triggers},
                                  partitions=touched, sources={str(e.id): r.message.topic for r, e in triggers})

    async def publish_reports(self, emitted: list[tuple[Any, list[Event]]]) -> None:
        """Budget reports go out without the batch waiting for the broker's acks (a lost one is replaced by
        the next, every `report_every`); only past `max_in_flight` unacked does a batch wait for some."""
        for record, outputs in emitted:
            if all(isinstance(o, _TRIGGERS) for o in outputs):
                continue
            with _tracer.start_as_current_span(f"{record.message.topic} process", context=extract_context(_headers(record)),
                                               kind=SpanKind.CONSUMER):
                for output in outputs:
                    if not isinstance(output, _TRIGGERS):
                        sent = asyncio.ensure_future(self.publisher.publish(output))
                        sent.add_done_callback(functools.partial(self._reported, str(getattr(output, "type"))))
                        self.in_flight.add(sent)
        while len(self.in_flight) > self.max_in_flight:
            await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)

    def _reported(self, kind: str, sent: asyncio.Future[Any]) -> None:
        self.in_flight.discard(sent)
        error = None if sent.cancelled() else sent.exception()
        if sent.cancelled() or error is not None:
            log.error("could not publish %s", kind, exc_info=error)
            self.counters["sla_publish_failures_total"][kind] += 1
        else:
            self.counters["sla_published_total"][kind] += 1


async def refuse(record: Any, reason: str, *, publisher: Any, counters: Counters, group: str) -> None:
    """Dead-letter `record` (`publisher.dead_letter`: to `<topic>.dlq`, `shared.kafka.dlq` headers), counted and logged."""
    counters["sla_dead_lettered_total"][record.message.topic] += 1
    log.warning("dead-lettered", extra={"topic": record.message.topic, "offset": record.message.offset, "reason": reason})
    await publisher.dead_letter(record, reason=reason, group=group)


async def decode_or_refuse(record: Any, *, keyed_by: str | None, publisher: Any, counters: Counters,
                           group: str) -> Event | None:
    """The record's event, or None once it is dead-lettered: it does not parse, or (`keyed_by` names what the
    key identifies) its record key is not the event's key."""
    try:
        event = decode(record.message.topic, record.value)
    except (ValidationError, ValueError, KeyError) as exc:
        await refuse(record, f"invalid event: {first_line(exc)}", publisher=publisher, counters=counters, group=group)
        return None
    if keyed_by is not None and record.message.key != event.key.encode():
        await refuse(record, f"rejected: record key {record.message.key!r} does not match {keyed_by} {event.key!r}",
                     publisher=publisher, counters=counters, group=group)
        return None
    return event


_TRIGGERS = (TriggerFired, TriggerCleared)


def _headers(record: Any) -> Any:
    headers = record.message.headers
    return headers.items() if isinstance(headers, dict) else headers

