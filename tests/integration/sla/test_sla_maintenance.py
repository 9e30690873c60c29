"""One source of truth for maintenance, through real Kafka and Postgres: a window scheduled through the
notifier's API reaches the SLA processor (notifier outbox -> `maintenance.windows` -> the Faust agents), whose
budgets then leave the covered service's failing requests out; once cancelled they count again. A poison record
on `maintenance.windows` goes to its DLQ with the reason, and the windows after it still arrive."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from services.notifier.app import create_app as create_notifier
from services.notifier.settings import NotifierSettings
from services.sla.app import SlaApp, create_app
from services.sla.policy import SlaPolicy
from services.sla.settings import SlaSettings
from shared import topics
from shared.auth import AuthSettings
from shared.events import BudgetReported, MaintenanceWindowScheduled
from shared.kafka import KafkaPublisher
from shared.kafka.codec import header
from shared.settings import KafkaSettings, PostgresSettings, RedisSettings
from shared.testing.kafka import expect_records
from tests.integration.sla.test_sla_kafka import create_topics, wait_for
from tests.unit.notifier.conftest import CONFIG, FakeSender
from tests.unit.sla.helpers import requests

TOKEN = "sla-maintenance-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}", "X-Safeguard-Actor": "alice"}
POLICY = SlaPolicy.model_validate({"budget": {"report_every": 1}, "triggers": {
    "budget_burn": {"enabled": False, "threshold": 1.0, "window": 300, "min_samples": 10}}})


async def create_window_topic(settings: KafkaSettings) -> str:
    await topics.create_topics(settings, names=[topics.MAINTENANCE_WINDOWS])
    return settings.topic_prefix + topics.MAINTENANCE_WINDOWS


@pytest.fixture
async def sla(kafka_settings: KafkaSettings, unique: str) -> AsyncIterator[SlaApp]:
    await create_topics(kafka_settings)
    await create_window_topic(kafka_settings)
    app = create_app(SlaSettings(app_id=f"sla-{unique}", kafka=kafka_settings, policy_file=None, web_enabled=False,
                                 data_dir="/tmp/safeguard-sla-tests", rearm_on_flags=False, tick_idle=60), policy=POLICY)
    await app.app.start()
    try:
        await wait_for(lambda: bool(app.app.consumer.assignment()) and app.app.tables.recovery.completed.is_set(), 30)
        yield app
    finally:
        await app.app.stop()


@pytest.fixture
async def notifier(kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str, schema: str,
                   ) -> AsyncIterator[httpx.AsyncClient]:
    settings = NotifierSettings(policy_file=CONFIG, db_schema=schema, tick_interval_s=0.1, kafka=kafka_settings,
                                auth=AuthSettings(admin_token=SecretStr(TOKEN), env="test"),
                                postgres=PostgresSettings(dsn=SecretStr(postgres_dsn)),
                                redis=RedisSettings(url=SecretStr(redis_url)))
    app = create_notifier(settings, sender=FakeSender(), consume=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://notifier.test") as http:
            yield http


async def _budget(settings: KafkaSettings, service: str, *, at: datetime) -> BudgetReported:
    """The first requests-basis budget report of `service` as of `at` (event time) or later."""
    def counted(value: bytes) -> bool:
        data = json.loads(value)
        return data["service"] == service and data["basis"] == "requests" and \
            datetime.fromisoformat(data["time"]) >= at
    found = await expect_records(settings.bootstrap_servers, settings.topic_prefix + topics.SLA_BUDGETS, count=1,
                                 timeout=20, where=lambda r: counted(r.value))
    return BudgetReported.model_validate_json(found[0].value)


async def _until_past(t: datetime) -> None:
    await asyncio.sleep(max(0.0, t.timestamp() - time.time() + 0.2))


async def test_a_window_from_the_api_keeps_its_service_out_of_the_budget_until_cancelled(
    sla: SlaApp, notifier: httpx.AsyncClient, kafka_settings: KafkaSettings, unique: str, postgres_dsn: str,
    schema: str,
) -> None:
    quiet, loud = f"quiet{unique}", f"loud{unique}"
    windows = kafka_settings.topic_prefix + topics.MAINTENANCE_WINDOWS
    before = datetime.fromtimestamp(math.floor(time.time()) - 4).astimezone()
    async with KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
        for s in range(3):  # clean requests before any window: both budgets start at 300 of 300
            for svc in (quiet, loud):
                await pub.publish(requests(s, service=svc, t0=before))
        # poison first: the windows after it must still arrive
        await pub.publish_raw(windows, key=b"mw-poison", value=b"{not json", headers=[])
        wrong_key = MaintenanceWindowScheduled(window_id="mw-x", components=[quiet], starts_at=datetime.now().astimezone(),
                                               ends_at=datetime.now().astimezone() + timedelta(hours=1), by="mallory",
                                               title="not the key")
        await pub.publish_raw(windows, key=b"mw-other", value=wrong_key.model_dump_json().encode(), headers=[])

    # forced: the test runs at any hour, and a window inside business hours is refused unless forced
    r = await notifier.post("/api/maintenance?force=true", headers=ADMIN, json={
        "title": "Reindex", "components": [quiet], "ends_at": (datetime.now().astimezone() + timedelta(hours=1)).isoformat()})
    assert r.status_code == 201, r.text
    window = r.json()["window"]
    await wait_for(lambda: window["window_id"] in (sla.core.maintenance.get(quiet) or {}), 20)
    dead = await expect_records(kafka_settings.bootstrap_servers, topics.dlq(windows), count=2)
    reasons = sorted(header(d.headers, "dlq_reason") or "" for d in dead)
    assert reasons[0].startswith("invalid event:") and reasons[1].startswith("rejected: record key b'mw-other'")
    assert sla.core.maintenance.get(quiet) == {window["window_id"]: [
        datetime.fromisoformat(window["starts_at"]).timestamp(), datetime.fromisoformat(window["ends_at"]).timestamp()]}
    conn = await asyncpg.connect(postgres_dsn)
    try:  # published and gone from the outbox: nothing left half-sent
        assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".outbox') == 0
    finally:
        await conn.close()

    t0 = datetime.fromtimestamp(math.ceil(datetime.fromisoformat(window["starts_at"]).timestamp())).astimezone()
    await _until_past(t0 + timedelta(seconds=3))
    async with KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
        for s in range(3):  # half of the requests fail, in both services
            for svc in (quiet, loud):
                await pub.publish(requests(s, errors=50, service=svc, t0=t0))
    in_window, outside = await _budget(kafka_settings, quiet, at=t0 + timedelta(seconds=3)), \
        await _budget(kafka_settings, loud, at=t0 + timedelta(seconds=3))
    assert (outside.total, outside.good) == (600, 450)  # no window: the failures count
    assert (in_window.total, in_window.good) == (300, 300)  # its window: they do not

    gone = await notifier.delete(f"/api/maintenance/{window['window_id']}", headers=ADMIN)
    assert gone.status_code == 200 and gone.json()["cancelled_by"] == "admin:alice"
    await wait_for(lambda: quiet not in sla.core.maintenance or
                   sla.core.maintenance[quiet][window["window_id"]][1] < time.time(), 20)
    after = datetime.fromisoformat(gone.json()["ends_at"])
    first = math.ceil(after.timestamp() - t0.timestamp()) + 1
    await _until_past(t0 + timedelta(seconds=first + 3))
    async with KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
        for s in range(first, first + 3):
            await pub.publish(requests(s, errors=50, service=quiet, t0=t0))
    later = await _budget(kafka_settings, quiet, at=t0 + timedelta(seconds=first + 3))
    assert (later.total, later.good) == (600, 450)  # cancelled: its failures count again
