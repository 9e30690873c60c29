"""OTLP traces to the trace view: spans from the real OpenTelemetry SDK, encoded as its OTLP exporter sends them,
arrive at a Zipkin-format receiver as Zipkin JSON v2 (ids, parent, kind, service, tags, status, events)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status as SpanStatus, StatusCode

from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from services.intake.traces import to_zipkin
from shared.ratelimit import RateLimiter
from shared.testing import InMemoryPublisher

PROTO = {"content-type": "application/x-protobuf"}


def _spans() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop-api"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("checkout")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER, attributes={"http.response.status_code": 500}):
        with tracer.start_as_current_span("SELECT cart", kind=SpanKind.CLIENT) as child:
            child.add_event("retry")
            child.set_status(SpanStatus(StatusCode.ERROR, "timeout"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_sdk_spans_become_zipkin_spans() -> None:
    spans = _spans()
    out = to_zipkin(encode_spans(spans))
    assert out.rejected == 0
    by_name = {z["name"]: z for z in out.spans}
    server, client = by_name["GET /cart"], by_name["SELECT cart"]
    parent = spans[-1].context
    assert server["traceId"] == f"{parent.trace_id:032x}" == client["traceId"]
    assert server["id"] == f"{parent.span_id:016x}" and client["parentId"] == server["id"]
    assert "parentId" not in server
    assert (server["kind"], client["kind"]) == ("SERVER", "CLIENT")
    assert server["localEndpoint"] == {"serviceName": "shop-api"}
    assert server["tags"]["http.response.status_code"] == "500" and server["tags"]["otel.scope.name"] == "checkout"
    assert client["tags"]["error"] == "timeout" and client["tags"]["otel.status_code"] == "ERROR"
    assert [a["value"] for a in client["annotations"]] == ["retry"]
    assert server["timestamp"] == spans[-1].start_time // 1000 and server["duration"] >= 1


def test_a_span_without_ids_is_rejected_not_sent() -> None:
    request = encode_spans(_spans())
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\0" * 16
    out = to_zipkin(request)
    assert out.rejected == 1 and len(out.spans) == 1 and "trace id" in out.message


class Receiver:
    """A Zipkin-format receiver on a real socket (what Zipkin's /api/v2/spans takes)."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.status = 202

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.status < 300:
            self.batches.append(json.loads(body))
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int) -> AsyncIterator[Receiver]:
    app = Receiver()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=unused_tcp_port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    monkeypatch.setenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT", f"http://127.0.0.1:{unused_tcp_port}/api/v2/spans")
    yield app
    server.should_exit = True
    await task


@asynccontextmanager
async def _client(settings: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, publisher=InMemoryPublisher(), limiter=RateLimiter(storage=None))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8006") as c:
            yield c


async def test_protobuf_and_json_exports_reach_zipkin(receiver: Receiver) -> None:
    request = encode_spans(_spans())
    as_json = json.loads(json_format.MessageToJson(request))
    for resource in as_json["resourceSpans"]:  # OTLP/JSON ids are hex, not proto3 JSON's base64
        for scoped in resource["scopeSpans"]:
            for span in scoped["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    async with _client(IntakeSettings()) as client:
        r = await client.post("/v1/traces", content=request.SerializeToString(), headers=PROTO)
        assert r.status_code == 200, r.content
        assert not ExportTraceServiceResponse.FromString(r.content).HasField("partial_success")
        r = await client.post("/v1/traces", json=as_json)
        assert r.status_code == 200, r.text
    assert len(receiver.batches) == 2 and receiver.batches[0] == receiver.batches[1]
    assert {z["name"] for z in receiver.batches[0]} == {"GET /cart", "SELECT cart"}


async def test_zipkin_away_is_503_retry_and_bad_input_is_400(receiver: Receiver) -> None:
    async with _client(IntakeSettings()) as client:
        receiver.status = 503
        r = await client.post("/v1/traces", content=encode_spans(_spans()).SerializeToString(), headers=PROTO)
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert "Zipkin answered 503" in Status.FromString(r.content).message
        r = await client.post("/v1/traces", content=b"\xff\xfe not protobuf", headers=PROTO)
        assert r.status_code == 400 and "ExportTraceServiceRequest" in Status.FromString(r.content).message
        r = await client.post("/v1/traces", json={"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]})
        assert r.status_code == 400 and "not hex" in r.json()["message"]


async def test_without_a_trace_view_traces_are_404(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT", raising=False)
    async with _client(IntakeSettings()) as client:
        r = await client.post("/v1/traces", content=b"", headers=PROTO)
        assert r.status_code == 404
        assert "OTEL_EXPORTER_ZIPKIN_ENDPOINT" in Status.FromString(r.content).message
