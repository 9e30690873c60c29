"""Recovery's state lives in Postgres (issue 10, finding 5): a restarted service resumes the verification it
left, and two instances on one database act once per trigger. Real Kafka and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from services.recovery.app import create_app
from services.recovery.policy import RecoveryPolicy
from services.recovery.repository import PgAuditStore, migrate, open_pool
from services.recovery.service import RecoveryService
from services.recovery.settings import RecoverySettings
from shared.auth import AuthSettings
from shared.events import (
    OpenCircuitBreaker, RecoveryActionStarted, RecoveryActionSucceeded, TriggerCleared, TriggerFired,
)
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings
from shared.testing.kafka import expect_events, expect_records
from shared.topics import RECOVERY_ACTIONS, RECOVERY_COMMANDS


class NoFlags:
    async def kill_new(self, *, reason: str) -> list[str]:
        raise AssertionError("latency_high does not call the flags API")



def _fired(unique: str) -> TriggerFired:
    return TriggerFired(service="demo", trigger="latency_high", episode_id=f"ep-{unique}", value=6.2, threshold=5,
                        window_seconds=5, time=datetime.now(UTC))


async def _count(boot: str, topic: str, *, at_least: int, settle_s: float = 3.0) -> int:
    """How many records `topic` holds once `at_least` arrived and nothing more came for `settle_s`."""
    await expect_records(boot, topic, count=at_least, timeout=30)
    try:
        return len(await expect_records(boot, topic, count=at_least + 1, timeout=settle_s))
    except AssertionError:
        return at_least


async def test_a_restarted_service_finishes_the_verification_it_started(
    kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str, unique: str, schema: str,
) -> None:
    settings = RecoverySettings(kafka=kafka_settings, postgres=PostgresSettings(dsn=SecretStr(postgres_dsn)),
                                redis=RedisSettings(url=SecretStr(redis_url)), db_schema=schema,
                                auth=AuthSettings(env="test"), tick_interval_s=0.2)
    boot, prefix = kafka_settings.bootstrap_servers, kafka_settings.topic_prefix
    async with KafkaPublisher.start(kafka_settings, source="/tests/sla") as sla:
        first = create_app(settings, flags=NoFlags())
        async with first.router.lifespan_context(first):
            await sla.publish(_fired(unique))
            [started] = await expect_events(boot, prefix + RECOVERY_ACTIONS, count=1, timeout=30)
            assert isinstance(started, RecoveryActionStarted)
        # the process is gone; a new one (new consumer, empty memory) gets the TriggerCleared
        second = create_app(settings, flags=NoFlags())
        async with second.router.lifespan_context(second):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(second), base_url="http://t") as c:
                active = (await c.get("/api/recovery/policy")).json()["active"]
            assert [e["episode_id"] for e in active] == [f"ep-{unique}"]
            await sla.publish(TriggerCleared(service="demo", trigger="latency_high", episode_id=f"ep-{unique}",
                                             value=0.2, threshold=5))
            [ok] = await expect_events(boot, prefix + RECOVERY_ACTIONS, count=1, timeout=30,
                                       where=lambda e: isinstance(e, RecoveryActionSucceeded))
            assert ok.action_id == started.action_id
    assert await _count(boot, prefix + RECOVERY_COMMANDS, at_least=1, settle_s=1.0) == 1


async def test_two_instances_on_one_database_act_once(
    kafka_settings: KafkaSettings, postgres_dsn: str, unique: str, schema: str,
) -> None:
    pg = PostgresSettings(dsn=SecretStr(postgres_dsn))
    boot, prefix = kafka_settings.bootstrap_servers, kafka_settings.topic_prefix
    async with open_pool(pg, schema=schema) as pool_a, open_pool(pg, schema=schema) as pool_b, \
            KafkaPublisher.start(kafka_settings, source="/tests/recovery") as pub:
        await migrate(pool_a, schema=schema)
        a, b = (RecoveryService(policy=RecoveryPolicy(), publisher=pub, flags=NoFlags(), audit=PgAuditStore(p),
                                busy_poll_s=0.05) for p in (pool_a, pool_b))
        event = _fired(unique)
        results = await asyncio.gather(a.recover_from_trigger(event), b.recover_from_trigger(event))
        assert sorted(r is None for r in results) == [False, True]
        rows = await pool_a.fetch("SELECT status, actor FROM actions")
        assert [(r["status"], r["actor"]) for r in rows] == [("started", "recovery")]
        assert await _count(boot, prefix + RECOVERY_COMMANDS, at_least=1) == 1
        [cmd] = await expect_events(boot, prefix + RECOVERY_COMMANDS, count=1)
        assert isinstance(cmd, OpenCircuitBreaker) and cmd.episode_id == f"ep-{unique}"


async def test_migrations_apply_and_roll_back(postgres_dsn: str, schema: str) -> None:
    from services.recovery.repository import MIGRATIONS

    async with open_pool(PostgresSettings(dsn=SecretStr(postgres_dsn)), schema=schema) as pool:
        assert await migrate(pool, schema=schema) == ["0001_recovery", "0002_recovery_state", "0003_recovery_pause",
                                                      "0004_recovery_effects"]
        await pool.execute((MIGRATIONS / "0004_recovery_effects.down.sql").read_text())
        assert await migrate(pool, schema=schema) == ["0004_recovery_effects"]
        for version in ("0004_recovery_effects", "0003_recovery_pause", "0002_recovery_state"):
            await pool.execute((MIGRATIONS / f"{version}.down.sql").read_text())
        assert await migrate(pool, schema=schema) == ["0002_recovery_state", "0003_recovery_pause",
                                                      "0004_recovery_effects"]
        for version in ("0004_recovery_effects", "0003_recovery_pause", "0002_recovery_state", "0001_recovery"):
            await pool.execute((MIGRATIONS / f"{version}.down.sql").read_text())
        # the downs leave only the runner's own table, with no version in it (`db rollback` needs it)
        assert {r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1",
                                                                      schema)} == {"schema_migrations"}
        assert await pool.fetchval("SELECT count(*) FROM schema_migrations") == 0


async def test_a_trigger_during_a_postgres_stop_is_acted_on_once_it_is_back(
    private_postgres: object, kafka_settings: KafkaSettings, unique: str,
) -> None:
    pg = PostgresSettings(dsn=SecretStr(private_postgres.dsn), command_timeout_s=2)  # type: ignore[attr-defined]
    boot, prefix = kafka_settings.bootstrap_servers, kafka_settings.topic_prefix
    async with open_pool(pg, schema="recovery") as pool, \
            KafkaPublisher.start(kafka_settings, source="/tests/recovery") as pub:
        await migrate(pool, schema="recovery")
        svc = RecoveryService(policy=RecoveryPolicy(), publisher=pub, flags=NoFlags(), audit=PgAuditStore(pool))
        event = _fired(unique)
        await asyncio.to_thread(private_postgres.stop)  # type: ignore[attr-defined]
        with pytest.raises((OSError, asyncpg.PostgresError, asyncio.TimeoutError)):
            await svc.recover_from_trigger(event)
        await asyncio.to_thread(private_postgres.start)  # type: ignore[attr-defined]
        rec = await svc.recover_from_trigger(event)  # the consumer's retry
        assert rec is not None and rec.status == "started" and rec.attempt == 1
        assert await svc.recover_from_trigger(event) is None  # and a redelivery after it
        assert await pool.fetchval("SELECT count(*) FROM actions") == 1
    assert await _count(boot, prefix + RECOVERY_COMMANDS, at_least=1) == 1
