"""HTTP server duration histograms (semantic conventions) -> one `RequestsObserved` per app and export."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, HistogramDataPoint, Metric

from services.intake.attributes import App, Scalar, status_code
from services.intake.series import Point
from shared.events import RequestsObserved
from shared.histogram import LatencySketch

__all__ = ["DURATION_METRICS", "RequestWindow", "attrs_key", "check_histogram", "is_cumulative", "point_of", "to_ms"]

# metric name -> its unit when the metric does not say (the stable name is in seconds, the old one in ms)
DURATION_METRICS = {"http.server.request.duration": "s", "http.server.duration": "ms"}
_TO_MS = {"s": 1000.0, "ms": 1.0, "us": 0.001, "ns": 0.000001}
_MIN_WINDOW_S = 0.001  # a window of 0 (start == end) says nothing the SLA could date


def to_ms(metric: Metric) -> float | None:
    """Milliseconds per unit of a duration metric; None for a unit that is no duration."""
    return _TO_MS.get(metric.unit or DURATION_METRICS[metric.name])


def is_cumulative(metric: Metric) -> bool:
    return metric.histogram.aggregation_temporality == AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


def check_histogram(metric: Metric) -> str | None:
    """Why this duration metric cannot be read (None: it can)."""
    if metric.WhichOneof("data") != "histogram":
        return f"{metric.name}: an explicit-bucket histogram is expected, got {metric.WhichOneof('data')}"
    if metric.histogram.aggregation_temporality == AggregationTemporality.AGGREGATION_TEMPORALITY_UNSPECIFIED:
        return f"{metric.name}: aggregation temporality is unspecified"
    if to_ms(metric) is None:
        return f"{metric.name}: unit {metric.unit!r} is not a duration (s, ms, us, ns)"
    return None


@functools.lru_cache(maxsize=256)
def _bounds_ok(bounds: tuple[float, ...]) -> bool:
    return all(math.isfinite(b) for b in bounds) and all(a < b for a, b in zip(bounds, bounds[1:]))


@functools.lru_cache(maxsize=256)
def _scaled(bounds: tuple[float, ...], ms: float) -> tuple[float, ...]:
    return tuple(b * ms for b in bounds)


def point_of(dp: HistogramDataPoint) -> Point | str:
    """The data point as a `Point`, or why it is malformed."""
    bounds, buckets = tuple(dp.explicit_bounds), tuple(dp.bucket_counts)
    if len(buckets) != len(bounds) + 1 and not (not buckets and not bounds):
        return f"{len(buckets)} bucket counts for {len(bounds)} bounds (expected bounds + 1)"
    if not _bounds_ok(bounds):
        return "explicit bounds are not finite and strictly increasing"
    if buckets and sum(buckets) != dp.count:
        return f"bucket counts add up to {sum(buckets)}, not to count {dp.count}"
    return Point(start_ns=dp.start_time_unix_nano, time_ns=dp.time_unix_nano, count=dp.count,
                 total=dp.sum if dp.HasField("sum") else 0.0, bounds=bounds, buckets=buckets,
                 max=dp.max if dp.HasField("max") else None)


def _upper(bounds: tuple[float, ...], i: int, top: float | None) -> float:
    """A bucket's value in the sketch: its upper bound (so `p95 > 5 s` holds only when it does), no more
    than the window's max; the overflow bucket takes the max, else its lower bound."""
    upper = bounds[i] if i < len(bounds) else (top if top is not None else bounds[-1])
    return max(0.0, min(upper, top) if top is not None else upper)


@dataclass(slots=True)
class RequestWindow:
    """The outcomes of one app's requests in one export, summed over its series."""

    count: int = 0
    errors: int = 0
    client_errors: int = 0
    total_ms: float = 0.0
    start_ns: int = 0
    end_ns: int = 0
    sketch: LatencySketch = field(default_factory=LatencySketch)

    def add(self, *, d: Point, attrs: dict[str, Scalar], ms: float) -> None:
        status = status_code(attrs)
        if (status is not None and status >= 500) or (status is None and attrs.get("error.type")):
            self.errors += d.count
        elif status is not None and 400 <= status < 500:
            self.client_errors += d.count
        self.count += d.count
        self.total_ms += d.total * ms
        self.start_ns = min(self.start_ns, d.start_ns) if self.start_ns else d.start_ns
        self.end_ns = max(self.end_ns, d.time_ns)
        if not d.buckets:  # a histogram without buckets: only the mean is known
            self.sketch.add(d.total * ms / d.count, d.count)
            return
        top = d.max * ms if d.max is not None else None
        bounds = _scaled(d.bounds, ms)
        for i, n in enumerate(d.buckets):
            if n:
                self.sketch.add(_upper(bounds, i, top), n)

    def event(self, app: App, *, report_window_s: float) -> RequestsObserved:
        """Dated to the last `report_window_s` before the export's end: the SLA processor counts a report in
        the second it starts and judges the last few seconds, so a 60 s export must not land a minute back."""
        seconds = min(max((self.end_ns - self.start_ns) / 1e9, _MIN_WINDOW_S), report_window_s)
        start = datetime.fromtimestamp(self.end_ns / 1e9 - seconds, tz=UTC)
        return RequestsObserved(service=app.service, instance=app.instance, window_start=start,
                                window_seconds=seconds, count=self.count,
                                errors=self.errors, client_errors=self.client_errors,
                                latency_sum_ms=max(0.0, self.total_ms), latency_buckets=self.sketch.to_wire())


def attrs_key(attrs: dict[str, Scalar]) -> tuple[tuple[str, Scalar], ...]:
    return tuple(sorted(attrs.items()))
