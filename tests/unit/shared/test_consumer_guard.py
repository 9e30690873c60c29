"""The consumer loop under failing steps, with fake Kafka clients and fake dedupe stores (no network)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError
from fastapi import FastAPI

from shared.events import TriggerFired
from shared.http import healthz_router
from shared.kafka import EventConsumer
from shared.kafka.codec import encode
from shared.kafka.dedupe import MemoryDedupe, TolerantDedupe
from shared.kafka.liveness import register, unregister
from shared.kafka.retry import ConsumerPolicy
from shared.settings import KafkaSettings
from shared.testing.fakes import FakeClock
from shared.topics import SLA_TRIGGERS, dlq

TP = TopicPartition(SLA_TRIGGERS, 0)


def record(offset: int, value: bytes | None = None) -> ConsumerRecord[bytes, bytes]:
    event = TriggerFired(service="shop", trigger="error_rate_high", episode_id=f"ep-{offset}", value=0.2,
                         threshold=0.05, window_seconds=60)
    key, body, headers = encode(event, source="/tests")
    body = body if value is None else value
    return ConsumerRecord(SLA_TRIGGERS, 0, offset, 0, 0, key, body, None, len(key), len(body), headers)


class FakeKafka:
    """Stands in for AIOKafkaConsumer: scripted batches, scripted fetch and commit failures."""

    def __init__(self, batches: list[dict[TopicPartition, list[Any]]]) -> None:
        self.batches = list(batches)
        self.fetch_errors: list[BaseException] = []
        self.commit_errors: list[BaseException] = []
        self.committed: list[dict[TopicPartition, int]] = []
        self.seeks: list[TopicPartition] = []
        self.fetch_ts: int | None = int(time.time() * 1000)
        self.hw: int | None = None

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        if self.fetch_errors:
            raise self.fetch_errors.pop(0)
        await asyncio.sleep(0.001)
        return self.batches.pop(0) if self.batches else {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.commit_errors:
            raise self.commit_errors.pop(0)
        self.committed.append(dict(offsets))

    async def seek_to_committed(self, *tps: TopicPartition) -> None:
        self.seeks += tps

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def last_poll_timestamp(self, tp: TopicPartition) -> int | None:
        return self.fetch_ts

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.hw


class FakeProducer:
    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.always: BaseException | None = None
        self.sent: list[tuple[str, bytes | None]] = []

    async def send_and_wait(self, topic: str, *, value: bytes | None, key: bytes | None, headers: Any) -> None:
        if self.always is not None:
            raise self.always
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((topic, value))


class BrokenDedupe:
    """A dedupe store that refuses (Redis down) or hangs (Redis SIGSTOPped)."""

    def __init__(self, *, hang: bool = False) -> None:
        self.hang = hang
        self.calls = 0

    async def seen(self, event_id: str) -> bool:
        return await self._fail()

    async def mark(self, event_id: str) -> None:
        await self._fail()

    async def _fail(self) -> bool:
        self.calls += 1
        if self.hang:
            await asyncio.Event().wait()
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")


POLICY = ConsumerPolicy(attempts=3, backoff_initial_s=0.001, backoff_max_s=0.004, step_timeout_s=1.0,
                        stuck_after_s=30.0, dedupe_attempts=2, dedupe_timeout_s=0.05, dedupe_rest_s=0.0)


class Rig:
    def __init__(self, batches: list[dict[TopicPartition, list[Any]]], *, dedupe: Any = None,
                 policy: ConsumerPolicy = POLICY) -> None:
        self.handled: list[str] = []
        self.exits: list[str] = []
        self.kafka = FakeKafka(batches)
        self.producer = FakeProducer()

        async def handle(event: TriggerFired) -> None:
            self.handled.append(event.episode_id)

        self.consumer = EventConsumer(topics=[SLA_TRIGGERS], group_id="g", handlers={TriggerFired: handle},
                                      settings=KafkaSettings(consumer_retry_backoff_s=0.001), dedupe=dedupe,
                                      policy=policy, exit_process=self.exits.append)
        self.consumer._consumer = self.kafka  # type: ignore[assignment]
        self.consumer._producer = self.producer  # type: ignore[assignment]

    async def run_until(self, cond: Callable[[], bool], timeout: float = 5.0) -> None:
        task = asyncio.create_task(self.consumer.run())
        deadline = time.monotonic() + timeout
        try:
            while not cond():
                assert not task.done() or cond(), "the consumer loop ended before the condition held"
                assert time.monotonic() < deadline, "condition not met in time"
                await asyncio.sleep(0.005)
        finally:
            self.consumer._stopping.set()
            await asyncio.wait_for(task, 5)


async def test_a_commit_refused_after_a_rebalance_does_not_end_the_consumer() -> None:
    rig = Rig([{TP: [record(0), record(1)]}, {TP: [record(2)]}])
    rig.kafka.commit_errors = [CommitFailedError("group rebalanced")]
    await rig.run_until(lambda: rig.kafka.committed == [{TP: 3}])
    assert rig.handled == ["ep-0", "ep-1", "ep-2"]
    assert rig.kafka.seeks == [TP], "the partition is read again from its last commit"
    assert rig.exits == []


async def test_a_transient_commit_error_is_retried_with_backoff() -> None:
    rig = Rig([{TP: [record(0)]}])
    rig.kafka.commit_errors = [KafkaConnectionError("broker gone"), KafkaConnectionError("broker gone")]
    await rig.run_until(lambda: bool(rig.kafka.committed))
    assert rig.kafka.committed == [{TP: 1}]
    assert rig.consumer.liveness.retries == 2 and rig.consumer.liveness.state == "running"
    assert rig.consumer.liveness.last_commit is not None
    assert rig.exits == []


async def test_a_failing_dlq_send_is_retried_and_the_stream_goes_on() -> None:
    rig = Rig([{TP: [record(0, value=b"{not json"), record(1)]}])
    rig.producer.errors = [KafkaConnectionError("broker gone")]
    await rig.run_until(lambda: rig.kafka.committed == [{TP: 2}])
    assert [topic for topic, _ in rig.producer.sent] == [dlq(SLA_TRIGGERS)]
    assert rig.handled == ["ep-1"] and rig.consumer.stats.dead_lettered == 1
    assert rig.exits == []


async def test_a_dlq_that_never_accepts_ends_the_process_and_commits_nothing() -> None:
    rig = Rig([{TP: [record(0, value=b"{not json"), record(1)]}])
    rig.producer.always = KafkaConnectionError("broker gone")
    await rig.run_until(lambda: bool(rig.exits))
    assert len(rig.exits) == 1 and "DLQ send failed 3 times" in rig.exits[0]
    assert rig.kafka.committed == [], "the poison record is not committed: the next process gets it again"
    assert rig.consumer.liveness.state == "dead"


async def test_fetch_errors_past_the_retries_end_the_process_and_healthz_fails() -> None:
    rig = Rig([])
    rig.kafka.fetch_errors = [KafkaConnectionError("no broker")] * 3
    await rig.run_until(lambda: bool(rig.exits))
    assert "fetch failed 3 times" in rig.exits[0]
    app = FastAPI()
    app.include_router(healthz_router("svc"))
    register(rig.consumer.liveness)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            r = await client.get("/healthz")
    finally:
        unregister(rig.consumer.liveness)
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "fail" and body["consumers"][0]["state"] == "dead"
    assert body["consumers"][0]["problem"].startswith("dead: fetch failed 3 times")


async def test_an_unexpected_error_in_the_loop_ends_the_process_not_just_the_task() -> None:
    rig = Rig([{TP: [record(0)]}])

    def broken() -> set[TopicPartition]:
        raise RuntimeError("bug")

    rig.kafka.assignment = broken  # type: ignore[method-assign]
    await rig.run_until(lambda: bool(rig.exits))
    assert "consumer loop crashed: RuntimeError: bug" in rig.exits[0]


@pytest.mark.parametrize("hang", [False, True], ids=["refused", "hung"])
async def test_a_failing_dedupe_store_never_skips_a_record(hang: bool) -> None:
    store = BrokenDedupe(hang=hang)
    rig = Rig([{TP: [record(0), record(1)]}, {TP: [record(2)]}], dedupe=store)
    await rig.run_until(lambda: rig.kafka.committed == [{TP: 2}, {TP: 3}])
    assert rig.handled == ["ep-0", "ep-1", "ep-2"]
    assert store.calls >= 2 and rig.consumer.liveness.dedupe_fallbacks >= 3
    assert rig.exits == []


async def test_liveness_carries_poll_fetch_commit_and_lag() -> None:
    rig = Rig([{TP: [record(0), record(1), record(2)]}])
    rig.kafka.hw = 10
    await rig.run_until(lambda: bool(rig.kafka.committed))
    await asyncio.sleep(0.02)
    live = rig.consumer.liveness
    assert live.assigned == 1 and live.lag == 7
    now = time.monotonic()
    assert live.last_poll is not None and now - live.last_poll < 1
    assert live.last_fetch is not None and now - live.last_fetch < 1
    assert live.problem(now=now) is None


async def test_after_a_dedupe_failure_the_store_is_left_alone_for_a_while() -> None:
    clock = FakeClock()
    store = BrokenDedupe()
    dedupe = TolerantDedupe(store, attempts=2, timeout_s=0.05, rest_s=5, clock=clock)
    assert await dedupe.seen("a") is False and store.calls == 2
    await dedupe.mark("a")
    assert await dedupe.seen("b") is False
    assert store.calls == 2, "resting: an outage costs one slow record, not one per record"
    clock.advance(6)
    assert await dedupe.seen("c") is False and store.calls == 4
    assert dedupe.fallbacks == 4


async def test_a_working_dedupe_store_still_drops_duplicates() -> None:
    twice = record(0)
    rig = Rig([{TP: [twice, twice]}], dedupe=MemoryDedupe())
    await rig.run_until(lambda: bool(rig.kafka.committed))
    assert rig.handled == ["ep-0"] and rig.consumer.stats.duplicates == 1
