"""`shared.topics.create_topics` on the real broker: a deployment's topic prefix (`KAFKA_TOPIC_PREFIX`, e.g.
`staging.`) is where the services read and write, so that is where the topics are made, with their configs
(a broker's auto-created topic would have neither the partitions nor `cleanup.policy=compact`)."""

from __future__ import annotations

from shared.settings import KafkaSettings
from shared.testing.kafka import describe_topics
from shared.topics import FLAGS_STATE, TELEMETRY_REQUESTS, TOPICS, all_topic_names, create_topics, dlq


async def test_the_topics_are_made_under_the_prefix_with_their_configs(kafka_settings: KafkaSettings) -> None:
    prefix = kafka_settings.topic_prefix
    assert prefix  # the test session's own, e.g. "t0123456789."
    created = await create_topics(kafka_settings)
    assert sorted(created) == sorted(all_topic_names(prefix)) == sorted(
        [prefix + t.name for t in TOPICS] + [dlq(prefix + t.name) for t in TOPICS])
    state, requests = prefix + FLAGS_STATE, prefix + TELEMETRY_REQUESTS
    partitions, configs = await describe_topics(kafka_settings, [state, requests, dlq(state)])
    assert partitions == {state: 3, requests: 3, dlq(state): 1}
    assert configs[state]["cleanup.policy"] == "compact"
    assert configs[requests]["retention.ms"] == str(7 * 24 * 3600 * 1000)
    assert await create_topics(kafka_settings) == []  # idempotent


async def test_tests_and_benches_may_ask_for_fewer_partitions(kafka_settings: KafkaSettings) -> None:
    await create_topics(kafka_settings, partitions=1)
    state = kafka_settings.topic_prefix + FLAGS_STATE
    partitions, configs = await describe_topics(kafka_settings, [state])
    assert partitions == {state: 1} and configs[state]["cleanup.policy"] == "compact"

