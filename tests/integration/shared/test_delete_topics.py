"""`shared.testing.kafka.delete_topics` on the real broker: what the test session (tests/conftest.py) and
`python -m bench` use to delete the topics they made when they end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka.admin import NewTopic

from shared.kafka.admin import kafka_admin
from shared.settings import KafkaSettings
from shared.testing.kafka import delete_topics


async def _names(settings: KafkaSettings) -> set[str]:
    async with kafka_admin(settings.client_kwargs()) as admin:
        return set(await admin.list_topics())


async def _until(settings: KafkaSettings, listed: Callable[[set[str]], bool]) -> set[str]:
    """The broker's listing once `listed` holds of it, within 10 s (it lists a topic it just made, or stops
    listing one it just deleted, within moments, not at once: in CI's containers, right after the create, none
    of the four were listed)."""
    names = await _names(settings)
    for _ in range(50):
        if listed(names):
            break
        await asyncio.sleep(0.2)
        names = await _names(settings)
    return names


async def test_the_matching_topics_are_deleted_and_no_other(kafka_settings: KafkaSettings, unique: str) -> None:
    ours = [f"{kafka_settings.topic_prefix}{n}" for n in ("a", "b", "c")]
    kept = f"keep-{unique}"
    async with kafka_admin(kafka_settings.client_kwargs()) as admin:
        await admin.create_topics([NewTopic(t, 2, 1) for t in [*ours, kept]])
    assert {*ours, kept} <= await _until(kafka_settings, lambda names: {*ours, kept} <= names)
    assert await delete_topics(kafka_settings, lambda t: t.startswith(kafka_settings.topic_prefix), batch=2) == 3
    left = await _until(kafka_settings, lambda names: not set(ours) & names)
    assert not set(ours) & left and kept in left
    assert await delete_topics(kafka_settings, lambda t: t == kept) == 1
