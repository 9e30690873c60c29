"""The kill switch call carries the trigger's trace to the flags service (W3C `traceparent`), in a CLIENT span."""

from __future__ import annotations

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr

from services.recovery.flags_client import HttpFlagsClient


async def test_the_kill_call_continues_the_current_trace(span_exporter: InMemorySpanExporter) -> None:
    seen: list[httpx.Request] = []

    def flags_api(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"killed": ["gamification"]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(flags_api)) as http:
        client = HttpFlagsClient(http, flags_url="http://flags", token=SecretStr("t"))
        with trace.get_tracer("tests").start_as_current_span("sla.triggers process") as parent:
            assert await client.kill_new(reason="error rate") == ["gamification"]
    [request] = seen
    version, trace_id, span_id, flags = request.headers["traceparent"].split("-")
    [call] = [s for s in span_exporter.get_finished_spans() if s.kind == SpanKind.CLIENT and s.name == "POST"]
    assert int(trace_id, 16) == parent.get_span_context().trace_id and int(span_id, 16) == call.context.span_id
    assert call.parent is not None and call.parent.span_id == parent.get_span_context().span_id
    assert call.attributes is not None and call.attributes["http.response.status_code"] == 200
    assert "authorization" not in str(call.attributes).lower()
