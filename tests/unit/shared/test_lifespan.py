"""`shared.lifespan.open_publisher`: a given publisher is used as is and nothing is opened."""

from __future__ import annotations

from contextlib import AsyncExitStack

from shared.lifespan import open_publisher
from shared.settings import KafkaSettings
from shared.testing.fakes import InMemoryPublisher


async def test_a_given_publisher_is_returned_and_not_entered() -> None:
    fake = InMemoryPublisher()
    async with AsyncExitStack() as stack:
        got = await open_publisher(stack, KafkaSettings(bootstrap_servers="127.0.0.1:1"), service="x", given=fake)
        assert got is fake
        assert not stack._exit_callbacks  # type: ignore[attr-defined]
