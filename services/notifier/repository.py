"""Outbound edge: Postgres (asyncpg). Schema `notifier`, own migrations applied at start."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import asyncpg

from services.notifier.models import DeliveryRecord, Incident, TimelineEntry
from shared.migrations import migrate as shared_migrate
from shared.postgres import open_pool

__all__ = ["PgIncidentStore", "MemoryIncidentStore", "open_pool", "migrate", "MIGRATIONS"]

MIGRATIONS = Path(__file__).parent / "migrations"
_COLS = ("incident_id", "service", "trigger", "episode_id", "title", "severity", "status", "level",
         "acknowledged_by", "opened_at", "mitigated_at", "resolved_at", "resolved_by")


async def migrate(pool: asyncpg.Pool, *, schema: str = "notifier", directory: Path = MIGRATIONS) -> list[str]:
    return await shared_migrate(pool, schema=schema, directory=directory)


class PgIncidentStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def save_incident(self, incident: Incident) -> None:
        values = [getattr(incident, c) for c in _COLS]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLS[1:])
        await self.pool.execute(
            f"INSERT INTO incidents ({', '.join(_COLS)}) VALUES ({', '.join(f'${i}' for i in range(1, len(_COLS) + 1))})"
            f" ON CONFLICT (incident_id) DO UPDATE SET {updates}", *values)

    async def add_entry(self, incident_id: str, entry: TimelineEntry) -> None:
        await self.pool.execute("INSERT INTO timeline (incident_id, at, kind, text, actor) VALUES ($1, $2, $3, $4, $5)",
                                incident_id, entry.at, entry.kind, entry.text, entry.actor)

    async def save_delivery(self, record: DeliveryRecord) -> None:
        await self.pool.execute(
            "INSERT INTO deliveries (delivery_id, incident_id, channel, recipient, ok, error, message, at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (delivery_id) DO NOTHING",
            record.delivery_id, record.incident_id, record.channel, record.recipient, record.ok, record.error,
            record.message, record.at)

    async def save_report(self, incident_id: str, markdown: str, at: datetime) -> None:
        await self.pool.execute("INSERT INTO reports (incident_id, markdown, created_at) VALUES ($1, $2, $3)"
                                " ON CONFLICT (incident_id) DO UPDATE SET markdown = $2, created_at = $3",
                                incident_id, markdown, at)

    async def get(self, incident_id: str) -> Incident | None:
        found = await self._select("WHERE incident_id = $1", incident_id)
        return found[0] if found else None

    async def open_incidents(self) -> list[Incident]:
        return await self._select("WHERE status <> 'resolved' ORDER BY opened_at")

    async def recent(self, *, since: datetime, limit: int = 200) -> list[Incident]:
        """Open incidents, and those resolved after `since`, newest first."""
        return await self._select("WHERE status <> 'resolved' OR resolved_at >= $1 ORDER BY opened_at DESC LIMIT $2",
                                  since, limit)

    async def report(self, incident_id: str) -> str | None:
        value: str | None = await self.pool.fetchval("SELECT markdown FROM reports WHERE incident_id = $1", incident_id)
        return value

    async def deliveries(self, incident_id: str) -> list[DeliveryRecord]:
        rows = await self.pool.fetch("SELECT * FROM deliveries WHERE incident_id = $1 ORDER BY at", incident_id)
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
    """The same in dicts (unit tests)."""

    def __init__(self) -> None:
        self.incidents: dict[str, Incident] = {}
        self.entries: dict[str, list[TimelineEntry]] = {}
        self.delivery_records: list[DeliveryRecord] = []
        self.reports: dict[str, str] = {}

    async def save_incident(self, incident: Incident) -> None:
        self.incidents[incident.incident_id] = incident.model_copy(update={"timeline": []})

    async def add_entry(self, incident_id: str, entry: TimelineEntry) -> None:
        self.entries.setdefault(incident_id, []).append(entry)

    async def save_delivery(self, record: DeliveryRecord) -> None:
        self.delivery_records.append(record)

    async def save_report(self, incident_id: str, markdown: str, at: datetime) -> None:
        self.reports[incident_id] = markdown

    async def get(self, incident_id: str) -> Incident | None:
        inc = self.incidents.get(incident_id)
        return None if inc is None else inc.model_copy(update={"timeline": list(self.entries.get(incident_id, []))})

    async def open_incidents(self) -> list[Incident]:
        return [i for i in [await self.get(k) for k in self.incidents] if i is not None and i.status != "resolved"]

    async def recent(self, *, since: datetime, limit: int = 200) -> list[Incident]:
        out = [i for i in [await self.get(k) for k in self.incidents] if i is not None
               and (i.status != "resolved" or (i.resolved_at is not None and i.resolved_at >= since))]
        return sorted(out, key=lambda i: i.opened_at, reverse=True)[:limit]

    async def report(self, incident_id: str) -> str | None:
        return self.reports.get(incident_id)

    async def deliveries(self, incident_id: str) -> list[DeliveryRecord]:
        return [d for d in self.delivery_records if d.incident_id == incident_id]
