"""Issue 14: an incident showed `mitigated_at: null` although recovery's action worked, because the action's
success is only known at the clear, which resolves the incident first. A verified effect
(RecoveryActionVerified) now marks it mitigated when the effect shows; the clear then resolves it."""

from __future__ import annotations

from services.notifier.handlers import build_handlers
from shared.events import IncidentMitigated, RecoveryActionStarted, RecoveryActionVerified, TriggerCleared, TriggerFired
from tests.unit.notifier.conftest import Env


async def test_a_verified_effect_marks_the_incident_mitigated_before_the_clear_resolves_it(env: Env) -> None:
    handlers = build_handlers(env.svc)
    fired = TriggerFired(service="demo", trigger="latency_high", episode_id="ep1", value=6.2, threshold=5,
                         window_seconds=5)
    await handlers[TriggerFired](fired)
    common = {"service": "demo", "action_id": "a1", "action": "open_circuit_breaker", "trigger": "latency_high",
              "episode_id": "ep1"}
    await handlers[RecoveryActionStarted](RecoveryActionStarted(**common))
    env.clock.advance(4)
    await handlers[RecoveryActionVerified](RecoveryActionVerified(**common, effect="breaker postgres open on demo-blue",
                                                                  seconds=0.4))
    [inc] = env.store.incidents.values()
    assert inc.status == "mitigated" and inc.mitigated_at is not None
    [m] = env.pub.of_type(IncidentMitigated)
    assert "verified after 0.4s: breaker postgres open on demo-blue" in m.note
    assert (inc.mitigated_at - inc.opened_at).total_seconds() == 4  # time to mitigate counts from the effect

    env.clock.advance(30)
    await handlers[TriggerCleared](TriggerCleared(service="demo", trigger="latency_high", episode_id="ep1",
                                                  value=0.2, threshold=5))
    inc = await env.store.get(inc.incident_id)
    assert inc is not None and inc.status == "resolved" and inc.mitigated_at is not None
    assert [e.kind for e in inc.timeline][:3] == ["opened", "action", "mitigated"]
