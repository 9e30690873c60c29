"""Hostile telemetry: the core rejects what it cannot trust, never counts a replay twice, and keeps
an unpublished trigger until the edge says it was sent (issue 10, finding 6)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from services.sla.policy import SlaPolicy
from services.sla.service import SlaCore
from services.sla.validation import Duplicate, Rejected
from shared.events import Event, PageLoadObserved, TriggerCleared, TriggerFired
from shared.histogram import LatencySketch
from shared.testing import FakeClock
from tests.unit.sla.helpers import T0, probe, process, requests

YEAR = 365 * 86400


def core(clock: FakeClock) -> SlaCore:
    return SlaCore(policy=SlaPolicy(), buckets={}, status={}, clock=clock)


def clock_at(second: float) -> FakeClock:
    return FakeClock(start=T0.timestamp() + second)


def fired(out: list[Event], trigger: str = "error_rate_high") -> list[TriggerFired]:
    return [e for e in out if isinstance(e, TriggerFired) and e.trigger == trigger]


def hostile(**update: Any) -> Any:
    """A RequestsObserved as it comes off the wire, without the model's own checks."""
    good = requests(5)
    return type(good).model_construct(**(good.model_dump() | update))


@pytest.mark.parametrize(("update", "words"), [
    ({"latency_buckets": {"abc": 1}}, "latency bucket 'abc'"),
    ({"latency_buckets": {"-3": 1}}, "latency bucket '-3'"),
    ({"latency_buckets": {"99999999": 1}}, "latency bucket '99999999'"),
    ({"latency_buckets": {"10": 101}}, "latency buckets hold 101 samples"),
    ({"latency_buckets": {"10": -1}}, "count -1"),
    ({"errors": 120}, "errors (120) exceed count (100)"),
    ({"client_errors": 90, "errors": 20}, "errors (20) + client_errors (90) exceed count (100)"),
    ({"count": -5}, "count must be"),
    ({"latency_sum_ms": math.inf}, "latency_sum_ms must be a finite"),
    ({"latency_sum_ms": math.nan}, "latency_sum_ms must be a finite"),
    ({"latency_sum_ms": -1.0}, "latency_sum_ms must be a finite"),
    ({"window_seconds": math.inf}, "window_seconds"),
    ({"window_seconds": 0.0}, "window_seconds"),
    ({"count": 10**30}, "count must be"),
    ({"instance": "x" * 1000}, "instance"),
])
def test_a_hostile_request_report_is_rejected_with_the_reason_and_changes_nothing(update: dict[str, Any], words: str) -> None:
    c = core(clock_at(60))
    for s in range(5):
        c.observe_requests(requests(s))
    before = repr(c.status["shop"]), repr(c.store.table)
    with pytest.raises(Rejected) as err:
        c.observe_requests(hostile(**update))
    assert words in str(err.value)
    assert (repr(c.status["shop"]), repr(c.store.table)) == before


@pytest.mark.parametrize(("event", "words"), [
    (PageLoadObserved.model_construct(**(PageLoadObserved(service="shop", page="/", load_ms=1, time=T0).model_dump()
                                         | {"load_ms": math.inf})), "load_ms"),
    (process(5).model_copy(update={"memory_percent": math.nan}), "memory_percent"),
    (probe(5).model_copy(update={"latency_ms": math.inf}), "latency_ms"),
    (process(5).model_copy(update={"pools": process(5).pools * 500}), "pools"),
])
def test_other_hostile_events_are_rejected(event: Event, words: str) -> None:
    c = core(clock_at(60))
    handler = {"telemetry.page_load_observed": c.observe_page_load, "health.process_stats_reported": c.observe_process,
               "health.check_completed": c.observe_probe}[getattr(event, "type")]
    with pytest.raises(Rejected) as err:
        handler(event)
    assert words in str(err.value) and "shop" not in c.status


def test_a_record_ten_years_ahead_is_rejected_and_a_real_outage_still_fires() -> None:
    clock = clock_at(0)
    c = core(clock)
    out: list[Event] = []
    for s in range(40):
        clock.now = T0.timestamp() + s + 1
        if s == 5:
            with pytest.raises(Rejected, match="ahead of now"):
                c.observe_requests(requests(10 * YEAR))
            with pytest.raises(Rejected, match="ahead of now"):
                c.observe_process(process(10 * YEAR, memory=99))
        out += c.observe_requests(requests(s, errors=20 if s >= 20 else 0))
    assert len(fired(out)) == 1 and fired(out)[0].time == T0 + timedelta(seconds=23)


def test_a_record_far_behind_is_rejected() -> None:
    c = core(clock_at(0))
    with pytest.raises(Rejected, match="behind now"):
        c.observe_requests(requests(-30 * 86400))
    with pytest.raises(Rejected, match="behind now"):
        c.observe_probe(probe(-30 * 86400, state="down"))
    assert c.services() == []


