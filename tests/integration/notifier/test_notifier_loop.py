"""The notifier through real Kafka, Postgres and Redis: fired -> opened, failed -> escalated, cleared -> resolved."""

from __future__ import annotations

import asyncpg
import httpx
from pydantic import SecretStr

from services.notifier.oncall import load_oncall
from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from shared.auth import AuthSettings
from shared.events import (
    IncidentEscalated, IncidentOpened, IncidentResolved, NotificationDelivered, RecoveryActionFailed,
    TriggerCleared, TriggerFired,
)
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings
from shared.testing.kafka import expect_events
from shared.topics import INCIDENTS_EVENTS, NOTIFIER_DELIVERIES


async def test_incident_life_cycle_through_kafka_and_postgres(
    kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str, unique: str,
) -> None:
    schema = f"notifier_t{unique}"
    settings = NotifierSettings(kafka=kafka_settings, postgres=PostgresSettings(dsn=SecretStr(postgres_dsn)),
                                redis=RedisSettings(url=SecretStr(redis_url)), db_schema=schema,
                                auth=AuthSettings(admin_token=SecretStr("integration-token"), env="test"),
                                tick_interval_s=0.2)
    app = create_app(settings)
    boot, prefix, episode = kafka_settings.bootstrap_servers, kafka_settings.topic_prefix, f"ep-{unique}"
    try:
        async with app.router.lifespan_context(app), \
                KafkaPublisher.start(kafka_settings, source="/tests/notifier") as pub, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
            await pub.publish(TriggerFired(service="demo", trigger="error_rate_high", episode_id=episode, value=0.08,
                                           threshold=0.05, window_seconds=5, detail="7 of 87 requests"))
            [opened] = await expect_events(boot, prefix + INCIDENTS_EVENTS, count=1, timeout=30,
                                           where=lambda e: isinstance(e, IncidentOpened))
            assert opened.episode_id == episode and opened.severity == "major"
            status = (await c.get("/status.json")).json()
            assert status["services"] == {"demo": "degraded"}
            assert [i["incident_id"] for i in status["open"]] == [opened.incident_id]
            assert "demo: error rate 8 % &gt; 5 %" in (await c.get("/status")).text  # human numbers (issue 15)

            await pub.publish(RecoveryActionFailed(service="demo", action_id=f"a-{unique}",
                                                   action="disable_new_features", trigger="error_rate_high",
                                                   episode_id=episode, detail="not cleared within 300s"))
            [esc] = await expect_events(boot, prefix + INCIDENTS_EVENTS, count=1, timeout=30,
                                        where=lambda e: isinstance(e, IncidentEscalated))
            assert esc.level == 2 and esc.target == "on-call developer" and esc.incident_id == opened.incident_id
            pages = await expect_events(boot, prefix + NOTIFIER_DELIVERIES, count=1, timeout=10,
                                        where=lambda e: isinstance(e, NotificationDelivered)
                                        and e.channel == "oncall_page")
            # the person on call in the oncall-developer rotation when a schedule is loaded (make up loads
            # config/oncall.yaml), else the rotation's name
            schedule = load_oncall(settings.oncall_file) if settings.oncall_file else None
            expected = {m for r in schedule.rotations for m in r.members} if schedule else {"oncall-developer"}
            assert pages[0].recipient in expected, pages[0].recipient

            await pub.publish(TriggerCleared(service="demo", trigger="error_rate_high", episode_id=episode,
                                             value=0.01, threshold=0.05))
            [res] = await expect_events(boot, prefix + INCIDENTS_EVENTS, count=1, timeout=30,
                                        where=lambda e: isinstance(e, IncidentResolved))
            assert res.incident_id == opened.incident_id and res.by == "sla" and res.duration_seconds >= 0
            report = await c.get(f"/api/incidents/{opened.incident_id}/report",
                                 headers={"Authorization": "Bearer integration-token"})
            assert report.status_code == 200 and report.headers["content-type"].startswith("text/markdown")
            assert "level 2: on-call developer" in report.text and "trigger cleared" in report.text
            status = (await c.get("/status.json")).json()
            assert status["open"] == [] and status["services"] == {"demo": "operational"}
        conn = await asyncpg.connect(postgres_dsn)
        try:
            row = await conn.fetchrow(f'SELECT status, level FROM "{schema}".incidents')
            assert (row["status"], row["level"]) == ("resolved", 2)
            kinds = [r["kind"] for r in await conn.fetch(f'SELECT kind FROM "{schema}".timeline ORDER BY id')]
            assert kinds == ["opened", "action", "escalated", "resolved"]
            assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".deliveries WHERE ok') >= 5
        finally:
            await conn.close()
    finally:
        conn = await asyncpg.connect(postgres_dsn)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_migrations_apply_and_roll_back(postgres_dsn: str, unique: str) -> None:
    from services.notifier.repository import MIGRATIONS, migrate, open_pool

    schema = f"notifier_m{unique}"
    try:
        async with open_pool(PostgresSettings(dsn=SecretStr(postgres_dsn)), schema=schema) as pool:
            versions = sorted(p.name.removesuffix(".up.sql") for p in MIGRATIONS.glob("*.up.sql"))
            assert versions[:3] == ["0001_notifier", "0002_notifier_outbox", "0003_notifier_maintenance"]
            assert await migrate(pool, schema=schema) == versions
            assert await migrate(pool, schema=schema) == []
            tables = {r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1",
                                                              schema)}
            assert tables >= {"incidents", "timeline", "deliveries", "reports", "outbox", "schema_migrations",
                              "maintenance", "subscribers", "subscriber_deliveries", "notifier_keys"}
            for v in reversed(versions[1:]):
                await pool.execute((MIGRATIONS / f"{v}.down.sql").read_text())
            assert await migrate(pool, schema=schema) == versions[1:]  # the rollbacks are clean
            for v in reversed(versions):
                await pool.execute((MIGRATIONS / f"{v}.down.sql").read_text())
            # the downs leave only the runner's own table, with no version in it (`db rollback` needs it)
            assert {r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1",
                                                                          schema)} == {"schema_migrations"}
            assert await pool.fetchval("SELECT count(*) FROM schema_migrations") == 0
    finally:
        conn = await asyncpg.connect(postgres_dsn)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
