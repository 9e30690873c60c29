"""Outbound edge: Postgres (asyncpg). Schema `notifier`, own migrations applied at start.

`commit` writes one `Change` in one transaction (the incident under optimistic concurrency, its
timeline entries, the outbox events, the pending notices, the report); the relay then claims due
outbox rows and notices with a lease (`FOR UPDATE SKIP LOCKED`), so instances never send one twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from services.notifier.models import Change, DeliveryRecord, Incident, OutboxRow, TimelineEntry
from shared.events import Event, parse
from shared.migrations import migrate as shared_migrate
from shared.postgres import open_pool

__all__ = ["PgIncidentStore", "MemoryIncidentStore", "open_pool", "migrate", "MIGRATIONS"]

MIGRATIONS = Path(__file__).parent / "migrations"
_COLS = ("incident_id", "service", "trigger", "episode_id", "title", "severity", "status", "level",
         "acknowledged_by", "opened_at", "mitigated_at", "resolved_at", "resolved_by", "escalate_at",
         "during_maintenance", "traceparent", "version")
_DCOLS = ("delivery_id", "incident_id", "channel", "recipient", "ok", "error", "message", "at", "status", "attempts",
          "next_at")
_INSERT = (f"INSERT INTO incidents ({', '.join(_COLS)}) VALUES ({', '.join(f'${i}' for i in range(1, len(_COLS) + 1))})"
           " ON CONFLICT (incident_id) DO NOTHING RETURNING incident_id")
_UPDATE = (f"UPDATE incidents SET {', '.join(f'{c} = ${i}' for i, c in enumerate(_COLS[1:-1], 2))},"
           f" version = version + 1 WHERE incident_id = $1 AND version = ${len(_COLS)} RETURNING incident_id")
_CLAIM_EVENTS = ("UPDATE outbox SET lease_until = $2 WHERE id IN (SELECT id FROM outbox WHERE next_at <= $1"
                 " AND (lease_until IS NULL OR lease_until < $1) ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)"
                 " RETURNING id, topic, payload, attempts")
_CLAIM_NOTICES = (f"UPDATE deliveries SET lease_until = $2 WHERE delivery_id IN (SELECT delivery_id FROM deliveries"
                  " WHERE status = 'pending' AND next_at <= $1 AND (lease_until IS NULL OR lease_until < $1)"
                  f" ORDER BY at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING {', '.join(_DCOLS)}")


async def migrate(pool: asyncpg.Pool, *, schema: str = "notifier", directory: Path = MIGRATIONS) -> list[str]:
    return await shared_migrate(pool, schema=schema, directory=directory)


def _outbox_args(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.topic, e.model_dump_json()) for e in events]


_OUTBOX = "INSERT INTO outbox (topic, payload, created_at, next_at) VALUES ($1, $2, now(), now())"


class PgIncidentStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def commit(self, change: Change) -> bool:
        inc = change.incident
        values = [getattr(inc, c) for c in _COLS]
        async with self.pool.acquire() as conn, conn.transaction():
            if change.version is None:
                done = await conn.fetchval(_INSERT, *values)
            else:
                done = await conn.fetchval(_UPDATE, *values[:-1], change.version)
            if done is None:
                return False
            await conn.executemany("INSERT INTO timeline (incident_id, at, kind, text, actor)"
                                   " VALUES ($1, $2, $3, $4, $5)",
                                   [(inc.incident_id, e.at, e.kind, e.text, e.actor) for e in change.entries])
            await conn.executemany(
                f"INSERT INTO deliveries ({', '.join(_DCOLS)}) VALUES ({', '.join(f'${i}' for i in range(1, 12))})",
                [tuple(getattr(d, c) for c in _DCOLS) for d in change.notices])
            await conn.executemany(_OUTBOX, _outbox_args(change.events))
            if change.report is not None:
                await conn.execute("INSERT INTO reports (incident_id, markdown, created_at) VALUES ($1, $2, $3)"
                                   " ON CONFLICT (incident_id) DO UPDATE SET markdown = $2, created_at = $3",
                                   inc.incident_id, change.report, inc.resolved_at or inc.opened_at)
        return True

    async def claim_events(self, *, now: datetime, lease: timedelta, limit: int = 100) -> list[OutboxRow]:
        rows = await self.pool.fetch(_CLAIM_EVENTS, now, now + lease, limit)
        return [OutboxRow(row_id=r["id"], event=parse(r["topic"], r["payload"]), attempts=r["attempts"])
                for r in sorted(rows, key=lambda r: r["id"])]

    async def event_sent(self, row_id: int) -> None:
        await self.pool.execute("DELETE FROM outbox WHERE id = $1", row_id)

    async def event_failed(self, row_id: int, *, error: str, next_at: datetime) -> None:
        await self.pool.execute("UPDATE outbox SET attempts = attempts + 1, next_at = $2, last_error = $3,"
                                " lease_until = NULL WHERE id = $1", row_id, next_at, error)

    async def claim_notices(self, *, now: datetime, lease: timedelta, limit: int = 50) -> list[DeliveryRecord]:
        rows = await self.pool.fetch(_CLAIM_NOTICES, now, now + lease, limit)
        return sorted((DeliveryRecord(**dict(r)) for r in rows), key=lambda d: d.at)

    async def notice_done(self, record: DeliveryRecord, *, event: Event) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE deliveries SET ok = $2, error = $3, status = $4, attempts = $5, next_at = $6,"
                               " lease_until = NULL WHERE delivery_id = $1", record.delivery_id, record.ok,
                               record.error, record.status, record.attempts, record.next_at)
            await conn.executemany(_OUTBOX, _outbox_args([event]))

    async def get(self, incident_id: str) -> Incident | None:
        found = await self._select("WHERE incident_id = $1", incident_id)
        return found[0] if found else None

    async def open_incidents(self) -> list[Incident]:
        return await self._select("WHERE status <> 'resolved' ORDER BY opened_at")

    async def due_escalations(self, *, now: datetime) -> list[Incident]:
        return await self._select("WHERE status = 'open' AND escalate_at <= $1 ORDER BY escalate_at", now)

    async def recent(self, *, since: datetime, limit: int = 200) -> list[Incident]:
        """Open incidents, and those resolved after `since`, newest first."""
        return await self._select("WHERE status <> 'resolved' OR resolved_at >= $1 ORDER BY opened_at DESC LIMIT $2",
                                  since, limit)

    async def report(self, incident_id: str) -> str | None:
        value: str | None = await self.pool.fetchval("SELECT markdown FROM reports WHERE incident_id = $1", incident_id)
        return value

    async def deliveries(self, incident_id: str) -> list[DeliveryRecord]:
        rows = await self.pool.fetch(f"SELECT {', '.join(_DCOLS)} FROM deliveries WHERE incident_id = $1 ORDER BY at",
                                     incident_id)
        return [DeliveryRecord(**dict(r)) for r in rows]

    async def _select(self, where: str, *args: object) -> list[Incident]:
        rows = await self.pool.fetch(f"SELECT {', '.join(_COLS)} FROM incidents {where}", *args)
        if not rows:
            return []
        ids = [r["incident_id"] for r in rows]
        entries = await self.pool.fetch("SELECT incident_id, at, kind, text, actor FROM timeline"
                                        " WHERE incident_id = ANY($1::text[]) ORDER BY id", ids)
        by_id: dict[str, list[TimelineEntry]] = {i: [] for i in ids}
        for e in entries:
            by_id[e["incident_id"]].append(TimelineEntry(at=e["at"], kind=e["kind"], text=e["text"], actor=e["actor"]))
        return [Incident(**dict(r), timeline=by_id[r["incident_id"]]) for r in rows]


class MemoryIncidentStore:
    """The same in dicts (unit tests; several service objects may share one, like instances)."""

    def __init__(self) -> None:
        self.incidents: dict[str, Incident] = {}
        self.entries: dict[str, list[TimelineEntry]] = {}
        self.delivery_records: list[DeliveryRecord] = []
        self.reports: dict[str, str] = {}
        self.outbox: dict[int, tuple[Event, int, datetime | None]] = {}
        self.leases: dict[Any, datetime] = {}
        self._next_id = 0

    async def commit(self, change: Change) -> bool:
        inc, old = change.incident, self.incidents.get(change.incident.incident_id)
        if (old is not None) if change.version is None else (old is None or old.version != change.version):
            return False
        version = 0 if change.version is None else change.version + 1
        self.incidents[inc.incident_id] = inc.model_copy(update={"timeline": [], "version": version})
        self.entries.setdefault(inc.incident_id, []).extend(change.entries)
        self.delivery_records += [d.model_copy() for d in change.notices]
        self._enqueue(change.events)
        if change.report is not None:
            self.reports[inc.incident_id] = change.report
        return True

    def _enqueue(self, events: list[Event]) -> None:
        for e in events:
            self._next_id += 1
            self.outbox[self._next_id] = (e, 0, None)

    def _claimable(self, key: Any, now: datetime) -> bool:
        lease = self.leases.get(key)
        return lease is None or lease < now

    async def claim_events(self, *, now: datetime, lease: timedelta, limit: int = 100) -> list[OutboxRow]:
        out = []
        for row_id, (event, attempts, next_at) in sorted(self.outbox.items()):
            if (next_at is None or next_at <= now) and self._claimable(("e", row_id), now):
                self.leases[("e", row_id)] = now + lease
                out.append(OutboxRow(row_id=row_id, event=event, attempts=attempts))
        return out[:limit]

    async def event_sent(self, row_id: int) -> None:
        self.outbox.pop(row_id, None)
        self.leases.pop(("e", row_id), None)

    async def event_failed(self, row_id: int, *, error: str, next_at: datetime) -> None:
        event, attempts, _ = self.outbox[row_id]
        self.outbox[row_id] = (event, attempts + 1, next_at)
        self.leases.pop(("e", row_id), None)

    async def claim_notices(self, *, now: datetime, lease: timedelta, limit: int = 50) -> list[DeliveryRecord]:
        out = []
        for d in self.delivery_records:
            if d.status == "pending" and d.next_at is not None and d.next_at <= now \
                    and self._claimable(d.delivery_id, now):
                self.leases[d.delivery_id] = now + lease
                out.append(d.model_copy())
        return out[:limit]

    async def notice_done(self, record: DeliveryRecord, *, event: Event) -> None:
        self.delivery_records = [record if d.delivery_id == record.delivery_id else d for d in self.delivery_records]
        self.leases.pop(record.delivery_id, None)
        self._enqueue([event])

    async def get(self, incident_id: str) -> Incident | None:
        inc = self.incidents.get(incident_id)
        return None if inc is None else inc.model_copy(update={"timeline": list(self.entries.get(incident_id, []))})

    async def open_incidents(self) -> list[Incident]:
        return [i for i in [await self.get(k) for k in self.incidents] if i is not None and i.status != "resolved"]

    async def due_escalations(self, *, now: datetime) -> list[Incident]:
        return [i for i in await self.open_incidents()
                if i.status == "open" and i.escalate_at is not None and i.escalate_at <= now]

    async def recent(self, *, since: datetime, limit: int = 200) -> list[Incident]:
        out = [i for i in [await self.get(k) for k in self.incidents] if i is not None
               and (i.status != "resolved" or (i.resolved_at is not None and i.resolved_at >= since))]
        return sorted(out, key=lambda i: i.opened_at, reverse=True)[:limit]

    async def report(self, incident_id: str) -> str | None:
        return self.reports.get(incident_id)

    async def deliveries(self, incident_id: str) -> list[DeliveryRecord]:
        return [d for d in self.delivery_records if d.incident_id == incident_id]
