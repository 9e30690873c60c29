"""OpenTelemetry set-up and W3C trace-context propagation through Kafka headers.

Spans go to every exporter configured: Zipkin (`OTEL_EXPORTER_ZIPKIN_ENDPOINT`, e.g.
http://127.0.0.1:9411/api/v2/spans: the trace view of both stacks, docs/tracing.md) and any
OTLP/HTTP collector (`OTEL_EXPORTER_OTLP_ENDPOINT`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.logging import configure_logging
from shared.settings import TelemetrySettings

__all__ = ["QuietExporter", "ZipkinSettings", "build_tracer_provider", "setup_telemetry", "inject_headers", "extract_context", "tracer"]

_configured = False
log = logging.getLogger(__name__)
_PROBES = frozenset({"/healthz", "/readyz"})  # HAProxy's and the health service's checks, every few seconds


class _SkipProbes(Sampler):
    """Every trace but those a health probe starts: they would bury the requests in the trace view."""

    def __init__(self) -> None:
        self._parent_based = ParentBased(ALWAYS_ON)

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None, trace_state: trace.TraceState | None = None) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        path = (attributes or {}).get("url.path", (attributes or {}).get("http.target"))
        if not parent.is_valid and path in _PROBES:
            return SamplingResult(Decision.DROP)
        return self._parent_based.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "SkipProbes(ParentBased(AlwaysOn))"


class ZipkinSettings(BaseSettings):
    """Where spans go as Zipkin JSON v2 (the OpenTelemetry standard variable); None: not to Zipkin."""

    model_config = SettingsConfigDict(env_prefix="OTEL_EXPORTER_ZIPKIN_", extra="ignore")
    endpoint: str | None = None
    timeout: int = 5  # seconds per export: a Zipkin that hangs must not hold the batch worker long


class QuietExporter(SpanExporter):
    """A trace backend that is away (Zipkin still starting, restarted, overloaded) costs one WARNING line a
    minute, not a traceback per batch: the spans of that batch are dropped, the service goes on."""

    def __init__(self, inner: SpanExporter, *, every_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner, self.every_s, self.clock = inner, every_s, clock
        self.failures = 0
        self._said_at: float | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # noqa: BLE001 - any transport error: drop the batch, say so once a while
            self._failed(f"{type(exc).__name__}: {str(exc)[:200]}", len(spans))
            return SpanExportResult.FAILURE
        if result is SpanExportResult.FAILURE:
            self._failed("the exporter said FAILURE", len(spans))
        return result

    def _failed(self, why: str, count: int) -> None:
        self.failures += 1
        now = self.clock()
        if self._said_at is None or now - self._said_at >= self.every_s:
            self._said_at = now
            log.warning("trace export failed, %d span(s) dropped (%d failures so far; next note in %.0fs): %s",
                        count, self.failures, self.every_s, why)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _exporters(*, settings: TelemetrySettings, zipkin: ZipkinSettings) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    if zipkin.endpoint:
        from opentelemetry.exporter.zipkin.json import ZipkinExporter

        exporters.append(QuietExporter(ZipkinExporter(endpoint=zipkin.endpoint, timeout=zipkin.timeout)))
    if settings.exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporters.append(QuietExporter(OTLPSpanExporter(endpoint=settings.exporter_otlp_endpoint.rstrip("/") + "/v1/traces")))
    return exporters


def build_tracer_provider(
    *, service_name: str, settings: TelemetrySettings, zipkin: ZipkinSettings, exporter: SpanExporter | None = None
) -> TracerProvider:
    """A provider for `safeguard-<service_name>` batching its spans to `exporter` or the configured ones."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"safeguard-{service_name}"}),
                              sampler=_SkipProbes())
    for each in [exporter] if exporter is not None else _exporters(settings=settings, zipkin=zipkin):
        provider.add_span_processor(BatchSpanProcessor(each))
    return provider


def setup_telemetry(
    service_name: str, settings: TelemetrySettings | None = None, *, exporter: SpanExporter | None = None,
    zipkin: ZipkinSettings | None = None,
) -> None:
    """Configure logs and the global tracer provider once per process."""
    global _configured
    settings = settings or TelemetrySettings()
    configure_logging(service_name, level=settings.log_level, fmt=settings.log_format)
    if _configured:
        return
    trace.set_tracer_provider(build_tracer_provider(
        service_name=service_name, settings=settings, zipkin=zipkin or ZipkinSettings(), exporter=exporter))
    _configured = True


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject_headers(context: Context | None = None) -> list[tuple[str, bytes]]:
    """W3C traceparent/tracestate of the current (or given) context as Kafka headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return [(k, v.encode()) for k, v in carrier.items()]


def extract_context(headers: Iterable[tuple[str, bytes]] | Sequence[tuple[str, bytes]] | None) -> Context:
    carrier = {k: v.decode(errors="replace") for k, v in (headers or ()) if v is not None}
    return propagate.extract(carrier)
