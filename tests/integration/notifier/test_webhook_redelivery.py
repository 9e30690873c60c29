"""A webhook that refuses is tried again later by the relay (issue 10, finding 12): real Postgres, Kafka and
Redis, and a real HTTP receiver that answers 503 until it is healed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from pydantic import SecretStr

from services.notifier.app import create_app
from services.notifier.policy import load_policy
from services.notifier.settings import NotifierSettings
from shared.auth import AuthSettings
from shared.events import NotificationDelivered, NotificationFailed, TriggerFired
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings
from shared.testing.kafka import expect_events
from shared.topics import NOTIFIER_DELIVERIES
from tests.unit.notifier.conftest import CONFIG


class Receiver:
    """A webhook receiver: 503 while `down`, else 200; keeps the bodies it accepted."""

    def __init__(self) -> None:
        self.down, self.refused, self.accepted = True, 0, []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        fields = (ln.partition(":") for ln in head.split("\r\n"))
        length = next(int(v) for k, _, v in fields if k.lower() == "content-length")
        body = json.loads(await reader.readexactly(length))
        if self.down:
            self.refused += 1
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        else:
            self.accepted.append(body)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rx = Receiver()
    server = await asyncio.start_server(rx.handle, "127.0.0.1", 0)
    async with server:
        yield rx, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"


async def test_a_refused_webhook_is_redelivered_by_the_relay(
    kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str, unique: str,
    receiver: tuple[Receiver, str],
) -> None:
    rx, url = receiver
    base = load_policy(CONFIG).model_dump()
    base["channels"]["stakeholder"] = {"url": url, "recipients": ["stakeholders"]}
    base["webhook"] = {"timeout": 2, "attempts": 1, "backoff": 0.1, "redeliver_after": 0.5, "redeliveries": 5}
    policy = type(load_policy(CONFIG)).model_validate(base)
    schema = f"notifier_w{unique}"
    settings = NotifierSettings(kafka=kafka_settings, postgres=PostgresSettings(dsn=SecretStr(postgres_dsn)),
                                redis=RedisSettings(url=SecretStr(redis_url)), db_schema=schema,
                                auth=AuthSettings(env="test"), tick_interval_s=0.2)
    app = create_app(settings, policy=policy)
    boot, topic = kafka_settings.bootstrap_servers, kafka_settings.topic_prefix + NOTIFIER_DELIVERIES
    try:
        async with app.router.lifespan_context(app), KafkaPublisher.start(kafka_settings, source="/tests") as sla:
            await sla.publish(TriggerFired(service="demo", trigger="error_rate_high", episode_id=f"ep-{unique}",
                                           value=0.08, threshold=0.05, window_seconds=5, time=datetime.now(UTC)))
            await expect_events(boot, topic, count=1, timeout=30, where=lambda e: isinstance(e, NotificationFailed))
            await asyncio.sleep(1.5)  # a few more refused tries
            rx.down = False
            [ok] = await expect_events(boot, topic, count=1, timeout=30,
                                       where=lambda e: isinstance(e, NotificationDelivered)
                                       and e.channel == "stakeholder")
            await asyncio.sleep(1.0)
        assert rx.refused >= 2 and len(rx.accepted) == 1
        assert rx.accepted[0]["incident"]["incident_id"] == ok.incident_id
        conn = await asyncpg.connect(postgres_dsn)
        try:
            row = await conn.fetchrow(f'SELECT status, attempts, ok FROM "{schema}".deliveries'
                                      " WHERE channel = 'stakeholder'")
            assert row["status"] == "sent" and row["ok"] and row["attempts"] == rx.refused + 1
        finally:
            await conn.close()
    finally:
        conn = await asyncpg.connect(postgres_dsn)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
