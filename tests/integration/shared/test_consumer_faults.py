"""EventConsumer against real faults: Redis killed mid-stream, a DLQ the broker refuses, a hung broker.

Redis and the hung broker are private servers (tests/faults.py); the DLQ refusal is a real broker
answer (a DLQ topic whose `max.message.bytes` is too small for any record). The process-exit path
is replaced by a recorder here; test_consumer_exit.py shows a real process exiting.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from fastapi import FastAPI

from shared import tasks
from shared.events import TriggerFired
from shared.http import healthz_router
from shared.kafka import EventConsumer, KafkaPublisher, RedisDedupe
from shared.kafka import consumer as consumer_module
from shared.kafka.codec import header
from shared.settings import KafkaSettings
from shared.testing.kafka import client_kwargs, expect_records
from shared.topics import SLA_TRIGGERS, dlq
from tests.faults import PrivateKafka, PrivateRedis


@pytest.fixture(autouse=True)
def exits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What the consumers asked for instead of ending the test process."""
    calls: list[str] = []
    monkeypatch.setattr(tasks, "exit_process", calls.append, raising=False)
    yield calls


def fired(n: int) -> TriggerFired:
    return TriggerFired(service=f"svc-{n % 5}", trigger="error_rate_high", episode_id=f"ep-{n}", value=0.2,
                        threshold=0.05, window_seconds=60)


