"""The flags core's ports: what `service.py` and its jobs (`changes`, `outbox`, `schedules`) need from the
world, named without any framework (importing this loads no asyncpg, redis or Kafka client).

Adapters: `repository.PgRepository` (Postgres) and `memory.MemoryRepository` (tests) for the store;
`cache.FlagCache` (Redis) and `memory.MemoryCache` for the shared copy; the publisher and the clock are
`shared.ports` (the outbox relay needs `RawPublisher` for a delete's tombstone).

A change is a unit of work: rows read through `uow.flags` stay locked until it ends; nothing is written
unless `commit()` is called before the block ends::

    async with store.unit_of_work() as uow:
        flag = await uow.flags.get(key)
        saved = await uow.flags.save(key, Change("killed", rules.set_enabled(flag, key, enabled=False)), ...)
        await uow.commit()
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol

from services.flags.models import AuditEntry, FlagRecord, ScheduleRead

__all__ = ["Change", "Saved", "FlagRows", "UnitOfWork", "FlagStore", "Outbox", "ScheduleStore", "Repository",
           "FlagCopy", "peer_message"]


@dataclass(frozen=True, slots=True)
class Change:
    """What one decision did: the audit action and the flag after it (None: deleted)."""

    action: str
    after: FlagRecord | None


Saved = tuple[FlagRecord | None, AuditEntry]  # the flag as stored (with its revision), and its audit entry


class FlagRows(Protocol):
    """The flags inside one unit of work. A row read here is locked until the unit of work ends."""

    async def get(self, key: str) -> FlagRecord | None:
        """The flag (None when absent or deleted), locked."""

    async def new_and_on(self) -> list[FlagRecord]:
        """Every flag marked new whose state is ENABLED, by key, locked."""

    async def save(self, key: str, change: Change, *, actor: str, reason: str) -> Saved:
        """Write the flag after the change (or delete it) and its audit entry (the outbox row)."""


class UnitOfWork(Protocol):
    @property
    def flags(self) -> FlagRows: ...

    async def commit(self) -> None: ...

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Rolls back whatever was not committed."""


class FlagStore(Protocol):
    async def ping(self) -> None: ...
    async def load_all(self) -> list[FlagRecord]: ...
    async def revision(self) -> int: ...
    def unit_of_work(self) -> UnitOfWork: ...

    async def save_if_current(self, key: str, change: Change, *, before: FlagRecord, actor: str, reason: str
                              ) -> Saved | None:
        """`change` (not a delete) decided on `before`, saved with its audit entry at once, only if the stored
        flag is still at `before.version` (else None, nothing written): a change without a unit of work."""

    async def audit(self, key: str | None, *, limit: int, before_id: int | None) -> list[AuditEntry]: ...


class Outbox(Protocol):
    """The audit log read as an outbox: entries not yet published, in order."""

    def relay_turn(self) -> AbstractAsyncContextManager[bool]:
        """True while this instance holds the relay's turn (one instance relays at a time)."""

    async def unpublished(self, *, limit: int) -> list[AuditEntry]: ...
    async def mark_published(self, ids: list[int]) -> None: ...
    async def mark_failed(self, entry_id: int, error: str) -> None: ...


class ScheduleStore(Protocol):
    async def add_schedule(self, key: str, *, action: str, percent: float | None, run_at: datetime,
                           reason: str, requested_by: str) -> ScheduleRead: ...
    async def schedules(self, key: str | None) -> list[ScheduleRead]: ...
    async def cancel_schedule(self, key: str, schedule_id: int) -> bool: ...
    async def due_schedules(self, now: datetime) -> list[ScheduleRead]:
        """Claim the due changes (two instances never run one twice)."""

    async def finish_schedule(self, schedule_id: int, *, status: str, error: str | None) -> None: ...


class Repository(FlagStore, Outbox, ScheduleStore, Protocol):
    """The flag store: flags, the audit log / outbox, scheduled changes."""


class FlagCopy(Protocol):
    """The shared copy of every flag (Redis): serves a restart while the store is down, and tells the other
    instances about each change (`put`)."""

    @property
    def origin(self) -> str:
        """This instance: its own change messages are skipped."""

    async def revision(self) -> int: ...
    async def put(self, record: FlagRecord | None, key: str, revision: int, *, prev: int = 0) -> None: ...
    async def replace_all(self, records: list[FlagRecord], revision: int) -> None: ...
    async def load_all(self) -> tuple[list[FlagRecord], int]: ...


def peer_message(*, origin: str, key: str, record: FlagRecord | None, revision: int, prev: int) -> str:
    """One change for the other instances (what `FlagCopy.put` sends, `FlagService.apply_peer` reads): the flag
    after it (None: deleted), the sender's snapshot revision after it and before it (`prev`: a receiver that
    does not know `prev` yet missed a change)."""
    return json.dumps({"origin": origin, "key": key, "revision": revision, "prev": prev,
                       "record": record.model_dump(mode="json") if record else None}, separators=(",", ":"))
