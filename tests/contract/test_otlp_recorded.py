"""Contract: OTLP exports RECORDED from the real SDKs (tests/contract/otlp/) map to the events we expect.

Python: opentelemetry-sdk + opentelemetry-exporter-otlp-proto-http under the ASGI instrumentation
(`python -m tests.contract.otlp.record_python`): 5 x 200, 2 x 404, 3 x 500, then 1 x 500 more.
Node: @opentelemetry/sdk-metrics + exporter-metrics-otlp-proto / -http under instrumentation-http
(`cd tests/node-otlp && npm run record`): 8 x 200, 3 x 404, 2 x 500, 1 x 503; the second export adds
the first export's own POST. Both are cumulative: the second export must come out as the difference.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from services.intake.series import SeriesStore
from services.intake.service import Intake
from shared.events import ProcessStatsReported, RequestsObserved
from shared.histogram import LatencySketch

OTLP = Path(__file__).resolve().parent / "otlp"
DEFAULT_LIMIT = 8 * 1024**3


def _load(name: str, folder: Path = OTLP) -> ExportMetricsServiceRequest:
    raw = (folder / name).read_bytes()
    if name.endswith(".json"):
        return json_format.Parse(raw, ExportMetricsServiceRequest(), ignore_unknown_fields=True)
    return ExportMetricsServiceRequest.FromString(raw)


def _replay(*names: str, folder: Path = OTLP) -> list[tuple[RequestsObserved, ProcessStatsReported]]:
    # the SDKs started just before their first export: within the default first window (120 s)
    intake = Intake(store=SeriesStore(max_series=100), first_window_s=120.0,
                    memory_limit=lambda _: DEFAULT_LIMIT)
    out = []
    for name in names:
        mapped = intake.map_export(_load(name, folder))
        assert (mapped.rejected, mapped.message) == (0, "")
        intake.commit(mapped)
        [requests] = [e for e in mapped.events if isinstance(e, RequestsObserved)]
        [stats] = [e for e in mapped.events if isinstance(e, ProcessStatsReported)]
        out.append((requests, stats))
    return out


def _first_start(request: ExportMetricsServiceRequest) -> datetime:
    starts = [dp.start_time_unix_nano for rm in request.resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics if m.name == "http.server.request.duration" for dp in m.histogram.data_points]
    return datetime.fromtimestamp(min(starts) / 1e9, tz=UTC)


def test_python_sdk_exports() -> None:
    (first, mem1), (second, _) = _replay("python-sdk-1.binpb", "python-sdk-2.binpb")
    assert (first.service, first.instance) == ("shop-python", "shop-python-1")
    assert (first.count, first.errors, first.client_errors) == (10, 3, 2)
    # the first export covers the SDK's life so far (< 1 s): its window starts with the SDK's start time
    assert first.window_start.timestamp() == pytest.approx(_first_start(_load("python-sdk-1.binpb")).timestamp(), abs=1e-3)
    assert (second.count, second.errors, second.client_errors) == (1, 1, 0)
    assert second.window_start > first.window_start
    sketch = LatencySketch.from_wire(first.latency_buckets)
    assert sketch.count == 10
    assert sketch.quantile(1.0) <= 5.0 * 1.02  # every in-process request took < 5 ms: the first bucket
    # process.memory.usage against the process.memory.limit the app sent beside it
    assert mem1.memory_limit_bytes == 512 * 1024**2
    assert 0 < mem1.rss_bytes < mem1.memory_limit_bytes
    assert mem1.memory_percent == pytest.approx(mem1.rss_bytes / mem1.memory_limit_bytes * 100, abs=1e-3)
    assert mem1.pid > 0


@pytest.mark.parametrize("ext", ["binpb", "json"])
def test_node_sdk_exports(ext: str) -> None:
    (first, mem1), (second, _) = _replay(f"node-sdk-1.{ext}", f"node-sdk-2.{ext}")
    assert (first.service, first.instance) == ("shop-node", "shop-node-1")
    assert (first.count, first.errors, first.client_errors) == (14, 3, 3)
    assert (second.count, second.errors, second.client_errors) == (1, 0, 0)  # the first export's POST
    sketch = LatencySketch.from_wire(first.latency_buckets)
    assert sketch.count == 14
    assert sketch.count_above(25.0) == 1  # the 503 slept 30 ms: (25 ms, 50 ms]
    assert first.latency_sum_ms > 30.0
    # host-metrics' process.memory.usage, no limit sent: the configured one
    assert mem1.memory_limit_bytes == DEFAULT_LIMIT
    assert 10 * 1024**2 < mem1.rss_bytes < DEFAULT_LIMIT


def test_node_json_and_protobuf_say_the_same() -> None:
    [(p, _), _] = _replay("node-sdk-1.binpb", "node-sdk-2.binpb")
    [(j, _), _] = _replay("node-sdk-1.json", "node-sdk-2.json")
    assert (p.count, p.errors, p.client_errors) == (j.count, j.errors, j.client_errors)


def test_the_installed_python_sdk_still_exports_what_was_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recorded again now, with the SDK this checkout installs: the same events (an SDK upgrade that changes
    the wire shows up here, and `python -m tests.contract.otlp.record_python` refreshes the files)."""
    from tests.contract.otlp.record_python import main as record

    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http")  # the recorder sets it: undone after the test
    record(tmp_path)
    now = _replay("python-sdk-1.binpb", "python-sdk-2.binpb", folder=tmp_path)
    then = _replay("python-sdk-1.binpb", "python-sdk-2.binpb")
    shape = [(r.service, r.count, r.errors, r.client_errors, s.memory_limit_bytes) for r, s in now]
    assert shape == [(r.service, r.count, r.errors, r.client_errors, s.memory_limit_bytes) for r, s in then]


@pytest.mark.parametrize("name", ["python-sdk", "node-sdk"])
def test_the_sla_processor_takes_what_the_recordings_become(name: str) -> None:
    """Every event passes the SLA core's own checks (windows within its cap, counts consistent, names)."""
    from services.sla.policy import EventTime
    from services.sla.validation import check, event_time

    for requests, stats in _replay(f"{name}-1.binpb", f"{name}-2.binpb"):
        check(requests, now=event_time(requests)[1], window=EventTime())  # dated by the app's clock
        check(stats, now=stats.time.timestamp(), window=EventTime())  # dated when the intake got it
