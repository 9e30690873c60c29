"""At-least-once consumption with typed handlers, dedupe on ce_id, bounded retries and a DLQ.

Offsets are committed only after every record of a batch was handled, dead-lettered or
skipped as a duplicate, so a crash or restart redelivers instead of losing. A record that
does not parse, or whose handler keeps failing, is copied to `<topic>.dlq` with the
reason in its headers and the consumer moves on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from shared.events import Event
from shared.kafka.codec import decode, header
from shared.kafka.dedupe import Dedupe, MemoryDedupe, RedisDedupe
from shared.settings import KafkaSettings
from shared.telemetry import extract_context
from shared.topics import dlq

__all__ = ["EventConsumer", "Handler", "ConsumerStats", "start_service_consumer"]

Handler = Callable[[Any], Awaitable[None]]
log = logging.getLogger(__name__)
_tracer = trace.get_tracer("safeguard.kafka")


@dataclass
class ConsumerStats:
    handled: int = 0
    duplicates: int = 0
    ignored: int = 0
    retried: int = 0
    dead_lettered: int = 0


class EventConsumer:
    """Consume `topics` in consumer group `group_id`, calling one handler per event class."""

    def __init__(
        self,
        *,
        topics: Sequence[str],
        group_id: str,
        handlers: Mapping[type[Event], Handler],
        settings: KafkaSettings,
        dedupe: Dedupe | None = None,
        auto_offset_reset: str = "earliest",
        max_batch: int = 500,
    ) -> None:
        self.topics = list(topics)
        self.group_id = group_id
        self.handlers = dict(handlers)
        self.settings = settings
        self.dedupe = dedupe or MemoryDedupe()
        self.auto_offset_reset = auto_offset_reset
        self.max_batch = max_batch
        self.stats = ConsumerStats()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()

    @asynccontextmanager
    async def running(self, *, drain_timeout_s: float = 10.0) -> AsyncIterator[EventConsumer]:
        """Start, consume in a background task, and on exit finish the record in hand, commit, stop."""
        await self.start()
        task = asyncio.create_task(self.run(), name=f"consume:{self.group_id}")
        try:
            yield self
        finally:
            self._stopping.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), drain_timeout_s)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self.stop()

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            **self.settings.client_kwargs(), enable_idempotence=True, acks="all"
        )
        self._consumer = AIOKafkaConsumer(
            *self.topics,
            **self.settings.client_kwargs(),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self.auto_offset_reset,
        )
        await self._producer.start()
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def wait_assigned(self, timeout_s: float = 30.0) -> None:
        """Wait until the group has given this consumer its partitions."""
        assert self._consumer is not None
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self._consumer.assignment():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no partitions assigned to {self.group_id} within {timeout_s}s")
            await asyncio.sleep(0.05)

    async def run(self) -> None:
        """Consume until `running()` exits; offsets are committed after handling, per partition."""
        assert self._consumer is not None
        while not self._stopping.is_set():
            batches = await self._consumer.getmany(timeout_ms=200, max_records=self.max_batch)
            for tp, records in batches.items():
                done = None
                for record in records:
                    if self._stopping.is_set():
                        break
                    await self.process(record)
                    done = record.offset
                if done is not None:
                    await self._consumer.commit({tp: done + 1})

    async def process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            event = decode(record.topic, record.value)
        except (ValidationError, ValueError, KeyError) as exc:
            await self._dead_letter(record, f"invalid event: {_first_line(exc)}")
            return
        handler = self.handlers.get(type(event))
        if handler is None:
            self.stats.ignored += 1
            return
        event_id = header(record.headers, "ce_id") or str(event.id)
        if await self.dedupe.seen(event_id):
            self.stats.duplicates += 1
            return
        ctx = extract_context(record.headers)
        with _tracer.start_as_current_span(f"{record.topic} process", context=ctx, kind=SpanKind.CONSUMER) as span:
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.destination.name", record.topic)
            span.set_attribute("messaging.consumer.group.name", self.group_id)
            span.set_attribute("messaging.message.id", event_id)
            if await self._handle_with_retries(handler, event, record):
                await self.dedupe.mark(event_id)
                self.stats.handled += 1

    async def _handle_with_retries(self, handler: Handler, event: Event, record: ConsumerRecord[bytes, bytes]) -> bool:
        attempts = self.settings.consumer_max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                await handler(event)
                return True
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failing handler must not stop the stream
                if attempt == attempts:
                    log.exception("handler failed, dead-lettering", extra={"topic": record.topic, "offset": record.offset})
                    await self._dead_letter(record, f"handler failed after {attempts} attempts: {_first_line(exc)}")
                    return False
                self.stats.retried += 1
                await asyncio.sleep(self.settings.consumer_retry_backoff_s * 2 ** (attempt - 1))
        return False

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        assert self._producer is not None
        headers = list(record.headers or ()) + [
            ("dlq_reason", reason.encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
            ("dlq_group", self.group_id.encode()),
        ]
        await self._producer.send_and_wait(dlq(record.topic), value=record.value, key=record.key, headers=headers)
        self.stats.dead_lettered += 1
        log.warning("dead-lettered", extra={"topic": record.topic, "offset": record.offset, "reason": reason})

    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment()) if self._consumer else set()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {' '.join(t.strip() for t in text[:3])}"[:500]


async def start_service_consumer(
    stack: AsyncExitStack, *, topics: Sequence[str], group_id: str, handlers: Mapping[type[Event], Handler],
    kafka: KafkaSettings, redis_url: str,
) -> EventConsumer:
    """A service's consumer group on `topics` (with the settings' topic prefix), deduped in Redis, running
    until `stack` closes."""
    import redis.asyncio as aioredis

    redis = aioredis.from_url(redis_url)
    stack.push_async_callback(redis.aclose)
    prefix = kafka.topic_prefix
    consumer = EventConsumer(topics=[prefix + t for t in topics], group_id=prefix + group_id, handlers=handlers,
                             settings=kafka, dedupe=RedisDedupe(redis, namespace=prefix + group_id))
    await stack.enter_async_context(consumer.running())
    return consumer
