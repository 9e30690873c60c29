"""ASGI middleware for a protected app: request outcomes per second, and API rate limiting.

    recorder = RequestRecorder(service="demo", instance="demo-blue")
    app.add_middleware(RequestsMiddleware, recorder=recorder)
    add_rate_limiting(app, RateLimitSettings(), redis_url=...)
    async with recorder.running(publisher):  # in the lifespan: one RequestsObserved per busy second
        ...

Per request the middleware reads a perf counter twice, notes the status code and adds the
latency to a `LatencySketch`; a background task swaps the window every `window_seconds`
and publishes it. Only windows with requests are published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.events import RequestsObserved
from shared.histogram import LatencySketch
from shared.kafka import Publisher
from shared.ratelimit import RateLimiter, RateLimitMiddleware, RateLimitSettings
from shared.tasks import background

__all__ = ["RequestRecorder", "RequestsMiddleware", "Window", "add_rate_limiting"]

log = logging.getLogger(__name__)


class Window:
    __slots__ = ("start", "count", "errors", "client_errors", "sketch")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 0
        self.errors = 0
        self.client_errors = 0
        self.sketch = LatencySketch()


class RequestRecorder:
    """Counts outcomes into the current window; `flush()` hands the window over as an event."""

    def __init__(self, *, service: str, instance: str, window_seconds: float = 1.0,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.instance = instance
        self.window_seconds = window_seconds
        self.wall_clock = wall_clock
        self.window = Window(self._aligned(wall_clock()))
        self.published = 0
        self.dropped = 0

    def _aligned(self, now: float) -> float:
        return now - (now % self.window_seconds)

    def record(self, status: int, latency_ms: float) -> None:
        w = self.window
        w.count += 1
        if status >= 500:
            w.errors += 1
        elif status >= 400:
            w.client_errors += 1
        w.sketch.add(latency_ms)

    def flush(self) -> RequestsObserved | None:
        """Close the current window, start the next; the closed one as an event (None when idle)."""
        w = self.window
        self.window = Window(self._aligned(self.wall_clock()))
        if w.count == 0:
            return None
        return RequestsObserved(
            service=self.service, instance=self.instance, window_start=datetime.fromtimestamp(w.start, UTC),
            window_seconds=self.window_seconds, count=w.count, errors=w.errors, client_errors=w.client_errors,
            latency_sum_ms=round(w.sketch.total_ms, 3), latency_buckets=w.sketch.to_wire(),
        )

    @asynccontextmanager
    async def running(self, publisher: Publisher) -> AsyncIterator[RequestRecorder]:
        try:
            async with background(self._flush_forever(publisher), name="requests-observed"):
                yield self
        finally:
            await self._publish(publisher, self.flush())

    async def _flush_forever(self, publisher: Publisher) -> None:
        while True:
            delay = self.window.start + self.window_seconds - self.wall_clock()
            await asyncio.sleep(max(0.0, delay))
            await self._publish(publisher, self.flush())

    async def _publish(self, publisher: Publisher, event: RequestsObserved | None) -> None:
        if event is None:
            return
        try:
            await publisher.publish(event)
            self.published += 1
        except Exception:  # noqa: BLE001 - a Kafka outage must not break the app; the window is lost
            self.dropped += 1
            log.exception("could not publish RequestsObserved (%d requests lost)", event.count)


class RequestsMiddleware:
    """Pure ASGI middleware feeding a `RequestRecorder`. An unhandled exception counts as a 500."""

    def __init__(self, app: ASGIApp, *, recorder: RequestRecorder, exclude: Iterable[str] = ("/healthz",)) -> None:
        self.app = app
        self.recorder = recorder
        self.exclude = frozenset(exclude)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exclude:
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.recorder.record(status, (time.perf_counter() - start) * 1000.0)


def add_rate_limiting(app: Any, settings: RateLimitSettings, *, redis_url: Any = None,
                      exempt: Iterable[str] = ("/healthz",)) -> RateLimiter:
    """Per-client limits (`shared.ratelimit`, the flag API's limiter): 429 + Retry-After when over."""
    limiter = RateLimiter.from_settings(settings, redis_url=redis_url)
    app.add_middleware(RateLimitMiddleware, limiter=limiter, exempt=tuple(exempt))
    return limiter