async def wait_until(cond: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, f"{what} not met within {timeout} s"
        await asyncio.sleep(0.05)


async def _marked_within(redis: aioredis.Redis, keys: list[str], timeout: float) -> int:
    """How many of `keys` exist, once all do or `timeout` passed."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (marked := int(await redis.exists(*keys))) < len(keys) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return marked


async def publish(settings: KafkaSettings, events: list[TriggerFired]) -> None:
    async with KafkaPublisher.start(settings, source="/safeguard/tests") as pub:
        await asyncio.gather(*(pub.publish(e) for e in events))


async def healthz() -> httpx.Response:
    app = FastAPI()
    app.include_router(healthz_router("svc"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get("/healthz")


@pytest.mark.parametrize("fault", ["killed", "hung"])
async def test_redis_failing_mid_stream_loses_nothing_and_the_consumer_goes_on(
    kafka_settings: KafkaSettings, unique: str, private_redis: PrivateRedis, exits: list[str], fault: str
) -> None:
    """Killed: connections refused. Hung (SIGSTOP): calls never answer and are cut by the dedupe timeout."""
    topic = kafka_settings.topic_prefix + SLA_TRIGGERS
    first, second = [fired(i) for i in range(200)], [fired(i) for i in range(200, 260)]
    await publish(kafka_settings, first)
    calls: list[str] = []

    async def handle(event: TriggerFired) -> None:
        await asyncio.sleep(0.005)
        calls.append(event.episode_id)

    redis = aioredis.from_url(private_redis.url)
    consumer = EventConsumer(topics=[topic], group_id=f"g-{unique}", handlers={TriggerFired: handle},
                             settings=kafka_settings, max_batch=20, dedupe=RedisDedupe(redis, namespace=unique))
    try:
        async with consumer.running():
            await wait_until(lambda: len(calls) >= 50, what="50 handled before the kill")
            await asyncio.to_thread(private_redis.kill if fault == "killed" else private_redis.pause)
            await wait_until(lambda: set(calls) >= {e.episode_id for e in first}, what="every record despite Redis")
            await asyncio.to_thread(private_redis.start if fault == "killed" else private_redis.resume)
            await asyncio.sleep(6)  # the store is left alone for dedupe_rest_s (5 s) after a failure
            await publish(kafka_settings, second)
            await wait_until(lambda: set(calls) >= {e.episode_id for e in first + second}, what="every record")
            # a record is marked after its handler returns: the last mark may still be on its way
            marked = await _marked_within(redis, [f"safeguard:dedupe:{unique}:{e.id}" for e in second], 10.0)
    finally:
        await redis.aclose()
    assert sorted(set(calls)) == sorted(e.episode_id for e in first + second), "nothing lost"
    assert marked == len(second), "once Redis is back, handled ids are remembered again"
    assert exits == []


async def _refusing_dlq(bootstrap: str, topic: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap))
    await admin.start()
    await admin.create_topics([NewTopic(dlq(topic), 1, 1, topic_configs={"max.message.bytes": "16"})])
    return admin


async def test_a_dlq_the_broker_refuses_is_retried_until_it_accepts(
    kafka_settings: KafkaSettings, unique: str, exits: list[str]
) -> None:
    topic = kafka_settings.topic_prefix + SLA_TRIGGERS
    admin = await _refusing_dlq(kafka_settings.bootstrap_servers, topic)
    calls: list[str] = []

    async def handle(event: TriggerFired) -> None:
        calls.append(event.episode_id)

    async with KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
        await pub.publish_raw(topic, key=b"svc", value=b"{not json", headers=[])
        await pub.publish(fired(1))
    consumer = EventConsumer(topics=[topic], group_id=f"g-{unique}", handlers={TriggerFired: handle},
                             settings=kafka_settings)
    try:
        async with consumer.running():
            await asyncio.sleep(2)
            assert calls == [], "the record behind the poison waits until the poison is dead-lettered"
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, dlq(topic),
                                                      configs={"max.message.bytes": "1048588"})])
            await wait_until(lambda: calls == ["ep-1"], what="the record after the poison")
            await publish(kafka_settings, [fired(2)])
            await wait_until(lambda: calls == ["ep-1", "ep-2"], what="the stream goes on")
    finally:
        await admin.close()
    dead = await expect_records(kafka_settings.bootstrap_servers, dlq(topic), count=1)
    assert dead[0].value == b"{not json"
    assert (header(dead[0].headers, "dlq_reason") or "").startswith("invalid event")
    assert exits == []


async def test_a_dlq_refused_past_the_retries_ends_the_process_and_commits_nothing(
    kafka_settings: KafkaSettings, unique: str, exits: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_CONSUMER_ATTEMPTS", "3")
    monkeypatch.setenv("KAFKA_CONSUMER_BACKOFF_INITIAL_S", "0.05")
    topic = kafka_settings.topic_prefix + SLA_TRIGGERS
    admin = await _refusing_dlq(kafka_settings.bootstrap_servers, topic)
    async with KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
        await pub.publish_raw(topic, key=b"svc", value=b"{not json", headers=[])
    group = f"g-{unique}"
    consumer = EventConsumer(topics=[topic], group_id=group, handlers={TriggerFired: lambda e: asyncio.sleep(0)},
                             settings=kafka_settings)
    try:
        async with consumer.running():
            await wait_until(lambda: bool(exits), what="the exit call")
            r = await healthz()
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    assert len(exits) == 1 and "gave up: DLQ send failed 3 times" in exits[0]
    assert "MessageSizeTooLargeError" in exits[0]
    assert r.status_code == 503 and r.json()["consumers"][0]["state"] == "dead"
    assert all(meta.offset <= 0 for meta in offsets.values()), "the poison is not committed: a new process retries it"


@pytest.fixture(scope="module")
def module_kafka() -> Iterator[PrivateKafka]:
    from tests.faults import _private

    with _private(PrivateKafka) as server:
        yield server  # type: ignore[misc]


async def test_a_hung_broker_makes_healthz_report_stuck_then_recover(
    module_kafka: PrivateKafka, unique: str, exits: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_CONSUMER_STUCK_AFTER_S", "3")
    settings = KafkaSettings(bootstrap_servers=module_kafka.bootstrap, topic_prefix=f"t{unique}.")
    topic = settings.topic_prefix + SLA_TRIGGERS
    await publish(settings, [fired(0)])
    calls: list[str] = []

    async def handle(event: TriggerFired) -> None:
        calls.append(event.episode_id)

    consumer = EventConsumer(topics=[topic], group_id=f"g-{unique}", handlers={TriggerFired: handle},
                             settings=settings)
    async with consumer.running():
        await wait_until(lambda: calls == ["ep-0"], what="the first record")
        assert (await healthz()).status_code == 200
        loop = asyncio.get_running_loop()
        with module_kafka.paused():
            paused_at = loop.time()
            while (r := await healthz()).status_code == 200:
                assert loop.time() - paused_at < 15, "healthz never reported the hung broker"
                await asyncio.sleep(0.2)
            seen_after = loop.time() - paused_at
            await asyncio.sleep(max(0.0, 6 - seen_after))
        assert r.status_code == 503 and r.json()["status"] == "fail"
        # a hung broker shows as no fetch answer, or (when the loop itself waits on it under load) as no poll
        assert r.json()["consumers"][0]["problem"].startswith("stuck: no"), r.json()
        assert 3 <= seen_after < 6
        resumed_at = loop.time()
        while (r := await healthz()).status_code != 200:
            assert loop.time() - resumed_at < 60, f"healthz did not recover: {r.json()}"
            await asyncio.sleep(0.2)
        await publish(settings, [fired(1)])
        await wait_until(lambda: calls == ["ep-0", "ep-1"], timeout=60, what="a record after the hang")
    assert exits == []




async def test_a_commit_refused_after_a_rebalance_is_survived_and_its_records_come_again(
    kafka_settings: KafkaSettings, unique: str, redis_client: Any, exits: list[str],
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two members; one record takes longer than `max_poll_interval_ms`, so the group drops the member
    handling it and gives its partitions to the other: that member's commit is then refused. It goes on:
    once alone it rejoins and consumes, and the records past its last commit come again."""
    monkeypatch.setattr(consumer_module, "AIOKafkaConsumer", functools.partial(AIOKafkaConsumer,
                                                                               max_poll_interval_ms=1500))
    topic = kafka_settings.topic_prefix + SLA_TRIGGERS
    first, more = [fired(i) for i in range(30)], [fired(i) for i in range(100, 110)]
    calls: dict[str, list[str]] = {"a": [], "b": []}
    slow: list[str] = []

    def make(name: str) -> EventConsumer:
        async def handle(event: TriggerFired) -> None:
            if event.episode_id == "ep-5" and not slow:
                slow.append(name)
                await asyncio.sleep(3)
            calls[name].append(event.episode_id)

        return EventConsumer(topics=[topic], group_id=f"g-{unique}", handlers={TriggerFired: handle},
                             settings=kafka_settings, dedupe=RedisDedupe(redis_client, namespace=unique))

    members = {"a": make("a"), "b": make("b")}
    stacks = {"a": AsyncExitStack(), "b": AsyncExitStack()}
    await publish(kafka_settings, [fired(-1)])  # the topic exists before the members subscribe
    try:
        with caplog.at_level(logging.WARNING, logger="shared.kafka.consumer"):
            for name, member in members.items():
                await stacks[name].enter_async_context(member.running())
            await asyncio.gather(*(m.wait_assigned() for m in members.values()))
            await publish(kafka_settings, first)
            await wait_until(lambda: set(calls["a"]) | set(calls["b"]) >= {e.episode_id for e in first},
                             timeout=60, what="the first records")
            kicked = slow[0]
            await stacks["b" if kicked == "a" else "a"].aclose()
            await publish(kafka_settings, more)
            await wait_until(lambda: set(calls[kicked]) >= {e.episode_id for e in more}, timeout=60,
                             what="the member whose commit was refused, alone now, consumes")
    finally:
        for stack in stacks.values():
            await stack.aclose()
    assert [r for r in caplog.records if "refused after a rebalance" in r.getMessage()], caplog.text[-3000:]
    assert sum(m.stats.duplicates for m in members.values()) > 0, "the records past the last commit came again"
    assert exits == [] and members[kicked].liveness.state != "dead"
