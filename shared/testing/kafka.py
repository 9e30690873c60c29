"""Helpers for integration tests against a real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from shared.events import Event
from shared.kafka.codec import decode
from shared.settings import KafkaSettings

__all__ = ["expect_records", "expect_events", "wait_for_kafka", "client_kwargs", "delete_topics", "describe_topics"]


def client_kwargs(bootstrap_servers: str | KafkaSettings) -> dict[str, Any]:
    """aiokafka arguments for a broker: a KafkaSettings as is, a bare address with the login of the environment
    (KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD: the admin principal in `.stack/env`)."""
    if isinstance(bootstrap_servers, KafkaSettings):
        return bootstrap_servers.client_kwargs()
    return KafkaSettings(bootstrap_servers=bootstrap_servers).client_kwargs()


async def wait_for_kafka(bootstrap_servers: str | KafkaSettings, timeout_s: float = 20.0) -> None:
    """Raise a clear error when no broker answers at `bootstrap_servers` (or does not take our login)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap_servers), request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
    except Exception as exc:  # noqa: BLE001
        raise RuntimeError(f"Kafka at {client_kwargs(bootstrap_servers)['bootstrap_servers']} does not answer ({exc!r}); run `make up`") from exc
    finally:
        await admin.close()


async def delete_topics(bootstrap_servers: str | KafkaSettings, match: Callable[[str], bool], *,
                        batch: int = 200) -> int:
    """Delete every topic whose name `match`es (a test run's, a bench's): a broker that serves many runs would
    otherwise gather their topics until its heap no longer holds their metadata. Returns how many."""
    from shared.kafka.admin import kafka_admin

    async with kafka_admin(client_kwargs(bootstrap_servers), request_timeout_ms=30000) as admin:
        doomed = [t for t in await admin.list_topics() if match(t)]
        for i in range(0, len(doomed), batch):
            await admin.delete_topics(doomed[i:i + batch], timeout_ms=30000)
        return len(doomed)


async def describe_topics(settings: KafkaSettings, topics: list[str], *, within_s: float = 15.0
                          ) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    """Each topic's partition count and configs, once the broker describes them all: a topic just made may not be
    described yet (CI, 2026-12-01: no configs for a fresh topic). AssertionError after `within_s`."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from shared.kafka.admin import kafka_admin

    partitions: dict[str, int] = {}
    configs: dict[str, dict[str, str]] = {}
    async with kafka_admin(settings.client_kwargs()) as admin:
        deadline = asyncio.get_running_loop().time() + within_s
        while True:
            described = await admin.describe_topics(topics)
            partitions = {t["topic"]: len(t["partitions"]) for t in described
                          if not t["error_code"] and t["partitions"]}
            answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
            configs = {name: {e[0]: e[1] for e in entries} for answer in answers
                       for _code, _msg, _type, name, entries in answer.resources if entries}
            if set(topics) <= partitions.keys() & configs.keys():
                return partitions, configs
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the broker did not describe {topics} within {within_s:g} s: "
                                     f"partitions {partitions}, configs of {sorted(configs)}")
            await asyncio.sleep(0.25)


async def expect_records(
    bootstrap_servers: str | KafkaSettings,
    topic: str,
    *,
    count: int,
    timeout: float = 20.0,
    where: Callable[[ConsumerRecord[bytes, bytes]], bool] = lambda r: True,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read `topic` from the beginning until `count` records match `where`; fail on timeout."""
    consumer = AIOKafkaConsumer(
        topic, **client_kwargs(bootstrap_servers), group_id=f"expect-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < count:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"{topic}: wanted {count} matching records within {timeout}s, got {len(found)}")
            batches = await consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            found += [r for records in batches.values() for r in records if where(r)]
        return found
    finally:
        await consumer.stop()


async def expect_events(
    bootstrap_servers: str | KafkaSettings,
    topic: str,
    *,
    count: int,
    timeout: float = 20.0,
    where: Callable[[Event], bool] = lambda e: True,
) -> list[Event]:
    """Like `expect_records`, decoded with the topic's contract."""
    records = await expect_records(
        bootstrap_servers, topic, count=count, timeout=timeout, where=lambda r: where(decode(topic, r.value))
    )
    return [decode(topic, r.value) for r in records]
