"""Outbound edge: maintenance windows in Postgres (asyncpg), or in memory (unit tests, the bench).

Scheduling or cancelling a window, its notice to subscribers and its event (the notifier's outbox, published
by the relay to `maintenance.windows`) are one transaction: nothing half-written. `transitions`
marks the windows that began or ended since the last look, each once whichever instance looks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import asyncpg

from services.notifier.maintenance import MaintenanceWindow
from services.notifier.repository import _OUTBOX  # the outbox the relay publishes from
from services.notifier.subscription_store import fan_out
from services.notifier.subscriptions import Notice, NoticeType
from shared.events import Event

__all__ = ["MaintenanceStore", "PgMaintenanceStore", "MemoryMaintenanceStore", "NoticeOf"]

NoticeOf = Callable[[MaintenanceWindow, NoticeType], Notice]
Moves = tuple[list[MaintenanceWindow], list[MaintenanceWindow]]

_COLS = ("window_id", "title", "description", "components", "starts_at", "ends_at", "created_by", "created_at",
         "cancelled_by", "cancelled_at", "forced")
_SELECT = f"SELECT {', '.join(_COLS)} FROM maintenance"
_RETURNING = f"RETURNING {', '.join(_COLS)}"


class MaintenanceStore(Protocol):
    async def add(self, window: MaintenanceWindow, *, notice: Notice | None, event: Event | None = None) -> None: ...
    async def get(self, window_id: str) -> MaintenanceWindow | None: ...
    async def cancel(self, window: MaintenanceWindow, *, notice: Notice | None, event: Event | None = None) -> bool: ...
    async def windows(self, *, ending_after: datetime) -> list[MaintenanceWindow]: ...
    async def silencing(self, *, service: str, at: datetime) -> str | None: ...
    async def transitions(self, *, now: datetime, notice: NoticeOf) -> Moves: ...


def _window(row: asyncpg.Record) -> MaintenanceWindow:
    return MaintenanceWindow(**{**dict(row), "components": list(row["components"])})


class PgMaintenanceStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(self, window: MaintenanceWindow, *, notice: Notice | None, event: Event | None = None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"INSERT INTO maintenance ({', '.join(_COLS)}) VALUES"
                               f" ({', '.join(f'${i}' for i in range(1, len(_COLS) + 1))})",
                               *(getattr(window, c) for c in _COLS))
            if notice is not None:
                await fan_out(conn, notice)
            if event is not None:
                await conn.execute(_OUTBOX, event.topic, event.model_dump_json())

    async def get(self, window_id: str) -> MaintenanceWindow | None:
        row = await self.pool.fetchrow(f"{_SELECT} WHERE window_id = $1", window_id)
        return None if row is None else _window(row)

    async def cancel(self, window: MaintenanceWindow, *, notice: Notice | None, event: Event | None = None) -> bool:
        """Writes the cancellation (`cancelled_*`, the possibly shortened `ends_at`) unless another came first."""
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval("UPDATE maintenance SET cancelled_by = $2, cancelled_at = $3, ends_at = $4"
                                       " WHERE window_id = $1 AND cancelled_at IS NULL RETURNING window_id",
                                       window.window_id, window.cancelled_by, window.cancelled_at, window.ends_at)
            if done is not None and notice is not None:
                await fan_out(conn, notice)
            if done is not None and event is not None:
                await conn.execute(_OUTBOX, event.topic, event.model_dump_json())
        return done is not None

    async def windows(self, *, ending_after: datetime) -> list[MaintenanceWindow]:
        rows = await self.pool.fetch(f"{_SELECT} WHERE ends_at >= $1 ORDER BY starts_at, window_id", ending_after)
        return [_window(r) for r in rows]

    async def silencing(self, *, service: str, at: datetime) -> str | None:
        title: str | None = await self.pool.fetchval(
            "SELECT title FROM maintenance WHERE $1 = ANY(components) AND starts_at <= $2 AND ends_at > $2"
            " AND (cancelled_at IS NULL OR cancelled_at > starts_at) ORDER BY starts_at LIMIT 1", service, at)
        return title

    async def transitions(self, *, now: datetime, notice: NoticeOf) -> Moves:
        """(begun, ended) since the last call, each window once (only windows that began can end), with their
        notices to subscribers in the same transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            begun = await conn.fetch(f"UPDATE maintenance SET started_at = $1 WHERE started_at IS NULL"
                                     f" AND starts_at <= $1 AND (cancelled_at IS NULL OR cancelled_at > starts_at)"
                                     f" {_RETURNING}", now)
            ended = await conn.fetch(f"UPDATE maintenance SET finished_at = $1 WHERE finished_at IS NULL"
                                     f" AND started_at IS NOT NULL AND ends_at <= $1 {_RETURNING}", now)
            moves = [_window(r) for r in begun], [_window(r) for r in ended]
            for w in moves[0]:
                await fan_out(conn, notice(w, "maintenance.started"))
            for w in moves[1]:
                await fan_out(conn, notice(w, "maintenance.finished"))
        return moves


class MemoryMaintenanceStore:
    """The same in a dict; `notices` / `events`: what would have been fanned out / published."""

    def __init__(self) -> None:
        self.rows: dict[str, MaintenanceWindow] = {}
        self.started: set[str] = set()
        self.finished: set[str] = set()
        self.notices: list[Notice] = []
        self.events: list[Event] = []

    async def add(self, window: MaintenanceWindow, *, notice: Notice | None, event: Event | None = None) -> None:
        self.rows[window.window_id] = window.model_copy()
        self.notices += [notice] if notice else []
        self.events += [event] if event else []

    async def get(self, window_id: str) -> MaintenanceWindow | None:
        w = self.rows.get(window_id)
        return None if w is None else w.model_copy()

    async def cancel(self, window: MaintenanceWindow, *, notice: Notice | None, event: Event | None = None) -> bool:
        old = self.rows.get(window.window_id)
        if old is None or old.cancelled_at is not None:
            return False
        self.rows[window.window_id] = window.model_copy()
        self.notices += [notice] if notice else []
        self.events += [event] if event else []
        return True

    async def windows(self, *, ending_after: datetime) -> list[MaintenanceWindow]:
        return sorted((w.model_copy() for w in self.rows.values() if w.ends_at >= ending_after),
                      key=lambda w: (w.starts_at, w.window_id))

    async def silencing(self, *, service: str, at: datetime) -> str | None:
        live = [w for w in self.rows.values() if service in w.components and w.starts_at <= at < w.ends_at
                and (w.cancelled_at is None or w.cancelled_at > w.starts_at)]
        return min(live, key=lambda w: w.starts_at).title if live else None

    async def transitions(self, *, now: datetime, notice: NoticeOf) -> Moves:
        begun = [w for w in self.rows.values() if w.window_id not in self.started and w.starts_at <= now
                 and (w.cancelled_at is None or w.cancelled_at > w.starts_at)]
        self.started |= {w.window_id for w in begun}
        ended = [w for w in self.rows.values() if w.window_id in self.started and w.window_id not in self.finished
                 and w.ends_at <= now]
        self.finished |= {w.window_id for w in ended}
        self.notices += [notice(w, "maintenance.started") for w in begun]
        self.notices += [notice(w, "maintenance.finished") for w in ended]
        return begun, ended
