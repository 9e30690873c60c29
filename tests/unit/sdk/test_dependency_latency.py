"""Per-dependency call latency: the SDK says which dependency is slow (issue 14: the wrong breaker opened)."""

from __future__ import annotations

import asyncio

import pytest

from sdk.breakers import BreakerConfig, BreakerRegistry, CallNotPermittedError
from sdk.stats import ProcessStatsReporter


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _registry(clock: Clock) -> BreakerRegistry:
    reg = BreakerRegistry(service="shop", instance="shop-1", clock=clock, latency_window_s=30)
    reg.breaker("postgres", BreakerConfig.for_database(minimum_number_of_calls=1000))
    reg.breaker("redis", BreakerConfig.for_cache())
    return reg


async def test_slow_database_calls_show_on_postgres_only() -> None:
    clock = Clock()
    reg = _registry(clock)

    async def slow() -> int:
        clock.t += 2.0  # 2 s in the database, over the 500 ms slow threshold
        return 1

    async def fast() -> int:
        clock.t += 0.001
        return 1

    for _ in range(4):
        await reg.breakers["postgres"].call(slow)
        await reg.breakers["redis"].call(fast)
    deps = {d.name: d for d in reg.dependencies()}
    assert deps["postgres"].calls == 4 and deps["postgres"].slow_calls == 4
    assert deps["postgres"].slow_call_rate == 100.0 and deps["postgres"].mean_ms == pytest.approx(2000, rel=0.01)
    assert deps["postgres"].slow_threshold_ms == 500
    assert deps["redis"].calls == 4 and deps["redis"].slow_call_rate == 0.0


async def test_a_call_still_in_flight_past_the_threshold_counts_as_slow() -> None:
    clock = Clock()
    reg = _registry(clock)
    gate = asyncio.Event()

    async def hangs() -> None:
        await gate.wait()

    task = asyncio.create_task(reg.breakers["postgres"].call(hangs))
    await asyncio.sleep(0)
    clock.t += 3.0
    pg = next(d for d in reg.dependencies() if d.name == "postgres")
    assert (pg.in_flight, pg.slow_calls, pg.slow_call_rate, pg.max_ms) == (1, 1, 100.0, 3000.0)
    gate.set()
    await task


async def test_old_calls_leave_the_window_and_refused_calls_are_not_timed() -> None:
    clock = Clock()
    reg = _registry(clock)

    async def slow() -> None:
        clock.t += 1.0

    await reg.breakers["postgres"].call(slow)
    clock.t += 31
    reg.breakers["postgres"].force_open(60, reason="test")
    with pytest.raises(CallNotPermittedError):
        await reg.breakers["postgres"].call(slow)
    pg = next(d for d in reg.dependencies() if d.name == "postgres")
    assert (pg.calls, pg.slow_calls, pg.slow_call_rate) == (0, 0, 0.0)


def test_process_stats_carry_the_dependencies() -> None:
    clock = Clock()
    reg = _registry(clock)
    report = ProcessStatsReporter(service="shop", instance="shop-1", memory_limit=1 << 30,
                                  breakers=reg.states, dependencies=reg.dependencies).report()
    assert [d.name for d in report.dependencies] == ["postgres", "redis"]
    assert report.model_dump(mode="json")["dependencies"][0]["slow_threshold_ms"] == 500
