from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notifier.service import incident_id_for
from shared.events import (
    IncidentAcknowledged, IncidentEscalated, IncidentMitigated, IncidentOpened, IncidentResolved,
    NotificationDelivered, NotificationFailed, RecoveryActionFailed, RecoveryActionStarted, RecoveryActionSucceeded,
    TriggerCleared, TriggerFired,
)
from tests.unit.notifier.conftest import Env


def fired(episode: str = "ep1", trigger: str = "error_rate_high", **kw: object) -> TriggerFired:
    return TriggerFired(service="demo", trigger=trigger, episode_id=episode, value=0.08, threshold=0.05,
                        window_seconds=5, **kw)


def action(cls: type, episode: str = "ep1", **kw: object):  # type: ignore[no-untyped-def]
    return cls(service="demo", action_id="a1", action="disable_new_features", trigger="error_rate_high",
               episode_id=episode, **kw)


def cleared(episode: str = "ep1") -> TriggerCleared:
    return TriggerCleared(service="demo", trigger="error_rate_high", episode_id=episode, value=0.01, threshold=0.05)


async def test_fire_opens_one_incident_at_level_1_and_notifies(env: Env) -> None:
    inc = await env.svc.open_incident(fired())
    assert inc is not None and inc.level == 1 and inc.severity == "major" and inc.status == "open"
    [opened] = env.pub.of_type(IncidentOpened)
    assert opened.incident_id == inc.incident_id == incident_id_for("demo", "ep1") and opened.episode_id == "ep1"
    channels = {c for c, _, _ in env.sender.sent}
    assert channels == {"status_page", "stakeholder", "user"}  # major: users are told too
    assert len(env.pub.of_type(NotificationDelivered)) == len(env.sender.sent)
    assert env.store.incidents[inc.incident_id].status == "open"


async def test_redelivered_trigger_opens_no_second_incident(env: Env) -> None:
    first = fired()
    assert await env.svc.open_incident(first) is not None
    assert await env.svc.open_incident(first) is None
    assert await env.svc.open_incident(fired()) is None  # same episode, new event id
    assert len(env.pub.of_type(IncidentOpened)) == 1
    await env.svc.open_incident(fired("ep2"))
    assert len(env.pub.of_type(IncidentOpened)) == 2


async def test_stale_and_budget_triggers_open_nothing(env: Env) -> None:
    old = fired(time=datetime.now(UTC) - timedelta(hours=2))
    assert await env.svc.open_incident(old) is None
    assert await env.svc.open_incident(fired(trigger="budget_burn")) is None
    assert env.pub.published == [] and env.store.incidents == {}


async def test_minor_incident_does_not_notify_users(env: Env) -> None:
    await env.svc.open_incident(fired(trigger="memory_high"))
    assert "user" not in {c for c, _, _ in env.sender.sent}


async def test_recovery_success_mitigates_and_stops_escalation(env: Env) -> None:
    inc = await env.svc.open_incident(fired())
    await env.svc.record_action(action(RecoveryActionStarted))
    await env.svc.mitigate(action(RecoveryActionSucceeded, detail="killed gamification"))
    [m] = env.pub.of_type(IncidentMitigated)
    assert m.incident_id == inc.incident_id and "killed gamification" in m.note
    env.clock.advance(3600)
    assert await env.svc.escalate_overdue() == []
    inc = await env.store.get(inc.incident_id)
    assert [e.kind for e in inc.timeline] == ["opened", "action", "mitigated"]


async def test_recovery_failure_escalates_to_on_call_developer(env: Env) -> None:
    await env.svc.open_incident(fired())
    env.sender.sent.clear()
    inc = await env.svc.escalate_on_failure(action(RecoveryActionFailed, detail="not cleared in 300s"))
    assert inc is not None and inc.level == 2
    [esc] = env.pub.of_type(IncidentEscalated)
    assert esc.level == 2 and esc.target == "on-call developer"
    assert ("oncall_page", "oncall-developer") in {(c, r) for c, r, _ in env.sender.sent}
    assert await env.svc.escalate_on_failure(action(RecoveryActionFailed)) is None  # already past L1


async def test_escalates_l2_l3_l4_on_the_clock(env: Env) -> None:
    inc = await env.svc.open_incident(fired())
    env.clock.advance(299)
    assert await env.svc.escalate_overdue() == []
    env.clock.advance(1)
    assert [i.level for i in await env.svc.escalate_overdue()] == [2]
    env.clock.advance(899)
    assert await env.svc.escalate_overdue() == []
    env.clock.advance(1)
    assert [i.level for i in await env.svc.escalate_overdue()] == [3]
    env.clock.advance(3600)
    assert [i.level for i in await env.svc.escalate_overdue()] == [4]
    env.clock.advance(10_000)
    assert await env.svc.escalate_overdue() == []  # L4 is the top
    assert [(e.level, e.target) for e in env.pub.of_type(IncidentEscalated)] == [
        (2, "on-call developer"), (3, "system administrator"), (4, "infrastructure team")]
    assert inc is not None and (await env.store.get(inc.incident_id)).level == 4
    pages = [r for c, r, _ in env.sender.sent if c == "oncall_page"]
    # the L2 page repeated once (5 min, the shipped repeat_every) at the one tick within L2's 15 min
    assert pages == ["oncall-developer", "oncall-developer", "sysadmin", "infrastructure-team"]


