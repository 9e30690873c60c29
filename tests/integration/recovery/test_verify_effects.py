"""Verify the effect, not only the clear (issue 14), on real Kafka (a private topic prefix): an app built from
the real SDK pieces (command listener, breaker registry, guarded Postgres pool, stats reporter) obeys the
commands recovery sends; recovery's health watch sees the effect on health.checks and publishes
RecoveryActionVerified, and the verifier gives up (None) when the effect does not show."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sdk.breakers import BreakerConfig, BreakerRegistry, GuardedPool
from sdk.commands import CommandHandlers, CommandListener
from sdk.stats import ProcessStatsReporter
from services.recovery.health_watch import HealthWatch
from services.recovery.models import ActionRecord
from services.recovery.operator import Operator
from services.recovery.policy import ActionRule, load_policy
from services.recovery.repository import MemoryAuditStore
from services.recovery.service import RecoveryService
from services.recovery.verify import EffectChecks
from shared.events import Event, RecoveryActionVerified, TriggerFired
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings
from shared.testing import InMemoryPublisher
from shared.topics import create_topics

CONFIG = Path(__file__).resolve().parents[3] / "config" / "recovery.yaml"


class Recorder(InMemoryPublisher):
    """Kafka for the commands (the app must get them), memory for what the test reads back."""

    def __init__(self, kafka: KafkaPublisher) -> None:
        super().__init__()
        self.kafka = kafka

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        await super().publish(event, topic=topic)
        await self.kafka.publish(event)


@dataclass
class World:
    svc: RecoveryService
    pub: Recorder
    db: GuardedPool
    watch: HealthWatch
    service: str


@pytest.fixture
async def world(kafka_settings: KafkaSettings, postgres_dsn: str, unique: str) -> AsyncIterator[World]:
    await create_topics(kafka_settings, partitions=1)
    service, instance = f"shop-{unique}", f"shop-{unique}-blue"
    async with AsyncExitStack() as stack:
        kafka = await stack.enter_async_context(KafkaPublisher.start(kafka_settings, source="/tests"))
        registry = BreakerRegistry(service=service, instance=instance)
        db = GuardedPool(dsn=postgres_dsn, breaker=registry.breaker("postgres", BreakerConfig.for_database()),
                         max_size=2)
        await stack.enter_async_context(db)
        await stack.enter_async_context(registry.running(kafka))
        stats = ProcessStatsReporter(service=service, instance=instance, interval_s=0.2, pools=lambda: [db.stats()],
                                     breakers=registry.states)
        await stack.enter_async_context(stats.running(kafka))
        listener = await stack.enter_async_context(CommandListener(handlers=CommandHandlers(
            service=service, instance=instance, pools={"postgres": db}, breakers=registry), kafka=kafka_settings)
            .running())
        watch = await stack.enter_async_context(HealthWatch().reading(kafka_settings))
        await listener.consumer.wait_assigned()
        await asyncio.wait_for(watch.ready.wait(), 30)
        await asyncio.sleep(1.0)  # 'latest' is resolved once partitions are assigned
        pub = Recorder(kafka)
        operator = Operator(verifier=EffectChecks(watch=watch, flags=None, timeout_s=20), watch=watch)
        svc = RecoveryService(policy=load_policy(CONFIG), publisher=pub, flags=None,  # type: ignore[arg-type]
                              audit=MemoryAuditStore(), operator=operator)
        yield World(svc=svc, pub=pub, db=db, watch=watch, service=service)
        await operator.aclose()


def fired(w: World, trigger: str) -> TriggerFired:
    return TriggerFired(service=w.service, trigger=trigger, episode_id=f"{trigger}-1", value=1, threshold=0,
                        window_seconds=5)


async def test_the_breaker_action_is_verified_when_the_breaker_is_open(world: World) -> None:
    rec = await world.svc.recover_from_trigger(fired(world, "latency_high"))
    await world.svc.operator.settled()
    [verified] = world.pub.of_type(RecoveryActionVerified)
    assert rec is not None and verified.action_id == rec.action_id
    assert verified.effect.startswith("breaker postgres open on ")
    print(f"\nopen_circuit_breaker: action -> verified effect {verified.seconds:.2f}s")


async def test_the_pool_action_is_verified_when_the_pool_is_connected_again(world: World) -> None:
    world.db.held_down = True  # the database connection is lost: the pool stays closed until restarted
    await world.db.close()
    await asyncio.sleep(0.5)
    assert not world.db.stats().connected
    rec = await world.svc.recover_from_trigger(fired(world, "db_connection_lost"))
    await world.svc.operator.settled()
    [verified] = world.pub.of_type(RecoveryActionVerified)
    assert rec is not None and world.db.restarts == 1 and world.db.stats().connected
    assert verified.effect.startswith("pool postgres connected again on ")
    assert await world.db.fetchval("SELECT 1") == 1  # queries flow
    print(f"\nrestart_connection_pool: action -> verified effect {verified.seconds:.2f}s")


async def test_a_restart_through_the_sdk_is_verified_by_a_new_pid(world: World) -> None:
    before = {i: p for (s, i), p in world.watch.pids.items() if s == world.service}
    assert before, "the app has reported its PID"
    [(instance, pid)] = before.items()
    rec = ActionRecord(action_id="r1", service=world.service, action="restart_process", instance=instance,
                       started_at=datetime.now(UTC))
    checks = EffectChecks(watch=world.watch, flags=None, timeout_s=0.5)
    assert await checks.effect(rec, rule=ActionRule(action="restart_process"), since=rec.started_at, killed=[],
                               pids={instance: pid}) is None  # same process still reporting: no effect
    stats = ProcessStatsReporter(service=world.service, instance=instance)  # the new process (another PID)
    report = stats.report().model_copy(update={"pid": pid + 1})
    await world.pub.kafka.publish(report)
    checks = EffectChecks(watch=world.watch, flags=None, timeout_s=10)
    effect = await checks.effect(rec, rule=ActionRule(action="restart_process"), since=rec.started_at, killed=[],
                                 pids={instance: pid})
    assert effect == f"new process reporting: {instance}: pid {pid} -> {pid + 1}"


async def test_no_effect_no_verification(world: World) -> None:
    rec = ActionRecord(action_id="b1", service=world.service, action="open_circuit_breaker",
                       started_at=datetime.now(UTC))
    checks = EffectChecks(watch=world.watch, flags=None, timeout_s=0.5)
    assert await checks.effect(rec, rule=ActionRule(action="open_circuit_breaker", breaker="redis"),
                               since=rec.started_at, killed=[], pids={}) is None
