"""Outbound edges of the status page: the health and SLA services over HTTP (polled in the background, so
a page never waits on them), and the incident history in Postgres (intervals for the uptime bars)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import asyncpg
import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.notifier.maintenance_store import MaintenanceStore
from services.notifier.ports import IncidentStore
from services.notifier.maintenance import MaintenanceWindow
from services.notifier.status_page import HISTORY, build_status
from services.notifier.uptime import DAYS, Outage
from shared.tasks import background

__all__ = ["StatusPageSettings", "Snapshot", "StatusSources", "IncidentHistory", "PgHistory", "StoreHistory",
           "StatusData", "open_status_data"]

log = logging.getLogger(__name__)


def _local(port_env: str, port: int) -> str:
    """The native stack's address of a sibling service (its port follows the stack's environment)."""
    return f"http://127.0.0.1:{os.environ.get(port_env, port)}"


class StatusPageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_STATUS_", extra="ignore")
    health_url: str = Field(default_factory=lambda: _local("HEALTH_PORT", 8002), pattern=r"^https?://",
                            description="The health service (GET /api/system/status).")
    sla_url: str = Field(default_factory=lambda: _local("SLA_PORT", 8003), pattern=r"^https?://",
                         description="The SLA service (GET /api/sla: every service's budgets).")
    refresh_s: float = Field(default=10.0, gt=0, description="How often both are read.")
    health_unresponsive_after_s: float = Field(default=60.0, gt=0, description=(
        "The health service not answering this long opens its `unresponsive` incident (services/notifier/"
        "health_watch.py)."))
    timeout_s: float = Field(default=3.0, gt=0)


@dataclass(frozen=True)
class Snapshot:
    """The last answers of the health and SLA services; `errors` of the last round, by source."""

    system: dict[str, Any] | None = None
    sla: dict[str, Any] | None = None
    fetched_at: datetime | None = None
    errors: tuple[str, ...] = ()


class StatusSources:
    def __init__(self, *, settings: StatusPageSettings, http: httpx.AsyncClient) -> None:
        self.settings, self.http = settings, http
        self.snapshot = Snapshot()
        self.watchers: list[Callable[[Snapshot], Awaitable[None]]] = []  # told of every round (HealthWatch)

    async def _get(self, url: str) -> dict[str, Any]:
        r = await self.http.get(url, timeout=self.settings.timeout_s)
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    async def refresh(self) -> Snapshot:
        """One round; a source that fails keeps its last answer and is named in `errors`."""
        urls = (f"{self.settings.health_url}/api/system/status", f"{self.settings.sla_url}/api/sla")
        answers = await asyncio.gather(*(self._get(u) for u in urls), return_exceptions=True)
        old, errors = self.snapshot, []
        fresh: list[dict[str, Any] | None] = []
        for name, answer, before in zip(("health", "sla"), answers, (old.system, old.sla), strict=True):
            if isinstance(answer, BaseException):
                errors.append(f"{name} service: {type(answer).__name__} {answer}".strip())
                fresh.append(before)
            else:
                fresh.append(answer)
        self.snapshot = Snapshot(fresh[0], fresh[1], datetime.now(UTC) if not errors else old.fetched_at, tuple(errors))
        return self.snapshot

    async def run(self) -> None:
        while True:
            snapshot = await self.refresh()
            for watcher in self.watchers:
                try:
                    await watcher(snapshot)
                except Exception:  # noqa: BLE001 - a watcher's failure must not stop the page's sources
                    log.warning("status sources: a watcher failed", exc_info=True)
            await asyncio.sleep(self.settings.refresh_s)


class IncidentHistory(Protocol):
    async def outages(self, *, since: datetime) -> list[Outage]: ...

    async def recording_since(self) -> datetime | None: ...


class PgHistory:
    """Incident intervals straight from `incidents` (no timelines); recording began when the schema was made."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._since: datetime | None = None

    async def outages(self, *, since: datetime) -> list[Outage]:
        rows = await self.pool.fetch("SELECT service, severity, opened_at, resolved_at FROM incidents"
                                     " WHERE status <> 'resolved' OR resolved_at >= $1", since)
        return [Outage(r["service"], r["severity"], r["opened_at"], r["resolved_at"]) for r in rows]

    async def recording_since(self) -> datetime | None:
        if self._since is None:
            self._since = await self.pool.fetchval("SELECT min(applied_at) FROM schema_migrations")
        return self._since


class StoreHistory:
    """Any `IncidentStore` (the in-memory one in tests and the bench); `since`: when recording began."""

    def __init__(self, store: IncidentStore, *, since: datetime) -> None:
        self.store, self.since = store, since

    async def outages(self, *, since: datetime) -> list[Outage]:
        found = await self.store.recent(since=since, limit=1_000_000)
        return [Outage(i.service, i.severity, i.opened_at, i.resolved_at) for i in found]

    async def recording_since(self) -> datetime | None:
        return self.since


@dataclass
class StatusData:
    """What the status page reads: the incident store (open and recent), the history (bars), the last
    answers of the health and SLA services (`sources`; None: incidents only) and the maintenance windows
    not yet over (`maintenance`; None: none)."""

    history: IncidentHistory
    sources: StatusSources | None = None
    maintenance: MaintenanceStore | None = None

    async def status(self, *, store: IncidentStore, now: datetime) -> dict[str, Any]:
        incidents, outages, since, windows = await asyncio.gather(
            store.recent(since=now - HISTORY), self.history.outages(since=now - timedelta(days=DAYS)),
            self.history.recording_since(), self._windows(now))
        snap = self.sources.snapshot if self.sources else Snapshot()
        return build_status(incidents, now=now, system=snap.system, sla=snap.sla, outages=outages,
                            recording_since=since, source_errors=snap.errors, sources_at=snap.fetched_at,
                            maintenance=windows)

    async def _windows(self, now: datetime) -> list[MaintenanceWindow]:
        return [] if self.maintenance is None else await self.maintenance.windows(ending_after=now)


@asynccontextmanager
async def open_status_data(*, pool: asyncpg.Pool | None, store: IncidentStore,
                           maintenance: MaintenanceStore | None = None,
                           watch: Callable[[StatusPageSettings], Callable[[Snapshot], Awaitable[None]]] | None = None,
                           ) -> AsyncIterator[StatusData]:
    """With Postgres: the history from `incidents` and the health / SLA services polled in the background
    (`watch(settings)` is told of every round). With an injected store (tests): the store's incidents only,
    recorded since now."""
    if pool is None:
        yield StatusData(history=StoreHistory(store, since=datetime.now(UTC)), maintenance=maintenance)
        return
    async with httpx.AsyncClient() as http:
        sources = StatusSources(settings=StatusPageSettings(), http=http)
        if watch is not None:
            sources.watchers.append(watch(sources.settings))
        async with background(sources.run(), name="status sources"):
            yield StatusData(history=PgHistory(pool), sources=sources, maintenance=maintenance)