async def test_acknowledge_stops_escalation(env: Env) -> None:
    inc = await env.svc.open_incident(fired())
    env.clock.advance(300)
    await env.svc.escalate_overdue()
    await env.svc.acknowledge(inc.incident_id, actor="admin:alice")
    [ack] = env.pub.of_type(IncidentAcknowledged)
    assert ack.by == "admin:alice"
    env.clock.advance(100_000)
    assert await env.svc.escalate_overdue() == []
    inc = await env.store.get(inc.incident_id)
    assert inc.level == 2 and inc.timeline[-1].actor == "admin:alice"


async def test_clear_resolves_with_duration_and_report(env: Env) -> None:
    inc = await env.svc.open_incident(fired())
    await env.svc.escalate_on_failure(action(RecoveryActionFailed, detail="not cleared"))
    env.clock.advance(420)
    await env.svc.resolve_on_clear(cleared())
    [res] = env.pub.of_type(IncidentResolved)
    assert res.incident_id == inc.incident_id and res.duration_seconds == 420 and res.by == "sla"
    assert env.store.incidents[inc.incident_id].status == "resolved"
    report = env.store.reports[inc.incident_id]
    assert report.startswith("# Post-incident report") and "escalated: level 2: on-call developer" in report
    assert "Time to resolution: 7m 00s" in report and "manual-intervention target met" in report
    assert await env.svc.resolve_on_clear(cleared()) is None  # redelivered: nothing more
    assert await env.svc.open_incident(fired()) is None  # the episode's trigger replayed: not reopened


async def test_failed_delivery_is_published_and_the_rest_continue(env: Env) -> None:
    env.sender.fail_channels = {"stakeholder"}
    await env.svc.open_incident(fired())
    [failed] = env.pub.of_type(NotificationFailed)
    assert failed.channel == "stakeholder" and "503" in failed.error
    assert {d.channel for d in env.pub.of_type(NotificationDelivered)} == {"status_page", "user"}


async def test_restore_reloads_open_incidents_and_their_timers(env: Env) -> None:
    inc = await env.svc.open_incident(fired())
    from services.notifier.service import NotifierService
    svc2 = NotifierService(policy=env.svc.policy, publisher=env.pub, store=env.store, sender=env.sender,
                           now=env.svc.now)
    assert await svc2.restore() == 1
    env.clock.advance(300)
    assert [i.incident_id for i in await svc2.escalate_overdue()] == [inc.incident_id]


async def test_a_hung_recovery_service_pages_on_call_at_once(env: Env) -> None:
    """`unresponsive` (the health service's watchdog) for recovery: nothing at level 1 acts on it (recovery cannot
    restart itself), so it pages level 2 as it opens; minor (no user is told), the health checks named as the
    detector."""
    first_bad = datetime.now(UTC) - timedelta(seconds=75)
    event = TriggerFired(service="recovery", trigger="unresponsive", episode_id="recovery/unresponsive/1", value=3,
                         threshold=3, window_seconds=90, first_bad_at=first_bad, instance="recovery",
                         detail="recovery: timed out after 5 s")
    inc = await env.svc.open_incident(event)
    assert inc is not None and inc.level == 2 and inc.severity == "minor"
    assert inc.title == "recovery: not answering its health checks (3 failed in a row)"
    [escalated] = env.pub.of_type(IncidentEscalated)
    assert escalated.level == 2
    pages = [(r, m) for c, r, m in env.sender.sent if c == "oncall_page"]
    assert pages and all("[L2 on-call developer]" in m and "no automatic recovery answers unresponsive" in m
                         for _, m in pages)
    assert "user" not in {c for c, _, _ in env.sender.sent}
    detected = next(e for e in inc.timeline if e.kind == "detected")
    assert detected.actor == "health" and detected.text.startswith("first failed health check")
    resolved = await env.svc.resolve_on_clear(TriggerCleared(service="recovery", trigger="unresponsive",
                                                             episode_id="recovery/unresponsive/1", value=0,
                                                             threshold=3))
    assert resolved is not None and resolved.status == "resolved" and resolved.resolved_by == "health"


async def test_a_hung_sla_processor_is_left_to_recovery_at_level_1(env: Env) -> None:
    """Recovery restarts a hung SLA processor (config/recovery.yaml), so its incident opens at level 1 like any
    other: no page unless that fails (RecoveryActionFailed) or the level-1 target passes."""
    event = TriggerFired(service="sla", trigger="unresponsive", episode_id="sla/unresponsive/2", value=3, threshold=3,
                         window_seconds=90, instance="sla", detail="sla: timed out after 5 s")
    inc = await env.svc.open_incident(event)
    assert inc is not None and inc.level == 1
    assert not env.pub.of_type(IncidentEscalated)
    assert "oncall_page" not in {c for c, _, _ in env.sender.sent}
    env.clock.advance(300)
    assert [i.incident_id for i in await env.svc.escalate_overdue()] == [inc.incident_id]
