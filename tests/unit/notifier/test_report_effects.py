"""The post-incident report shows each action with its verified effect, and the features recovery turned off
(they stay off until a person turns them on), issue 14. A verified effect arriving after the incident is
already mitigated is still written to its timeline, once (a republished event adds nothing)."""

from __future__ import annotations

from services.notifier.handlers import build_handlers
from services.notifier.report import kept_off_note
from shared.events import (
    RecoveryActionStarted, RecoveryActionSucceeded, RecoveryActionVerified, TriggerCleared, TriggerFired,
)
from tests.unit.notifier.conftest import Env

KILL = {"service": "demo", "action_id": "a1", "action": "disable_new_features", "trigger": "error_rate_high",
        "episode_id": "ep1"}
BREAKER = KILL | {"action_id": "a2", "action": "open_circuit_breaker"}


def test_the_killed_flags_come_from_the_actions_detail() -> None:
    assert kept_off_note(action="disable_new_features", detail="killed flags: gamification, beta; sent X") == (
        "turned off by recovery, kept off until a person turns them on: gamification, beta")
    assert kept_off_note(action="disable_new_features", detail="killed flags: none on; sent X") is None
    assert kept_off_note(action="open_circuit_breaker", detail="killed flags: a") is None


async def test_the_report_pairs_actions_with_effects_and_lists_the_features_kept_off(env: Env) -> None:
    handlers = build_handlers(env.svc)
    await handlers[TriggerFired](TriggerFired(service="demo", trigger="error_rate_high", episode_id="ep1",
                                              value=0.3, threshold=0.05, window_seconds=5))
    await handlers[RecoveryActionStarted](RecoveryActionStarted(**KILL))
    env.clock.advance(2)
    await handlers[RecoveryActionVerified](RecoveryActionVerified(
        **KILL | {"detail": "killed flags: gamification"}, effect="OFREP serves gamification off (reason DISABLED)",
        seconds=0.04))
    later = RecoveryActionVerified(**BREAKER, effect="breaker postgres open on demo-blue", seconds=0.3)
    await handlers[RecoveryActionVerified](later)
    await handlers[RecoveryActionVerified](later.model_copy(update={"id": None}))  # republished by the tick
    await handlers[RecoveryActionSucceeded](RecoveryActionSucceeded(
        **KILL | {"detail": "killed flags: gamification; sent DisableNewFeatures; trigger cleared"}))
    [inc] = [await env.store.get(i) for i in env.store.incidents]
    assert inc is not None
    texts = [e.text for e in inc.timeline]
    assert texts.count("effect verified: open_circuit_breaker verified after 0.3s: breaker postgres open on "
                       "demo-blue") == 1
    assert texts.count("turned off by recovery, kept off until a person turns them on: gamification") == 1

    env.clock.advance(30)
    await handlers[TriggerCleared](TriggerCleared(service="demo", trigger="error_rate_high", episode_id="ep1",
                                                  value=0.01, threshold=0.05))
    report = await env.store.report(inc.incident_id)
    assert report is not None
    actions = report.split("## Actions and their verified effects")[1].split("##")[0]
    assert "effect: disable_new_features verified after 0.0s: OFREP serves gamification off" in actions
    assert "breaker postgres open on demo-blue" in actions and "kept off" not in actions
    kept = report.split("## Features recovery turned off")[1].split("##")[0]
    assert "- `gamification`: turned off by recovery at " in kept and "stays off until a person turns it on" in kept


async def test_a_report_without_kills_or_effects_says_so(env: Env) -> None:
    handlers = build_handlers(env.svc)
    await handlers[TriggerFired](TriggerFired(service="demo", trigger="latency_high", episode_id="ep2",
                                              value=6.0, threshold=5, window_seconds=5))
    await handlers[TriggerCleared](TriggerCleared(service="demo", trigger="latency_high", episode_id="ep2",
                                                  value=1.0, threshold=5))
    [inc] = env.store.incidents.values()
    report = await env.store.report(inc.incident_id) or ""
    assert "- no effect of an action was verified" in report
    assert report.split("## Features recovery turned off")[1].split("##")[0].strip() == "- none"
