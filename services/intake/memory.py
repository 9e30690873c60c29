"""Process memory metrics (semantic conventions, runtime metrics) -> `ProcessStatsReported`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, NumberDataPoint

from services.intake.attributes import App, attrs_of
from shared.events import ProcessStatsReported

__all__ = ["MemorySource", "SOURCES", "memory_of", "stats_event"]


@dataclass(frozen=True, slots=True)
class MemorySource:
    """A usage metric (name pattern), the limit metric sent beside it, and the points to count."""

    usage: re.Pattern[str]
    limit: str | None
    only: tuple[str, str] | None = None  # (attribute, value): points that carry the attribute must have the value


SOURCES = (  # first match wins
    MemorySource(re.compile(r"process\.memory\.usage"), "process.memory.limit"),
    MemorySource(re.compile(r"process\.runtime\.[a-z0-9_]+\.memory"), None, ("type", "rss")),
    MemorySource(re.compile(r"jvm\.memory\.used"), "jvm.memory.limit", ("jvm.memory.type", "heap")),
    MemorySource(re.compile(r"v8js\.memory\.heap\.used"), "v8js.memory.heap.limit"),
)


def _points(metric: Metric) -> Iterable[NumberDataPoint]:
    kind = metric.WhichOneof("data")
    return metric.gauge.data_points if kind == "gauge" else metric.sum.data_points if kind == "sum" else ()


def _total(metric: Metric, only: tuple[str, str] | None) -> float | None:
    total, seen = 0.0, False
    for dp in _points(metric):
        if only is not None:
            value = attrs_of(dp.attributes).get(only[0], only[1])
            if value != only[1]:
                continue
        total += dp.as_int if dp.WhichOneof("value") == "as_int" else dp.as_double
        seen = True
    return total if seen else None


def _sum(metrics: list[Metric], only: tuple[str, str] | None) -> float | None:
    totals = [t for t in (_total(m, only) for m in metrics) if t is not None]
    return sum(totals) if totals else None


def memory_of(metrics: list[Metric]) -> tuple[float, float | None] | None:
    """(bytes used, bytes limit or None) from the first source these metrics carry; None: no memory metric."""
    for source in SOURCES:
        usage = _sum([m for m in metrics if source.usage.fullmatch(m.name)], source.only)
        if usage is None:
            continue
        limit = _sum([m for m in metrics if m.name == source.limit], source.only) if source.limit else None
        return usage, limit or None
    return None


def stats_event(*, app: App, used: float, limit: float) -> ProcessStatsReported:
    rss, cap = max(0, int(used)), max(1, int(limit))
    return ProcessStatsReported(service=app.service, instance=app.instance, pid=app.pid, rss_bytes=rss,
                                memory_limit_bytes=cap, memory_percent=round(rss / cap * 100, 3))
