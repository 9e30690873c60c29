"""Health/SDK benchmarks: middleware overhead, breaker call overhead, probe cycle for 100 targets.

All in one process on loopback, bounded; each figure is compared with a baseline measured
in the same run.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from bench.report import record
from sdk.middleware import RequestRecorder, RequestsMiddleware
from services.health.config import parse_config
from services.health.probes import Defaults, Prober
from services.health.runner import ProbeRunner
from sdk.circuit import BreakerConfig, CircuitBreaker
from shared.testing import InMemoryPublisher

REQUESTS = 3000
CALLS = 100_000


async def bare_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def drive_asgi(app: Any, n: int) -> float:
    """Call the ASGI app directly (no HTTP client in the measurement): seconds per request."""
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_m: Any) -> None:
        return None

    start = time.perf_counter()
    for _ in range(n):
        await app(scope, receive, send)
    return (time.perf_counter() - start) / n


async def middleware_overhead() -> None:
    recorder = RequestRecorder(service="bench", instance="b")
    wrapped = RequestsMiddleware(bare_asgi, recorder=recorder)
    runs_bare, runs_mw = [], []
    for _ in range(5):
        runs_bare.append(await drive_asgi(bare_asgi, 20_000))
        runs_mw.append(await drive_asgi(wrapped, 20_000))
    bare, mw = statistics.median(runs_bare), statistics.median(runs_mw)
    print(f"middleware (raw ASGI): bare {bare * 1e6:.2f} us/req, with RequestsMiddleware {mw * 1e6:.2f} us/req, "
          f"overhead {(mw - bare) * 1e6:.2f} us/req, ratio {mw / bare:.2f}x")
    record("raw ASGI with RequestsMiddleware, median of 5", mw * 1e6, "µs/req", baseline="bare ASGI app",
           baseline_value=bare * 1e6, lower_is_better=True, spread=(min(runs_mw) * 1e6, max(runs_mw) * 1e6))

    app_plain, app_mw = FastAPI(), FastAPI()
    for app in (app_plain, app_mw):
        @app.get("/x")
        async def x() -> dict[str, bool]:
            return {"ok": True}
    app_mw.add_middleware(RequestsMiddleware, recorder=RequestRecorder(service="bench", instance="b"))
    timings: dict[str, list[float]] = {"plain": [], "mw": []}
    for _ in range(3):
        for name, app in (("plain", app_plain), ("mw", app_mw)):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as c:
                start = time.perf_counter()
                for _ in range(REQUESTS // 3):
                    await c.get("/x")
                timings[name].append((time.perf_counter() - start) / (REQUESTS // 3))
    p, m = statistics.median(timings["plain"]), statistics.median(timings["mw"])
    print(f"middleware (FastAPI via httpx ASGITransport): plain {p * 1e6:.1f} us/req, with {m * 1e6:.1f} us/req, "
          f"ratio {m / p:.3f}x")
    record("FastAPI with RequestsMiddleware (httpx ASGI)", m * 1e6, "µs/req", baseline="FastAPI plain",
           baseline_value=p * 1e6, lower_is_better=True)


async def breaker_overhead() -> None:
    async def op() -> int:
        return 1

    cb = CircuitBreaker("bench", BreakerConfig.for_database())
    start = time.perf_counter()
    for _ in range(CALLS):
        await op()
    direct = (time.perf_counter() - start) / CALLS
    start = time.perf_counter()
    for _ in range(CALLS):
        await cb.call(op)
    guarded = (time.perf_counter() - start) / CALLS
    print(f"breaker.call (local, time-based window): direct await {direct * 1e6:.2f} us, through breaker "
          f"{guarded * 1e6:.2f} us, overhead {(guarded - direct) * 1e6:.2f} us/call, ratio {guarded / direct:.1f}x")
    record("breaker.call", guarded * 1e6, "µs/call", baseline="direct await", baseline_value=direct * 1e6,
           lower_is_better=True)


async def probe_cycle() -> None:
    hits = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hits
        try:
            await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            writer.close()
            return
        hits += 1
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 17\r\nconnection: close\r\n\r\n{\"status\":\"pass\"}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    targets = [{"name": f"t{i}", "kind": "http", "url": f"http://127.0.0.1:{port}/healthz?i={i}"} for i in range(100)]
    one = parse_config({"targets": targets[:1]}, env={})
    hundred = parse_config({"targets": targets}, env={})
    defaults = Defaults(postgres_dsn="", redis_url="", kafka_bootstrap="")
    out = {}
    for name, cfg in (("1", one), ("100", hundred)):
        prober = Prober(defaults, http=httpx.AsyncClient(limits=httpx.Limits(max_connections=100)))
        runner = ProbeRunner(cfg, prober=prober, publisher=InMemoryPublisher())
        await runner.run_cycle()  # warm up
        runs = []
        for _ in range(5):
            await runner.run_cycle()
            runs.append(runner.last_cycle_ms)
        out[name] = statistics.median(runs)
        failed = [s for s in runner.states.values() if s.state != "up"]
        assert not failed, f"{len(failed)} targets not up"
        await prober.aclose()
    server.close()
    print(f"probe cycle (http, loopback, concurrency 50): 1 target {out['1']:.1f} ms, 100 targets {out['100']:.1f} ms "
          f"(ratio {out['100'] / out['1']:.1f}x for 100x the targets; interval budget 30000 ms)")
    record("probe cycle, 100 targets", out["100"], "ms", baseline="probe cycle, 1 target", baseline_value=out["1"],
           lower_is_better=True, limit=30_000, note="interval budget 30 s")


async def main() -> None:
    await middleware_overhead()
    await breaker_overhead()
    await probe_cycle()


if __name__ == "__main__":
    asyncio.run(main())
