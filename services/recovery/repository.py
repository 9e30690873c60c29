"""Outbound edge: Postgres (asyncpg). Schema `recovery`, own migrations applied at start.

The store holds all of recovery's state: the audit log (`actions`), the episodes, and through
`actions` the cooldowns, attempts and pending verifications, so a restart or another instance
sees them. `claiming()` serialises claims per (service, trigger) with a transaction-scoped
advisory lock; the unique index on automatic actions per episode backs it up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from services.recovery.effects import ActionView, FlagKill, Outcome
from services.recovery.models import ActionRecord, Claim, Episode, History
from shared.migrations import migrate as shared_migrate
from shared.postgres import open_pool

__all__ = ["PgAuditStore", "MemoryAuditStore", "open_pool", "migrate", "MIGRATIONS"]

MIGRATIONS = Path(__file__).parent / "migrations"
_COLS = ("action_id", "service", "action", "trigger", "episode_id", "instance", "attempt", "actor", "reason",
         "status", "detail", "started_at", "finished_at")
_SELECT = f"SELECT {', '.join(_COLS)} FROM actions"
_VIEW_COLS = (*_COLS, "verify_outcome", "effect", "verified_at", "verify_seconds", "killed_flags")
_VIEW = f"SELECT {', '.join(_VIEW_COLS)} FROM actions"
_KILLS = """SELECT DISTINCT ON (flag) flag, action_id, service, trigger, episode_id, reason, started_at AS killed_at
    FROM actions, unnest(killed_flags) AS flag WHERE killed_flags <> '{}' ORDER BY flag, started_at DESC"""
_SKIPPED_WHILE_PAUSED = """SELECT e.service, e.trigger, e.episode_id, e.instance, e.reason FROM episodes e
    JOIN actions a ON a.episode_id = e.episode_id AND a.actor = 'recovery' AND a.status = 'skipped'
      AND a.detail LIKE 'paused:%'
    WHERE e.cleared_at IS NULL AND ($1::text IS NULL OR e.service = $1)
      AND NOT EXISTS (SELECT 1 FROM actions b WHERE b.episode_id = e.episode_id AND b.status <> 'skipped')
    ORDER BY e.fired_at"""
_HISTORY = """SELECT
    (SELECT max(started_at) FROM actions WHERE service = $1 AND trigger = $2 AND status <> 'skipped') AS last,
    (SELECT count(*) FROM actions WHERE episode_id = $3 AND status <> 'skipped') AS attempts,
    (SELECT CASE WHEN lease_until IS NULL THEN 'done' ELSE 'busy' END FROM actions
      WHERE episode_id = $3 AND actor = 'recovery') AS automatic"""


async def migrate(pool: asyncpg.Pool, *, schema: str = "recovery", directory: Path = MIGRATIONS) -> list[str]:
    """Apply this service's migrations (see `shared.migrations`)."""
    return await shared_migrate(pool, schema=schema, directory=directory)


