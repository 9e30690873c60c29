"""Spans leave the process as Zipkin JSON v2 (the trace view, docs/tracing.md) and/or OTLP, to a
real HTTP server on loopback; a Zipkin that does not answer costs one export timeout, nothing more."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.settings import TelemetrySettings
from shared.telemetry import ZipkinSettings, build_tracer_provider
from shared.testing.http import serving


class _Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[tuple[str, str, bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Collector

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.posts.append((self.path, self.headers.get("content-type", ""), body))
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[_Collector]:
    with serving(_Collector()) as server:
        yield server


def test_spans_reach_zipkin_as_json_v2_with_the_service_name_and_the_tree(collector: _Collector) -> None:
    provider = build_tracer_provider(service_name="flags", settings=TelemetrySettings(exporter_otlp_endpoint=None),
                                     zipkin=ZipkinSettings(endpoint=f"{collector.url}/api/v2/spans"))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /ofrep/v1/evaluate/flags/{key}") as parent:
        with tracer.start_as_current_span("evaluate"):
            pass
    assert provider.force_flush(5_000)
    provider.shutdown()

    spans = [s for path, ctype, body in collector.posts if path == "/api/v2/spans" for s in json.loads(body)]
    assert {ctype for _, ctype, _ in collector.posts} == {"application/json"}
    by_name = {s["name"]: s for s in spans}
    assert set(by_name) == {"POST /ofrep/v1/evaluate/flags/{key}", "evaluate"}
    trace_id = f"{parent.get_span_context().trace_id:032x}"
    assert {s["traceId"] for s in spans} == {trace_id}
    assert by_name["evaluate"]["parentId"] == by_name["POST /ofrep/v1/evaluate/flags/{key}"]["id"]
    assert {s["localEndpoint"]["serviceName"] for s in spans} == {"safeguard-flags"}


def test_zipkin_and_otlp_together_each_get_every_span(collector: _Collector) -> None:
    provider = build_tracer_provider(service_name="sla", settings=TelemetrySettings(exporter_otlp_endpoint=collector.url),
                                     zipkin=ZipkinSettings(endpoint=f"{collector.url}/api/v2/spans"))
    with provider.get_tracer("test").start_as_current_span("process"):
        pass
    assert provider.force_flush(5_000)
    provider.shutdown()
    assert sorted(path for path, _, _ in collector.posts) == ["/api/v2/spans", "/v1/traces"]
    otlp = next(body for path, _, body in collector.posts if path == "/v1/traces")
    assert b"safeguard-sla" in otlp and b"process" in otlp


def test_a_zipkin_that_never_answers_costs_one_timeout_and_raises_nothing() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        provider = build_tracer_provider(
            service_name="notifier", settings=TelemetrySettings(exporter_otlp_endpoint=None),
            zipkin=ZipkinSettings(endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}/api/v2/spans", timeout=1))
        with provider.get_tracer("test").start_as_current_span("lost"):
            pass
        t0 = time.monotonic()
        provider.force_flush(10_000)
        provider.shutdown()
        assert time.monotonic() - t0 < 5
    finally:
        silent.close()


def test_health_probes_start_no_trace_but_requests_and_their_children_do() -> None:
    spans = InMemorySpanExporter()
    provider = build_tracer_provider(service_name="flags", settings=TelemetrySettings(exporter_otlp_endpoint=None),
                                     zipkin=ZipkinSettings(endpoint=None), exporter=spans)
    tracer = provider.get_tracer("test")
    for path in ("/healthz", "/readyz", "/ofrep/v1/evaluate/flags/gamification"):
        with tracer.start_as_current_span(f"GET {path}", attributes={"url.path": path}):
            with tracer.start_as_current_span("fastapi.endpoint"):
                pass
    with tracer.start_as_current_span("kafka consume"):  # a root span with no path at all
        with tracer.start_as_current_span("GET /healthz", attributes={"url.path": "/healthz"}):  # inside a trace: kept
            pass
    provider.force_flush(5_000)
    assert sorted(s.name for s in spans.get_finished_spans()) == [
        "GET /healthz", "GET /ofrep/v1/evaluate/flags/gamification", "fastapi.endpoint", "kafka consume"]


def test_a_trace_backend_that_is_away_costs_one_warning_a_minute_and_no_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.sdk.trace.export import SpanExportResult

    from shared.telemetry import QuietExporter
    from shared.testing.fakes import FakeClock

    class Away:
        def export(self, spans: object) -> SpanExportResult:
            raise ConnectionError("HTTPConnectionPool(host='127.0.0.1', port=9411): Connection refused")

        def shutdown(self) -> None: ...

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    clock = FakeClock()
    quiet = QuietExporter(Away(), clock=clock)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="shared.telemetry"):
        results = [quiet.export([]) for _ in range(5)]
        clock.advance(61)
        results.append(quiet.export([]))
    assert results == [SpanExportResult.FAILURE] * 6 and quiet.failures == 6
    lines = [r for r in caplog.records if r.name == "shared.telemetry"]
    assert len(lines) == 2 and all(r.exc_info is None for r in lines)
    assert "Connection refused" in lines[0].getMessage() and "6 failures" in lines[1].getMessage()
