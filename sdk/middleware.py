"""ASGI middleware for a protected app: request outcomes per second, and API rate limiting.

    recorder = RequestRecorder(service="demo", instance="demo-blue")
    app.add_middleware(RequestsMiddleware, recorder=recorder)
    add_rate_limiting(app, RateLimitSettings(), redis_url=...)
    async with recorder.running(publisher):  # in the lifespan: one RequestsObserved per busy second
        ...

Per request the middleware reads a perf counter twice, notes the status code and adds the
latency to a `LatencySketch`; a background task swaps the window every `window_seconds`
and publishes it. Only windows with requests are published.

Tracing: each request has a SERVER span, continuing an incoming `traceparent`: FastAPI's own (its
native telemetry, on once a tracer provider is set), or else one from OpenTelemetry's ASGI middleware. A window is published in the trace of its *exemplar*: its first 5xx request,
or, with none, its slowest request (the parent), linked to its other 5xx requests (up to
`MAX_LINKS`). One message aggregates many requests, so only one can be its parent; the first failure
is the one an incident starts from, and the links keep the others one click away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry import trace
from opentelemetry.trace import SpanContext
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.events import RequestsObserved
from shared.histogram import LatencySketch
from shared.kafka import Publisher
from shared.ratelimit import RateLimiter, RateLimitMiddleware, RateLimitSettings
from shared.tasks import background
from shared.tracing_links import span_from

__all__ = ["RequestRecorder", "RequestsMiddleware", "Window", "add_rate_limiting", "MAX_LINKS"]

log = logging.getLogger(__name__)
MAX_LINKS = 16


class Window:
    __slots__ = ("start", "count", "errors", "client_errors", "sketch", "exemplar", "exemplar_ms", "failed")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 0
        self.errors = 0
        self.client_errors = 0
        self.sketch = LatencySketch()
        self.exemplar: SpanContext | None = None  # the first 5xx request, else the slowest
        self.exemplar_ms = -1.0  # latency of the slowest so far; inf once a 5xx is the exemplar
        self.failed: list[SpanContext] = []  # the other 5xx requests (links)

    def note(self, span: SpanContext, *, failed: bool, latency_ms: float) -> None:
        if failed and self.exemplar_ms == float("inf"):
            if len(self.failed) < MAX_LINKS:
                self.failed.append(span)
        elif failed or latency_ms > self.exemplar_ms:
            self.exemplar, self.exemplar_ms = span, float("inf") if failed else latency_ms


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

    def record(self, status: int, latency_ms: float, *, span: SpanContext | None = None) -> None:
        """Count one request; `span`: its span, kept when it may become the window's exemplar or link."""
        w = self.window
        w.count += 1
        if status >= 500:
            w.errors += 1
        elif status >= 400:
            w.client_errors += 1
        w.sketch.add(latency_ms)
        if span is not None and span.is_valid:
            w.note(span, failed=status >= 500, latency_ms=latency_ms)

    def flush(self) -> RequestsObserved | None:
        """Close the current window, start the next; the closed one as an event (None when idle)."""
        return self._close()[0]

    def _close(self) -> tuple[RequestsObserved | None, Window]:
        w = self.window
        self.window = Window(self._aligned(self.wall_clock()))
        if w.count == 0:
            return None, w
        return RequestsObserved(
            service=self.service, instance=self.instance, window_start=datetime.fromtimestamp(w.start, UTC),
            window_seconds=self.window_seconds, count=w.count, errors=w.errors, client_errors=w.client_errors,
            latency_sum_ms=round(w.sketch.total_ms, 3), latency_buckets=w.sketch.to_wire(),
        ), w

    async def publish_window(self, publisher: Publisher) -> None:
        """Close the current window and publish it (nothing when idle) in its exemplar's trace."""
        event, w = self._close()
        if event is None:
            return
        span = span_from(w.exemplar, "requests window", links=w.failed, tracer=__name__, attributes={
            "safeguard.service": self.service, "safeguard.instance": self.instance,
            "safeguard.requests.count": w.count, "safeguard.requests.errors": w.errors})
        with trace.use_span(span, end_on_exit=True):
            await self._publish(publisher, event)

    @asynccontextmanager
    async def running(self, publisher: Publisher) -> AsyncIterator[RequestRecorder]:
        try:
            async with background(self._flush_forever(publisher), name="requests-observed"):
                yield self
        finally:
            await self.publish_window(publisher)

    async def _flush_forever(self, publisher: Publisher) -> None:
        while True:
            delay = self.window.start + self.window_seconds - self.wall_clock()
            await asyncio.sleep(max(0.0, delay))
            await self.publish_window(publisher)

    async def _publish(self, publisher: Publisher, event: RequestsObserved) -> None:
        try:
            await publisher.publish(event)
            self.published += 1
        except Exception:  # noqa: BLE001 - a Kafka outage must not break the app; the window is lost
            self.dropped += 1
            log.exception("could not publish RequestsObserved (%d requests lost)", event.count)


class RequestsMiddleware:
    """Pure ASGI middleware feeding a `RequestRecorder`. An unhandled exception counts as a 500.

    The request's span is the current one (FastAPI's, or an instrumentation outside this middleware); with
    none, `traced=True` and a tracer provider set up, this middleware starts one (OpenTelemetry's ASGI
    middleware)."""

    def __init__(self, app: ASGIApp, *, recorder: RequestRecorder, exclude: Iterable[str] = ("/healthz",),
                 traced: bool = True) -> None:
        self.app = app
        self.recorder = recorder
        self.exclude = frozenset(exclude)
        self._entry: ASGIApp = (OpenTelemetryMiddleware(self._record, exclude_spans=["receive", "send"])
                                if traced else self._record)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exclude:
            await self.app(scope, receive, send)
            return
        untraced = isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        if untraced or trace.get_current_span().is_recording():
            await self._record(scope, receive, send)  # tracing is not set up, or the request has its span
        else:
            await self._entry(scope, receive, send)

    async def _record(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 500
        start = time.perf_counter()
        span = trace.get_current_span()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                _name_by_route(span, scope)  # before the body: the span may end with it
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.recorder.record(status, (time.perf_counter() - start) * 1000.0, span=span.get_span_context())


def _name_by_route(span: trace.Span, scope: Scope) -> None:
    route = getattr(scope.get("route"), "path", None)
    if route and span.is_recording():
        span.update_name(f"{scope['method']} {route}")
        span.set_attribute("http.route", route)


def add_rate_limiting(app: Any, settings: RateLimitSettings, *, redis_url: Any = None,
                      exempt: Iterable[str] = ("/healthz",)) -> RateLimiter:
    """Per-client limits (`shared.ratelimit`, the flag API's limiter): 429 + Retry-After when over."""
    limiter = RateLimiter.from_settings(settings, redis_url=redis_url)
    app.add_middleware(RateLimitMiddleware, limiter=limiter, exempt=tuple(exempt))
    return limiter
