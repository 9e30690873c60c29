"""Outbound edge: Postgres (asyncpg). Schema `recovery`, own migrations applied at start.

`migrate` follows services/flags/repository.py (advisory lock, schema_migrations); it belongs in
shared/ once a third service needs it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg

from services.recovery.models import ActionRecord
from shared.migrations import migrate as shared_migrate
from shared.postgres import open_pool

__all__ = ["PgAuditStore", "MemoryAuditStore", "open_pool", "migrate", "MIGRATIONS"]

logger = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
_COLS = ("action_id", "service", "action", "trigger", "episode_id", "instance", "attempt", "actor", "reason",
         "status", "detail", "started_at", "finished_at")


async def migrate(pool: asyncpg.Pool, *, schema: str = "recovery", directory: Path = MIGRATIONS) -> list[str]:
    """Apply this service's migrations (see `shared.migrations`)."""
    return await shared_migrate(pool, schema=schema, directory=directory)


class PgAuditStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def save(self, record: ActionRecord) -> None:
        values = [getattr(record, c) for c in _COLS]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLS[1:])
        await self.pool.execute(
            f"INSERT INTO actions ({', '.join(_COLS)}) VALUES ({', '.join(f'${i}' for i in range(1, len(_COLS) + 1))})"
            f" ON CONFLICT (action_id) DO UPDATE SET {updates}", *values)

    async def recent(self, *, limit: int, service: str | None) -> list[ActionRecord]:
        rows = await self.pool.fetch(
            f"SELECT {', '.join(_COLS)} FROM actions WHERE ($1::text IS NULL OR service = $1)"
            " ORDER BY started_at DESC LIMIT $2", service, limit)
        return [ActionRecord(**dict(r)) for r in rows]


class MemoryAuditStore:
    """The audit log in a dict (unit tests, and the fallback while Postgres is down at start)."""

    def __init__(self) -> None:
        self.records: dict[str, ActionRecord] = {}

    async def save(self, record: ActionRecord) -> None:
        self.records[record.action_id] = record

    async def recent(self, *, limit: int, service: str | None) -> list[ActionRecord]:
        rows = [r for r in self.records.values() if service is None or r.service == service]
        return sorted(rows, key=lambda r: r.started_at, reverse=True)[:limit]
