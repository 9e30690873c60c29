"""Maintenance windows without a network: the checks a new window must pass, the business-hours refusal,
phases, and the notifier holding the notices of a service in maintenance (the in-memory stores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.notifier.maintenance import (
    MaintenanceCreate, MaintenanceWindow, business_hours_overlap, business_hours_warning, phase, problems,
)
from services.notifier.maintenance_service import Conflict, InBusinessHours, MaintenanceService
from services.notifier.maintenance_store import MemoryMaintenanceStore
from services.notifier.policy import BusinessHours, MaintenancePolicy
from services.notifier.service import incident_id_for
from shared.events import MaintenanceWindowCancelled, MaintenanceWindowScheduled, TriggerFired
from tests.unit.notifier.conftest import Env

BKK = ZoneInfo("Asia/Bangkok")
# a Monday 20:00 in Bangkok: outside business hours (mon-fri 09:00-18:00 Asia/Bangkok, the default)
MONDAY_EVENING = datetime(2026, 11, 30, 20, 0, tzinfo=BKK)


def req(start: datetime | None, end: datetime, components: tuple[str, ...] = ("demo",)) -> MaintenanceCreate:
    return MaintenanceCreate(title="db upgrade", components=list(components), starts_at=start, ends_at=end)


@pytest.mark.parametrize(("start", "end", "needle"), [
    (timedelta(hours=2), timedelta(hours=1), "must be after starts_at"),
    (timedelta(hours=-3), timedelta(hours=-1), "ends_at (2026-11-30T19:00:00+07:00) is in the past"),
    (timedelta(hours=-1), timedelta(hours=1), "starts_at (2026-11-30T19:00:00+07:00) is in the past"),
    (timedelta(hours=1), timedelta(days=9), "lasts 8.95833 days; the longest allowed is 7 days"),
])
def test_a_bad_window_is_explained(start: timedelta, end: timedelta, needle: str) -> None:
    found = problems(req(MONDAY_EVENING + start, MONDAY_EVENING + end), now=MONDAY_EVENING,
                     policy=MaintenancePolicy())
    assert any(needle in p for p in found), found


def test_a_good_window_and_one_starting_now_pass() -> None:
    policy = MaintenancePolicy()
    assert problems(req(MONDAY_EVENING + timedelta(hours=1), MONDAY_EVENING + timedelta(hours=3)),
                    now=MONDAY_EVENING, policy=policy) == []
    assert problems(req(None, MONDAY_EVENING + timedelta(hours=1)), now=MONDAY_EVENING, policy=policy) == []
    # a start a minute ago (a slow client) still counts as now
    assert problems(req(MONDAY_EVENING - timedelta(minutes=1), MONDAY_EVENING + timedelta(hours=1)),
                    now=MONDAY_EVENING, policy=policy) == []


def test_the_request_model_refuses_naive_times_bad_names_and_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        MaintenanceCreate(title="x", components=["demo"], ends_at=datetime(2030, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not a component name: 'no spaces'"):
        req(None, MONDAY_EVENING, components=("no spaces",))
    with pytest.raises(ValidationError, match="at least 1 item"):
        MaintenanceCreate(title="x", components=[], ends_at=MONDAY_EVENING)
    with pytest.raises(ValidationError, match="Extra inputs"):
        MaintenanceCreate.model_validate({"title": "x", "components": ["a"], "ends_at": "2030-01-01T00:00Z", "x": 1})


def test_business_hours_overlap_in_their_time_zone() -> None:
    hours = BusinessHours()
    # Monday 20:00-23:00 Bangkok: outside; Monday 17:00-19:00: one hour inside; Saturday noon: outside
    assert business_hours_overlap(MONDAY_EVENING, MONDAY_EVENING + timedelta(hours=3), hours) is None
    lo, hi = business_hours_overlap(MONDAY_EVENING - timedelta(hours=3), MONDAY_EVENING - timedelta(hours=1), hours) or (
        None, None)
    assert (lo, hi) == (datetime(2026, 11, 30, 17, tzinfo=BKK), datetime(2026, 11, 30, 18, tzinfo=BKK))
    saturday = datetime(2026, 12, 5, 12, tzinfo=BKK)
    assert business_hours_overlap(saturday, saturday + timedelta(hours=4), hours) is None
    # overnight into Tuesday morning 09:30 (given in UTC): inside
    late = MONDAY_EVENING.astimezone(UTC)
    assert business_hours_overlap(late, late + timedelta(hours=13.5), hours) is not None
    warning = business_hours_warning(MONDAY_EVENING - timedelta(hours=3), MONDAY_EVENING, hours)
    assert warning is not None and "mon-fri 09:00-18:00 Asia/Bangkok" in warning and "Mon 2026-11-30 17:00-18:00" in warning
    utc = business_hours_warning(late, late + timedelta(hours=13.5), hours)  # asked in UTC, told in local time
    assert utc is not None and "Tue 2026-12-01 09:00-09:30 local time" in utc


def test_phases() -> None:
    w = MaintenanceWindow(window_id="mw-1", title="t", components=["demo"], starts_at=MONDAY_EVENING,
                          ends_at=MONDAY_EVENING + timedelta(hours=1), created_by="admin", created_at=MONDAY_EVENING)
    assert [phase(w, MONDAY_EVENING + timedelta(minutes=m)) for m in (-1, 0, 59, 60)] == [
        "upcoming", "in_progress", "in_progress", "past"]
    called_off = w.model_copy(update={"cancelled_at": MONDAY_EVENING - timedelta(minutes=5), "cancelled_by": "a"})
    assert phase(called_off, MONDAY_EVENING + timedelta(minutes=5)) == "cancelled"
    assert not called_off.covers("demo", MONDAY_EVENING + timedelta(minutes=5))


async def test_a_window_in_business_hours_is_refused_naming_the_overlap_unless_forced() -> None:
    store = MemoryMaintenanceStore()
    svc = MaintenanceService(store=store, policy=MaintenancePolicy(), now=lambda: MONDAY_EVENING - timedelta(hours=4))
    inside = req(MONDAY_EVENING - timedelta(hours=3), MONDAY_EVENING - timedelta(hours=2))
    with pytest.raises(InBusinessHours, match=r"refused: .*inside business hours \(mon-fri 09:00-18:00 Asia/Bangkok\): "
                                              r"Mon 2026-11-30 17:00-18:00 local time.*\?force=true"):
        await svc.schedule(inside, actor="admin:alice")
    assert store.rows == {} and store.notices == [] and store.events == []  # nothing written
    window, warnings = await svc.schedule(inside, actor="admin:alice", force=True)
    assert window.forced and window.created_by == "admin:alice"
    assert len(warnings) == 1 and warnings[0].startswith("forced by admin:alice: the window falls inside business hours")
    assert [n.type for n in store.notices] == ["maintenance.scheduled"]
    [event] = store.events
    assert isinstance(event, MaintenanceWindowScheduled) and event.forced and event.by == "admin:alice"
    assert (event.window_id, event.components, event.starts_at) == (window.window_id, ["demo"], window.starts_at)
    outside, _ = await svc.schedule(req(MONDAY_EVENING, MONDAY_EVENING + timedelta(hours=1)), actor="admin")
    assert not outside.forced and not store.events[-1].forced  # type: ignore[attr-defined]


async def test_cancel_calls_off_an_upcoming_window_and_ends_one_in_progress() -> None:
    clock = [MONDAY_EVENING]
    store = MemoryMaintenanceStore()
    svc = MaintenanceService(store=store, policy=MaintenancePolicy(), now=lambda: clock[0])
    later, _ = await svc.schedule(req(MONDAY_EVENING + timedelta(hours=1), MONDAY_EVENING + timedelta(hours=2)),
                                  actor="admin")
    now_, _ = await svc.schedule(req(None, MONDAY_EVENING + timedelta(hours=2)), actor="admin")
    clock[0] += timedelta(minutes=10)
    assert (await svc.cancel(later.window_id, actor="admin:bob")).cancelled_by == "admin:bob"
    ended = await svc.cancel(now_.window_id, actor="admin:bob")
    assert ended.ends_at == clock[0]
    with pytest.raises(Conflict, match="already cancelled"):
        await svc.cancel(later.window_id, actor="admin")
    listing = await svc.listing(past=timedelta(days=1))
    assert [w.window_id for w in listing["cancelled"]] == [later.window_id]
    assert [w.window_id for w in listing["past"]] == [now_.window_id]
    await svc.tick()
    assert [n.type for n in store.notices] == ["maintenance.scheduled", "maintenance.scheduled",
                                               "maintenance.cancelled", "maintenance.started", "maintenance.finished"]
    called_off, cut_short = store.events[2:]
    assert isinstance(called_off, MaintenanceWindowCancelled) and called_off.covers_until == later.starts_at
    assert isinstance(cut_short, MaintenanceWindowCancelled) and cut_short.covers_until == clock[0]
    assert cut_short.by == "admin:bob" and cut_short.window_id == now_.window_id


def fired(service: str, episode: str) -> TriggerFired:
    return TriggerFired(service=service, trigger="db_connection_lost", episode_id=episode, value=1, threshold=0,
                        window_seconds=30)


async def test_an_incident_in_maintenance_is_recorded_but_pages_nobody(env: Env) -> None:
    store = MemoryMaintenanceStore()
    env.svc.silences = store
    maint = MaintenanceService(store=store, policy=MaintenancePolicy(), now=env.svc.now)
    await maint.schedule(req(None, env.svc.now() + timedelta(minutes=30)), actor="admin", force=True)  # any hour
    inc = await env.svc.open_incident(fired("demo", "ep1"))
    other = await env.svc.open_incident(fired("shop", "ep1"))
    assert inc is not None and other is not None
    stored = await env.store.get(incident_id_for("demo", "ep1"))
    assert stored is not None and stored.during_maintenance and "held: maintenance 'db upgrade'" in stored.timeline[-1].text
    assert [m for _, _, m in env.sender.sent if "demo" in m] == []
    assert any("shop" in m for _, _, m in env.sender.sent)  # another service still notifies
    env.clock.advance(6 * 60)  # past level 1's 5 min: no escalation while in maintenance
    assert [i.service for i in await env.svc.escalate_overdue()] == ["shop"]
    env.clock.advance(30 * 60)  # the window is over: it escalates and pages now
    assert "demo" in [i.service for i in await env.svc.escalate_overdue()]
    await env.svc.dispatch()
    assert any(ch == "oncall_page" and "demo" in m for ch, _, m in env.sender.sent)


def test_the_status_page_puts_a_component_in_maintenance_and_lists_windows() -> None:
    from services.notifier.status_page import build_status, render_feed, render_html

    now = MONDAY_EVENING
    def window(n: int, start: timedelta, hours: float, comps: list[str], **kw: object) -> MaintenanceWindow:
        return MaintenanceWindow(window_id=f"mw-{n}", title=f"work {n}", components=comps, starts_at=now + start,
                                 ends_at=now + start + timedelta(hours=hours), created_by="admin:alice",
                                 created_at=now - timedelta(days=1), **kw)
    system = {"services": {"demo": {"checks": {"demo": {"state": "down", "status": "fail", "critical": True}}},
                           "flags": {"checks": {"flags": {"state": "up", "status": "pass", "critical": True}}}}}
    windows = [window(1, timedelta(minutes=-10), 1, ["demo", "worker"]), window(2, timedelta(days=1), 1, ["flags"]),
               window(3, timedelta(days=2), 1, ["flags"], cancelled_at=now, cancelled_by="admin"),
               window(4, timedelta(hours=-3), 1, ["flags"])]
    status = build_status([], now=now, system=system, maintenance=windows)
    comps = {c["name"]: c for c in status["components"]}
    # checks down, but the planned work explains them; a component only the window names appears too
    assert comps["demo"]["state"] == comps["worker"]["state"] == "under_maintenance"
    assert comps["demo"]["detail"].startswith("Maintenance until 2026-11-30 13:50 UTC: work 1")
    assert comps["flags"]["state"] == "operational" and status["overall"] == "under_maintenance"
    assert [w["window_id"] for w in status["maintenance"]["in_progress"]] == ["mw-1"]
    assert [w["window_id"] for w in status["maintenance"]["upcoming"]] == ["mw-2"]  # not the cancelled, not the past
    assert "created_by" not in status["maintenance"]["upcoming"][0]
    html = render_html(status)
    assert 'id="maintenance-mw-1"' in html and "Scheduled maintenance" in html and "admin:alice" not in html
    feed = render_feed(status, self_url="http://s/status/feed.atom", page_url="http://s/status")
    assert "tag:safeguard.local,2026:maintenance/mw-2" in feed
