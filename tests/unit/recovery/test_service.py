from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.recovery.models import RunRequest
from services.recovery.policy import PolicyError, RecoveryPolicy, load_policy
from services.recovery.repository import MemoryAuditStore
from services.recovery.service import RecoveryService
from shared.events import (
    DisableNewFeatures, OpenCircuitBreaker, RecoveryActionFailed, RecoveryActionStarted, RecoveryActionSucceeded,
    RestartConnectionPool, RestartProcess, TriggerCleared, TriggerFired,
)
from shared.testing import FakeClock, InMemoryPublisher

CONFIG = Path(__file__).resolve().parents[3] / "config" / "recovery.yaml"


class FakeFlags:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail = False

    async def kill_new(self, *, reason: str) -> list[str]:
        self.calls.append(reason)
        if self.fail:
            raise RuntimeError("flags API answered 503")
        return ["gamification"]


def fired(trigger: str = "error_rate_high", episode: str = "ep1", *, service: str = "demo",
          instance: str | None = None) -> TriggerFired:
    return TriggerFired(service=service, trigger=trigger, episode_id=episode, value=0.07, threshold=0.05,
                        window_seconds=5, instance=instance)


def cleared(trigger: str = "error_rate_high", episode: str = "ep1") -> TriggerCleared:
    return TriggerCleared(service="demo", trigger=trigger, episode_id=episode, value=0.01, threshold=0.05)


@pytest.fixture
def env() -> tuple[RecoveryService, InMemoryPublisher, FakeFlags, MemoryAuditStore, FakeClock]:
    pub, flags, audit, clock = InMemoryPublisher(), FakeFlags(), MemoryAuditStore(), FakeClock()
    start, t0 = datetime.now(UTC), clock()
    svc = RecoveryService(policy=load_policy(CONFIG), publisher=pub, flags=flags, audit=audit,
                          now=lambda: start + timedelta(seconds=clock() - t0))
    return svc, pub, flags, audit, clock


async def test_error_rate_kills_new_flags_and_publishes_disable(env) -> None:
    svc, pub, flags, audit, _ = env
    rec = await svc.recover_from_trigger(fired())
    assert rec is not None and rec.status == "started" and rec.action == "disable_new_features"
    assert len(flags.calls) == 1 and "error_rate_high" in flags.calls[0]
    [cmd] = pub.of_type(DisableNewFeatures)
    assert cmd.service == "demo" and cmd.episode_id == "ep1"
    assert [type(e) for _, e in pub.published] == [RecoveryActionStarted, DisableNewFeatures]
    assert "gamification" in audit.records[rec.action_id].detail


@pytest.mark.parametrize(("trigger", "cls"), [("latency_high", OpenCircuitBreaker), ("memory_high", RestartProcess),
                                              ("db_connection_lost", RestartConnectionPool)])
async def test_each_trigger_sends_its_command(env, trigger: str, cls: type) -> None:
    svc, pub, flags, _, _ = env
    await svc.recover_from_trigger(fired(trigger, instance="demo-blue"))
    [cmd] = pub.of_type(cls)
    assert cmd.episode_id == "ep1" and cmd.service == "demo"
    assert flags.calls == []
    if cls is OpenCircuitBreaker:
        assert cmd.breaker == "postgres" and cmd.duration_seconds == 60
    if cls is RestartProcess:
        assert cmd.instance == "demo-blue"


async def test_budget_burn_takes_no_action(env) -> None:
    svc, pub, _, audit, _ = env
    assert await svc.recover_from_trigger(fired("budget_burn")) is None
    assert pub.published == [] and audit.records == {}


async def test_a_hung_sla_processor_is_restarted_and_a_hung_recovery_is_left_to_the_page(env) -> None:
    """`unresponsive` (the health service's watchdog): the policy restarts the SLA processor only (`services:
    [sla]`); recovery cannot restart itself, so for it there is no action (the notifier pages at once)."""
    svc, pub, _, audit, _ = env
    rec = await svc.recover_from_trigger(fired("unresponsive", "sla/unresponsive/1", service="sla", instance="sla"))
    assert rec is not None and rec.action == "restart_process" and rec.service == "sla"
    [cmd] = pub.of_type(RestartProcess)
    assert cmd.service == "sla" and cmd.instance == "sla"
    pub.published.clear()
    assert await svc.recover_from_trigger(fired("unresponsive", "recovery/unresponsive/1", service="recovery",
                                                instance="recovery")) is None
    assert pub.published == [] and [r.service for r in audit.records.values()] == ["sla"]
    assert await svc.run(RunRequest(service="recovery"), actor="ops") == []


def test_a_rule_kept_to_some_services() -> None:
    policy = RecoveryPolicy.model_validate(
        {"triggers": {"memory_high": {"action": "restart_process", "services": ["demo"]}}})
    assert policy.rule("memory_high", "demo").action == "restart_process"
    assert policy.rule("memory_high", "shop").action == "none"
    assert policy.rule("memory_high").action == "restart_process"  # no service named: the rule as written
    assert RecoveryPolicy().rule("memory_high", "shop").action == "restart_process"  # no `services`: every one


