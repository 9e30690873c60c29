"""Publishing events: idempotent producer, acks=all, CloudEvents headers, W3C traceparent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from shared.events import Event
from shared.kafka.codec import Headers, encode
from shared.ports import Publisher, RawPublisher
from shared.settings import KafkaSettings
from shared.telemetry import inject_headers

__all__ = ["Publisher", "RawPublisher", "KafkaPublisher"]

_tracer = trace.get_tracer("safeguard.kafka")


class KafkaPublisher:
    """Sends events to their topic (`event.topic`) keyed by their aggregation key."""

    def __init__(self, producer: AIOKafkaProducer, *, source: str, topic_prefix: str = "") -> None:
        self.producer = producer
        self.source = source
        self.topic_prefix = topic_prefix

    @classmethod
    @asynccontextmanager
    async def start(cls, settings: KafkaSettings, *, source: str) -> AsyncIterator[KafkaPublisher]:
        producer = AIOKafkaProducer(
            **settings.client_kwargs(),
            client_id=f"{settings.client_id}-{source.rsplit('/', 1)[-1]}",
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
        )
        await producer.start()
        try:
            yield cls(producer, source=source, topic_prefix=settings.topic_prefix)
        finally:
            await producer.stop()

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        """Send and wait for the broker's ack (so a returned call means the event is durable)."""
        topic = topic or self.topic_prefix + event.topic
        with _tracer.start_as_current_span(f"{topic} publish", kind=SpanKind.PRODUCER) as span:
            key, value, headers = encode(event, source=self.source)
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.destination.name", topic)
            span.set_attribute("messaging.message.id", str(event.id))
            await self.producer.send_and_wait(topic, value=value, key=key, headers=headers + inject_headers())

    async def publish_raw(self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        """Send a record as is (DLQ copies, tombstones)."""
        await self.producer.send_and_wait(topic, value=value, key=key, headers=headers)
