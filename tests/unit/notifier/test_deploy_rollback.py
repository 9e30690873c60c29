"""A deploy's rollback is recorded in one incident with the trigger that caused it (issue 11)."""

from __future__ import annotations

from services.notifier.service import incident_id_for
from shared.events import DeploymentRolledBack, IncidentMitigated, IncidentOpened, TriggerCleared, TriggerFired
from tests.unit.notifier.conftest import Env


def rolled_back(**kw: object) -> DeploymentRolledBack:
    base: dict[str, object] = {"service": "demo", "deploy_id": "d1", "version": "v2", "from_version": "v1",
                               "colour": "blue", "from_colour": "green", "reason": "canary error rate 38% > 5%",
                               "switch_ms": 1.2, "flags_killed": ["streaks"]}
    return DeploymentRolledBack(**(base | kw))


def fired(episode: str = "ep1") -> TriggerFired:
    return TriggerFired(service="demo", trigger="error_rate_high", episode_id=episode, value=0.08, threshold=0.05,
                        window_seconds=5)


async def test_a_rollback_joins_the_open_incident_of_its_trigger_and_mitigates_it(env: Env) -> None:
    older = await env.svc.open_incident(fired("before-the-deploy"))
    started = env.svc.now()
    env.clock.advance(10)
    inc = await env.svc.open_incident(fired())
    assert inc is not None and older is not None
    joined = await env.svc.record_rollback(rolled_back(started_at=started))
    assert joined is not None and joined.incident_id == inc.incident_id
    stored = await env.store.get(inc.incident_id)
    assert stored is not None and stored.status == "mitigated"
    assert any("deploy v2 rolled back automatically" in e.text and "streaks" in e.text for e in stored.timeline)
    assert len(env.pub.of_type(IncidentOpened)) == 2 and len(env.pub.of_type(IncidentMitigated)) == 1
    # a rollback by hand of the same deploy, later, is recorded in the same incident
    again = await env.svc.record_rollback(rolled_back(started_at=started, automatic=False, actor="admin:ops",
                                                      reason="undo v2", database_to="0001_items"))
    assert again is not None and again.incident_id == inc.incident_id


async def test_a_rollback_does_not_join_an_incident_older_than_its_deploy(env: Env) -> None:
    older = await env.svc.open_incident(fired("yesterday"))
    env.clock.advance(60)
    inc = await env.svc.record_rollback(rolled_back(started_at=env.svc.now()))
    assert inc is not None and older is not None and inc.incident_id != older.incident_id


async def test_a_rollback_alone_opens_its_own_incident_and_a_later_trigger_joins_it(env: Env) -> None:
    inc = await env.svc.record_rollback(rolled_back())
    assert inc is not None and inc.incident_id == incident_id_for("demo", "deploy-d1")
    assert env.store.incidents[inc.incident_id].status == "mitigated"
    assert await env.svc.open_incident(fired("ep9")) is None  # the same root cause: no second incident
    assert len(env.pub.of_type(IncidentOpened)) == 1
    stored = await env.store.get(inc.incident_id)
    assert stored is not None and any("(episode ep9)" in e.text for e in stored.timeline)
    await env.svc.resolve_on_clear(TriggerCleared(service="demo", trigger="error_rate_high", episode_id="ep9",
                                                  value=0.0, threshold=0.05))
    assert env.store.incidents[inc.incident_id].status == "resolved"


async def test_a_second_rollback_of_the_same_deploy_opens_nothing_new(env: Env) -> None:
    first = await env.svc.record_rollback(rolled_back())
    assert first is not None
    await env.svc.resolve(first.incident_id, actor="ops")
    again = await env.svc.record_rollback(rolled_back(automatic=False, reason="database too"))
    assert again is not None and again.incident_id == first.incident_id and again.status == "resolved"
    assert len(env.pub.of_type(IncidentOpened)) == 1


async def test_an_unhealthy_rollback_leaves_the_incident_open_and_escalating(env: Env) -> None:
    inc = await env.svc.record_rollback(rolled_back(healthy=False))
    assert inc is not None
    stored = env.store.incidents[inc.incident_id]
    assert stored.status == "open" and stored.escalate_at is not None
