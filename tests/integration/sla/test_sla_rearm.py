"""Through real Kafka: a new feature turned on during a firing error-rate episode re-arms it (issue 14)."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.sla.app import create_app
from services.sla.policy import SlaPolicy
from services.sla.settings import SlaSettings
from shared import topics
from shared.events import FlagChanged, TriggerCleared, TriggerFired
from shared.kafka import KafkaPublisher
from shared.kafka.codec import header
from shared.settings import KafkaSettings
from shared.testing.kafka import expect_records
from tests.integration.sla.test_sla_kafka import create_topics, wait_for
from tests.unit.sla.helpers import requests

POLICY = SlaPolicy.model_validate({"triggers": {
    "error_rate_high": {"threshold": 0.05, "window": 2, "min_samples": 20, "hold_fire": 0, "hold_clear": 2},
    "budget_burn": {"enabled": False, "threshold": 1.0, "window": 300, "min_samples": 10},
}})


async def create_flag_topic(settings: KafkaSettings) -> None:
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        name = settings.topic_prefix + topics.FLAGS_CHANGES
        await admin.create_topics([NewTopic(name, 3, 1), NewTopic(topics.dlq(name), 1, 1)])
    finally:
        await admin.close()


def enabled(flag: str, *, at: datetime) -> FlagChanged:
    return FlagChanged(time=at, flag_key=flag, action="enabled", actor="alice", reason="looks fixed", version=3,
                       before={"definition": {"state": "DISABLED"}, "new": True, "killed": True},
                       after={"definition": {"state": "ENABLED"}, "new": True, "killed": False})


async def test_errors_after_a_new_feature_is_turned_on_mid_episode_fire_a_new_episode(
    kafka_settings: KafkaSettings, unique: str,
) -> None:
    await create_topics(kafka_settings)
    await create_flag_topic(kafka_settings)
    triggers = kafka_settings.topic_prefix + topics.SLA_TRIGGERS
    settings = SlaSettings(app_id=f"sla-{unique}", kafka=kafka_settings, policy_file=None, web_enabled=False,
                           data_dir="/tmp/safeguard-sla-tests", rearm_on_flags=True, tick_idle=60)
    sla = create_app(settings, policy=POLICY)
    await sla.app.start()
    try:
        await wait_for(lambda: bool(sla.app.consumer.assignment()) and sla.app.tables.recovery.completed.is_set(), 30)
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=3)
        async with KafkaPublisher.start(kafka_settings, source="/safeguard/tests") as pub:
            for s in range(3):
                await pub.publish(requests(s, errors=50, t0=t0))
            await expect_records(kafka_settings.bootstrap_servers, triggers, count=1, where=lambda r: b'"error_rate_high"' in r.value)
            flags = kafka_settings.topic_prefix + topics.FLAGS_CHANGES
            await pub.publish_raw(flags, key=b"gamification", value=b"{not json", headers=[])
            at = datetime.now(UTC)
            await pub.publish(enabled("gamification", at=at))
            await wait_for(lambda: bool((sla.core.status.get("shop") or {}).get("rearm")), 15)
            first = math.ceil((at - t0).total_seconds())  # the first whole second after the change
            await asyncio.sleep(max(0.0, (t0 + timedelta(seconds=first + 2)).timestamp() - time.time()))
            for s in range(first, first + 2):  # 30 % errors go on with the feature on
                await pub.publish(requests(s, errors=30, t0=t0))
        records = await expect_records(kafka_settings.bootstrap_servers, triggers, count=3, timeout=15,
                                       where=lambda r: b'"error_rate_high"' in r.value)
        dead = await expect_records(kafka_settings.bootstrap_servers, topics.dlq(flags), count=1)
    finally:
        await sla.app.stop()
    assert (header(dead[0].headers, "dlq_reason") or "").startswith("invalid event:")
    fired_a = TriggerFired.model_validate_json(records[0].value)
    cleared_a = TriggerCleared.model_validate_json(records[1].value)
    fired_b = TriggerFired.model_validate_json(records[2].value)
    assert cleared_a.episode_id == fired_a.episode_id != fired_b.episode_id
    assert fired_b.first_bad_at is not None and fired_b.first_bad_at > at
    assert fired_b.value == 0.3 and "gamification" in fired_b.detail
