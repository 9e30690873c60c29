"""What the core refuses to count: a record the contract lets through but the maths cannot trust.

`check(event, now=..., event_time=...)` raises `Rejected` with a reason a person can act on
(the agent sends the record to the DLQ with it); it runs before the core changes any state.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from services.sla.policy import EventTime
from shared.events import Event, HealthCheckCompleted, PageLoadObserved, ProcessStatsReported, RequestsObserved
from shared.histogram import wire_samples

__all__ = ["Rejected", "Duplicate", "check", "event_time", "MAX_COUNT", "MAX_NAME", "MAX_WINDOW_S", "MAX_POOLS"]

MAX_COUNT = 10**9  # requests per report: far above any real second, far below what JSON / changelog overflow
MAX_NAME = 200
MAX_WINDOW_S = 60.0
MAX_POOLS = 64


class Rejected(ValueError):
    """The record is valid on the wire but not something the core may count; the message says why."""


class Duplicate(Exception):  # noqa: N818 - an outcome, like Rejected, not an error
    """The record was counted already (a replay after a restart): drop it."""


def event_time(event: Event) -> tuple[float, float]:
    """(start, end) of what `event` reports, in epoch seconds."""
    if isinstance(event, RequestsObserved):
        start = event.window_start.timestamp()
        return start, start + event.window_seconds
    t = event.time.timestamp()
    return t, t


def check(event: Event, *, now: float, window: EventTime) -> None:
    """Raise `Rejected` when `event` cannot be trusted; `now` is the processor's clock."""
    if isinstance(event, RequestsObserved):
        _check_requests(event)
    elif isinstance(event, PageLoadObserved):
        _finite("load_ms", event.load_ms)
    elif isinstance(event, HealthCheckCompleted):
        _finite("latency_ms", event.latency_ms)
        _name("target", event.target)
    elif isinstance(event, ProcessStatsReported):
        _finite("memory_percent", event.memory_percent)
        _name("instance", event.instance)
        if len(event.pools) > MAX_POOLS:
            raise Rejected(f"{len(event.pools)} pools in one report (at most {MAX_POOLS})")
    _name("service", getattr(event, "service", ""))
    _check_time(event, now=now, window=window)


def _check_requests(event: RequestsObserved) -> None:
    for name in ("count", "errors", "client_errors"):
        value = getattr(event, name)
        if not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise Rejected(f"{name} must be an integer in [0, {MAX_COUNT}], got {value!r}")
    count, errors, client = event.count, event.errors, event.client_errors
    if errors > count:
        raise Rejected(f"errors ({errors}) exceed count ({count})")
    if errors + client > count:
        raise Rejected(f"errors ({errors}) + client_errors ({client}) exceed count ({count})")
    ws = event.window_seconds
    if not (isinstance(ws, int | float) and 0 < ws <= MAX_WINDOW_S):
        raise Rejected(f"window_seconds must be in (0, {MAX_WINDOW_S:g}], got {ws!r}")
    _finite("latency_sum_ms", event.latency_sum_ms)
    _name("instance", event.instance)
    try:
        samples = wire_samples(event.latency_buckets)
    except (ValueError, AttributeError) as exc:
        raise Rejected(str(exc)) from None
    if samples > count:
        raise Rejected(f"latency buckets hold {samples} samples, more than count ({count})")


def _finite(name: str, value: object) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise Rejected(f"{name} must be a finite number >= 0, got {value!r}")


def _name(field: str, value: object) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise Rejected(f"{field} must be a string of 1 to {MAX_NAME} characters")


def _check_time(event: Event, *, now: float, window: EventTime) -> None:
    start, end = event_time(event)
    if end > now + window.max_ahead:
        raise Rejected(f"event time {_iso(end)} is {end - now:.0f} s ahead of now (at most {window.max_ahead:g} s)")
    if start < now - window.max_behind:
        raise Rejected(f"event time {_iso(start)} is {now - start:.0f} s behind now (at most {window.max_behind:g} s)")


def _iso(t: float) -> str:
    try:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return repr(t)
