"""In-memory adapters of the flags core's ports (`ports.py`), for unit tests and tools: `MemoryRepository`
(flags, audit log / outbox, scheduled changes; units of work run one at a time and write nothing unless
committed) and `MemoryCache` (the shared copy, and the change messages it would send to the other
instances). Set `down` to make every call fail as a store (or Redis) that does not answer would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType

from services.flags.models import AuditEntry, FlagRecord, ScheduleRead
from services.flags.ports import Change, Saved, peer_message
from shared.ports import Clock

__all__ = ["MemoryRepository", "MemoryUnitOfWork", "MemoryCache", "StoreDown"]


class StoreDown(ConnectionError):
    """What a call to an adapter set `down` raises."""


def _now() -> datetime:
    return datetime.now(UTC)


class MemoryRepository:
    def __init__(self, *, clock: Clock = _now) -> None:
        self.clock = clock
        self.down = False
        self.flags: dict[str, FlagRecord] = {}  # deleted flags stay, with deleted_at (their version goes on)
        self.log: list[AuditEntry] = []
        self.published: set[int] = set()
        self.failed: dict[int, str] = {}
        self.scheduled: dict[int, ScheduleRead] = {}
        self.sequence = 0  # the revision sequence
        self._lock = asyncio.Lock()

    def check(self) -> None:
        if self.down:
            raise StoreDown("the flag store is down")

    async def ping(self) -> None:
        self.check()

    async def load_all(self) -> list[FlagRecord]:
        self.check()
        return [r for _, r in sorted(self.flags.items()) if r.deleted_at is None]

    async def revision(self) -> int:
        self.check()
        return max((r.revision for r in self.flags.values()), default=0)

    def unit_of_work(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    async def save_if_current(self, key: str, change: Change, *, before: FlagRecord, actor: str, reason: str
                              ) -> Saved | None:
        async with self.unit_of_work() as uow:
            stored = await uow.flags.get(key)
            if stored is None or stored.version != before.version:
                return None
            saved = await uow.flags.save(key, change, actor=actor, reason=reason)
            await uow.commit()
            return saved

    async def audit(self, key: str | None, *, limit: int, before_id: int | None) -> list[AuditEntry]:
        self.check()
        found = [e for e in reversed(self.log) if (key is None or e.flag_key == key)
                 and (before_id is None or e.id < before_id)]
        return found[:limit]

    @asynccontextmanager
    async def relay_turn(self) -> AsyncIterator[bool]:
        self.check()
        yield True

    async def unpublished(self, *, limit: int) -> list[AuditEntry]:
        self.check()
        return [e for e in self.log if e.id not in self.published and e.id not in self.failed][:limit]

    async def mark_published(self, ids: list[int]) -> None:
        self.check()
        self.published.update(ids)

    async def mark_failed(self, entry_id: int, error: str) -> None:
        self.check()
        self.failed[entry_id] = error[:2000]

    async def add_schedule(self, key: str, *, action: str, percent: float | None, run_at: datetime,
                           reason: str, requested_by: str) -> ScheduleRead:
        self.check()
        s = ScheduleRead(id=len(self.scheduled) + 1, flag_key=key, action=action, percent=percent, run_at=run_at,
                         reason=reason, requested_by=requested_by, status="pending")
        self.scheduled[s.id] = s
        return s

    async def schedules(self, key: str | None) -> list[ScheduleRead]:
        self.check()
        return sorted((s for s in self.scheduled.values() if key is None or s.flag_key == key),
                      key=lambda s: (s.run_at, s.id))

    async def cancel_schedule(self, key: str, schedule_id: int) -> bool:
        self.check()
        s = self.scheduled.get(schedule_id)
        if s is None or s.flag_key != key or s.status != "pending":
            return False
        self.scheduled[s.id] = s.model_copy(update={"status": "cancelled", "done_at": self.clock()})
        return True

    async def due_schedules(self, now: datetime) -> list[ScheduleRead]:
        self.check()
        due = [s for s in await self.schedules(None) if s.status == "pending" and s.run_at <= now][:50]
        for s in due:
            self.scheduled[s.id] = s.model_copy(update={"status": "running"})
        return due

    async def finish_schedule(self, schedule_id: int, *, status: str, error: str | None) -> None:
        self.check()
        s = self.scheduled[schedule_id]
        self.scheduled[s.id] = s.model_copy(update={"status": status, "error": error, "done_at": self.clock()})


class MemoryUnitOfWork:
    """Holds the repository's lock from enter to exit; `commit()` applies what `flags` staged, all at once."""

    def __init__(self, repo: MemoryRepository) -> None:
        self.repo = repo
        self.flags = MemoryRows(repo)

    async def __aenter__(self) -> MemoryUnitOfWork:
        self.repo.check()
        await self.repo._lock.acquire()
        self.flags = MemoryRows(self.repo)
        return self

    async def commit(self) -> None:
        self.repo.check()
        self.flags.apply()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.repo._lock.release()


