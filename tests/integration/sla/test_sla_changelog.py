"""A worker killed before its changelog writes reach Kafka loses no record (at-least-once across kill -9).

Faust commits the offsets of the records an agent acked, after flushing its producer; but that flush returns once
0.1 s passes without a send, and what it left queued dies with the worker. Here the first worker (a process of its
own, `_dying_worker.py`) stops handing its queued messages to Kafka, handles 5 more records, and is killed -9
two commit intervals later. Those records must not have been committed: the second worker, restored from the
changelog, counts them again."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from services.sla.app import SlaApp
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings
from tests.integration.sla.test_sla_kafka import create_topics, recent, running, wait_for
from tests.unit.sla.helpers import requests

ROOT = Path(__file__).resolve().parents[3]


def seconds(sla: SlaApp) -> set[int]:
    """The hot window's seconds (the last few seconds of reports) of the service `shop`."""
    status = sla.tables.service_to_status.get("shop") or {}
    return {int(s[0]) for s in status.get("seconds", [])}


async def killed_then_restored(kafka_settings: KafkaSettings, kafka_bootstrap: str, app_id: str, flag: Path, *,
                               before_more: Callable[[], Awaitable[None]],
                               cleanup: Callable[[], Awaitable[None]] | None = None) -> None:
    """A worker in a process of its own (`_dying_worker.py`, `flag` its flag file) counts 5 records; `before_more`
    runs; the worker handles 5 more (in memory) and is killed -9 two commit intervals later; `cleanup` runs; the
    next worker, restored from the changelog, must count those 5."""
    t0 = recent(20)
    late = {int((t0 + timedelta(seconds=s)).timestamp()) for s in range(5, 10)}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.sla._dying_worker", kafka_bootstrap, kafka_settings.topic_prefix,
        app_id, str(flag), cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    lines: list[str] = []

    async def read() -> None:
        assert worker.stdout is not None
        while line := await worker.stdout.readline():
            lines.append(line.decode())

    reading = asyncio.ensure_future(read())
    try:
        async with KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
            for s in range(5):
                await pub.publish(requests(s, t0=t0))
            await wait_for(lambda: any(line.startswith("counted 5 ") for line in lines), timeout=60)
            await before_more()
            for s in range(5, 10):
                await pub.publish(requests(s, t0=t0))
            # handled, in memory; 60 s like the waits around it (CI on a slow machine, 2026-12-02: 20 s ran out
            # while the refused changelog writes were being sent again)
            await wait_for(lambda: bool(lines) and all(str(sec) in lines[-1] for sec in late), timeout=60)
            await asyncio.sleep(6.0)  # two of Faust's commit intervals (2.8 s)
    finally:
        worker.kill()
        await worker.wait()
        reading.cancel()
        if cleanup is not None:
            await cleanup()
    async with running(kafka_settings, app_id) as second:
        await wait_for(lambda: seconds(second) >= late, timeout=60)  # a rebalance after kill -9 waits out the session


async def test_records_whose_changelog_writes_died_with_the_worker_are_counted_again(
        kafka_settings: KafkaSettings, kafka_bootstrap: str, unique: str, tmp_path: Path) -> None:
    await create_topics(kafka_settings)
    lose = tmp_path / "lose"

    async def stop_handing_them_to_kafka() -> None:
        lose.touch()

    await killed_then_restored(kafka_settings, kafka_bootstrap, f"sla-{unique}", lose,
                               before_more=stop_handing_them_to_kafka)


async def _changelog_limit(settings: KafkaSettings, topic: str, max_bytes: int | None) -> None:
    """Set (or, None, remove) the topic's `max.message.bytes`: the broker refuses larger writes for good."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        value = str(max_bytes) if max_bytes is not None else "1048588"  # the broker's default
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": value})])
    finally:
        await admin.close()


async def test_records_whose_changelog_write_the_broker_refused_are_not_acked(
        kafka_settings: KafkaSettings, kafka_bootstrap: str, unique: str, tmp_path: Path) -> None:
    """The broker refuses the status writes of 5 records (a real refusal: the changelog topic's message size limit
    lowered under them). Before, the batch raised, Faust acked its records in `take_events`' `finally`, and their
    offsets were committed without their state: the next worker never counted them. Now the worker sends the
    writes again until they are acked and does not ack the records meanwhile; killed -9, its successor (the limit
    back to normal) reads those records again and counts them."""
    await create_topics(kafka_settings)
    app_id = f"sla-{unique}"
    changelog = f"{app_id}-service_to_status-changelog"

    async def refuse_status_writes() -> None:
        await _changelog_limit(kafka_settings, changelog, 64)
        await asyncio.sleep(1.0)

    async def accept_them_again() -> None:
        await _changelog_limit(kafka_settings, changelog, None)

    await killed_then_restored(kafka_settings, kafka_bootstrap, app_id, tmp_path / "never",
                               before_more=refuse_status_writes, cleanup=accept_them_again)
