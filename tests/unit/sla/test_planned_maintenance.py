"""Windows scheduled through the notifier's API, as the SLA core sees them: per service, excluded from the
budgets like the static windows of the policy, gone once cancelled (no Kafka: the agents are in
tests/integration/sla/test_sla_maintenance.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.sla.maintenance import spans
from services.sla.planned import covers, plan
from services.sla.policy import SlaPolicy
from services.sla.service import SlaCore
from shared.events import BudgetReported, Event, MaintenanceWindowCancelled, MaintenanceWindowScheduled
from shared.testing import FakeClock
from tests.unit.sla.helpers import T0, requests

T = T0.replace(hour=20)


def last_requests_report(out: list[Event], service: str) -> BudgetReported:
    return [e for e in out if isinstance(e, BudgetReported) and e.basis == "requests" and e.service == service][-1]


def test_a_planned_window_keeps_its_services_failures_out_of_the_budget_and_a_cancelled_one_does_not() -> None:
    c = SlaCore(policy=SlaPolicy(), buckets={}, status={}, clock=FakeClock((T + timedelta(days=1)).timestamp()))
    start, end = (T + timedelta(seconds=100)).timestamp(), (T + timedelta(seconds=200)).timestamp()
    c.plan_maintenance(service="shop", window_id="mw-1", start=start, end=end)
    out: list[Event] = []
    for s in range(300):
        for svc in ("shop", "cart"):
            out += c.observe_requests(requests(s, errors=50 if 100 <= s < 200 else 0, t0=T, service=svc))
    shop, cart = last_requests_report(out, "shop"), last_requests_report(out, "cart")
    assert shop.time == cart.time and shop.good == shop.total  # its window's 100 seconds: not counted
    assert cart.total - shop.total == 100 * 100 and cart.total - cart.good == 100 * 50  # no window: counted

    c.plan_maintenance(service="shop", window_id="mw-1", start=start, end=start)  # called off
    assert "shop" not in c.maintenance
    out = [e for s in range(400, 520) for e in c.observe_requests(requests(s, errors=50, t0=T, service="shop"))]
    assert last_requests_report(out, "shop").good < last_requests_report(out, "shop").total


def test_plan_replaces_a_window_drops_a_called_off_one_and_forgets_old_ones() -> None:
    windows = plan(None, window_id="a", start=10, end=20, forget_before=0)
    windows = plan(windows, window_id="b", start=30, end=40, forget_before=0)
    assert covers(windows, 10) and not covers(windows, 20) and covers(windows, 35)
    windows = plan(windows, window_id="b", start=30, end=32, forget_before=0)  # ended early
    assert not covers(windows, 35) and covers(windows, 31)
    assert plan(windows, window_id="a", start=10, end=10, forget_before=0) == {"b": [30, 32]}
    assert plan(windows, window_id="c", start=50, end=60, forget_before=25) == {"b": [30, 32], "c": [50, 60]}
    assert plan(windows, window_id="c", start=50, end=60, forget_before=33) == {"c": [50, 60]}


def test_the_events_map_to_one_span_per_covered_service() -> None:
    start = datetime(2026, 12, 6, 19, tzinfo=UTC)
    scheduled = MaintenanceWindowScheduled(window_id="mw-9", components=["demo", "shop"], starts_at=start,
                                           ends_at=start + timedelta(hours=2), by="admin:alice", title="upgrade")
    assert [(svc, s["end"] - s["start"]) for svc, s in spans(scheduled)] == [("demo", 7200.0), ("shop", 7200.0)]
    early = MaintenanceWindowCancelled(window_id="mw-9", components=["demo"], starts_at=start,
                                       ends_at=start + timedelta(hours=1), by="admin:bob",
                                       cancelled_at=start + timedelta(hours=1))
    assert [s["end"] - s["start"] for _, s in spans(early)] == [3600.0]
    off = early.model_copy(update={"ends_at": start + timedelta(hours=2), "cancelled_at": start - timedelta(days=1)})
    assert [s["end"] - s["start"] for _, s in spans(off)] == [0.0]  # called off: covers nothing
