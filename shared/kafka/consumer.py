"""At-least-once consumption with typed handlers, dedupe on ce_id, bounded retries and a DLQ.

Offsets are committed only after every record of a batch was handled, dead-lettered or
skipped as a duplicate, so a crash or restart redelivers instead of losing. A record that
does not parse, or whose handler keeps failing, is copied to `<topic>.dlq` with the
reason in its headers and the consumer moves on.

Every step of the loop (fetch, dedupe, handler, DLQ send, commit) is retried with capped,
jittered exponential backoff (`ConsumerPolicy`). A failing dedupe store never skips a record
(it is handled again), a commit refused after a rebalance is dropped (its records come again),
and a step that still fails ends the process loudly (`exit_process`) so it is restarted,
never a dead task in a living process. `shared.kafka.liveness` shows the loop to `/healthz`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from shared.events import Event
from shared.kafka.codec import decode, header
from shared.kafka.dedupe import Dedupe, MemoryDedupe, RedisDedupe, TolerantDedupe
from shared.kafka.dlq import dlq_headers, first_line
from shared.kafka.liveness import ConsumerLiveness, register, unregister
from shared.kafka.retry import ConsumerPolicy, RetriesExhausted, retry
from shared.settings import KafkaSettings
from shared import tasks
from shared.telemetry import extract_context
from shared.topics import dlq

__all__ = ["EventConsumer", "Handler", "ConsumerStats", "start_service_consumer"]

Handler = Callable[[Any], Awaitable[object]]  # what it returns is not used
Batches = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
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
        policy: ConsumerPolicy | None = None,
        exit_process: Callable[[str], None] | None = None,
    ) -> None:
        self.topics = list(topics)
        self.group_id = group_id
        self.handlers = dict(handlers)
        self.settings = settings
        self.policy = policy or ConsumerPolicy()
        self.exit_process = exit_process
        self.liveness = ConsumerLiveness(group=group_id, topics=self.topics, stuck_after_s=self.policy.stuck_after_s)
        self.dedupe = TolerantDedupe(dedupe or MemoryDedupe(), attempts=self.policy.dedupe_attempts,
                                     timeout_s=self.policy.dedupe_timeout_s, rest_s=self.policy.dedupe_rest_s,
                                     on_fallback=self._dedupe_fell_back)
        self.auto_offset_reset = auto_offset_reset
        self.max_batch = max_batch
        self.stats = ConsumerStats()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self._next: dict[TopicPartition, int] = {}
        self._assigned: frozenset[TopicPartition] = frozenset()

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
        self.liveness.since = time.monotonic()
        register(self.liveness)
        try:
            await self._start_clients()
        except BaseException:
            unregister(self.liveness)
            raise

    async def _start_clients(self) -> None:
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
        unregister(self.liveness)
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
        """Consume until `running()` exits; offsets are committed after handling, per partition.

        A step that still fails after its retries, or an error nobody expected, ends the process.
        """
        consumer = self._consumer
        assert consumer is not None
        try:
            while not self._stopping.is_set():
                batches: Batches = await self._step(
                    "fetch", lambda: consumer.getmany(timeout_ms=200, max_records=self.max_batch))
                self._observe(consumer, batches)
                for tp, records in batches.items():
                    await self._consume(consumer, tp, records)
        except RetriesExhausted as exc:
            self._give_up(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in the loop ends the process, loudly, never just the task
            log.exception("consumer %s crashed", self.group_id)
            self._give_up(f"consumer loop crashed: {first_line(exc)}")

    async def _consume(self, consumer: AIOKafkaConsumer, tp: TopicPartition,
                       records: list[ConsumerRecord[bytes, bytes]]) -> None:
        done = None
        for record in records:
            if self._stopping.is_set():
                break
            await self.process(record)
            done = record.offset
            self._next[tp] = done + 1
            self.liveness.polled(now=time.monotonic())
        if done is not None:
            await self._commit(consumer, tp, done + 1)

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            await self._step("commit", lambda: consumer.commit({tp: offset}),
                             passthrough=(CommitFailedError, IllegalStateError))
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("commit of %s up to %d refused after a rebalance (%s); those records come again",
                        tp, offset, first_line(exc))
            await self._reseek(consumer, tp)
            return
        self.liveness.last_commit = time.monotonic()

    async def _reseek(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        """Still ours: read again from the last commit. Not ours: its new owner reads it from there."""
        if tp not in consumer.assignment():
            return
        try:
            await asyncio.wait_for(consumer.seek_to_committed(tp), self.policy.step_timeout_s)
        except Exception as exc:  # noqa: BLE001 - the rebalance that follows resets the position anyway
            log.warning("could not seek %s back to its commit: %s", tp, first_line(exc))

    async def _step(self, step: str, call: Callable[[], Awaitable[Any]], *,
                    passthrough: tuple[type[BaseException], ...] = ()) -> Any:
        p = self.policy
        result = await retry(step, call, attempts=p.attempts, initial_s=p.backoff_initial_s, max_s=p.backoff_max_s,
                             timeout_s=p.step_timeout_s, on_retry=self._retrying, passthrough=passthrough)
        if self.liveness.state == "retrying":
            self.liveness.state = "running"
        return result

    def _retrying(self, step: str, exc: BaseException, attempt: int, delay: float) -> None:
        self.liveness.state = "retrying"
        self.liveness.retries += 1
        self.liveness.last_error = f"{step}: {first_line(exc)}"
        log.warning("consumer %s: %s failed (try %d of %d), again in %.1f s: %s", self.group_id, step, attempt,
                    self.policy.attempts, delay, first_line(exc))

    def _give_up(self, reason: str) -> None:
        self.liveness.state = "dead"
        self.liveness.last_error = reason
        if self._stopping.is_set():  # already shutting down: what was not committed comes again
            log.error("consumer %s gave up while stopping: %s", self.group_id, reason)
            return
        log.critical("consumer %s gave up: %s; ending the process so that it is restarted", self.group_id, reason)
        (self.exit_process or tasks.exit_process)(f"Kafka consumer {self.group_id} gave up: {reason}")

    def _dedupe_fell_back(self, what: str, exc: BaseException) -> None:
        self.liveness.dedupe_fallbacks += 1
        self.liveness.last_dedupe_fallback = time.monotonic()
        self.liveness.last_error = f"{what}: {first_line(exc)}"

    def _observe(self, consumer: AIOKafkaConsumer, batches: Batches) -> None:
        """Liveness after a fetch: the loop polled; when the broker last answered; partitions; lag."""
        now = time.monotonic()
        live = self.liveness
        live.polled(now=now)
        assigned = frozenset(consumer.assignment())
        if assigned != self._assigned or any(batches.values()):
            live.last_fetch = now
        self._assigned = assigned
        live.assigned = len(assigned)
        answered = [ts for ts in (consumer.last_poll_timestamp(tp) for tp in assigned) if ts]
        if answered:
            age = max(0.0, time.time() - max(answered) / 1000)
            live.last_fetch = max(live.last_fetch or 0.0, now - age)
        marks = {tp: hw for tp in assigned if (hw := consumer.highwater(tp)) is not None}
        live.lag = sum(max(0, hw - self._next.get(tp, hw)) for tp, hw in marks.items()) if marks else None

    async def process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            event = decode(record.topic, record.value)
        except (ValidationError, ValueError, KeyError) as exc:
            await self._dead_letter(record, f"invalid event: {first_line(exc)}")
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

        def count(step: str, exc: BaseException, attempt: int, delay: float) -> None:
            self.stats.retried += 1

        try:
            await retry("handler", lambda: handler(event), attempts=attempts,
                        initial_s=self.settings.consumer_retry_backoff_s, max_s=self.policy.backoff_max_s,
                        on_retry=count)
            return True
        except RetriesExhausted as exc:
            log.warning("handler failed, dead-lettering", exc_info=exc.last,
                        extra={"topic": record.topic, "offset": record.offset})
            await self._dead_letter(record, f"handler failed after {attempts} attempts: {first_line(exc.last)}")
            return False

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        producer = self._producer
        assert producer is not None
        headers = dlq_headers(record.headers, reason=reason, topic=record.topic, partition=record.partition,
                              offset=record.offset, group=self.group_id)
        await self._step("DLQ send", lambda: producer.send_and_wait(
            dlq(record.topic), value=record.value, key=record.key, headers=headers))
        self.stats.dead_lettered += 1
        log.warning("dead-lettered", extra={"topic": record.topic, "offset": record.offset, "reason": reason})

    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment()) if self._consumer else set()


async def start_service_consumer(
    stack: AsyncExitStack, *, topics: Sequence[str], group_id: str, handlers: Mapping[type[Event], Handler],
    kafka: KafkaSettings, redis_url: str,
) -> EventConsumer:
    """A service's consumer group on `topics` (with the settings' topic prefix), deduped in Redis, running
    until `stack` closes."""
    import redis.asyncio as aioredis

    policy = ConsumerPolicy()
    redis = aioredis.from_url(redis_url, socket_timeout=policy.dedupe_timeout_s,
                              socket_connect_timeout=policy.dedupe_timeout_s)
    stack.push_async_callback(redis.aclose)
    prefix = kafka.topic_prefix
    consumer = EventConsumer(topics=[prefix + t for t in topics], group_id=prefix + group_id, handlers=handlers,
                             settings=kafka, dedupe=RedisDedupe(redis, namespace=prefix + group_id), policy=policy)
    await stack.enter_async_context(consumer.running())
    return consumer
