"""OpenTelemetry set-up and W3C trace-context propagation through Kafka headers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from shared.logging import configure_logging
from shared.settings import TelemetrySettings

__all__ = ["setup_telemetry", "inject_headers", "extract_context", "tracer"]

_configured = False


def setup_telemetry(
    service_name: str, settings: TelemetrySettings | None = None, *, exporter: SpanExporter | None = None
) -> None:
    """Configure logs and the global tracer provider once per process."""
    global _configured
    settings = settings or TelemetrySettings()
    configure_logging(service_name, level=settings.log_level, fmt=settings.log_format)
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"safeguard-{service_name}"}))
    if exporter is None and settings.exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.exporter_otlp_endpoint.rstrip("/") + "/v1/traces")
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
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
