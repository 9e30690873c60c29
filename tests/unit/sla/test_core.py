from __future__ import annotations

from datetime import timedelta

import pytest

from services.sla.policy import SlaPolicy
from services.sla.service import SlaCore
from shared.events import BudgetReported, Event, TriggerCleared, TriggerFired
from shared.testing import FakeClock
from tests.unit.sla.helpers import T0, probe, process, requests


def core(policy: SlaPolicy | None = None) -> SlaCore:
    return SlaCore(policy=policy or SlaPolicy(), buckets={}, status={}, clock=FakeClock((T0 + timedelta(days=1)).timestamp()))


def triggers(out: list[Event]) -> list[Event]:
    return [e for e in out if isinstance(e, TriggerFired | TriggerCleared)]


def feed(c: SlaCore, events: list) -> list[Event]:
    out: list[Event] = []
    for e in events:
        out += {"telemetry.requests_observed": c.observe_requests, "health.process_stats_reported": c.observe_process,
                "health.check_completed": c.observe_probe}[e.type](e)
    return out


def test_clean_then_20_percent_errors_then_clean_gives_one_episode() -> None:
    c = core()
    pattern = [requests(s, errors=20 if 20 <= s < 40 else 0) for s in range(70)]
    fired, cleared = [e for e in triggers(feed(c, pattern)) if e.trigger == "error_rate_high"]
    assert isinstance(fired, TriggerFired) and isinstance(cleared, TriggerCleared)
    assert fired.time == T0 + timedelta(seconds=23)  # bad from 20 s; window over 5 % at 22 s; 1 s hold
    assert fired.first_bad_at == T0 + timedelta(seconds=22)
    assert fired.value == pytest.approx(0.12) and fired.threshold == 0.05 and fired.samples == 500
    assert cleared.episode_id == fired.episode_id and cleared.fired_at == fired.time
    assert T0 + timedelta(seconds=40) < cleared.time <= T0 + timedelta(seconds=56)
    assert fired.id != cleared.id


def test_one_failure_out_of_two_is_not_an_episode() -> None:
    c = core()
    out = feed(c, [requests(s, count=2, errors=1) for s in range(30)])
    assert not [e for e in triggers(out) if e.trigger == "error_rate_high"]


def test_instances_merge_into_one_service_window() -> None:
    c = core()
    out = feed(c, [requests(s, count=50, errors=10 if s >= 10 else 0, instance=i) for s in range(20) for i in ("a", "b")])
    assert [e.trigger for e in triggers(out) if e.trigger == "error_rate_high"] == ["error_rate_high"]
    count, errors, _ = c.request_window("shop", now=c.status["shop"]["watermark"], window=5)
    assert (count, errors) == (500, 100)


def test_latency_p95_over_five_seconds_fires() -> None:
    c = core()
    out = feed(c, [requests(s, ms=6000 if s >= 10 else 100) for s in range(20)])
    (fired,) = [e for e in triggers(out) if e.trigger == "latency_high"]
    assert fired.value == pytest.approx(6000, rel=0.03) and fired.threshold == 5000 and "p95" in fired.detail


def test_memory_over_90_on_one_instance_names_it() -> None:
    c = core()
    events = [process(s, memory=95 if s >= 10 else 50, instance="a") for s in range(0, 40, 2)]
    events += [process(s + 1, memory=40, instance="b") for s in range(0, 40, 2)]
    out = triggers(feed(c, sorted(events, key=lambda e: e.time)))
    (fired,) = [e for e in out if e.trigger == "memory_high"]
    assert fired.instance == "a" and fired.value == 95 and fired.time == T0 + timedelta(seconds=12)


def test_a_single_memory_spike_does_not_fire() -> None:
    c = core()
    out = feed(c, [process(s, memory=99 if s == 10 else 50) for s in range(0, 30, 2)])
    assert not triggers(out)


@pytest.mark.parametrize("source", ["pool", "probe"])
def test_database_connection_lost_fires_and_clears(source: str) -> None:
    c = core()
    if source == "pool":
        events = [process(s, connected=not 10 <= s < 20) for s in range(30)]
    else:
        events = [probe(s, state="down" if 10 <= s < 20 else "up") for s in range(30)]
    out = [e for e in triggers(feed(c, events)) if e.trigger == "db_connection_lost"]
    assert [type(e).__name__ for e in out] == ["TriggerFired", "TriggerCleared"]
    assert out[0].time == T0 + timedelta(seconds=10)
    assert out[1].time == T0 + timedelta(seconds=25)  # connected again at 20, held 5 s


