"""Outbound edge: the pause changes in Postgres (`pauses`, migration 0003_recovery_pause)."""

from __future__ import annotations

import asyncpg

from services.recovery.pause import PauseEntry

__all__ = ["PgPauseStore"]

_COLS = "scope, paused, actor, reason, at"


class PgPauseStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, entry: PauseEntry) -> None:
        await self.pool.execute(f"INSERT INTO pauses ({_COLS}) VALUES ($1, $2, $3, $4, $5)",
                                entry.scope, entry.paused, entry.actor, entry.reason, entry.at)

    async def paused(self) -> list[PauseEntry]:
        rows = await self.pool.fetch(f"SELECT * FROM (SELECT DISTINCT ON (scope) {_COLS} FROM pauses"
                                     " ORDER BY scope, id DESC) newest WHERE paused ORDER BY scope")
        return [PauseEntry(**dict(r)) for r in rows]

    async def history(self, *, limit: int) -> list[PauseEntry]:
        rows = await self.pool.fetch(f"SELECT {_COLS} FROM pauses ORDER BY id DESC LIMIT $1", limit)
        return [PauseEntry(**dict(r)) for r in rows]
