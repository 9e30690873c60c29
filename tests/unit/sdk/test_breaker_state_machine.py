"""resilience4j's CircuitBreakerStateMachineTest scenarios, ported, on a fake clock."""

from __future__ import annotations

import pytest

from sdk.circuit import (
    BreakerConfig, BreakerState, CallNotPermittedError, CircuitBreaker, SharedOpen, Transition,
)
from shared.testing import FakeClock


class Boom(Exception):
    pass


class Ignored(Exception):
    pass


def make(clock: FakeClock, transitions: list[Transition] | None = None, **cfg: object) -> CircuitBreaker:
    base: dict[str, object] = dict(
        failure_rate_threshold=50, slow_call_rate_threshold=50, slow_call_duration_threshold_s=0.5,
        sliding_window_size=5, minimum_number_of_calls=5, wait_duration_in_open_state_s=5,
        permitted_number_of_calls_in_half_open_state=4, ignore_exceptions=(Ignored,),
    )
    base.update(cfg)
    return CircuitBreaker("db", BreakerConfig(**base), clock=clock,  # type: ignore[arg-type]
                          on_transition=(transitions.append if transitions is not None else None))


def fail(cb: CircuitBreaker, n: int = 1, duration: float = 0.01) -> None:
    for _ in range(n):
        assert cb.try_acquire()
        cb.on_error(duration, Boom())


def ok(cb: CircuitBreaker, n: int = 1, duration: float = 0.01) -> None:
    for _ in range(n):
        assert cb.try_acquire()
        cb.on_success(duration)


def test_stays_closed_below_minimum_number_of_calls() -> None:
    cb = make(FakeClock())
    fail(cb, 4)
    assert cb.state is BreakerState.CLOSED
    assert cb.snapshot().failure_rate == 100.0


def test_opens_when_failure_rate_reaches_threshold() -> None:
    seen: list[Transition] = []
    cb = make(FakeClock(), seen)
    ok(cb, 3)
    fail(cb, 2)
    assert cb.state is BreakerState.CLOSED  # 40 % < 50 %
    fail(cb, 1)  # window of 5: ok ok fail fail fail -> 60 %
    assert cb.state is BreakerState.OPEN
    assert [(t.from_state, t.to_state) for t in seen] == [(BreakerState.CLOSED, BreakerState.OPEN)]
    assert seen[0].snapshot is not None and seen[0].snapshot.failure_rate == 60.0


def test_failure_rate_exactly_at_threshold_opens() -> None:
    cb = make(FakeClock(), sliding_window_size=4, minimum_number_of_calls=4)
    ok(cb, 2)
    fail(cb, 2)
    assert cb.state is BreakerState.OPEN


def test_slow_calls_open_even_when_they_succeed() -> None:
    cb = make(FakeClock())
    ok(cb, 2)
    ok(cb, 3, duration=0.6)  # > 500 ms: slow
    assert cb.state is BreakerState.OPEN
    assert cb.counters.slow == 3


def test_a_call_at_exactly_the_slow_threshold_is_not_slow() -> None:
    cb = make(FakeClock())
    ok(cb, 5, duration=0.5)
    assert cb.state is BreakerState.CLOSED


def test_open_refuses_calls_and_counts_them() -> None:
    cb = make(FakeClock())
    fail(cb, 5)
    assert not cb.try_acquire()
    with pytest.raises(CallNotPermittedError):
        cb.acquire()
    assert cb.counters.not_permitted == 2


def test_open_becomes_half_open_after_wait_duration() -> None:
    clock = FakeClock()
    seen: list[Transition] = []
    cb = make(clock, seen)
    fail(cb, 5)
    clock.advance(4.9)
    assert cb.state is BreakerState.OPEN
    clock.advance(0.1)
    assert cb.state is BreakerState.HALF_OPEN
    assert seen[-1].to_state is BreakerState.HALF_OPEN


def test_half_open_permits_only_the_configured_number_of_calls() -> None:
    clock = FakeClock()
    cb = make(clock)
    fail(cb, 5)
    clock.advance(5)
    assert [cb.try_acquire() for _ in range(5)] == [True, True, True, True, False]


def test_half_open_closes_when_trial_calls_pass() -> None:
    clock = FakeClock()
    cb = make(clock)
    fail(cb, 5)
    clock.advance(5)
    ok(cb, 3)
    fail(cb, 1)  # 25 % < 50 %
    assert cb.state is BreakerState.CLOSED
    assert cb.snapshot().calls == 0  # a fresh window


def test_half_open_reopens_when_trial_calls_fail() -> None:
    clock = FakeClock()
    cb = make(clock)
    fail(cb, 5)
    clock.advance(5)
    ok(cb, 2)
    fail(cb, 2)
    assert cb.state is BreakerState.OPEN
    clock.advance(4)
    assert cb.state is BreakerState.OPEN  # a new full wait
    clock.advance(1)
    assert cb.state is BreakerState.HALF_OPEN


def test_half_open_waits_for_all_permitted_calls_before_deciding() -> None:
    clock = FakeClock()
    cb = make(clock)
    fail(cb, 5)
    clock.advance(5)
    fail(cb, 3)
    assert cb.state is BreakerState.HALF_OPEN


