"""The OTLP -> events mapping: cumulative -> delta, resets, errors by status, buckets, memory, identity."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.intake.series import SeriesStore
from services.intake.service import Intake
from shared.events import ProcessStatsReported, RequestsObserved
from shared.histogram import LatencySketch
from tests.unit.intake.build import BOUNDS_S, CUMULATIVE, DELTA, T0, duration, export, gauge, hist_point

GiB = 1024**3


def _intake(**kw: object) -> Intake:
    return Intake(store=SeriesStore(max_series=int(kw.pop("max_series", 1000))),  # type: ignore[call-overload]
                  first_window_s=float(kw.pop("first_window_s", 120.0)),  # type: ignore[arg-type]
                  report_window_s=float(kw.pop("report_window_s", 1.0)),  # type: ignore[arg-type]
                  memory_limit=lambda service: 4 * GiB)


def _b(**at: int) -> list[int]:
    """Bucket counts over BOUNDS_S: `_b(i3=2)` puts 2 in bucket 3."""
    out = [0] * (len(BOUNDS_S) + 1)
    for k, v in at.items():
        out[int(k[1:])] = v
    return out


def _requests(intake: Intake, request: object) -> list[RequestsObserved]:
    mapped = intake.map_export(request)  # type: ignore[arg-type]
    intake.commit(mapped)
    return [e for e in mapped.events if isinstance(e, RequestsObserved)]


def test_errors_and_client_errors_by_status_code_old_and_new_keys() -> None:
    old = hist_point(buckets=_b(i0=1), status=None, **{"http.status_code": "502"})
    req = export(duration(hist_point(buckets=_b(i0=5), status=200), hist_point(buckets=_b(i1=2), status=404),
                          hist_point(buckets=_b(i2=3), status=503), old))
    [event] = _requests(_intake(), req)
    assert (event.count, event.errors, event.client_errors) == (11, 4, 2)
    assert (event.service, event.instance) == ("shop", "shop-1")


def test_error_type_without_status_is_an_error() -> None:
    req = export(duration(hist_point(buckets=_b(i0=2), status=None, **{"error.type": "TimeoutError"}),
                          hist_point(buckets=_b(i0=1), status=None)))
    [event] = _requests(_intake(), req)
    assert (event.count, event.errors, event.client_errors) == (3, 2, 0)


def test_cumulative_points_become_deltas() -> None:
    intake = _intake()
    first = _requests(intake, export(duration(hist_point(buckets=_b(i0=4, i11=1), status=500, time_s=10))))
    second = _requests(intake, export(duration(hist_point(buckets=_b(i0=6, i11=1, i12=2), status=500, time_s=20))))
    assert [(e.count, e.errors) for e in first] == [(5, 5)]
    [d] = second
    assert (d.count, d.errors) == (4, 4)
    # dated to the last second before the export (20 s), not to the 10 s it covers
    assert d.window_start == datetime.fromtimestamp((T0 + 19 * 10**9) / 1e9, tz=UTC)
    assert d.window_seconds == pytest.approx(1.0)
    sketch = LatencySketch.from_wire(d.latency_buckets)
    assert sketch.count == 4
    assert sketch.count_above(5000.0) == 2  # the two in (5 s, 7.5 s]


def test_a_repeated_cumulative_point_counts_once() -> None:
    intake = _intake()
    req = export(duration(hist_point(buckets=_b(i0=3), time_s=10)))
    assert [e.count for e in _requests(intake, req)] == [3]
    assert _requests(intake, req) == []


def test_a_restart_resets_the_counter_and_the_new_value_is_the_delta() -> None:
    intake = _intake()
    _requests(intake, export(duration(hist_point(buckets=_b(i0=50), start_s=0, time_s=60))))
    # the app restarted: new start time, smaller count
    [after] = _requests(intake, export(duration(hist_point(buckets=_b(i0=7), start_s=70, time_s=75, status=500))))
    assert (after.count, after.errors) == (7, 7)
    # a reset that keeps the start time (counts went down) is one too
    [again] = _requests(intake, export(duration(hist_point(buckets=_b(i0=2), start_s=70, time_s=80))))
    assert again.count == 2


def test_an_old_series_seen_first_is_only_a_baseline() -> None:
    intake = _intake(first_window_s=120)
    old = export(duration(hist_point(buckets=_b(i0=1000), start_s=0, time_s=3600)))
    assert _requests(intake, old) == []  # an hour of history is no window
    [d] = _requests(intake, export(duration(hist_point(buckets=_b(i0=1003), start_s=0, time_s=3610))))
    assert d.count == 3


def test_delta_temporality_is_taken_as_is() -> None:
    intake = _intake()
    req = export(duration(hist_point(buckets=_b(i0=2), start_s=0, time_s=10), temporality=DELTA))
    assert [e.count for e in _requests(intake, req)] == [2]
    assert [e.count for e in _requests(intake, req)] == [2]  # delta points are never subtracted
    assert len(intake.store) == 0


def test_buckets_map_to_their_upper_bound_in_ms_and_the_overflow_to_max() -> None:
    points = hist_point(buckets=_b(i6=1, i11=2, i14=1), max_=12.5, total=25.0)  # (0.1, 0.25], (2.5, 5], (10, inf)
    [event] = _requests(_intake(), export(duration(points)))
    sketch = LatencySketch.from_wire(event.latency_buckets)
    expected = LatencySketch.of([250.0, 5000.0, 5000.0, 12500.0])
    assert sketch.buckets == expected.buckets
    assert event.latency_sum_ms == pytest.approx(25000.0)
    assert sketch.count_above(5000.0) == 1  # p95 > 5 s only for the one that really was


def test_old_convention_in_milliseconds_and_the_stable_one_wins_when_both_come() -> None:
    old = duration(hist_point(buckets=[0, 3, 0], bounds=(10.0, 100.0)), name="http.server.duration", unit="ms")
    [alone] = _requests(_intake(), export(old))
    assert alone.count == 3
    assert LatencySketch.from_wire(alone.latency_buckets).buckets == LatencySketch.of([100.0] * 3).buckets
    new = duration(hist_point(buckets=_b(i0=2)))
    [both] = _requests(_intake(), export(old, new))
    assert both.count == 2


def test_malformed_points_are_rejected_with_the_reason_and_the_rest_is_kept() -> None:
    bad = hist_point(buckets=[1, 2], bounds=BOUNDS_S)  # 2 counts for 14 bounds
    gauge_duration = gauge("http.server.request.duration", 1.0)
    mapped = _intake().map_export(export(duration(bad, hist_point(buckets=_b(i0=1))), gauge_duration))
    assert mapped.rejected == 2
    assert "2 bucket counts for 14 bounds" in mapped.message
    assert "explicit-bucket histogram is expected, got gauge" in mapped.message
    assert [e.count for e in mapped.events if isinstance(e, RequestsObserved)] == [1]


def test_a_resource_without_service_name_is_rejected() -> None:
    mapped = _intake().map_export(export(duration(hist_point(buckets=_b(i0=1))), service=None))
    assert mapped.events == [] and mapped.rejected == 1
    assert "service.name" in mapped.message


def test_instance_falls_back_to_host_and_pid() -> None:
    req = export(duration(hist_point(buckets=_b(i0=1))), instance=None, **{"host.name": "web-3", "process.pid": 4242})
    [event] = _requests(_intake(), req)
    assert event.instance == "web-3/4242"


def test_the_series_store_is_bounded() -> None:
    intake = _intake(max_series=2)
    for route in ("/a", "/b", "/c"):
        _requests(intake, export(duration(hist_point(buckets=_b(i0=1), **{"http.route": route}))))
    assert len(intake.store) == 2


def test_uncommitted_exports_leave_the_baseline_as_it_was() -> None:
    intake = _intake()
    intake.commit(intake.map_export(export(duration(hist_point(buckets=_b(i0=1), time_s=10)))))
    retry = export(duration(hist_point(buckets=_b(i0=4), time_s=20)))
    assert [e.count for e in intake.map_export(retry).events] == [3]  # not committed: Kafka refused
    assert [e.count for e in _requests(intake, retry)] == [3]


def _stats(intake: Intake, request: object) -> list[ProcessStatsReported]:
    return [e for e in intake.map_export(request).events if isinstance(e, ProcessStatsReported)]  # type: ignore[arg-type]


def test_memory_against_the_limit_sent_beside_it() -> None:
    [s] = _stats(_intake(), export(gauge("process.memory.usage", 900e6), gauge("process.memory.limit", 1e9),
                                   **{"process.pid": 77}))
    assert (s.rss_bytes, s.memory_limit_bytes, s.pid) == (900_000_000, 1_000_000_000, 77)
    assert s.memory_percent == pytest.approx(90.0)


def test_memory_without_a_limit_uses_the_configured_one() -> None:
    [s] = _stats(_intake(), export(gauge("process.memory.usage", GiB)))
    assert (s.memory_limit_bytes, s.memory_percent) == (4 * GiB, 25.0)


@pytest.mark.parametrize(("metrics", "rss"), [
    ([gauge("process.runtime.cpython.memory", 300.0, type="rss"),
      gauge("process.runtime.cpython.memory", 900.0, type="vms")], 300),
    ([gauge("jvm.memory.used", 100.0, **{"jvm.memory.type": "heap"}),
      gauge("jvm.memory.used", 200.0, **{"jvm.memory.type": "heap"}),
      gauge("jvm.memory.used", 999.0, **{"jvm.memory.type": "non_heap"})], 300),
    ([gauge("v8js.memory.heap.used", 50.0), gauge("v8js.memory.heap.limit", 200.0)], 50),
])
def test_runtime_memory_metrics(metrics: list[object], rss: int) -> None:
    [s] = _stats(_intake(), export(*metrics))  # type: ignore[arg-type]
    assert s.rss_bytes == rss


def test_no_memory_metric_no_stats() -> None:
    assert _stats(_intake(), export(gauge("system.memory.usage", 1e9))) == []


def test_cumulative_requires_a_known_temporality_and_a_duration_unit() -> None:
    bytes_unit = duration(hist_point(buckets=_b(i0=1)), unit="By")
    unspecified = duration(hist_point(buckets=_b(i0=1)), temporality=0)
    mapped = _intake().map_export(export(bytes_unit))
    assert mapped.rejected == 1 and "not a duration" in mapped.message
    mapped = _intake().map_export(export(unspecified))
    assert mapped.rejected == 1 and "unspecified" in mapped.message
    assert CUMULATIVE != DELTA


@pytest.mark.parametrize(("interval_s", "report_s", "seconds"), [(60.0, 1.0, 1.0), (60.005, 60.0, 60.0),
                                                                 (0.2, 1.0, 0.2), (0.0, 1.0, 0.001)])
def test_the_window_ends_at_the_export_and_fits_the_sla(interval_s: float, report_s: float, seconds: float) -> None:
    from services.sla.validation import MAX_WINDOW_S

    point = hist_point(buckets=_b(i0=3), start_s=100.0, time_s=100.0 + interval_s)
    [event] = _requests(_intake(report_window_s=report_s), export(duration(point, temporality=DELTA)))
    assert event.window_seconds == pytest.approx(seconds)
    assert 0 < event.window_seconds <= MAX_WINDOW_S
    end = event.window_start.timestamp() + event.window_seconds
    assert end == pytest.approx((T0 + (100.0 + interval_s) * 1e9) / 1e9, abs=1e-3)
