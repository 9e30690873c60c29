"""Status page server time with 100 incidents, 20 components and 10 maintenance windows (3 in progress, 7
upcoming; issue 15's target: < 50 ms), beside a bare endpoint on the same app returning the same bytes, and
the same page without the windows, in the same run.

Through the ASGI app (httpx.ASGITransport, no sockets): the in-memory store, then, when POSTGRES_DSN
answers, the real Postgres store and history in a throwaway schema (dropped afterwards).
"""

from __future__ import annotations

import logging
import os
import random
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import SecretStr

from bench.report import record
from services.notifier.app import create_app
from services.notifier.maintenance import MaintenanceWindow
from services.notifier.maintenance_store import MaintenanceStore, MemoryMaintenanceStore, PgMaintenanceStore
from services.notifier.models import Change, Incident, TimelineEntry
from services.notifier.repository import MemoryIncidentStore, PgIncidentStore, migrate, open_pool
from services.notifier.ports import IncidentStore
from services.notifier.settings import NotifierSettings
from services.notifier.status_sources import IncidentHistory, PgHistory, Snapshot, StatusData, StoreHistory
from shared.auth import AuthSettings
from shared.settings import PostgresSettings
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG, FakeSender

INCIDENTS, COMPONENTS, REQUESTS, WINDOWS = 100, 20, 200, 10
NOW = datetime.now(UTC)
NAMES = [f"svc-{i:02d}" for i in range(COMPONENTS)]


class Fixed:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot


def snapshot() -> Snapshot:
    check = {"state": "up", "status": "pass", "critical": True, "message": "ok"}
    system = {"services": {n: {"checks": {n: check, f"{n}-blue": {**check, "critical": False}}} for n in NAMES[:16]},
              "dependencies": {n: {"checks": {n: check}} for n in NAMES[16:]}}
    budget = {"objective": 0.999, "availability": 0.9993, "period_days": 30, "budget_remaining_ratio": 0.3}
    sla = {"services": [{"service": n, "budgets": {"requests": budget}} for n in NAMES]}
    return Snapshot(system, sla, NOW)


def incidents() -> list[Change]:
    rnd, out = random.Random(15), []
    for n in range(INCIDENTS):
        opened = NOW - timedelta(days=rnd.uniform(0, 6.5) if n < 40 else rnd.uniform(7, 89))
        resolved = None if n < 8 else opened + timedelta(minutes=rnd.uniform(5, 300))
        inc = Incident(incident_id=f"inc-{n:03d}", service=NAMES[n % COMPONENTS], trigger="error_rate_high",
                       episode_id=f"ep{n}", title=f"{NAMES[n % COMPONENTS]}: error rate 15.7 % > 5 %",
                       severity=("critical", "major", "minor")[n % 3], opened_at=opened,
                       status="open" if resolved is None else "resolved", resolved_at=resolved)
        entries = [TimelineEntry(at=opened + timedelta(minutes=k), kind=kind, text=f"{kind}: step {k} of the runbook")
                   for k, kind in enumerate(("opened", "action", "escalated", "action", "resolved"))]
        out.append(Change(incident=inc, version=None, entries=entries))
    return out


def windows() -> list[MaintenanceWindow]:
    """3 in progress, 7 upcoming, over 2 components each."""
    out = []
    for n in range(WINDOWS):
        start = NOW - timedelta(hours=1) if n < 3 else NOW + timedelta(days=n)
        out.append(MaintenanceWindow(window_id=f"mw-{n:02d}", title=f"Planned work {n}: database upgrade",
                                     description="Read-only for a few minutes.", components=NAMES[n:n + 2],
                                     starts_at=start, ends_at=start + timedelta(hours=3), created_by="admin",
                                     created_at=NOW - timedelta(days=1)))
    return out


@asynccontextmanager
async def serving(store: IncidentStore, history: IncidentHistory, maintenance: MaintenanceStore,
                  *, seed: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    for change in incidents() if seed else []:
        await store.commit(change)
    for w in windows():
        await maintenance.add(w, notice=None)
    status = StatusData(history=history, sources=Fixed(snapshot()), maintenance=maintenance)  # type: ignore[arg-type]
    app = create_app(NotifierSettings(policy_file=CONFIG, auth=AuthSettings(env="test")), publisher=InMemoryPublisher(),
                     store=store, sender=FakeSender(), consume=False, status=status, maintenance=maintenance)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://b") as c:
            yield await _with_bare(app, c)


class _NoWindows(MemoryMaintenanceStore):
    """The baseline: the same page with no maintenance windows."""

    async def add(self, window: MaintenanceWindow, *, notice: object = None) -> None:
        return None


async def _with_bare(app: FastAPI, c: httpx.AsyncClient) -> httpx.AsyncClient:
    bodies = {p: (await c.get(p)) for p in ("/status", "/status.json", "/status/feed.atom")}
    for path, r in bodies.items():
        r.raise_for_status()
        app.add_api_route(f"/bare{path}", _fixed(r.content, r.headers["content-type"]))
    return c


def _fixed(body: bytes, media_type: str) -> Any:
    async def bare() -> Response:
        return Response(body, media_type=media_type)
    return bare


async def _times(c: httpx.AsyncClient, path: str) -> list[float]:
    out = []
    for _ in range(REQUESTS):
        t0 = time.perf_counter()
        (await c.get(path)).raise_for_status()
        out.append((time.perf_counter() - t0) * 1000)
    return sorted(out)


async def measure(c: httpx.AsyncClient, label: str) -> None:
    for path in ("/status", "/status.json", "/status/feed.atom"):
        await _times(c, path)  # warm-up
        page, bare = await _times(c, path), await _times(c, f"/bare{path}")
        size = len((await c.get(path)).content)
        p50, p95, b50 = statistics.median(page), page[int(0.95 * len(page))], statistics.median(bare)
        print(f"{label:9} {path:18} {size / 1024:6.1f} KiB  p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  max {page[-1]:6.2f} ms"
              f"  | bare p50 {b50:5.2f} ms  ratio {p50 / b50:5.1f}x  target p95 < 50 ms: {'met' if p95 < 50 else 'MISSED'}")
        record(f"{label} {path}, p95 of {len(page)}", p95, "ms", baseline="bare endpoint, same bytes, p95",
               baseline_value=bare[int(0.95 * len(bare))], lower_is_better=True, limit=50,
               note=f"p50 {p50:.2f} ms")


async def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    print(f"{INCIDENTS} incidents ({INCIDENTS - 8} resolved, 40 within 7 days, 5 timeline entries each), "
          f"{COMPONENTS} components, {WINDOWS} maintenance windows (3 in progress), {REQUESTS} requests per figure")
    store = MemoryIncidentStore()
    async with serving(store, StoreHistory(store, since=NOW - timedelta(days=60)), _NoWindows()) as c:
        await measure(c, "memory-0mw")
    async with serving(store, StoreHistory(store, since=NOW - timedelta(days=60)), MemoryMaintenanceStore(),
                       seed=False) as c:
        await measure(c, "memory")
    dsn = os.environ.get("POSTGRES_DSN")
    if not dsn:
        print("postgres  skipped: POSTGRES_DSN is not set (load .stack/env)")
        return
    schema = f"bench_status_{os.getpid()}"
    try:
        async with open_pool(PostgresSettings(dsn=SecretStr(dsn)), schema=schema) as pool:
            await migrate(pool, schema=schema)
            try:
                async with serving(PgIncidentStore(pool), PgHistory(pool), PgMaintenanceStore(pool)) as c:
                    await measure(c, "postgres")
            finally:
                await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"postgres  skipped: {type(exc).__name__}: {exc}")
