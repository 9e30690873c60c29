from __future__ import annotations

import asyncio
from datetime import timedelta

from sdk.breakers import BreakerRegistry
from sdk.commands import CommandHandlers
from sdk.circuit import BreakerState
from shared.events import CircuitBreakerStateChanged, OpenCircuitBreaker, RestartConnectionPool, RestartProcess, utcnow
from shared.testing import InMemoryPublisher


class Pool:
    def __init__(self) -> None:
        self.restarts = 0

    async def restart(self) -> None:
        self.restarts += 1


async def test_restart_pool_only_for_this_service_and_instance() -> None:
    pool = Pool()
    h = CommandHandlers(service="demo", instance="blue", pools={"postgres": pool})
    await h.restart_connection_pool(RestartConnectionPool(service="other"))
    await h.restart_connection_pool(RestartConnectionPool(service="demo", instance="green"))
    assert pool.restarts == 0
    await h.restart_connection_pool(RestartConnectionPool(service="demo"))
    await h.restart_connection_pool(RestartConnectionPool(service="demo", instance="blue"))
    assert pool.restarts == 2


async def test_stale_commands_are_ignored() -> None:
    pool = Pool()
    h = CommandHandlers(service="demo", instance="blue", pools={"postgres": pool}, max_age_s=60)
    await h.restart_connection_pool(RestartConnectionPool(service="demo", time=utcnow() - timedelta(minutes=5)))
    assert pool.restarts == 0


async def test_open_breaker_command_forces_it_open_and_publishes() -> None:
    registry = BreakerRegistry(service="demo", instance="blue")
    cb = registry.breaker("postgres")
    h = CommandHandlers(service="demo", instance="blue", breakers=registry)
    pub = InMemoryPublisher()
    async with registry.running(pub):
        await h.open_circuit_breaker(OpenCircuitBreaker(service="demo", breaker="postgres", duration_seconds=30,
                                                        reason="latency_high"))
        await asyncio.sleep(0.01)
    assert cb.state is BreakerState.FORCED_OPEN
    [event] = pub.of_type(CircuitBreakerStateChanged)
    assert event.to_state == "forced_open" and "latency_high" in event.reason  # type: ignore[attr-defined]
    await h.open_circuit_breaker(OpenCircuitBreaker(service="demo", breaker="nope"))
    assert h.done == ["open_circuit_breaker:postgres"]


async def test_restart_process_exits_after_a_delay() -> None:
    exited = asyncio.Event()
    h = CommandHandlers(service="demo", instance="blue", exit_process=exited.set, exit_delay_s=0.01)
    await h.restart_process(RestartProcess(service="demo"))
    assert not exited.is_set()  # not synchronously: the offset is committed first
    await asyncio.wait_for(exited.wait(), 1)
