"""The console's Incidents pages with 100 incidents (issue 15's target: < 200 ms server time), each beside
the notifier call it is built on, measured in the same run:

1. `/console/incidents` (signed in: 100 rows, open first, titles in words) against `GET /api/incidents`
   (the notifier's JSON list the page reads).
2. `/console/incidents/{id}` (the incident, its deliveries and its report: three upstream calls; timeline,
   ladder, report rendered) against `GET /api/incidents/{id}`.

A private notifier (in-memory store seeded with 100 incidents of 6 timeline entries, 20 resolved ones with a
report; no Kafka) serves over real HTTP on loopback in a thread; the console runs in-process (ASGI).
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from bench.report import record
from services.console.app import create_app as console_app
from services.console.settings import ConsoleSettings
from services.notifier.app import create_app as notifier_app
from services.notifier.maintenance_store import MemoryMaintenanceStore
from services.notifier.models import Change, Incident, TimelineEntry
from services.notifier.repository import MemoryIncidentStore
from services.notifier.service import NotifierService
from services.notifier.settings import NotifierSettings
from shared.auth import AuthSettings
from shared.testing import InMemoryPublisher
from tests.unit.notifier.conftest import CONFIG, FakeSender

INCIDENTS, RESOLVED, RUNS, TARGET_MS = 100, 20, 30, 200.0
TOKEN = "bench-console-incidents-token-0123"
NOW = datetime.now(UTC)


@contextmanager
def _serve_in_thread(app: FastAPI) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


async def _seed(svc: NotifierService) -> str:
    """100 incidents opened over the last days (the first RESOLVED resolved, with their report); the id of
    a resolved one."""
    for n in range(INCIDENTS):
        opened = NOW - timedelta(hours=n * 1.5)
        inc = Incident(incident_id=f"inc-{n:03d}", service=f"svc-{n % 20:02d}", trigger="error_rate_high",
                       episode_id=f"ep{n}", title=f"svc-{n % 20:02d}: error rate high (0.156997 > 0.05)",
                       severity=("critical", "major", "minor")[n % 3], opened_at=opened)
        entries = [TimelineEntry(at=opened + timedelta(minutes=k), kind=kind, text=f"{kind}: step {k} of the runbook")
                   for k, kind in enumerate(("opened", "action", "escalated", "action", "notified"))]
        await svc.store.commit(Change(incident=inc, version=None, entries=entries))
        if n < RESOLVED:
            await svc.resolve(inc.incident_id, actor="admin:bench", note="bench")
    return "inc-000"


async def _times(call: Callable[[], Awaitable[httpx.Response]]) -> list[float]:
    await call()  # warm
    out = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        r = await call()
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text[:300]
    return out


def _line(name: str, ms: list[float], base: list[float] | None = None) -> None:
    p50, p95 = statistics.median(ms), sorted(ms)[int(len(ms) * 0.95) - 1]
    ratio = f"  x{p50 / statistics.median(base):.1f} the notifier call" if base else ""
    verdict = "" if base is None else ("  (p50 < 200 ms: met)" if p50 < TARGET_MS else "  (p50 < 200 ms: NOT met)")
    print(f"  {name:<44} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms{ratio}{verdict}", flush=True)
    if base:
        record(f"{name.strip()}, p50", p50, "ms", baseline="the notifier call, p50", baseline_value=statistics.median(base),
               note=f"p95 {p95:.1f} ms", limit=TARGET_MS)


async def main() -> None:
    auth = AuthSettings(env="test", admin_token=SecretStr(TOKEN))
    notifier = notifier_app(NotifierSettings(policy_file=CONFIG, auth=auth), publisher=InMemoryPublisher(),
                            store=MemoryIncidentStore(), sender=FakeSender(), consume=False,
                            maintenance=MemoryMaintenanceStore())
    with _serve_in_thread(notifier) as url:
        resolved = await _seed(notifier.state.notifier)
        console = console_app(ConsoleSettings(notifier_url=url), auth=auth)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with console.router.lifespan_context(console), \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=console), base_url="http://c") as c, \
                httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
            r = await c.post("/console/login", data={"token": TOKEN, "name": "bench"})
            assert r.status_code == 303, r.text
            page = (await c.get("/console/incidents")).text
            assert page.count('href="/console/incidents/inc-') == INCIDENTS, "the page does not show 100 incidents"
            print(f"{INCIDENTS} incidents ({INCIDENTS - RESOLVED} open), {RUNS} runs each", flush=True)
            base = await _times(lambda: api.get("/api/incidents", params={"limit": 200, "days": 30}))
            _line("baseline: GET /api/incidents (notifier)", base)
            _line("/console/incidents", await _times(lambda: c.get("/console/incidents")), base)
            one = await _times(lambda: api.get(f"/api/incidents/{resolved}"))
            _line(f"baseline: GET /api/incidents/{resolved}", one)
            _line("/console/incidents/{id} (resolved, report)", await _times(lambda: c.get(f"/console/incidents/{resolved}")),
                  one)