def test_a_clock_slightly_ahead_neither_is_rejected_nor_blinds_detection() -> None:
    """An instance 9 s ahead (inside max_ahead) is counted, but the window never runs ahead of now."""
    clock = clock_at(0)
    c = core(clock)
    out: list[Event] = []
    for s in range(40):
        clock.now = T0.timestamp() + s + 1
        out += c.observe_requests(requests(s + 9, instance="ahead"))
        out += c.observe_requests(requests(s, errors=40 if s >= 20 else 0))
    assert len(fired(out)) == 1
    assert c.status["shop"]["watermark"] <= clock.now


def test_a_replayed_batch_is_not_counted_twice_and_fires_once() -> None:
    c = core(clock_at(100))
    batch = [requests(s, errors=20 if s >= 20 else 0, instance=i) for s in range(30) for i in ("a", "b")]
    out = [e for r in batch for e in c.observe_requests(r)]
    count, errors, _ = c.request_window("shop", now=c.status["shop"]["watermark"], window=5)
    minutes = c.series("shop", "rm")
    for r in batch[-20:]:  # a restart replays what came after the last committed offset
        with pytest.raises(Duplicate):
            c.observe_requests(r)
    assert c.request_window("shop", now=c.status["shop"]["watermark"], window=5)[:2] == (count, errors)
    assert c.series("shop", "rm") == minutes and len(fired(out)) == 1


def test_a_replayed_memory_spike_is_not_two_reports() -> None:
    c = core(clock_at(100))
    c.observe_process(process(0, memory=50))
    spike = process(2, memory=99)
    c.observe_process(spike)
    with pytest.raises(Duplicate):
        c.observe_process(spike)
    c.observe_probe(probe(3))
    with pytest.raises(Duplicate):
        c.observe_probe(probe(3))
    assert [m[1] for m in c.status["shop"]["instances"]["a"]["mem"]] == [50, 99]


def test_a_trigger_stays_pending_until_marked_published() -> None:
    c = core(clock_at(100))
    out = [e for s in range(70) for e in c.observe_requests(requests(s, errors=20 if 20 <= s < 40 else 0))]
    episode = [e for e in out if isinstance(e, TriggerFired | TriggerCleared) and e.trigger == "error_rate_high"]
    assert [e.id for e in c.pending("shop") if getattr(e, "trigger") == "error_rate_high"] == [e.id for e in episode]
    assert c.services_pending() == ["shop"]
    c.mark_published("shop", ids=[episode[0].id])
    assert [e.id for e in c.pending("shop") if getattr(e, "trigger") == "error_rate_high"] == [episode[1].id]
    c.mark_published("shop", ids=[e.id for e in c.pending("shop")])
    assert c.pending("shop") == [] and c.services_pending() == []


def test_state_stays_bounded_under_a_flood_of_names() -> None:
    c = core(clock_at(100))
    for i in range(3000):
        c.observe_probe(probe(1).model_copy(update={"target": f"t{i}", "kind": "http"}))
        c.observe_requests(requests(1, instance=f"i{i}", count=1))
    st = c.status["shop"]
    assert len(st["probes"]) <= 256 and len(st["seen"]) <= 1024


def test_the_sketch_refuses_bad_wire_buckets_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="latency bucket 'abc' is not"):
        LatencySketch.from_wire({"abc": 1})
    assert LatencySketch.bucket_of(math.inf) == LatencySketch.bucket_of(1e300)  # no OverflowError
    with pytest.raises(ValueError, match="NaN"):
        LatencySketch.bucket_of(math.nan)


def test_state_pushed_into_the_future_before_the_checks_is_healed() -> None:
    """A watermark 10 years ahead, written by a version without the event-time checks, blinds no more."""
    buckets: dict[str, Any] = {}
    status: dict[str, Any] = {}
    future = SlaCore(policy=SlaPolicy(), buckets=buckets, status=status, clock=clock_at(10 * YEAR + 3700))
    future.observe_requests(requests(10 * YEAR))
    future.observe_requests(requests(10 * YEAR + 3600))  # closes an hour and a minute into the bucket table
    clock = clock_at(0)
    c = SlaCore(policy=SlaPolicy(), buckets=buckets, status=status, clock=clock)
    out: list[Event] = []
    for s in range(40):
        clock.now = T0.timestamp() + s + 1
        out += c.observe_requests(requests(s, errors=20 if s >= 20 else 0, instance="b"))
    assert len(fired(out)) == 1 and c.status["shop"]["watermark"] == T0.timestamp() + 40
    assert [m for m, _ in c.series("shop", "rm")] == [int(T0.timestamp()) // 60]
    assert c.series("shop", "rm")[0][1][1] == 40 * 100
