"""What a canary bake watches (Flagger's analysis, Argo Rollouts' AnalysisRun): from the moment it
starts, every `sla.triggers` TriggerFired for the app, and the new colour's own request outcomes on
`telemetry.requests` (so a bug that only the canary's share of users meets is caught at 10 %, long
before the service-wide error rate crosses the runbook's 5 %)."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from shared import topics
from shared.events import RequestsObserved, TriggerFired, parse
from shared.settings import KafkaSettings

__all__ = ["CanaryWatch", "Outcomes"]

log = logging.getLogger(__name__)


@dataclass
class Outcomes:
    requests: int = 0
    errors: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass
class CanaryWatch:
    service: str
    instance: str
    kafka: KafkaSettings
    error_rate_threshold: float = 0.05
    min_requests: int = 20
    canary: Outcomes = field(default_factory=Outcomes)
    fired: list[TriggerFired] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False, repr=False)

    def reset(self) -> None:
        """A new bake step judges only what it saw itself."""
        self.canary = Outcomes()

    def verdict(self) -> str | None:
        """Why to roll back now, or None."""
        if self.fired:
            t = self.fired[0]
            return f"sla trigger {t.trigger} fired for {t.service} ({t.value:g} > {t.threshold:g}, episode {t.episode_id})"
        c = self.canary
        if c.requests >= self.min_requests and c.error_rate > self.error_rate_threshold:
            return (f"canary {self.instance}: error rate {c.error_rate:.1%} > {self.error_rate_threshold:.0%} "
                    f"({c.errors} of {c.requests} requests)")
        return None

    def _take(self, topic: str, value: bytes | None) -> None:
        if value is None:
            return
        try:
            event = parse(topic, value)
        except (ValidationError, ValueError, KeyError):
            return  # not ours to judge: the consumers of these topics dead-letter it
        if isinstance(event, TriggerFired) and event.service == self.service and event.trigger != "budget_burn":
            self.fired.append(event)
            self.changed.set()
        elif isinstance(event, RequestsObserved) and event.instance == self.instance:
            self.canary.requests += event.count
            self.canary.errors += event.errors
            self.changed.set()

    async def start(self) -> CanaryWatch:
        """Read both topics from their ends (no consumer group: nothing committed, nothing shared); `stop()`
        ends it (or `async with watch:`)."""
        names = [self.kafka.topic_prefix + topics.SLA_TRIGGERS, self.kafka.topic_prefix + topics.TELEMETRY_REQUESTS]
        consumer = AIOKafkaConsumer(**self.kafka.client_kwargs(), enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            parts = [TopicPartition(t, p) for t in names for p in (consumer.partitions_for_topic(t)
                                                                   or await self._partitions(consumer, t))]
            consumer.assign(parts)
            await consumer.seek_to_end(*parts)
            for tp in parts:  # pin the end now: what arrives later is what the bake saw
                await consumer.position(tp)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._loop(consumer, names), name="canary-watch")
        return self

    async def __aenter__(self) -> CanaryWatch:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        task, consumer = self._task, self._consumer
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if consumer is not None:
            with suppress(Exception):
                await consumer.stop()
        self._task = self._consumer = None

    @staticmethod
    async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call for it
        found = consumer.partitions_for_topic(topic)
        if not found:
            raise RuntimeError(f"Kafka topic {topic} does not exist (run `python -m shared.topics create`)")
        return set(found)

    async def _loop(self, consumer: AIOKafkaConsumer, names: list[str]) -> None:
        contract = {n: n.removeprefix(self.kafka.topic_prefix) for n in names}
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for r in records:
                    self._take(contract[tp.topic], r.value)