class MemoryRows:
    def __init__(self, repo: MemoryRepository) -> None:
        self.repo = repo
        self.staged: dict[str, FlagRecord] = {}
        self.entries: list[AuditEntry] = []
        self.sequence = repo.sequence

    def _stored(self, key: str) -> FlagRecord | None:
        return self.staged[key] if key in self.staged else self.repo.flags.get(key)

    async def get(self, key: str) -> FlagRecord | None:
        self.repo.check()
        stored = self._stored(key)
        return stored if stored and stored.deleted_at is None else None

    async def new_and_on(self) -> list[FlagRecord]:
        self.repo.check()
        return [r for r in await self.repo.load_all() if r.new and r.definition.get("state") == "ENABLED"]

    async def save(self, key: str, change: Change, *, actor: str, reason: str) -> Saved:
        self.repo.check()
        stored = self._stored(key)
        before = stored if stored and stored.deleted_at is None else None
        version, now = (stored.version + 1) if stored else 1, self.repo.clock()
        self.sequence += 1
        fields = {"version": version, "revision": self.sequence, "updated_at": now}
        after = None if change.after is None else change.after.model_copy(update={
            **fields, "deleted_at": None, "created_at": before.created_at if before else now})
        if after is not None:
            self.staged[key] = after
        elif stored is not None:
            self.staged[key] = stored.model_copy(update={**fields, "deleted_at": now})
        entry = AuditEntry(id=len(self.repo.log) + len(self.entries) + 1, flag_key=key, action=change.action,
                           actor=actor, reason=reason, version=version, at=now,
                           before=before.audit_view() if before else None, after=after.audit_view() if after else None)
        self.entries.append(entry)
        return after, entry

    def apply(self) -> None:
        self.repo.flags.update(self.staged)
        self.repo.log.extend(self.entries)
        self.repo.sequence = self.sequence
        self.staged, self.entries = {}, []


class MemoryCache:
    """The shared copy in memory; `sent` holds the change messages the other instances would receive."""

    def __init__(self, *, origin: str = "memory") -> None:
        self.origin = origin
        self.down = False
        self.records: dict[str, FlagRecord] = {}
        self.rev = 0
        self.sent: list[str] = []

    def check(self) -> None:
        if self.down:
            raise StoreDown("the flag cache is down")

    async def revision(self) -> int:
        self.check()
        return self.rev

    async def put(self, record: FlagRecord | None, key: str, revision: int, *, prev: int = 0) -> None:
        self.check()
        if record is None:
            self.records.pop(key, None)
        else:
            self.records[key] = record
        self.rev = revision
        self.sent.append(peer_message(origin=self.origin, key=key, record=record, revision=revision, prev=prev))

    async def replace_all(self, records: list[FlagRecord], revision: int) -> None:
        self.check()
        self.records, self.rev = {r.key: r for r in records}, revision

    async def load_all(self) -> tuple[list[FlagRecord], int]:
        self.check()
        return list(self.records.values()), self.rev
