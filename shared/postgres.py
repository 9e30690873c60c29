"""The connection pool each service opens on its own schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from shared.settings import PostgresSettings

__all__ = ["open_pool"]


@asynccontextmanager
async def open_pool(
    settings: PostgresSettings, *, schema: str, init: Callable[[Any], Awaitable[None]] | None = None
) -> AsyncIterator[Any]:
    """A lazy pool (min_size 0): the service starts even while Postgres is down. Every connection works
    in `schema` (search_path), so each service, and each test, has tables of its own."""
    pool = await asyncpg.create_pool(settings.dsn.get_secret_value(), min_size=0, max_size=settings.max_size,
                                     command_timeout=settings.command_timeout_s, init=init, timeout=2.0,
                                     server_settings={"search_path": schema})
    try:
        yield pool
    finally:
        await pool.close()
