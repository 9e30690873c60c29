"""Console page server time (issue 15's target: < 200 ms) with 1,000 flags, each beside the upstream call
the page is built on, measured in the same run:

1. `/console/flags` (signed in: rows with their buttons, 100 a page, "show more" for the next) against
   `GET /api/flags` itself (which the page reads whole, to search and count), on a private flags service
   (own process, schema and cache prefix; bench.flags.flags_service) holding 1,000 flags: static, targeted
   and 10 % rollouts.
2. The search as you type (`?q=`, htmx: the rows alone) and one flag's page (flag, audit log, schedules:
   three upstream calls) against the same baseline.
3. The overview with 100 open incidents and 20 services (a fixed health answer, so the figure is the
   console's own work) against the bare upstream call that answers those bytes.

The console runs in-process (httpx.ASGITransport); its upstream calls are real HTTP over loopback.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from bench.flags import TOKEN, flags_service
from bench.report import record
from services.console.app import create_app
from services.console.pages.flags import PAGE
from services.console.pages.overview import overview_feed
from services.console.settings import ConsoleSettings
from shared.auth import AuthSettings

FLAGS, RUNS, TARGET_MS = 1000, 30, 200.0


def _flag_file() -> dict[str, Any]:
    rule = {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}
    flags: dict[str, Any] = {}
    for i in range(FLAGS):
        flag: dict[str, Any] = {"state": "ENABLED" if i % 2 else "DISABLED", "variants": {"on": True, "off": False},
                                "defaultVariant": "on"}
        if i % 3 == 1:
            flag["targeting"] = rule
        elif i % 3 == 2:
            flag["targeting"] = {"fractional": [["on", 1000], ["off", 9000]]}
        flags[f"flag-{i:04d}"] = flag
    return {"flags": flags}


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
    ratio = f"  x{p50 / statistics.median(base):.1f} the upstream call" if base else ""
    verdict = "" if base is None else ("  (p50 < 200 ms: met)" if p50 < TARGET_MS else "  (p50 < 200 ms: NOT met)")
    print(f"  {name:<44} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms{ratio}{verdict}", flush=True)
    if base:
        record(f"{name.strip()}, p50", p50, "ms", baseline="the upstream call, p50", baseline_value=statistics.median(base),
               note=f"p95 {p95:.1f} ms", limit=TARGET_MS)


async def _signed_in(console: httpx.AsyncClient) -> None:
    r = await console.post("/console/login", data={"token": TOKEN, "name": "bench"})
    assert r.status_code == 303, r.text


async def flag_pages(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
        r = await api.post("/api/flags/_import", json=_flag_file())
        assert r.status_code == 200, r.text
        baseline = await _times(lambda: api.get("/api/flags"))
    settings = ConsoleSettings(flags_url=base)
    app = create_app(settings, auth=AuthSettings(env="local", admin_token=SecretStr(TOKEN)))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1", timeout=30) as console:
        await _signed_in(console)
        page = await console.get("/console/flags")
        assert page.text.count('class="flag-row"') == PAGE and f"more (of {FLAGS + 1})" in page.text, page.text[-2000:]
        print(f"console with {FLAGS} flags ({PAGE} rows a page, {len(page.content) / 1e3:.0f} kB), {RUNS} runs each:")
        _line("GET /api/flags (the flags service: baseline)", baseline)
        _line("/console/flags (first 100 rows)", await _times(lambda: console.get("/console/flags")), baseline)
        more = {"HX-Request": "true", "HX-Target": "flag-more"}
        _line("/console/flags?page=9 (show more, rows only)",
              await _times(lambda: console.get("/console/flags", params={"page": 9}, headers=more)), baseline)
        rows = {"HX-Request": "true", "HX-Target": "flag-rows"}
        _line("/console/flags?q=flag-00 (search, rows only)",
              await _times(lambda: console.get("/console/flags", params={"q": "flag-00"}, headers=rows)), baseline)
        _line("/console/flags/flag-0500 (audit, schedules)",
              await _times(lambda: console.get("/console/flags/flag-0500")), baseline)


def _status(incidents: int = 100, services: int = 20) -> dict[str, Any]:
    check = {"kind": "http", "state": "up", "status": "pass", "critical": True, "message": ""}
    return {
        "status": "degraded",
        "services": {f"svc-{i:02d}": {"state": "up", "checks": {f"svc-{i:02d}": check}} for i in range(services)},
        "dependencies": {d: {"state": "up", "checks": {d: check}} for d in ("postgres", "redis", "kafka", "haproxy")},
        "apps": {"demo": {"instances": {c: {"pid": 1, "memory_percent": 14.9, "rss_bytes": 80_000_000, "stale": False,
                                            "seen_at": "2026-11-30T12:00:00+00:00", "breakers": {},
                                            "pools": [{"name": "postgres", "size": 2, "idle": 1, "max_size": 10}]}
                                        for c in ("demo-blue", "demo-green")}}},
        "breakers": {"demo": {"postgres": {"state": "closed", "instances": {"demo-blue": {"state": "closed"}}}}},
        "incidents": {"open": [{"incident_id": f"inc-{i}", "service": f"svc-{i % services:02d}", "severity": "major",
                                "title": f"svc-{i % services:02d}: error rate 15.7 % > 5 %", "status": "open",
                                "level": 1, "opened_at": "2026-11-30T11:00:00+00:00"} for i in range(incidents)]},
        "sla": {"budgets": {f"svc-{i:02d}": {"objective": 0.999, "availability": 0.9995, "budget_remaining_ratio": 0.5,
                                             "budget_remaining_minutes": 21.6, "burn_rates": {"1h": 0.2, "6h": 0.4},
                                             "alerts": []} for i in range(services)},
                "active_triggers": [{"service": "svc-01", "trigger": "error_rate_high", "value": 0.157,
                                     "threshold": 0.05, "fired_at": "2026-11-30T11:00:00+00:00"}]},
        "flags": {}, "notes": [], "feed": {"connected": True},
    }


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


async def overview_page() -> None:
    health = FastAPI()
    body = _status()

    @health.get("/api/system/status")
    async def status() -> dict[str, Any]:
        return body

    with _serve_in_thread(health) as health_url:
        settings = ConsoleSettings(health_url=health_url)
        app = create_app(settings, auth=AuthSettings(env="local", admin_token=SecretStr(TOKEN)))
        async with app.router.lifespan_context(app), httpx.AsyncClient(base_url=health_url) as bare, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1", timeout=30) as console:
            await _signed_in(console)
            overview_feed(app).interval_s = 0  # every page load asks upstream (no reuse of the last poll)
            baseline = await _times(lambda: bare.get("/api/system/status"))
            print("overview with 100 open incidents and 20 services:")
            _line("GET /api/system/status (fixed answer: baseline)", baseline)
            _line("/console (overview)", await _times(lambda: console.get("/console")), baseline)


async def main() -> None:
    async with flags_service("console") as (base, _):
        await flag_pages(base)
    await overview_page()

