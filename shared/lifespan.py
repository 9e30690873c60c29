"""The outside resources a service opens in its lifespan, each entered on the lifespan's `AsyncExitStack`
(closed in reverse order when the service stops): its Postgres pool with its migrations applied, and its
Kafka publisher. A resource given by the caller (a test's fake) is used as is and not closed here."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from shared.kafka import KafkaPublisher, Publisher
from shared.migrations import migrate
from shared.postgres import open_pool
from shared.settings import KafkaSettings, PostgresSettings

__all__ = ["open_migrated_pool", "open_publisher"]


async def open_migrated_pool(stack: AsyncExitStack, settings: PostgresSettings, *, schema: str,
                             migrations: Path) -> Any:
    """The service's pool on `schema`, with every `migrations/*.up.sql` applied (`shared.migrations`)."""
    pool = await stack.enter_async_context(open_pool(settings, schema=schema))
    await migrate(pool, schema=schema, directory=migrations)
    return pool


async def open_publisher(stack: AsyncExitStack, settings: KafkaSettings, *, service: str,
                         given: Publisher | None = None) -> Publisher:
    """`given` (a test's in-memory publisher), else a Kafka publisher whose CloudEvents source is
    `/safeguard/<service>`."""
    if given is not None:
        return given
    publisher: Publisher = await stack.enter_async_context(
        KafkaPublisher.start(settings, source=f"/safeguard/{service}"))
    return publisher
