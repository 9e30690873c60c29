"""The core: an OTLP metrics export -> the events it means. No framework; the store is the only state.

`map_export` reads, `commit` remembers: the API publishes the events first and commits only when
Kafka took them all, so an export the client must retry is counted again from the same baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, ResourceMetrics

from services.intake.attributes import App, attrs_of, identify
from services.intake.memory import memory_of, stats_event
from services.intake.requests import (DURATION_METRICS, RequestWindow, attrs_key, check_histogram, is_cumulative,
                                      point_of, to_ms)
from services.intake.series import Point, SeriesStore, delta, supersedes
from shared.events import Event

__all__ = ["Mapped", "Intake", "count_points"]

_STABLE = "http.server.request.duration"
_MAX_REASONS = 5


@dataclass(slots=True)
class Mapped:
    """What one export means: events to publish, points refused (and why), series updates to commit."""

    events: list[Event] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    updates: dict[Hashable, Point] = field(default_factory=dict)

    def reject(self, points: int, reason: str) -> None:
        self.rejected += points
        if reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def message(self) -> str:
        more = len(self.reasons) - _MAX_REASONS
        return "; ".join(self.reasons[:_MAX_REASONS]) + (f"; and {more} more" if more > 0 else "")


def count_points(metric: Metric) -> int:
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


class Intake:
    """Maps exports with the semantic conventions; `memory_limit(service)` is the limit for apps that send none,
    `report_window_s` the window a `RequestsObserved` reports (its last seconds before the export's end)."""

    def __init__(self, *, store: SeriesStore, first_window_s: float, memory_limit: Callable[[str], float],
                 report_window_s: float = 1.0) -> None:
        self.store = store
        self.first_window_ns = int(first_window_s * 1e9)
        self.memory_limit = memory_limit
        self.report_window_s = report_window_s

    def map_export(self, request: ExportMetricsServiceRequest) -> Mapped:
        out = Mapped()
        for rm in request.resource_metrics:
            self._resource(rm, out)
        return out

    def commit(self, mapped: Mapped) -> None:
        for key, point in mapped.updates.items():
            self.store.put(key, point)

    def _resource(self, rm: ResourceMetrics, out: Mapped) -> None:
        metrics = [m for sm in rm.scope_metrics for m in sm.metrics]
        app = identify(attrs_of(rm.resource.attributes))
        if app is None:
            if points := sum(count_points(m) for m in metrics):
                out.reject(points, "a resource without service.name: its points identify no app")
            return
        durations = [m for m in metrics if m.name in DURATION_METRICS]
        if any(m.name == _STABLE for m in durations):  # an app sending both (semconv opt-in http/dup): count once
            durations = [m for m in durations if m.name == _STABLE]
        window = RequestWindow()
        for metric in durations:
            self._durations(app, metric, window, out)
        if window.count:
            out.events.append(window.event(app, report_window_s=self.report_window_s))
        memory = memory_of(metrics)
        if memory is not None:
            used, limit = memory
            out.events.append(stats_event(app=app, used=used, limit=limit or self.memory_limit(app.service)))

    def _durations(self, app: App, metric: Metric, window: RequestWindow, out: Mapped) -> None:
        if (why := check_histogram(metric)) is not None:
            out.reject(count_points(metric), why)
            return
        ms, cumulative = to_ms(metric) or 1.0, is_cumulative(metric)
        for dp in metric.histogram.data_points:
            point = point_of(dp)
            if isinstance(point, str):
                out.reject(1, f"{metric.name}: {point}")
                continue
            attrs = attrs_of(dp.attributes)
            d: Point | None = point if point.count else None
            if cumulative:
                key = (app.service, app.instance, metric.name, attrs_key(attrs))
                prev = out.updates.get(key) or self.store.get(key)
                d = delta(prev=prev, cur=point, first_window_ns=self.first_window_ns)
                if supersedes(prev=prev, cur=point):
                    out.updates[key] = point
            if d is not None:
                window.add(d=d, attrs=attrs, ms=ms)