class PgClaims:
    """Reads and writes inside one claim transaction (the advisory lock is held until it ends)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def history(self, *, service: str, trigger: str, episode_id: str, now: datetime) -> History:
        # a claim whose lease ran out was abandoned (its instance died before sending): take it over
        await self.conn.execute("DELETE FROM actions WHERE episode_id = $1 AND status = 'started'"
                                " AND lease_until < $2", episode_id, now)
        row = await self.conn.fetchrow(_HISTORY, service, trigger, episode_id)
        automatic: Claim = row["automatic"] or "free"
        return History(last_action_at=row["last"], attempts=row["attempts"], automatic=automatic)

    async def insert(self, record: ActionRecord, *, lease_until: datetime | None, deadline: datetime | None) -> None:
        cols = (*_COLS, "lease_until", "deadline")
        await self.conn.execute(
            f"INSERT INTO actions ({', '.join(cols)}) VALUES ({', '.join(f'${i}' for i in range(1, len(cols) + 1))})",
            *[getattr(record, c) for c in _COLS], lease_until, deadline)


class PgAuditStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def save(self, record: ActionRecord) -> None:
        values = [getattr(record, c) for c in _COLS]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLS[1:])
        await self.pool.execute(
            f"INSERT INTO actions ({', '.join(_COLS)}) VALUES ({', '.join(f'${i}' for i in range(1, len(_COLS) + 1))})"
            f" ON CONFLICT (action_id) DO UPDATE SET {updates}", *values)

    async def recent(self, *, limit: int, service: str | None) -> list[ActionView]:
        rows = await self.pool.fetch(f"{_VIEW} WHERE ($1::text IS NULL OR service = $1)"
                                     " ORDER BY started_at DESC LIMIT $2", service, limit)
        return [ActionView(**dict(r)) for r in rows]

    @asynccontextmanager
    async def claiming(self, *, service: str, trigger: str) -> AsyncIterator[PgClaims]:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"recovery/{service}/{trigger}")
            yield PgClaims(conn)

    async def settle(self, record: ActionRecord, *, deadline: datetime, killed: Sequence[str] = ()) -> None:
        await self.pool.execute("UPDATE actions SET detail = $2, deadline = $3, lease_until = NULL,"
                                " killed_flags = $4 WHERE action_id = $1", record.action_id, record.detail, deadline,
                                list(killed))

    async def record_effect(self, action_id: str, *, outcome: Outcome, effect: str, seconds: float,
                            at: datetime) -> bool:
        """Keep what verification saw (once: a second outcome for the action is refused, False)."""
        done = await self.pool.fetchval(
            "UPDATE actions SET verify_outcome = $2, effect = $3, verify_seconds = $4, verified_at = $5,"
            " verify_reported = $6 WHERE action_id = $1 AND verify_outcome IS NULL RETURNING action_id",
            action_id, outcome, effect, seconds, at, outcome != "verified")
        return done is not None

    async def mark_effect_reported(self, action_id: str) -> None:
        await self.pool.execute("UPDATE actions SET verify_reported = true WHERE action_id = $1", action_id)

    async def unreported_effects(self) -> list[ActionView]:
        rows = await self.pool.fetch(f"{_VIEW} WHERE NOT verify_reported ORDER BY verified_at LIMIT 100")
        return [ActionView(**dict(r)) for r in rows]

    async def kills(self, *, limit: int = 100) -> list[FlagKill]:
        """Recovery's newest kill of each flag it ever turned off, newest first."""
        rows = await self.pool.fetch(f"SELECT * FROM ({_KILLS}) k ORDER BY killed_at DESC LIMIT $1", limit)
        return [FlagKill(**dict(r)) for r in rows]

    async def skipped_while_paused(self, service: str | None = None) -> list[Episode]:
        """Episodes still firing whose automatic action was skipped because recovery was paused."""
        return [Episode(**dict(r)) for r in await self.pool.fetch(_SKIPPED_WHILE_PAUSED, service)]

    async def release(self, action_id: str) -> None:
        await self.pool.execute("DELETE FROM actions WHERE action_id = $1 AND status = 'started'", action_id)

    async def finish(self, record: ActionRecord) -> bool:
        done = await self.pool.fetchval(
            "UPDATE actions SET status = $2, detail = $3, finished_at = $4, lease_until = NULL, reported = false"
            " WHERE action_id = $1 AND status = 'started' RETURNING action_id",
            record.action_id, record.status, record.detail, record.finished_at)
        return done is not None

    async def mark_reported(self, action_id: str) -> None:
        await self.pool.execute("UPDATE actions SET reported = true WHERE action_id = $1", action_id)

    async def unreported(self) -> list[ActionRecord]:
        rows = await self.pool.fetch(f"{_SELECT} WHERE NOT reported ORDER BY finished_at LIMIT 100")
        return [ActionRecord(**dict(r)) for r in rows]

    async def pending(self, *, now: datetime, episode_id: str | None = None,
                      due: datetime | None = None) -> list[ActionRecord]:
        rows = await self.pool.fetch(
            f"{_SELECT} WHERE status = 'started' AND (lease_until IS NULL OR lease_until < $1)"
            " AND ($2::text IS NULL OR episode_id = $2) AND ($3::timestamptz IS NULL OR deadline <= $3)"
            " ORDER BY started_at", now, episode_id, due)
        return [ActionRecord(**dict(r)) for r in rows]

    async def save_episode(self, ep: Episode, *, at: datetime) -> None:
        await self.pool.execute(
            "INSERT INTO episodes (episode_id, service, trigger, instance, reason, fired_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (episode_id) DO NOTHING",
            ep.episode_id, ep.service, ep.trigger, ep.instance, ep.reason, at)

    async def end_episode(self, episode_id: str, *, at: datetime) -> None:
        await self.pool.execute("UPDATE episodes SET cleared_at = $2 WHERE episode_id = $1 AND cleared_at IS NULL",
                                episode_id, at)

    async def cleared(self, episode_id: str) -> bool:
        return bool(await self.pool.fetchval("SELECT cleared_at IS NOT NULL FROM episodes WHERE episode_id = $1",
                                             episode_id))

    async def active(self, service: str | None = None) -> list[Episode]:
        rows = await self.pool.fetch(
            "SELECT e.service, e.trigger, e.episode_id, e.instance, e.reason, (SELECT count(*) FROM actions a"
            " WHERE a.episode_id = e.episode_id AND a.status <> 'skipped') AS attempts FROM episodes e"
            " WHERE e.cleared_at IS NULL AND ($1::text IS NULL OR e.service = $1) ORDER BY e.fired_at", service)
        return [Episode(**dict(r)) for r in rows]