async def test_clear_within_window_succeeds(env) -> None:
    svc, pub, _, audit, clock = env
    rec = await svc.recover_from_trigger(fired())
    clock.advance(60)
    [done] = await svc.verify_cleared(cleared())
    assert done.status == "succeeded" and done.finished_at is not None
    [ok] = pub.of_type(RecoveryActionSucceeded)
    assert ok.action_id == rec.action_id and ok.episode_id == "ep1"
    clock.advance(600)
    assert await svc.check_timeouts() == []
    assert audit.records[rec.action_id].status == "succeeded"


async def test_no_clear_within_window_fails(env) -> None:
    svc, pub, _, audit, clock = env
    rec = await svc.recover_from_trigger(fired("memory_high"))
    clock.advance(299)
    assert await svc.check_timeouts() == []
    clock.advance(2)
    [failed] = await svc.check_timeouts()
    assert failed.status == "failed" and "not cleared within 300s" in failed.detail
    assert pub.of_type(RecoveryActionFailed)[0].action_id == rec.action_id
    assert await svc.verify_cleared(cleared("memory_high")) == []  # too late: stays failed
    assert audit.records[rec.action_id].status == "failed"


async def test_flags_api_failure_fails_the_action_at_once(env) -> None:
    svc, pub, flags, audit, _ = env
    flags.fail = True
    rec = await svc.recover_from_trigger(fired())
    assert rec is not None and rec.status == "failed" and "503" in rec.detail
    assert pub.of_type(DisableNewFeatures) == [] and len(pub.of_type(RecoveryActionFailed)) == 1
    assert await audit.pending(now=datetime.now(UTC) + timedelta(days=1)) == []


async def test_cooldown_per_service_and_trigger(env) -> None:
    svc, pub, _, _, clock = env
    await svc.recover_from_trigger(fired("latency_high", "ep1"))
    await svc.verify_cleared(cleared("latency_high", "ep1"))
    clock.advance(30)
    skipped = await svc.recover_from_trigger(fired("latency_high", "ep2"))
    assert skipped is not None and skipped.status == "skipped" and "cooldown" in skipped.detail
    other = await svc.recover_from_trigger(fired("memory_high", "ep3"))
    assert other is not None and other.status == "started"
    clock.advance(100)
    again = await svc.recover_from_trigger(fired("latency_high", "ep4"))
    assert again is not None and again.status == "started"
    assert len(pub.of_type(OpenCircuitBreaker)) == 2


async def test_max_attempts_per_episode(env) -> None:
    svc, pub, _, _, clock = env
    await svc.recover_from_trigger(fired("db_connection_lost"))
    second = await svc.run(RunRequest(service="demo"), actor="admin:ops")
    third = await svc.run(RunRequest(service="demo"), actor="admin:ops")
    assert [r.status for r in second] == ["started"] and second[0].attempt == 2 and second[0].actor == "admin:ops"
    assert [r.status for r in third] == ["skipped"] and "max attempts" in third[0].detail
    assert len(pub.of_type(RestartConnectionPool)) == 2


async def test_operator_named_action_without_trigger_succeeds_at_once(env) -> None:
    svc, pub, flags, _, _ = env
    [rec] = await svc.run(RunRequest(service="demo", action="disable_new_features"), actor="admin:cli")
    assert rec.status == "succeeded" and rec.trigger is None and rec.episode_id.startswith("manual-")
    assert len(flags.calls) == 1 and len(pub.of_type(RecoveryActionSucceeded)) == 1


async def test_operator_run_without_active_trigger_does_nothing(env) -> None:
    svc, pub, _, _, _ = env
    assert await svc.run(RunRequest(service="demo"), actor="admin") == []
    assert pub.published == []


@pytest.mark.parametrize(("text", "field"), [
    ("verify_window: -1", "verify_window"),
    ("max_attempts: 0", "max_attempts"),
    ("triggers: {latency_high: {action: reboot}}", "triggers.latency_high.action"),
    ("triggers: {latency_high: {action: open_circuit_breaker, duration: soon}}", "triggers.latency_high.duration"),
    ("cooldwn: 5m", "cooldwn"),
])
def test_policy_errors_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "recovery.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=f"field '{field}'"):
        load_policy(path)


def test_policy_file_is_valid_and_follows_the_runbook() -> None:
    policy = load_policy(CONFIG)
    assert policy.verify_window == 300 and policy == RecoveryPolicy()
    assert policy.rule("error_rate_high").action == "disable_new_features"


def test_unreadable_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("a: [")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(tmp_path / "bad.yaml")


async def test_stale_trigger_is_ignored(env) -> None:
    from datetime import UTC, datetime, timedelta

    svc, pub, _, audit, _ = env
    old = fired("memory_high").model_copy(update={"time": datetime.now(UTC) - timedelta(minutes=10)})
    assert await svc.recover_from_trigger(old) is None
    assert pub.published == [] and audit.records == {}
