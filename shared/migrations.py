"""Each service's own SQL migrations: `NNNN_name.up.sql` beside `NNNN_name.down.sql`, applied in order.

The pool's connections must have `search_path` set to the service's schema (each service's
`open_pool` does), so `schema_migrations` lives in that schema.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any

__all__ = ["migrate"]

logger = logging.getLogger(__name__)
_LOCK_BASE = 0x5AFE_0000


async def migrate(pool: Any, *, schema: str, directory: Path, until: str | None = None,
                  lock_timeout_s: float = 5.0) -> list[str]:
    """Apply every `*.up.sql` not yet in schema_migrations, in order, each in a transaction, under an
    advisory lock per schema (so instances starting together apply each migration once); with `until`,
    none after that version (an app version runs on the schema it was built for). A statement that waits
    longer than `lock_timeout_s` for a lock fails the migration (rolled back) rather than stall the app."""
    applied: list[str] = []
    async with pool.acquire() as conn:
        lock = _LOCK_BASE + zlib.crc32(schema.encode())
        await conn.execute("SELECT pg_advisory_lock($1)", lock)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                               "version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for path in sorted(directory.glob("*.up.sql")):
                version = path.name.removesuffix(".up.sql")
                if until is not None and version > until:
                    break
                if version in done:
                    continue
                async with conn.transaction():
                    # a migration waiting for a lock queues every query of the app behind it: give up instead
                    await conn.execute(f"SET LOCAL lock_timeout = '{lock_timeout_s * 1000:.0f}ms'")
                    await conn.execute(path.read_text())
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                applied.append(version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock)
    if applied:
        logger.info("migrations applied", extra={"schema": schema, "migrations": applied})
    return applied
