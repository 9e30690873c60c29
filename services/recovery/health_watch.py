"""Inbound edge: what the apps report on `health.checks` (ProcessStatsReported, CircuitBreakerStateChanged),
read from now on by a group-less reader (nothing committed, every recovery instance sees every report) and
kept in memory for a while, so a verification can wait for the report that shows an action's effect."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from services.recovery.ports import Report
from shared.events import CircuitBreakerStateChanged, Event, ProcessStatsReported
from shared.kafka.codec import decode
from shared.settings import KafkaSettings
from shared.tasks import cancel_and_wait
from shared.topics import HEALTH_CHECKS

__all__ = ["HealthWatch", "Report"]

log = logging.getLogger(__name__)


class HealthWatch:
    def __init__(self, *, keep: int = 5000) -> None:
        self.seen: deque[Report] = deque(maxlen=keep)
        self.pids: dict[tuple[str, str], int] = {}  # (service, instance) -> the last PID reported
        self.ready = asyncio.Event()
        self._new = asyncio.Condition()

    async def add(self, event: Event) -> None:
        if not isinstance(event, (ProcessStatsReported, CircuitBreakerStateChanged)):
            return
        if isinstance(event, ProcessStatsReported):
            self.pids[(event.service, event.instance)] = event.pid
        self.seen.append(event)
        async with self._new:
            self._new.notify_all()

    async def wait_for(self, match: Callable[[Report], bool], *, since: datetime, timeout_s: float) -> Report | None:
        """The first report at or after `since` that `match`es (one already seen counts), or None."""
        async def first() -> Report:
            async with self._new:
                while True:
                    found = next((e for e in self.seen if e.time >= since and match(e)), None)
                    if found is not None:
                        return found
                    await self._new.wait()
        try:
            return await asyncio.wait_for(first(), timeout_s)
        except TimeoutError:
            return None

    @asynccontextmanager
    async def reading(self, settings: KafkaSettings) -> AsyncIterator[HealthWatch]:
        task = asyncio.create_task(self._read(settings), name="recovery-health-watch")
        try:
            yield self
        finally:
            await cancel_and_wait([task])

    async def _read(self, settings: KafkaSettings) -> None:
        backoff = 0.5
        while True:
            consumer = AIOKafkaConsumer(settings.topic_prefix + HEALTH_CHECKS, **settings.client_kwargs(),
                                        group_id=None, enable_auto_commit=False, auto_offset_reset="latest",
                                        metadata_max_age_ms=5000)
            try:
                await consumer.start()
                for _ in range(200):  # a topic that does not exist yet is assigned once it does
                    if consumer.assignment():
                        break
                    await asyncio.sleep(0.05)
                for tp in consumer.assignment():
                    await consumer.position(tp)  # fix the start offset before anything is produced
                self.ready.set()
                backoff = 0.5
                async for record in consumer:
                    await self._handle(record.topic, record.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Kafka away or not allowed: say so, retry
                log.warning("health watch: %s: %s; retrying in %.1f s", type(exc).__name__, exc, backoff)
            finally:
                self.ready.clear()
                await consumer.stop()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _handle(self, topic: str, value: bytes | None) -> None:
        if value is None:
            return
        try:
            await self.add(decode(topic, value))
        except (ValidationError, ValueError, KeyError):
            return  # a read-only view: the owning consumers dead-letter what does not parse
