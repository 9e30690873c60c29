"""Ports a service core depends on, free of any framework: importing this loads no Kafka client,
no database driver and no OpenTelemetry SDK, so a core (`services/<svc>/service.py`) that names only
these stays testable with plain fakes (`shared.testing`). The adapters live at the edges:
`shared.kafka.KafkaPublisher` implements both publishers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, runtime_checkable

from shared.events import Event

__all__ = ["Publisher", "RawPublisher", "Headers", "Clock"]

Headers = list[tuple[str, bytes]]
Clock = Callable[[], datetime]  # the wall clock a core reads (aware UTC); tests pass a fixed or moving one


class Publisher(Protocol):
    """Publishes an event to its topic (`event.topic`, or `topic`); returns once the broker has it."""

    async def publish(self, event: Event, *, topic: str | None = None) -> None: ...


@runtime_checkable
class RawPublisher(Publisher, Protocol):
    """A publisher that can also send a record as is (a tombstone, a DLQ copy): what an outbox relay needs."""

    async def publish_raw(self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers) -> None: ...