class MemoryClaims:
    def __init__(self, store: MemoryAuditStore) -> None:
        self.store = store

    async def history(self, *, service: str, trigger: str, episode_id: str, now: datetime) -> History:
        s = self.store
        for r in [r for r in s.records.values() if r.episode_id == episode_id and r.status == "started"]:
            lease = s.leases.get(r.action_id)
            if lease is not None and lease < now:
                await s.release(r.action_id)
        acted = [r for r in s.records.values() if r.status != "skipped"]
        last = max((r.started_at for r in acted if r.service == service and r.trigger == trigger), default=None)
        auto = [r for r in s.records.values() if r.episode_id == episode_id and r.actor == "recovery"]
        automatic: Claim = "free" if not auto else "busy" if auto[0].action_id in s.leases else "done"
        return History(last_action_at=last, attempts=sum(r.episode_id == episode_id for r in acted),
                       automatic=automatic)

    async def insert(self, record: ActionRecord, *, lease_until: datetime | None, deadline: datetime | None) -> None:
        if record.actor == "recovery" and any(r.episode_id == record.episode_id and r.actor == "recovery"
                                              for r in self.store.records.values()):
            raise ValueError("duplicate automatic action for the episode")  # the unique index
        self.store.records[record.action_id] = record
        if lease_until is not None:
            self.store.leases[record.action_id] = lease_until
        if deadline is not None:
            self.store.deadlines[record.action_id] = deadline


