"""The protected app's migrations: shared/migrations.py's conventions (`NNNN_name.up.sql` beside
`NNNN_name.down.sql`, `schema_migrations` in the app's schema, one advisory lock per schema), plus
`rollback` of the last applied migration with its down file, and `status`."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from shared.migrations import migrate as _migrate

__all__ = ["MigrationError", "MigrationState", "migrate", "rollback", "status"]

_LOCK_BASE = 0x5AFE_0000  # the same lock as shared.migrations: migrate and rollback never interleave


class MigrationError(RuntimeError):
    """A migration cannot be applied or rolled back; nothing was changed."""


@dataclass(frozen=True, kw_only=True)
class MigrationState:
    version: str
    applied: bool
    has_down: bool


@asynccontextmanager
async def _pool(dsn: str, schema: str) -> AsyncIterator[Any]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, timeout=10,
                                     server_settings={"search_path": schema})
    try:
        yield pool
    finally:
        await pool.close()


async def _applied(conn: Any) -> list[str]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return []
    return [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]


async def migrate(*, dsn: str, schema: str, directory: Path, until: str | None = None) -> list[str]:
    """Apply every pending up file in order (none after `until`); returns the versions applied."""
    async with _pool(dsn, schema) as pool:
        applied: list[str] = await _migrate(pool, schema=schema, directory=directory, until=until)
        return applied


async def rollback(*, dsn: str, schema: str, directory: Path) -> str | None:
    """Undo the last applied migration with its down file, in one transaction; None if none is applied."""
    async with _pool(dsn, schema) as pool, pool.acquire() as conn:
        lock = _LOCK_BASE + zlib.crc32(schema.encode())
        await conn.execute("SELECT pg_advisory_lock($1)", lock)
        try:
            applied = await _applied(conn)
            if not applied:
                return None
            version = applied[-1]
            down = directory / f"{version}.down.sql"
            if not down.is_file():
                raise MigrationError(f"{version} has no rollback file {down.name} in {directory}")
            async with conn.transaction():
                await conn.execute("SET LOCAL lock_timeout = '5s'")  # never stall the app behind a lock
                await conn.execute(down.read_text())
                await conn.execute("DELETE FROM schema_migrations WHERE version = $1", version)
            return version
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock)


async def status(*, dsn: str, schema: str, directory: Path) -> list[MigrationState]:
    """Every migration on disk or in the database, applied or pending, and whether it has a down file."""
    async with _pool(dsn, schema) as pool, pool.acquire() as conn:
        applied = set(await _applied(conn))
    on_disk = {p.name.removesuffix(".up.sql") for p in directory.glob("*.up.sql")}
    return [MigrationState(version=v, applied=v in applied, has_down=(directory / f"{v}.down.sql").is_file())
            for v in sorted(on_disk | applied)]
