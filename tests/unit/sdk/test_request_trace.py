"""A window of requests is published in the trace of its first failing request (parent), linked to the
other failing ones: the incident's trace starts at the request a user saw fail."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, HTTPException
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sdk.middleware import RequestRecorder, RequestsMiddleware
from shared.events import Event


class TracingPublisher:
    """Keeps each event with the span context current when it was published."""

    def __init__(self) -> None:
        self.sent: list[tuple[Event, trace.SpanContext]] = []

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        self.sent.append((event, trace.get_current_span().get_span_context()))


def app_with(recorder: RequestRecorder) -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestsMiddleware, recorder=recorder)

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/items/{n}")
    async def broken(n: int) -> None:
        raise HTTPException(503)

    return app


async def requests(recorder: RequestRecorder, paths: list[str]) -> None:
    transport = httpx.ASGITransport(app=app_with(recorder), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path in paths:
            await client.get(path)


async def test_the_window_continues_the_trace_of_its_first_failing_request(
        span_exporter: InMemorySpanExporter) -> None:
    span_exporter.clear()
    recorder = RequestRecorder(service="demo", instance="i1")
    await requests(recorder, ["/ok", "/items/1", "/ok", "/items/2", "/items/3"])
    servers = [s for s in span_exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert [s.name for s in servers] == ["GET /ok", "GET /items/{n}", "GET /ok", "GET /items/{n}", "GET /items/{n}"]
    pub = TracingPublisher()
    await recorder.publish_window(pub)
    [(event, ctx)] = pub.sent
    assert event.count == 5 and event.errors == 3
    first_bad = servers[1].context
    window = next(s for s in span_exporter.get_finished_spans() if s.name == "requests window")
    assert ctx.trace_id == first_bad.trace_id and ctx.span_id == window.context.span_id
    assert window.parent is not None and window.parent.span_id == first_bad.span_id
    assert [link.context.span_id for link in window.links] == [servers[3].context.span_id, servers[4].context.span_id]
    assert window.attributes is not None and window.attributes["safeguard.requests.errors"] == 3


async def test_without_failures_the_slowest_request_is_the_parent(span_exporter: InMemorySpanExporter) -> None:
    recorder = RequestRecorder(service="demo", instance="i1")
    recorder.record(200, 10.0, span=_ctx(1))
    recorder.record(200, 900.0, span=_ctx(2))
    recorder.record(404, 50.0, span=_ctx(3))
    pub = TracingPublisher()
    await recorder.publish_window(pub)
    [(_, ctx)] = pub.sent
    assert ctx.trace_id == 2


async def test_an_idle_window_publishes_nothing() -> None:
    recorder = RequestRecorder(service="demo", instance="i1")
    pub = TracingPublisher()
    await recorder.publish_window(pub)
    assert pub.sent == []


def _ctx(n: int) -> trace.SpanContext:
    return trace.SpanContext(trace_id=n, span_id=n, is_remote=False, trace_flags=trace.TraceFlags(1))


async def test_an_app_without_its_own_tracing_gets_a_server_span_continuing_the_caller(
        span_exporter: InMemorySpanExporter) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def broken(_: object) -> PlainTextResponse:
        return PlainTextResponse("no", status_code=500)

    recorder = RequestRecorder(service="plain", instance="i1")
    app = Starlette(routes=[Route("/x/{n}", broken)])
    app.add_middleware(RequestsMiddleware, recorder=recorder)
    span_exporter.clear()
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.get("/x/1", headers={"traceparent": caller})
    [server] = [s for s in span_exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.name == "GET /x/{n}" and server.parent is not None
    assert format(server.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert recorder.window.exemplar == server.context
