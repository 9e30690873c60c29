"""The SLA tables' changelog topics are compacted while the worker runs, so a restarted worker replays about one
value per key, not every write since the topic was made. Found with `make chaos` (2026-12-01): after kill -9 of
the stack's SLA worker, Faust replayed 26,000 `service_to_status` records (need offset 22,685), 30 s during which
nothing was counted; compaction had never run because the broker only compacts closed segments, and a segment
closed at 100 MB or after 7 days. The changelogs are now made (and, when they exist, set) with a segment that
closes every minute and cleaned at 10 % dirty (`services/sla/tables.py: CHANGELOG_CONFIG`)."""

from __future__ import annotations

from aiokafka.admin import NewTopic

from services.sla.tables import CHANGELOG_CONFIG, changelog_topics
from shared.kafka.admin import kafka_admin
from shared.settings import KafkaSettings
from shared.testing.kafka import describe_topics
from tests.integration.sla.test_sla_kafka import create_topics, running


async def _configs(settings: KafkaSettings, topics: list[str]) -> dict[str, dict[str, str]]:
    """Each topic's configs, once the broker describes them all."""
    return (await describe_topics(settings, topics))[1]


def _assert_compacted_often(configs: dict[str, dict[str, str]], topics: list[str]) -> None:
    for t in topics:
        c = configs[t]
        assert c["cleanup.policy"] == "compact", (t, c["cleanup.policy"])
        assert int(c["segment.ms"]) <= 60_000, f"{t}: segment.ms {c['segment.ms']} (closes, so compacts, that late)"
        assert float(c["min.cleanable.dirty.ratio"]) <= 0.1, (t, c["min.cleanable.dirty.ratio"])


async def test_a_new_workers_changelogs_are_compacted_every_minute(kafka_settings: KafkaSettings, unique: str) -> None:
    await create_topics(kafka_settings)
    app_id = f"sla-compact-{unique}"
    async with running(kafka_settings, app_id):
        pass
    topics = changelog_topics(app_id)
    _assert_compacted_often(await _configs(kafka_settings, topics), topics)


async def test_changelogs_made_before_are_set_at_start(kafka_settings: KafkaSettings, unique: str) -> None:
    """A stack that ran an older version has its changelogs already, with the broker's defaults."""
    await create_topics(kafka_settings)
    app_id = f"sla-older-{unique}"
    topics = changelog_topics(app_id)
    async with kafka_admin(kafka_settings.client_kwargs()) as admin:
        await admin.create_topics([NewTopic(t, 3, 1, topic_configs={"cleanup.policy": "compact"}) for t in topics])
    assert int((await _configs(kafka_settings, topics[:1]))[topics[0]]["segment.ms"]) > 60_000
    async with running(kafka_settings, app_id):
        pass
    _assert_compacted_often(await _configs(kafka_settings, topics), topics)
    assert set(CHANGELOG_CONFIG) >= {"segment.ms", "min.cleanable.dirty.ratio"}
