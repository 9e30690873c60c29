"""One root cause, one incident (issue 14): error_rate_high that follows latency_high on the same service
joins its incident as a timeline entry; the incident resolves with the last of its episodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notifier.service import incident_id_for
from shared.events import IncidentOpened, IncidentResolved, RecoveryActionFailed, TriggerCleared, TriggerFired
from tests.unit.notifier.conftest import Env


def fired(trigger: str, episode: str, *, service: str = "shop", at: datetime | None = None) -> TriggerFired:
    return TriggerFired(service=service, trigger=trigger, episode_id=episode, value=6000, threshold=5000,
                        window_seconds=5, time=at or datetime.now(UTC))


def cleared(trigger: str, episode: str) -> TriggerCleared:
    return TriggerCleared(service="shop", trigger=trigger, episode_id=episode, value=1, threshold=5000)


async def test_error_rate_after_latency_joins_its_incident_and_both_must_clear(env: Env) -> None:
    lat = await env.svc.open_incident(fired("latency_high", "lat1"))
    assert lat is not None
    env.clock.advance(20)
    assert await env.svc.open_incident(fired("error_rate_high", "err1", at=env.start + timedelta(seconds=20))) is None
    assert [e.incident_id for e in env.pub.of_type(IncidentOpened)] == [incident_id_for("shop", "lat1")]
    inc = await env.store.get(lat.incident_id)
    assert inc is not None
    assert inc.timeline[-1].text.startswith("joined: shop: ") and "(episode err1)" in inc.timeline[-1].text

    # recovery's failure on the joined episode reaches the one incident
    await env.svc.escalate_on_failure(RecoveryActionFailed(
        service="shop", action_id="a2", action="disable_new_features", trigger="error_rate_high",
        episode_id="err1", detail="flags API down"))
    inc = await env.store.get(lat.incident_id)
    assert inc is not None and any("disable_new_features failed" in e.text for e in inc.timeline)

    assert await env.svc.resolve_on_clear(cleared("latency_high", "lat1")) is None  # errors still firing
    inc = await env.store.get(lat.incident_id)
    assert inc is not None and inc.status != "resolved" and env.pub.of_type(IncidentResolved) == []
    assert "still firing: err1" in inc.timeline[-1].text
    done = await env.svc.resolve_on_clear(cleared("error_rate_high", "err1"))
    assert done is not None and done.status == "resolved"
    assert len(env.pub.of_type(IncidentResolved)) == 1


async def test_unrelated_or_late_or_other_service_triggers_open_their_own(env: Env) -> None:
    await env.svc.open_incident(fired("latency_high", "lat1"))
    await env.svc.open_incident(fired("memory_high", "mem1"))  # not a consequence of slowness
    await env.svc.open_incident(fired("error_rate_high", "err0", service="other"))
    env.clock.advance(11 * 60)  # past the grouping window
    await env.svc.open_incident(fired("error_rate_high", "err1", at=env.start + timedelta(minutes=11)))
    assert len(env.pub.of_type(IncidentOpened)) == 4


async def test_an_incident_nothing_joined_resolves_on_its_own_clear(env: Env) -> None:
    await env.svc.open_incident(fired("latency_high", "lat1"))
    done = await env.svc.resolve_on_clear(cleared("latency_high", "lat1"))
    assert done is not None and done.status == "resolved"
