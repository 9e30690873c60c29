from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.events import HealthCheckCompleted, PoolStats, ProcessStatsReported, RequestsObserved
from shared.histogram import LatencySketch

T0 = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)  # a Monday, 10:00 in Bangkok


def requests(second: int, *, count: int = 100, errors: int = 0, ms: float = 50.0, service: str = "shop",
             instance: str = "a", t0: datetime = T0) -> RequestsObserved:
    sketch = LatencySketch.of([ms] * count)
    return RequestsObserved(service=service, instance=instance, window_start=t0 + timedelta(seconds=second),
                            count=count, errors=errors, latency_sum_ms=sketch.total_ms, latency_buckets=sketch.to_wire())


def process(second: float, *, memory: float = 40.0, connected: bool = True, instance: str = "a",
            service: str = "shop") -> ProcessStatsReported:
    return ProcessStatsReported(time=T0 + timedelta(seconds=second), service=service, instance=instance, pid=1,
                                rss_bytes=1, memory_limit_bytes=2, memory_percent=memory,
                                pools=[PoolStats(size=5, idle=1, max_size=10, connected=connected)])


def probe(second: float, *, state: str = "up", kind: str = "postgres", service: str = "shop") -> HealthCheckCompleted:
    return HealthCheckCompleted(time=T0 + timedelta(seconds=second), service=service, target=f"{service}-db", kind=kind,
                                status="pass" if state == "up" else "fail", state=state, latency_ms=3.0)
