"""The core of the flags service: evaluation from memory, loading and refresh, and the jobs it composes:
changes (`changes.py`, audited and outboxed, fail-safe turn-offs), the outbox relay (`outbox.py`) and
scheduled changes (`schedules.py`). It sees the world through ports (`ports.py`, `shared.ports`).

Reads and evaluations come from the in-memory `Snapshot`, never from the network. The snapshot is
loaded from Postgres (else from the Redis copy), and refreshed when the revision in Redis (else in
Postgres) moves. A full load that read the store before a change was applied is dropped (applying it,
or refilling Redis with it, would undo a kill) and the next refresh loads again (`reload_due`).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from services.flags import rules
from services.flags.changes import Changes, is_off
from services.flags.journal import KillJournal
from services.flags.models import AuditEntry, DefinitionError, FlagCreate, FlagRecord, FlagUpdate, ImportRequest
from services.flags.models import ScheduleCreate, ScheduleRead
from services.flags.outbox import OutboxRelay
from services.flags.ports import FlagCopy, Repository
from services.flags.schedules import Schedules
from services.flags.state import FlagState, Unavailable
from shared.ports import Clock, Publisher

__all__ = ["FlagService", "Unavailable"]

logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class FlagService(FlagState):
    def __init__(self, *, repo: Repository, cache: FlagCopy | None, publisher: Publisher | None = None,
                 topic_prefix: str = "", clock: Clock = _now, journal: KillJournal | None = None,
                 store_timeout_s: float = 2.0) -> None:
        super().__init__(cache=cache, kafka_known=publisher is not None)
        self.repo = repo
        self.journal = journal
        self.reload_due = False  # a load was dropped (it raced a change): the next refresh loads again
        self.relay = OutboxRelay(outbox=repo, state=self, publisher=publisher, topic_prefix=topic_prefix)
        self.changes = Changes(store=repo, state=self, relay=self.relay, journal=journal,
                               store_timeout_s=store_timeout_s)
        self.scheduled = Schedules(store=repo, state=self, changes=self.changes, clock=clock)

    # ---------------------------------------------------------------- loading and refresh
    async def load(self) -> None:
        """Full load: Postgres first (and refill Redis), else the Redis copy, else keep what we have."""
        seen = self.changes_applied
        if self.journal is not None:
            since = self.journal_seq
            self.journal_read(await self.journal.pending(), since=since)
        try:
            records, revision = await self.repo.load_all(), await self.repo.revision()
        except Exception as exc:  # noqa: BLE001 - fall back to the cache
            self.mark("postgres", False, exc)
            await self._load_copy(seen)
            return
        self.mark("postgres", True)
        if self._raced(seen):
            return
        self._replace(records, revision, "postgres")
        if self.cache is not None:
            try:
                await self.cache.replace_all(records, revision)
                self.mark("redis", True)
            except Exception as exc:  # noqa: BLE001 - cache is optional
                self.mark("redis", False, exc)

    async def _load_copy(self, seen: int) -> None:
        """The store is away: the Redis copy, when it is not older than what we serve."""
        if self.cache is None:
            return
        try:
            records, revision = await self.cache.load_all()
            self.mark("redis", True)
        except Exception as exc:  # noqa: BLE001 - keep serving the last snapshot
            self.mark("redis", False, exc)
            return
        if not self._raced(seen) and (not self.snapshot.loaded or revision >= self.snapshot.revision):
            self._replace(records, revision, "redis")

    def _raced(self, seen: int) -> bool:
        """A change was applied while the load read: drop the load and load again at the next refresh."""
        if self.changes_applied == seen:
            return False
        logger.info("flags load dropped: a change was applied while it read; loading again on the next refresh")
        self.reload_due = True
        return True

    def _replace(self, records: list[FlagRecord], revision: int, source: str) -> None:
        records = self._overlay(records)
        revision = max(revision, self.snapshot.revision) if self.pending else revision
        for key in self.snapshot.replace_all(records, revision):
            entry = self.snapshot.get(key)
            self.broadcast(key, entry.record if entry else None)
        self.loaded_from = source
        self.reload_due = False

    def _overlay(self, records: list[FlagRecord]) -> list[FlagRecord]:
        """Turn-offs not yet reconciled into the store win over what the store (or Redis) says."""
        by_key = {r.key: r for r in records}
        for p in self.pending:
            rec = by_key.get(p.key)
            if rec is None or is_off(rec, kill=p.kill):
                continue
            current = self.snapshot.get(p.key)
            version = max(rec.version, current.record.version if current else 0)
            try:
                off = rules.set_enabled(rec, p.key, enabled=False, kill=p.kill)
            except DefinitionError:  # its off variant was removed since: nothing to serve as off
                continue
            by_key[p.key] = off.model_copy(update={"version": version})
        return list(by_key.values()) if self.pending else records

    async def refresh(self) -> None:
        """Cheap check of the shared revision (Redis, else Postgres); reload when another instance changed flags."""
        revision: int | None = None
        if self.cache is not None:
            try:
                revision = await self.cache.revision()
                self.mark("redis", True)
            except Exception as exc:  # noqa: BLE001
                self.mark("redis", False, exc)
        behind = self.loaded_from != "postgres" or self.reload_due
        if revision is None or self.status["postgres"] != "up" or behind:
            try:
                revision = await self.repo.revision()
                self.mark("postgres", True)
            except Exception as exc:  # noqa: BLE001
                self.mark("postgres", False, exc)
        if revision is not None and (revision != self.snapshot.revision or behind):
            await self.load()

    def apply_peer(self, raw: bytes | str) -> bool:
        """A change another instance made (Redis pub/sub): apply it if newer, push it to our subscribers.
        Returns True when a change was missed before it (the caller reloads)."""
        try:
            msg = json.loads(raw)
            record = FlagRecord.model_validate(msg["record"]) if msg["record"] is not None else None
            key, revision, prev = str(msg["key"]), int(msg["revision"]), int(msg.get("prev", 0))
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring an unreadable peer change message")
            return False
        if self.cache is not None and msg.get("origin") == self.cache.origin:
            return False
        missed = prev > self.snapshot.revision
        if self.snapshot.apply_newer(key, record, revision):
            self.changes_applied += 1
            self.peer_changes += 1
            self.broadcast(key, record)
        return missed

    def export(self, *, serve_off: bool = False) -> dict[str, Any]:
        """A flagd flag file. `serve_off`: write killed/off flags as ENABLED with their off variant as the
        static default, so a plain flagd serves the off value too (flagd's DISABLED serves the code default)."""
        flags: dict[str, Any] = {}
        for rec in self.all():
            d = dict(rec.definition)
            entry = self.snapshot.get(rec.key)
            off = entry.compiled.off_variant if entry else None
            if serve_off and d["state"] == "DISABLED" and off is not None:
                d = {"state": "ENABLED", "variants": d["variants"], "defaultVariant": off,
                     **({"metadata": d["metadata"]} if d.get("metadata") else {})}
            flags[rec.key] = d
        return {"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": flags}

    # ---------------------------------------------------------------- the jobs, as the edges call them
    async def create(self, body: FlagCreate, *, actor: str) -> FlagRecord:
        return await self.changes.create(body, actor=actor)

    async def update(self, key: str, body: FlagUpdate, *, actor: str) -> FlagRecord:
        return await self.changes.update(key, body, actor=actor)

    async def set_enabled(self, key: str, *, enabled: bool, actor: str, reason: str, kill: bool = False
                          ) -> FlagRecord:
        return await self.changes.set_enabled(key, enabled=enabled, actor=actor, reason=reason, kill=kill)

    async def kill_new(self, *, actor: str, reason: str) -> list[str]:
        return await self.changes.kill_new(actor=actor, reason=reason)

    async def rollout(self, key: str, percent: float, *, actor: str, reason: str) -> FlagRecord:
        return await self.changes.rollout(key, percent, actor=actor, reason=reason)

    async def delete(self, key: str, *, actor: str, reason: str) -> None:
        await self.changes.delete(key, actor=actor, reason=reason)

    async def import_flags(self, req: ImportRequest, *, actor: str, reason: str, strict: bool) -> dict[str, Any]:
        return await self.changes.import_flags(req, actor=actor, reason=reason, strict=strict)

    async def reconcile(self) -> int:
        """Replay journaled turn-offs into the store; reload when any was."""
        done = await self.changes.reconcile()
        if done:
            await self.load()
        return done

    async def audit(self, key: str | None, *, limit: int, before_id: int | None) -> list[AuditEntry]:
        return await self.changes.audit(key, limit=limit, before_id=before_id)

    async def schedule(self, key: str, body: ScheduleCreate, *, actor: str) -> ScheduleRead:
        return await self.scheduled.add(key, body, actor=actor)

    async def schedules(self, key: str | None) -> list[ScheduleRead]:
        return await self.scheduled.find(key)

    async def cancel_schedule(self, key: str, schedule_id: int) -> bool:
        return await self.scheduled.cancel(key, schedule_id)

    async def run_due(self) -> int:
        return await self.scheduled.run_due()

    @property
    def publisher(self) -> Publisher | None:
        return self.relay.publisher

    @publisher.setter
    def publisher(self, pub: Publisher | None) -> None:
        self.relay.publisher = pub

    @property
    def outbox_failed(self) -> int:
        return self.relay.failed

    async def publish_pending(self) -> int:
        return await self.relay.publish_pending()

    def wake_relay(self) -> None:
        self.relay.wake()

    async def run_relay(self, *, interval_s: float = 2.0, max_backoff_s: float = 30.0) -> None:
        await self.relay.run(interval_s=interval_s, max_backoff_s=max_backoff_s)