class MemoryAuditStore:
    """The same state in dicts (unit tests; several service objects may share one, like instances)."""

    def __init__(self) -> None:
        self.records: dict[str, ActionRecord] = {}
        self.leases: dict[str, datetime] = {}
        self.deadlines: dict[str, datetime] = {}
        self.unreported_ids: list[str] = []
        self.episodes: dict[str, Episode] = {}
        self.cleared_ids: set[str] = set()
        self.effects: dict[str, dict[str, Any]] = {}
        self.effects_unreported: list[str] = []
        self.killed: dict[str, list[str]] = {}
        self._lock = asyncio.Lock()

    def _view(self, r: ActionRecord) -> ActionView:
        return ActionView(**r.model_dump(), **self.effects.get(r.action_id, {}),
                          killed_flags=self.killed.get(r.action_id, []))

    async def save(self, record: ActionRecord) -> None:
        self.records[record.action_id] = record

    async def recent(self, *, limit: int, service: str | None) -> list[ActionView]:
        rows = [r for r in self.records.values() if service is None or r.service == service]
        return [self._view(r) for r in sorted(rows, key=lambda r: r.started_at, reverse=True)[:limit]]

    @asynccontextmanager
    async def claiming(self, *, service: str, trigger: str) -> AsyncIterator[MemoryClaims]:
        async with self._lock:
            yield MemoryClaims(self)

    async def settle(self, record: ActionRecord, *, deadline: datetime, killed: Sequence[str] = ()) -> None:
        self.records[record.action_id] = record
        self.deadlines[record.action_id] = deadline
        self.leases.pop(record.action_id, None)
        self.killed[record.action_id] = list(killed)

    async def record_effect(self, action_id: str, *, outcome: Outcome, effect: str, seconds: float,
                            at: datetime) -> bool:
        if action_id not in self.records or action_id in self.effects:
            return False
        self.effects[action_id] = {"verify_outcome": outcome, "effect": effect, "verify_seconds": seconds,
                                   "verified_at": at}
        if outcome == "verified":
            self.effects_unreported.append(action_id)
        return True

    async def mark_effect_reported(self, action_id: str) -> None:
        self.effects_unreported = [i for i in self.effects_unreported if i != action_id]

    async def unreported_effects(self) -> list[ActionView]:
        return [self._view(self.records[i]) for i in self.effects_unreported]

    async def kills(self, *, limit: int = 100) -> list[FlagKill]:
        newest: dict[str, FlagKill] = {}
        for r in sorted(self.records.values(), key=lambda r: r.started_at):
            for flag in self.killed.get(r.action_id, []):
                newest[flag] = FlagKill(flag=flag, action_id=r.action_id, service=r.service, trigger=r.trigger,
                                        episode_id=r.episode_id, reason=r.reason, killed_at=r.started_at)
        return sorted(newest.values(), key=lambda k: k.killed_at, reverse=True)[:limit]

    async def skipped_while_paused(self, service: str | None = None) -> list[Episode]:
        acted = {r.episode_id for r in self.records.values() if r.status != "skipped"}
        paused = {r.episode_id for r in self.records.values() if r.actor == "recovery" and r.status == "skipped"
                  and r.detail.startswith("paused:")}
        return [ep for ep in await self.active(service) if ep.episode_id in paused - acted]

    async def release(self, action_id: str) -> None:
        if action_id in self.records and self.records[action_id].status == "started":
            del self.records[action_id]
            self.leases.pop(action_id, None)
            self.deadlines.pop(action_id, None)

    async def finish(self, record: ActionRecord) -> bool:
        old = self.records.get(record.action_id)
        if old is None or old.status != "started":
            return False
        self.records[record.action_id] = record
        self.leases.pop(record.action_id, None)
        self.unreported_ids.append(record.action_id)
        return True

    async def mark_reported(self, action_id: str) -> None:
        self.unreported_ids = [i for i in self.unreported_ids if i != action_id]

    async def unreported(self) -> list[ActionRecord]:
        return [self.records[i] for i in self.unreported_ids]

    async def pending(self, *, now: datetime, episode_id: str | None = None,
                      due: datetime | None = None) -> list[ActionRecord]:
        return [r for r in self.records.values() if r.status == "started"
                and (r.action_id not in self.leases or self.leases[r.action_id] < now)
                and (episode_id is None or r.episode_id == episode_id)
                and (due is None or self.deadlines.get(r.action_id, due) <= due)]

    async def save_episode(self, ep: Episode, *, at: datetime) -> None:
        self.episodes.setdefault(ep.episode_id, ep)

    async def end_episode(self, episode_id: str, *, at: datetime) -> None:
        if episode_id in self.episodes:
            self.cleared_ids.add(episode_id)

    async def cleared(self, episode_id: str) -> bool:
        return episode_id in self.cleared_ids

    async def active(self, service: str | None = None) -> list[Episode]:
        out = []
        for ep in self.episodes.values():
            if ep.episode_id not in self.cleared_ids and (service is None or ep.service == service):
                attempts = sum(r.episode_id == ep.episode_id and r.status != "skipped" for r in self.records.values())
                out.append(Episode(**{**vars(ep), "attempts": attempts}))
        return out
