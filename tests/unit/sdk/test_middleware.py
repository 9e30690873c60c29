from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI, HTTPException

from sdk.middleware import RequestRecorder, RequestsMiddleware
from shared.events import RequestsObserved
from shared.histogram import LatencySketch
from shared.testing import InMemoryPublisher


def demo(recorder: RequestRecorder) -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestsMiddleware, recorder=recorder)

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        await asyncio.sleep(0.25)  # far above what a fast request takes even on a loaded machine
        return {"ok": True}

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(404)

    @app.get("/broken")
    async def broken() -> None:
        raise HTTPException(503)

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "pass"}

    return app


async def test_numbers_match_the_requests_sent() -> None:
    recorder = RequestRecorder(service="demo", instance="i1")
    transport = httpx.ASGITransport(app=demo(recorder), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path, n in (("/ok", 37), ("/slow", 3), ("/missing", 5), ("/broken", 4), ("/crash", 2), ("/healthz", 9)):
            for _ in range(n):
                await client.get(path)
    event = recorder.flush()
    assert isinstance(event, RequestsObserved)
    assert event.count == 37 + 3 + 5 + 4 + 2  # /healthz excluded
    assert event.errors == 4 + 2  # 503s and unhandled exceptions
    assert event.client_errors == 5
    sketch = LatencySketch.from_wire(event.latency_buckets)
    assert sketch.count == event.count
    assert sketch.count_above(200.0) == 3  # the three 250 ms requests, and only they
    assert event.latency_sum_ms >= 750
    assert recorder.flush() is None  # the window was handed over; nothing since


async def test_windows_are_aligned_and_published() -> None:
    now = [100.7]
    recorder = RequestRecorder(service="demo", instance="i1", window_seconds=1.0, wall_clock=lambda: now[0])
    assert recorder.window.start == 100.0
    recorder.record(200, 3.0)
    now[0] = 101.2
    pub = InMemoryPublisher()
    async with recorder.running(pub):
        await asyncio.sleep(0.01)
    events = pub.of_type(RequestsObserved)
    assert len(events) == 1 and events[0].count == 1  # type: ignore[attr-defined]
    assert events[0].window_start.timestamp() == 100.0  # type: ignore[attr-defined]


async def test_publisher_failure_drops_the_window_but_not_the_app() -> None:
    recorder = RequestRecorder(service="demo", instance="i1")
    recorder.record(200, 1.0)
    pub = InMemoryPublisher()
    pub.fail_with = RuntimeError("kafka down")
    async with recorder.running(pub):
        pass
    assert recorder.dropped == 1
