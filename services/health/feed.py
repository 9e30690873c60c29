"""Inbound edge: Kafka -> SystemView. Two group-less readers (no offsets committed, nothing
left behind in the broker): the state topics from the beginning (compacted flags, incident
life cycles, triggers, budgets) and health.checks from now on. A record that does not
parse is counted and skipped: this is a read-only projection, the owning consumers DLQ it.
Kafka down at start or later: the readers retry with backoff and the API keeps answering."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from services.health.view import SystemView
from shared.events import contract_topic
from shared.kafka.codec import decode
from shared.settings import KafkaSettings
from shared.tasks import cancel_and_wait
from shared.topics import FLAGS_STATE, HEALTH_CHECKS, INCIDENTS_EVENTS, SLA_BUDGETS, SLA_TRIGGERS

__all__ = ["SystemFeed"]

log = logging.getLogger(__name__)
STATE_TOPICS = (FLAGS_STATE, INCIDENTS_EVENTS, SLA_TRIGGERS, SLA_BUDGETS)


class SystemFeed:
    def __init__(self, view: SystemView, settings: KafkaSettings) -> None:
        self.view = view
        self.settings = settings
        self.invalid = 0
        self.connected: dict[str, bool] = {"state": False, "live": False}
        self.ready = asyncio.Event()  # the live reader has its partitions

    def status(self) -> dict[str, Any]:
        return {"connected": all(self.connected.values()), "readers": dict(self.connected), "invalid": self.invalid}

    def handle(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            if contract_topic(topic) == FLAGS_STATE and key is not None:
                self.view.forget_flag(key.decode())
            return
        try:
            self.view.apply(decode(topic, value))
        except (ValidationError, ValueError, KeyError) as exc:
            self.invalid += 1
            log.warning("skipping invalid record on %s: %s", topic, type(exc).__name__)

    async def _read(self, name: str, topics: tuple[str, ...], reset: str) -> None:
        backoff = 0.5
        while True:
            consumer = AIOKafkaConsumer(
                *(self.settings.topic_prefix + t for t in topics), **self.settings.client_kwargs(),
                group_id=None, enable_auto_commit=False, auto_offset_reset=reset, metadata_max_age_ms=5000,
            )
            try:
                await consumer.start()
                for _ in range(200):  # a topic that does not exist yet is assigned once it does
                    if consumer.assignment():
                        break
                    await asyncio.sleep(0.05)
                for tp in consumer.assignment():
                    await consumer.position(tp)  # fix the start offset before anything is produced
                self.connected[name] = True
                if name == "live":
                    self.ready.set()
                backoff = 0.5
                async for record in consumer:
                    self.handle(record.topic, record.key, record.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Kafka away: say so, retry
                log.warning("status feed %s: %s; retrying in %.1f s", name, type(exc).__name__, backoff)
            finally:
                self.connected[name] = False
                await consumer.stop()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[SystemFeed]:
        tasks = [asyncio.create_task(self._read("state", STATE_TOPICS, "earliest"), name="feed-state"),
                 asyncio.create_task(self._read("live", (HEALTH_CHECKS,), "latest"), name="feed-live")]
        try:
            yield self
        finally:
            await cancel_and_wait(tasks)
