"""Events the protected app's SDK emits about the traffic it serves."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt

from shared import topics
from shared.events.base import Event

__all__ = ["RequestsObserved", "PageLoadObserved"]


class RequestsObserved(Event):
    """One instance's request outcomes over one window (normally one second).

    Emitted by the SDK's ASGI middleware. `latency_buckets` is a `shared.histogram.LatencySketch`
    on the wire (bucket index -> count), so the SLA processor can merge instances and seconds
    before it computes p50/p95/p99.
    """

    topic: ClassVar[str] = topics.TELEMETRY_REQUESTS
    type: Literal["telemetry.requests_observed"] = "telemetry.requests_observed"
    service: str = Field(min_length=1)
    instance: str = Field(min_length=1)
    window_start: datetime
    window_seconds: NonNegativeFloat = 1.0
    count: NonNegativeInt
    errors: NonNegativeInt = Field(description="Responses with status >= 500 or unhandled exceptions.")
    client_errors: NonNegativeInt = 0
    latency_sum_ms: NonNegativeFloat = 0.0
    latency_buckets: dict[str, NonNegativeInt] = Field(default_factory=dict)


class PageLoadObserved(Event):
    """A browser navigation-timing beacon: how long one page took to load for one user."""

    topic: ClassVar[str] = topics.TELEMETRY_PAGELOADS
    type: Literal["telemetry.page_load_observed"] = "telemetry.page_load_observed"
    service: str = Field(min_length=1)
    page: str
    load_ms: NonNegativeFloat
    ttfb_ms: NonNegativeFloat | None = None
    dom_content_loaded_ms: NonNegativeFloat | None = None
    lcp_ms: NonNegativeFloat | None = Field(default=None, description="Largest Contentful Paint (web-vitals).")