def test_max_wait_in_half_open_reopens() -> None:
    clock = FakeClock()
    cb = make(clock, max_wait_duration_in_half_open_state_s=2)
    fail(cb, 5)
    clock.advance(5)
    ok(cb, 1)
    clock.advance(2)
    assert cb.state is BreakerState.OPEN


def test_ignored_exceptions_are_not_recorded_and_give_back_half_open_permits() -> None:
    clock = FakeClock()
    cb = make(clock)
    for _ in range(10):
        assert cb.try_acquire()
        cb.on_error(0.01, Ignored())
    assert cb.state is BreakerState.CLOSED and cb.snapshot().calls == 0
    fail(cb, 5)
    clock.advance(5)
    for _ in range(10):
        assert cb.try_acquire()
        cb.on_error(0.01, Ignored())
    assert cb.state is BreakerState.HALF_OPEN and cb.counters.ignored == 20


def test_only_record_exceptions_count_as_failures() -> None:
    cb = make(FakeClock(), record_exceptions=(Boom,), ignore_exceptions=())
    for _ in range(5):
        assert cb.try_acquire()
        cb.on_error(0.01, ValueError())
    assert cb.state is BreakerState.CLOSED


def test_count_window_forgets_the_oldest_outcome() -> None:
    cb = make(FakeClock(), sliding_window_size=5, minimum_number_of_calls=5, failure_rate_threshold=60)
    fail(cb, 2)
    ok(cb, 3)  # 40 %
    fail(cb, 1)  # drops a failure, adds one: still 40 %
    assert cb.state is BreakerState.CLOSED
    assert cb.snapshot().failure_rate == 40.0


def test_minimum_calls_is_capped_by_a_count_window() -> None:
    cb = make(FakeClock(), sliding_window_size=3, minimum_number_of_calls=100)
    fail(cb, 3)
    assert cb.state is BreakerState.OPEN


def test_time_window_forgets_old_seconds() -> None:
    clock = FakeClock(start=1000.0)
    cb = make(clock, sliding_window_type="time_based", sliding_window_size=10, minimum_number_of_calls=5)
    fail(cb, 4)
    clock.advance(10)  # the four failures are now out of the 10 s window
    ok(cb, 4)
    fail(cb, 1)
    assert cb.snapshot().calls == 5
    assert cb.state is BreakerState.CLOSED  # 20 %, not 100 %


def test_time_window_opens_on_calls_within_it() -> None:
    clock = FakeClock(start=1000.0)
    cb = make(clock, sliding_window_type="time_based", sliding_window_size=10, minimum_number_of_calls=5)
    for _ in range(5):
        fail(cb, 1)
        clock.advance(1)
    assert cb.state is BreakerState.OPEN


def test_forced_open_refuses_until_deadline_then_half_opens() -> None:
    clock = FakeClock()
    cb = make(clock)
    cb.force_open(60, reason="response time > 5 s")
    assert cb.state is BreakerState.FORCED_OPEN and not cb.try_acquire()
    clock.advance(60)
    assert cb.state is BreakerState.HALF_OPEN


def test_reset_closes_and_clears_window() -> None:
    cb = make(FakeClock())
    fail(cb, 5)
    cb.reset()
    assert cb.state is BreakerState.CLOSED and cb.snapshot().calls == 0


def test_disabled_lets_everything_through_and_records_nothing() -> None:
    cb = make(FakeClock())
    cb.disable()
    fail(cb, 50)
    assert cb.state is BreakerState.DISABLED


def test_calls_finishing_after_open_are_not_recorded() -> None:
    clock = FakeClock()
    cb = make(clock)
    assert cb.try_acquire()  # an in-flight call
    fail(cb, 5)
    cb.on_success(0.01)
    assert cb.state is BreakerState.OPEN


def test_database_preset_counts_500ms_as_the_slow_limit() -> None:
    c = BreakerConfig.for_database()
    assert c.slow_call_duration_threshold_s == 0.5


@pytest.mark.parametrize("bad", [dict(failure_rate_threshold=0), dict(sliding_window_size=0),
                                 dict(wait_duration_in_open_state_s=-1), dict(slow_call_rate_threshold=101)])
def test_config_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerConfig(**bad)  # type: ignore[arg-type]


class FakeShared:
    def __init__(self) -> None:
        self.opened: dict[str, SharedOpen] = {}

    async def publish_open(self, name: str, *, duration_s: float, by: str, reason: str, forced: bool) -> None:
        self.opened[name] = SharedOpen(duration_s, by, reason, forced)

    async def read(self, name: str) -> SharedOpen | None:
        return self.opened.get(name)

    async def clear(self, name: str) -> None:
        self.opened.pop(name, None)


async def test_async_call_records_and_shares_open() -> None:
    clock = FakeClock()
    shared = FakeShared()
    a = CircuitBreaker("db", BreakerConfig(sliding_window_size=2, minimum_number_of_calls=2), clock=clock,
                       shared=shared, instance="a")
    b = CircuitBreaker("db", BreakerConfig(), clock=clock, shared=shared, instance="b")

    async def broken() -> None:
        raise Boom()

    for _ in range(2):
        with pytest.raises(Boom):
            await a.call(broken)
    assert a.state is BreakerState.OPEN and shared.opened["db"].by == "a"
    await b.sync(force=True)
    assert b.state is BreakerState.OPEN

    async def fine() -> int:
        return 1

    with pytest.raises(CallNotPermittedError):
        await b.call(fine)
