"""OTLP/HTTP traces in, Zipkin JSON v2 out: any OpenTelemetry SDK's default exporter shows in the trace view.

Zipkin 3.5.1 (the trace view of both stacks, docs/tracing.md) takes only its own format, so the intake
translates each span the way OpenTelemetry's own Zipkin exporter does (ids as hex, times in microseconds,
`service.name` as the local endpoint, attributes and status as tags, events as annotations) and posts the
batch to `OTEL_EXPORTER_ZIPKIN_ENDPOINT`. A span that cannot be shown (no trace or span id) is refused in
OTLP's own terms (`partial_success.rejected_spans`); a Zipkin that is away answers 503 with Retry-After,
which OTLP exporters retry.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                       ExportTraceServiceResponse)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

from services.intake import otlp
from services.intake.attributes import attrs_of

__all__ = ["Translated", "TraceForwarder", "ZipkinAway", "decode", "success", "to_zipkin"]

_KINDS = {Span.SPAN_KIND_SERVER: "SERVER", Span.SPAN_KIND_CLIENT: "CLIENT",
          Span.SPAN_KIND_PRODUCER: "PRODUCER", Span.SPAN_KIND_CONSUMER: "CONSUMER"}
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class ZipkinAway(Exception):
    """Zipkin did not take the batch (unreachable, timed out or answered 5xx): the exporter should retry."""


@dataclass(frozen=True, slots=True)
class Translated:
    spans: list[dict[str, Any]]
    rejected: int
    message: str


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP/JSON writes ids as hex (the spec's exception to proto3 JSON, which reads bytes as base64)."""
    if isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str) and value:
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise otlp.WireError(400, f"{key} {value[:40]!r} is not hex (OTLP/JSON ids are hex)") from None
            else:
                _hex_ids_to_base64(value)


def decode(*, body: bytes, wire: otlp.Wire, content_encoding: str, max_bytes: int) -> ExportTraceServiceRequest:
    """The export request; WireError 400 (undecodable), 413 (inflates too large) or 415 (unknown encoding)."""
    raw = otlp.inflate(body, content_encoding=content_encoding, max_bytes=max_bytes)
    request = ExportTraceServiceRequest()
    loaded: object = None
    if wire.json:
        try:
            loaded = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise otlp.WireError(400, f"the body is not JSON: {exc}") from None
        _hex_ids_to_base64(loaded)
    otlp.parse_into(request, raw, wire=wire, json_body=loaded)
    return request


def _tags(span: Span) -> dict[str, str]:
    tags = {k: v if isinstance(v, str) else json.dumps(v) for k, v in attrs_of(span.attributes).items()}
    if span.status.code == Status.STATUS_CODE_ERROR:
        tags["otel.status_code"] = "ERROR"
        tags["error"] = span.status.message or "true"
    elif span.status.code == Status.STATUS_CODE_OK:
        tags["otel.status_code"] = "OK"
    return tags


def _span(span: Span, *, service: str, scope: str) -> dict[str, Any] | None:
    if len(span.trace_id) != 16 or not any(span.trace_id) or len(span.span_id) != 8 or not any(span.span_id):
        return None
    start, end = span.start_time_unix_nano // 1000, span.end_time_unix_nano // 1000
    out: dict[str, Any] = {
        "traceId": span.trace_id.hex(), "id": span.span_id.hex(), "name": span.name or "unknown",
        "timestamp": start, "duration": max(1, end - start), "localEndpoint": {"serviceName": service},
        "tags": _tags(span) | ({"otel.scope.name": scope} if scope else {}),
    }
    if len(span.parent_span_id) == 8 and any(span.parent_span_id):
        out["parentId"] = span.parent_span_id.hex()
    if span.kind in _KINDS:
        out["kind"] = _KINDS[span.kind]
    if span.events:
        out["annotations"] = [{"timestamp": e.time_unix_nano // 1000, "value": e.name} for e in span.events]
    return out


def _spans_of(resource: ResourceSpans) -> Iterator[dict[str, Any] | None]:
    name = attrs_of(resource.resource.attributes).get("service.name")
    service = name.strip() if isinstance(name, str) and name.strip() else "unknown_service"
    for scoped in resource.scope_spans:
        for span in scoped.spans:
            yield _span(span, service=service, scope=scoped.scope.name)


def to_zipkin(request: ExportTraceServiceRequest) -> Translated:
    """Every span as Zipkin JSON v2; one without a valid trace or span id is counted as rejected."""
    out = [z for resource in request.resource_spans for z in _spans_of(resource)]
    spans = [z for z in out if z is not None]
    rejected = len(out) - len(spans)
    message = f"{rejected} span(s) without a valid trace id or span id" if rejected else ""
    return Translated(spans=spans, rejected=rejected, message=message)


def success(translated: Translated) -> ExportTraceServiceResponse:
    response = ExportTraceServiceResponse()
    if translated.rejected:
        response.partial_success.rejected_spans = translated.rejected
        response.partial_success.error_message = translated.message
    return response


class TraceForwarder:
    """Posts Zipkin JSON v2 batches to one endpoint (`http://zipkin:9411/api/v2/spans`)."""

    def __init__(self, *, endpoint: str, http: httpx.AsyncClient) -> None:
        self.endpoint, self.http = endpoint, http

    async def send(self, spans: list[dict[str, Any]]) -> None:
        if not spans:
            return
        try:
            r = await self.http.post(self.endpoint, content=json.dumps(spans).encode(),
                                     headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise ZipkinAway(f"Zipkin at {self.endpoint} is unreachable: {type(exc).__name__}") from None
        if r.status_code >= 500:
            raise ZipkinAway(f"Zipkin answered {r.status_code}")
        if r.status_code >= 400:
            raise otlp.WireError(400, f"Zipkin refused the spans ({r.status_code}): {r.text[:200]}")

