"""`shared.lifespan` against the real servers: the pool is migrated on open and closed with the stack;
the Kafka publisher is started, its source names the service, and it is stopped with the stack."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from pydantic import SecretStr

from shared.events import TriggerFired
from shared.kafka import KafkaPublisher
from shared.kafka.codec import header
from shared.lifespan import open_migrated_pool, open_publisher
from shared.settings import KafkaSettings, PostgresSettings
from shared.testing.kafka import expect_records


async def test_the_pool_is_migrated_and_closed_with_the_stack(postgres_dsn: str, schema: str, tmp_path: Path) -> None:
    (tmp_path / "0001_things.up.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    async with AsyncExitStack() as stack:
        pool = await open_migrated_pool(stack, PostgresSettings(dsn=SecretStr(postgres_dsn)), schema=schema,
                                        migrations=tmp_path)
        assert await pool.fetchval("SELECT count(*) FROM things") == 0
        assert await pool.fetchval("SELECT version FROM schema_migrations") == "0001_things"
    assert pool._closed  # noqa: SLF001


async def test_the_publisher_publishes_with_the_service_source(kafka_settings: KafkaSettings) -> None:
    event = TriggerFired(service="shop", trigger="error_rate_high", episode_id="ep-lifespan", value=0.2,
                         threshold=0.05, window_seconds=60)
    async with AsyncExitStack() as stack:
        pub = await open_publisher(stack, kafka_settings, service="lifespan")
        assert isinstance(pub, KafkaPublisher)
        await pub.publish(event)
    assert pub.producer._closed  # noqa: SLF001
    [record] = await expect_records(kafka_settings, kafka_settings.topic_prefix + event.topic, count=1)
    assert header(record.headers, "ce_id") == str(event.id)
    assert header(record.headers, "ce_source") == "/safeguard/lifespan"
