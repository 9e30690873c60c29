"""Recovery acts like an operator (issue 14): the configured executor restarts instances one at a time,
a second action on a target in flight is refused, dry-run only records what it would do, and a seen effect
is published as RecoveryActionVerified."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from services.recovery.executors import ExecutorError, Restarted, Target
from services.recovery.models import ActionRecord, RunRequest
from services.recovery.operator import Operator
from services.recovery.policy import ActionRule, load_policy
from services.recovery.repository import MemoryAuditStore
from services.recovery.service import RecoveryService
from shared.events import (
    RecoveryActionFailed, RecoveryActionStarted, RecoveryActionVerified, RestartProcess, TriggerFired,
)
from shared.testing import InMemoryPublisher

CONFIG = Path(__file__).resolve().parents[3] / "config" / "recovery.yaml"
TARGETS = {"demo": [Target(instance="demo-blue", program="safeguard:demo-blue"),
                    Target(instance="demo-green", program="safeguard:demo-green")]}


class Flags:
    async def kill_new(self, *, reason: str) -> list[str]:
        return ["gamification"]


class SlowExecutor:
    """Records when each restart begins and ends: they must never overlap."""

    name = "fake"

    def __init__(self, *, fail: str | None = None) -> None:
        self.log: list[str] = []
        self.fail = fail

    def describe(self, target: Target) -> str:
        return f"restart {target.program}"

    async def restart(self, target: Target) -> Restarted:
        self.log.append(f"begin {target.instance}")
        await asyncio.sleep(0.05)
        if target.instance == self.fail:
            raise ExecutorError(f"{target.instance} did not answer")
        self.log.append(f"end {target.instance}")
        return Restarted(instance=target.instance, before="pid 1", after="pid 2", answered_s=0.05)


class SeenEffect:
    def __init__(self, effect: str | None) -> None:
        self.effect_text = effect
        self.asked: list[tuple[str, list[str]]] = []

    async def effect(self, rec: ActionRecord, *, rule: ActionRule, since: datetime, killed: list[str],
                     pids: dict[str, int]) -> str | None:
        self.asked.append((rec.action, killed))
        return self.effect_text


def service(operator: Operator) -> tuple[RecoveryService, InMemoryPublisher, MemoryAuditStore]:
    pub, audit = InMemoryPublisher(), MemoryAuditStore()
    return RecoveryService(policy=load_policy(CONFIG), publisher=pub, flags=Flags(), audit=audit,
                           operator=operator), pub, audit


def fired(trigger: str, *, instance: str | None = None, episode: str = "ep1") -> TriggerFired:
    return TriggerFired(service="demo", trigger=trigger, episode_id=episode, value=95, threshold=90,
                        window_seconds=5, instance=instance)


async def test_the_executor_restarts_every_instance_one_after_another_instead_of_the_sdk() -> None:
    executor = SlowExecutor()
    svc, pub, _ = service(Operator(executor=executor, targets=TARGETS))
    rec = await svc.recover_from_trigger(fired("memory_high"))
    assert rec is not None and rec.status == "started"
    assert executor.log == ["begin demo-blue", "end demo-blue", "begin demo-green", "end demo-green"]
    assert pub.of_type(RestartProcess) == []  # the instance is not asked to shoot itself
    assert "demo-blue: pid 1 -> pid 2" in rec.detail and "demo-green" in rec.detail
    await svc.operator.settled()
    [verified] = pub.of_type(RecoveryActionVerified)
    assert verified.action == "restart_process" and "new process answering" in verified.effect


async def test_an_instance_that_does_not_come_back_stops_the_round_and_fails_the_action() -> None:
    executor = SlowExecutor(fail="demo-blue")
    svc, pub, _ = service(Operator(executor=executor, targets=TARGETS))
    rec = await svc.recover_from_trigger(fired("memory_high"))
    assert rec is not None and rec.status == "failed" and "did not answer" in rec.detail
    assert executor.log == ["begin demo-blue"]  # green keeps serving
    assert pub.of_type(RecoveryActionFailed) and not pub.of_type(RecoveryActionVerified)


async def test_a_service_without_targets_falls_back_to_the_sdk_clean_exit() -> None:
    svc, pub, _ = service(Operator(executor=SlowExecutor(), targets={}))
    await svc.recover_from_trigger(fired("memory_high", instance="demo-blue"))
    [cmd] = pub.of_type(RestartProcess)
    assert cmd.instance == "demo-blue"


async def test_dry_run_records_what_it_would_do_and_acts_on_nothing() -> None:
    executor = SlowExecutor()
    svc, pub, audit = service(Operator(executor=executor, targets=TARGETS, dry_run=True))
    rec = await svc.recover_from_trigger(fired("memory_high", instance="demo-green"))
    assert rec is not None and rec.status == "skipped"
    assert rec.detail == "dry run: would demo-green: restart safeguard:demo-green"
    assert executor.log == [] and pub.published == []
    assert audit.records[rec.action_id].detail.startswith("dry run: would")
    rec = await svc.recover_from_trigger(fired("latency_high", episode="ep2"))
    assert rec is not None and rec.detail == "dry run: would open breaker postgres of demo for 60s"


async def test_no_second_action_on_a_target_while_one_is_in_flight() -> None:
    executor = SlowExecutor()
    svc, pub, _ = service(Operator(executor=executor, targets=TARGETS))
    first = asyncio.create_task(svc.recover_from_trigger(fired("memory_high")))
    await asyncio.sleep(0.02)  # the first restart is under way
    [second] = await svc.run(RunRequest(service="demo", action="restart_process", instance="demo-green"),
                             actor="alice")
    assert second.status == "skipped" and second.detail.startswith("in flight: restart_process")
    assert (await first).status == "started"
    assert executor.log.count("begin demo-green") == 1
    [again] = await svc.run(RunRequest(service="demo", action="restart_process", instance="demo-green"),
                            actor="alice")
    assert again.status != "skipped"  # nothing in flight any more


async def test_a_seen_effect_is_published_with_the_time_it_took_and_none_without_one() -> None:
    seen = SeenEffect("OFREP serves gamification off (reason DISABLED)")
    svc, pub, _ = service(Operator(verifier=seen))
    rec = await svc.recover_from_trigger(fired("error_rate_high"))
    await svc.operator.settled()
    [verified] = pub.of_type(RecoveryActionVerified)
    assert rec is not None and verified.action_id == rec.action_id and verified.episode_id == "ep1"
    assert verified.effect.startswith("OFREP serves gamification off") and verified.seconds >= 0
    assert seen.asked == [("disable_new_features", ["gamification"])]
    assert [type(e) for _, e in pub.published][0] is RecoveryActionStarted

    nothing = SeenEffect(None)
    svc, pub, _ = service(Operator(verifier=nothing))
    await svc.recover_from_trigger(fired("latency_high"))
    await svc.operator.settled()
    assert nothing.asked == [("open_circuit_breaker", [])] and pub.of_type(RecoveryActionVerified) == []
