"""Finding 5 of issue 10: recovery remembers an action only after it was written and sent.

A failed publish leaves no attempt, no cooldown and no pending verification behind, so the
consumer's retry acts fully; the state lives in the store, so a second service object on the
same store (a restart, another instance) sees it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.recovery.repository import MemoryAuditStore
from services.recovery.service import RecoveryService
from shared.events import (
    Event, OpenCircuitBreaker, RecoveryActionFailed, RecoveryActionStarted, RecoveryActionSucceeded, RestartProcess,
)
from shared.testing import FakeClock, InMemoryPublisher
from tests.unit.recovery.test_service import CONFIG, FakeFlags, cleared, fired
from services.recovery.policy import load_policy


class BrokerDown(ConnectionError):
    """What the publisher raises while Kafka is unreachable."""


class FlakyPublisher(InMemoryPublisher):
    """Refuses events of the listed types until `heal()`."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: tuple[type[Event], ...] = ()

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        if isinstance(event, self.refuse):
            raise BrokerDown(f"broker refused {type(event).__name__}")
        await super().publish(event, topic=topic)


START = datetime.now(UTC)


def service(pub: InMemoryPublisher, store: MemoryAuditStore, clock: FakeClock) -> RecoveryService:
    """One instance (or one life of the process); every instance reads the same wall clock."""
    return RecoveryService(policy=load_policy(CONFIG), publisher=pub, flags=FakeFlags(), audit=store,
                           now=lambda: START + timedelta(seconds=clock() - FakeClock().now), busy_poll_s=0.01)


@pytest.fixture
def parts() -> tuple[FlakyPublisher, MemoryAuditStore, FakeClock]:
    return FlakyPublisher(), MemoryAuditStore(), FakeClock()


@pytest.mark.parametrize("refused", [RecoveryActionStarted, OpenCircuitBreaker])
async def test_a_failed_publish_leaves_nothing_and_the_retry_acts(parts, refused: type[Event]) -> None:
    pub, store, clock = parts
    svc = service(pub, store, clock)
    pub.refuse = (refused,)
    with pytest.raises(BrokerDown):
        await svc.recover_from_trigger(fired("latency_high"))
    assert [r for r in store.records.values() if r.status != "skipped"] == []
    pub.refuse = ()
    clock.advance(1)
    rec = await svc.recover_from_trigger(fired("latency_high"))  # the consumer's retry
    assert rec is not None and rec.status == "started" and rec.attempt == 1
    assert len(pub.of_type(OpenCircuitBreaker)) == 1
    assert [r.status for r in store.records.values()] == ["started"]
    clock.advance(10)
    [done] = await svc.verify_cleared(cleared("latency_high"))
    assert done.status == "succeeded" and len(pub.of_type(RecoveryActionSucceeded)) == 1


async def test_a_failed_result_publish_is_sent_later(parts) -> None:
    pub, store, clock = parts
    svc = service(pub, store, clock)
    await svc.recover_from_trigger(fired("memory_high", instance="demo-blue"))
    pub.refuse = (RecoveryActionFailed,)
    clock.advance(301)
    with pytest.raises(BrokerDown):
        await svc.check_timeouts()
    pub.refuse = ()
    await svc.check_timeouts()
    assert len(pub.of_type(RecoveryActionFailed)) == 1
    await svc.check_timeouts()
    assert len(pub.of_type(RecoveryActionFailed)) == 1


async def test_a_restarted_service_resumes_the_verification(parts) -> None:
    pub, store, clock = parts
    first = await service(pub, store, clock).recover_from_trigger(fired("memory_high", instance="demo-blue"))
    assert first is not None
    clock.advance(100)
    restarted = service(pub, store, clock)
    assert [e.episode_id for e in await restarted.active()] == ["ep1"]
    assert await restarted.check_timeouts() == []  # 100 s of 300: not yet, and not restarted from zero
    clock.advance(201)
    [failed] = await restarted.check_timeouts()
    assert failed.action_id == first.action_id and failed.status == "failed"
    assert await restarted.recover_from_trigger(fired("memory_high", instance="demo-blue")) is None  # redelivery
    assert len(pub.of_type(RestartProcess)) == 1


async def test_two_instances_act_once_per_trigger(parts) -> None:
    import asyncio

    pub, store, clock = parts
    a, b = service(pub, store, clock), service(pub, store, clock)
    results = await asyncio.gather(a.recover_from_trigger(fired("latency_high")),
                                   b.recover_from_trigger(fired("latency_high")))
    assert sorted(r is None for r in results) == [False, True]
    assert len(pub.of_type(OpenCircuitBreaker)) == 1 and len(store.records) == 1
    [done] = await b.verify_cleared(cleared("latency_high"))
    assert await a.verify_cleared(cleared("latency_high")) == []
    assert done.status == "succeeded" and len(pub.of_type(RecoveryActionSucceeded)) == 1


async def test_cooldown_is_shared_by_instances(parts) -> None:
    pub, store, clock = parts
    a, b = service(pub, store, clock), service(pub, store, clock)
    await a.recover_from_trigger(fired("latency_high", "ep1"))
    clock.advance(30)
    skipped = await b.recover_from_trigger(fired("latency_high", "ep2"))
    assert skipped is not None and skipped.status == "skipped" and "cooldown" in skipped.detail


async def test_a_clear_during_an_action_in_flight_on_another_instance_counts(parts) -> None:
    pub, store, clock = parts
    a, b = service(pub, store, clock), service(pub, store, clock)

    class ClearsMidAction(FakeFlags):
        async def kill_new(self, *, reason: str) -> list[str]:
            assert await b.verify_cleared(cleared()) == []  # b sees nothing to finish yet: a holds the claim
            return await super().kill_new(reason=reason)

    a.flags = ClearsMidAction()
    rec = await a.recover_from_trigger(fired())
    assert rec is not None and rec.status == "succeeded" and "trigger cleared" in rec.detail
    assert len(pub.of_type(RecoveryActionSucceeded)) == 1
    clock.advance(400)
    assert await a.check_timeouts() == [] and pub.of_type(RecoveryActionFailed) == []
