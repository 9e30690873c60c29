"""One incident, one trace: the W3C trace context kept where work waits (an outbox row, an incident,
a window of requests) and carried over HTTP, so the work done later continues the trace that caused it.

`shared.telemetry` sets tracing up and carries the context through Kafka headers; this module holds
the pieces the services need beyond that.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind
from opentelemetry.util.types import AttributeValue

__all__ = ["current_traceparent", "trace_id_of", "context_of", "http_headers", "continued", "span_from"]


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span (None outside a sampled span): what to store with work
    that someone finishes later."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex trace id of a `traceparent` (what Zipkin and Jaeger put in their URLs)."""
    ctx = _span_context(traceparent)
    return None if ctx is None else format(ctx.trace_id, "032x")


def context_of(traceparent: str | None) -> Context | None:
    """A context whose parent is the span `traceparent` names; None when there is none (or it is invalid)."""
    ctx = _span_context(traceparent)
    return None if ctx is None else trace.set_span_in_context(NonRecordingSpan(ctx))


def http_headers(context: Context | None = None) -> dict[str, str]:
    """`traceparent` (and `tracestate`) of the current (or given) context, for an outgoing HTTP request."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier


def span_from(parent: SpanContext | None, name: str, *, links: Sequence[SpanContext] = (),
              kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, AttributeValue] | None = None,
              tracer: str = "safeguard") -> Span:
    """A started (not current) span whose parent is `parent` (a new trace when None), linked to `links`."""
    ctx = trace.set_span_in_context(NonRecordingSpan(parent)) if parent is not None else Context()
    return trace.get_tracer(tracer).start_span(name, context=ctx, kind=kind, attributes=attributes,
                                               links=[Link(c) for c in links if c.is_valid])


@contextmanager
def continued(traceparent: str | None, name: str, *, kind: SpanKind = SpanKind.INTERNAL,
              attributes: Mapping[str, AttributeValue] | None = None, tracer: str = "safeguard") -> Iterator[Span]:
    """A current span in the trace `traceparent` names: a child of the current span when that is already in
    this trace (a tree), else a child of the stored span (work resumed later: a timer, a relay, a restart).
    Without a stored trace, a child of whatever is current."""
    stored = _span_context(traceparent)
    current = trace.get_current_span().get_span_context()
    parent = None
    if stored is not None and not (current.is_valid and current.trace_id == stored.trace_id):
        parent = trace.set_span_in_context(NonRecordingSpan(stored))
    with trace.get_tracer(tracer).start_as_current_span(name, context=parent, kind=kind,
                                                         attributes=attributes) as span:
        yield span


def _span_context(traceparent: str | None) -> SpanContext | None:
    if not traceparent:
        return None
    ctx = trace.get_current_span(propagate.extract({"traceparent": traceparent})).get_span_context()
    return ctx if ctx.is_valid else None
