"""latency_high opens the breaker of the dependency that is actually slow, or none (issue 14: a 6 s handler
delay with a fast database forced the postgres breaker open; its 503s then killed features)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.recovery import slow_dependency
from services.recovery.health_watch import HealthWatch
from services.recovery.operator import Operator
from services.recovery.policy import load_policy
from services.recovery.repository import MemoryAuditStore
from services.recovery.service import RecoveryService
from services.recovery.slow_dependency import NO_SLOW_DEPENDENCY
from shared.events import (
    CircuitBreakerStateChanged, DependencyStats, OpenCircuitBreaker, ProcessStatsReported, RecoveryActionFailed,
    TriggerFired,
)
from shared.testing import InMemoryPublisher

CONFIG = Path(__file__).resolve().parents[3] / "config" / "recovery.yaml"


class Flags:
    def __init__(self) -> None:
        self.killed = 0

    async def kill_new(self, *, reason: str) -> list[str]:
        self.killed += 1
        return ["gamification"]


def dep(name: str, *, calls: int, slow: int, threshold_ms: float = 500) -> DependencyStats:
    return DependencyStats(name=name, window_seconds=30, calls=calls, slow_calls=slow,
                           slow_call_rate=100.0 * slow / calls if calls else 0.0, slow_threshold_ms=threshold_ms,
                           mean_ms=6000.0 if slow else 3.0, max_ms=6000.0 if slow else 5.0)


def stats(*deps: DependencyStats, at: datetime, instance: str = "shop-blue") -> ProcessStatsReported:
    return ProcessStatsReported(service="shop", instance=instance, pid=1, rss_bytes=1, memory_limit_bytes=2,
                                memory_percent=50, breakers={"postgres": "closed", "redis": "closed"},
                                dependencies=list(deps), time=at)


def setup() -> tuple[RecoveryService, InMemoryPublisher, HealthWatch, Flags]:
    pub, watch, flags = InMemoryPublisher(), HealthWatch(), Flags()
    svc = RecoveryService(policy=load_policy(CONFIG), publisher=pub, flags=flags, audit=MemoryAuditStore(),
                          operator=Operator(watch=watch))
    return svc, pub, watch, flags


def fired(trigger: str, episode: str = "ep1") -> TriggerFired:
    return TriggerFired(service="shop", trigger=trigger, episode_id=episode, value=6000, threshold=5000,
                        window_seconds=5)


async def test_the_slow_redis_breaker_is_opened_not_the_configured_postgres() -> None:
    svc, pub, watch, _ = setup()
    now = datetime.now(UTC)
    await watch.add(stats(dep("postgres", calls=40, slow=0), dep("redis", calls=40, slow=38), at=now))
    rec = await svc.recover_from_trigger(fired("latency_high"))
    [cmd] = pub.of_type(OpenCircuitBreaker)
    assert cmd.breaker == "redis" and cmd.duration_seconds == 60
    assert rec is not None and rec.status == "started" and "redis is the slow dependency on shop-blue: 95%" in rec.detail


async def test_a_slow_handler_with_fast_dependencies_opens_no_breaker_and_escalates(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slow_dependency, "WAIT_S", 0.2)
    svc, pub, watch, _ = setup()
    await watch.add(stats(dep("postgres", calls=40, slow=0), dep("redis", calls=40, slow=1), at=datetime.now(UTC)))
    rec = await svc.recover_from_trigger(fired("latency_high"))
    assert pub.of_type(OpenCircuitBreaker) == []
    [failed] = pub.of_type(RecoveryActionFailed)  # the notifier escalates on it
    assert rec is not None and rec.status == "failed" and failed.detail.startswith(NO_SLOW_DEPENDENCY)


async def test_a_report_that_arrives_after_the_trigger_is_waited_for() -> None:
    import asyncio

    svc, pub, watch, _ = setup()
    now = datetime.now(UTC)
    await watch.add(stats(dep("postgres", calls=2, slow=0), at=now - timedelta(seconds=3)))

    async def later() -> None:
        await asyncio.sleep(0.1)
        await watch.add(stats(dep("postgres", calls=12, slow=12), at=datetime.now(UTC)))
    task = asyncio.create_task(later())
    await svc.recover_from_trigger(fired("latency_high"))
    await task
    assert [c.breaker for c in pub.of_type(OpenCircuitBreaker)] == ["postgres"]


async def test_errors_from_a_breaker_recovery_forced_open_do_not_kill_features() -> None:
    svc, _, watch, flags = setup()
    now = datetime.now(UTC)
    await watch.add(CircuitBreakerStateChanged(service="shop", instance="shop-blue", breaker="postgres",
                                               from_state="closed", to_state="forced_open", shared=True, time=now))
    rec = await svc.recover_from_trigger(fired("error_rate_high", episode="ep2"))
    assert flags.killed == 0
    assert rec is not None and rec.status == "skipped" and "breaker postgres that recovery forced open" in rec.detail

    # the breaker is back (half-open, closed): errors now are the app's own, features go
    await watch.add(CircuitBreakerStateChanged(service="shop", instance="shop-blue", breaker="postgres",
                                               from_state="forced_open", to_state="half_open",
                                               time=now + timedelta(seconds=1)))
    rec = await svc.recover_from_trigger(fired("error_rate_high", episode="ep3"))
    assert rec is not None and rec.status == "started" and flags.killed == 1


async def test_an_app_that_reports_no_dependency_stats_gets_the_policy_breaker() -> None:
    svc, pub, watch, _ = setup()
    await watch.add(stats(at=datetime.now(UTC)))  # an SDK without dependency stats (the Node demo's)
    rec = await svc.recover_from_trigger(fired("latency_high"))
    assert [c.breaker for c in pub.of_type(OpenCircuitBreaker)] == ["postgres"]
    assert rec is not None and "no dependency stats from shop: breaker postgres from the policy" in rec.detail


async def test_the_next_report_after_the_trigger_settles_it_without_waiting_longer() -> None:
    import asyncio
    import time

    svc, pub, watch, _ = setup()
    await watch.add(stats(dep("postgres", calls=5, slow=0), at=datetime.now(UTC) - timedelta(seconds=1)))

    async def later() -> None:
        await asyncio.sleep(0.1)
        await watch.add(stats(dep("postgres", calls=30, slow=0), at=datetime.now(UTC)))
    task = asyncio.create_task(later())
    t0 = time.monotonic()
    rec = await svc.recover_from_trigger(fired("latency_high"))
    await task
    assert time.monotonic() - t0 < 2.0  # not the whole WAIT_S
    assert rec is not None and rec.status == "failed" and pub.of_type(OpenCircuitBreaker) == []
