"""OTLP export requests built by hand for the intake's unit tests."""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
                                                        Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

__all__ = ["CUMULATIVE", "DELTA", "BOUNDS_S", "T0", "kv", "hist_point", "duration", "gauge", "export"]

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
BOUNDS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
T0 = 1_796_000_000_000_000_000  # ns


def kv(**attrs: object) -> list[KeyValue]:
    out = []
    for key, value in attrs.items():
        if isinstance(value, bool):
            out.append(KeyValue(key=key, value=AnyValue(bool_value=value)))
        elif isinstance(value, int):
            out.append(KeyValue(key=key, value=AnyValue(int_value=value)))
        else:
            out.append(KeyValue(key=key, value=AnyValue(string_value=str(value))))
    return out


def hist_point(*, buckets: list[int], status: int | None = 200, start_s: float = 0.0, time_s: float = 10.0,
               total: float = 0.0, bounds: tuple[float, ...] = BOUNDS_S, max_: float | None = None,
               **attrs: object) -> HistogramDataPoint:
    if status is not None:
        attrs["http.response.status_code"] = status
    dp = HistogramDataPoint(start_time_unix_nano=T0 + int(start_s * 1e9), time_unix_nano=T0 + int(time_s * 1e9),
                            count=sum(buckets), sum=total, bucket_counts=buckets, explicit_bounds=bounds,
                            attributes=kv(**attrs))
    if max_ is not None:
        dp.max = max_
    return dp


def duration(*points: HistogramDataPoint, name: str = "http.server.request.duration", unit: str = "s",
             temporality: int = CUMULATIVE) -> Metric:
    return Metric(name=name, unit=unit, histogram=Histogram(data_points=points, aggregation_temporality=temporality))


def gauge(name: str, value: float, **attrs: object) -> Metric:
    return Metric(name=name, unit="By", gauge=Gauge(data_points=[NumberDataPoint(as_double=value, attributes=kv(**attrs))]))


def export(*metrics: Metric, service: str | None = "shop", instance: str | None = "shop-1",
           **resource: object) -> ExportMetricsServiceRequest:
    attrs = dict(resource)
    if service is not None:
        attrs["service.name"] = service
    if instance is not None:
        attrs["service.instance.id"] = instance
    return ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
        resource=Resource(attributes=kv(**attrs)), scope_metrics=[ScopeMetrics(metrics=metrics)])])