def test_budget_reports_both_bases_and_excludes_maintenance() -> None:
    T = T0.replace(hour=20)  # 03:00 Bangkok: outside business hours for the maintenance window
    policy = SlaPolicy.model_validate({"maintenance": [
        {"kind": "once", "start": (T + timedelta(seconds=100)).isoformat(), "end": (T + timedelta(seconds=200)).isoformat()}]})
    c = core(policy)
    events = [requests(s, errors=50 if 100 <= s < 200 else 0, t0=T) for s in range(300)]
    out = feed(c, events) + c.observe_probe(probe(301, state="down").model_copy(update={"time": T + timedelta(seconds=301)}))
    reports = [e for e in out if isinstance(e, BudgetReported)]
    last = [e for e in reports if e.basis == "requests"][-1]
    assert last.total == 200 * 100 and last.good == last.total  # the bad maintenance minutes are not counted
    assert last.availability == 1.0 and last.budget_remaining_minutes == pytest.approx(43.2)
    assert {b.window for b in last.burn_rates} >= {"5m", "1h", "6h", "3d"}
    assert not triggers([e for e in out if getattr(e, "trigger", "") == "budget_burn"])


def test_budget_burn_pages_on_a_fast_burn() -> None:
    c = core()
    out = feed(c, [requests(s, errors=5) for s in range(120)])  # 5 % errors = 50x burn
    budgets = [e for e in out if isinstance(e, BudgetReported)]
    assert budgets[-1].alerts == ["page:1h/5m", "page:6h/30m", "ticket:1d/2h", "ticket:3d/6h"]
    assert budgets[-1].budget_remaining_ratio == pytest.approx(1 - 50.0)
    (fired,) = [e for e in triggers(out) if e.trigger == "budget_burn"]
    assert fired.value == pytest.approx(50 / 6, rel=0.01)  # the worst page rule: 6h/30m at 6x


def test_old_buckets_expire_from_the_table() -> None:
    c = core()
    feed(c, [requests(s) for s in range(0, 600)])
    seconds = [s[0] for s in c.status["shop"]["seconds"]]  # the per-second window lives in the status value
    assert len(seconds) <= 8 and seconds[-1] == int(requests(599).window_start.timestamp())
    # the open minute stays in the status value; the closed ones are in the bucket table
    assert len([k for k in c.store.table if "|rm|" in k]) == 9 and len(c.series("shop", "rm")) == 10
    assert c.status["shop"]["open"]["rm"][0] == int(requests(599).window_start.timestamp()) // 60


def test_minute_buckets_expire_after_the_longest_minute_window() -> None:
    c = core()
    feed(c, [requests(m * 60) for m in range(400)])  # one report a minute for 400 minutes; the 6 h window needs 361
    minutes = [k for k in c.store.table if "|rm|" in k]
    assert len(minutes) == 362 and len(c.store.ids("shop", "rm")) == 362
    assert len([k for k in c.store.table if "|rh|" in k]) == 6 and c.status["shop"]["open"]["rh"][1][1] == 100 * 40


def test_late_and_out_of_order_reports_land_in_their_buckets() -> None:
    c = core()
    # 1 out of order; 4 arrives after minute 2 opened (late reports come from other instances: each
    # instance reports its windows in order, and one that goes back in time is a replay)
    feed(c, [requests(s, instance=i) for s, i in ((0, "a"), (2, "a"), (1, "b"), (3, "a"), (125, "a"), (4, "c"))])
    assert [s[0] - int(T0.timestamp()) for s in c.status["shop"]["seconds"]] == [125]  # older seconds expired
    assert [(m - int(T0.timestamp()) // 60, v[1]) for m, v in c.series("shop", "rm")] == [(0, 500), (2, 100)]
    count, errors, sketch = c.request_window("shop", now=int(T0.timestamp()) + 126, window=5)
    assert (count, errors, sketch.count) == (100, 0, 100)
