"""Postgres stops in the middle of an IncidentOpened (issue 10, finding 5): once it is back, the incident exists
and its notices went out exactly once. A private Postgres (tests/faults.py), the shared Kafka and Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
from pydantic import SecretStr

from services.notifier.app import create_app
from services.notifier.models import Incident
from services.notifier.repository import PgIncidentStore
from services.notifier.settings import NotifierSettings
from shared.auth import AuthSettings
from shared.events import IncidentOpened, NotificationDelivered, TriggerFired
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings
from shared.testing.kafka import expect_events
from shared.topics import INCIDENTS_EVENTS, NOTIFIER_DELIVERIES
from tests.faults import PrivatePostgres
from tests.unit.notifier.conftest import CONFIG, FakeSender


class StopsPostgresAfterTheCheck(PgIncidentStore):
    """Stops the (private) database right after the handler checked the incident does not exist yet, so the
    writes that follow meet a stopped server: the window finding 5 is about."""

    def __init__(self, pool: object, pg: PrivatePostgres, stopped: asyncio.Event) -> None:
        super().__init__(pool)  # type: ignore[arg-type]
        self.pg, self.stopped = pg, stopped

    async def get(self, incident_id: str) -> Incident | None:
        found = await super().get(incident_id)
        if not self.stopped.is_set():
            await asyncio.to_thread(self.pg.stop)
            self.stopped.set()
        return found


async def test_incident_opened_during_a_postgres_stop_exists_once_it_is_back(
    private_postgres: PrivatePostgres, kafka_settings: KafkaSettings, redis_url: str, unique: str,
) -> None:
    from services.notifier.repository import migrate, open_pool

    pg_settings = PostgresSettings(dsn=SecretStr(private_postgres.dsn), command_timeout_s=2)
    kafka = kafka_settings.model_copy(update={"consumer_max_retries": 12, "consumer_retry_backoff_s": 0.5})
    settings = NotifierSettings(kafka=kafka, postgres=pg_settings, redis=RedisSettings(url=SecretStr(redis_url)),
                                policy_file=CONFIG, auth=AuthSettings(env="test"), tick_interval_s=0.3)
    stopped, sender = asyncio.Event(), FakeSender()
    boot, prefix = kafka.bootstrap_servers, kafka.topic_prefix
    async with open_pool(pg_settings, schema="notifier") as pool:
        await migrate(pool, schema="notifier")
        app = create_app(settings, store=StopsPostgresAfterTheCheck(pool, private_postgres, stopped), sender=sender)
        async with app.router.lifespan_context(app), KafkaPublisher.start(kafka, source="/tests/sla") as sla:
            await sla.publish(TriggerFired(service="demo", trigger="error_rate_high", episode_id=f"ep-{unique}",
                                           value=0.08, threshold=0.05, window_seconds=5, time=datetime.now(UTC)))
            await asyncio.wait_for(stopped.wait(), 30)
            await asyncio.sleep(2)  # the handler fails and is retried against a stopped server
            await asyncio.to_thread(private_postgres.start)
            [opened] = await expect_events(boot, prefix + INCIDENTS_EVENTS, count=1, timeout=60,
                                           where=lambda e: isinstance(e, IncidentOpened))
            await expect_events(boot, prefix + NOTIFIER_DELIVERIES, count=3, timeout=30,
                                where=lambda e: isinstance(e, NotificationDelivered))
            await asyncio.sleep(2)  # anything sent twice would show up by now
    assert sorted(c for c, _, _ in sender.sent) == ["stakeholder", "status_page", "user"]
    opened_events = await expect_events(boot, prefix + INCIDENTS_EVENTS, count=1, timeout=5)
    assert [e.incident_id for e in opened_events] == [opened.incident_id]
    conn = await asyncpg.connect(private_postgres.dsn)
    try:
        row = await conn.fetchrow("SELECT status, level FROM notifier.incidents WHERE incident_id = $1",
                                  opened.incident_id)
        assert (row["status"], row["level"]) == ("open", 1)
        sent = await conn.fetch("SELECT channel, status FROM notifier.deliveries WHERE incident_id = $1",
                                opened.incident_id)
        assert sorted((r["channel"], r["status"]) for r in sent) == [
            ("stakeholder", "sent"), ("status_page", "sent"), ("user", "sent")]
    finally:
        await conn.close()
