"""Circuit breakers with resilience4j's semantics, their OPEN state shared through Redis.

A `CircuitBreaker` keeps its own sliding window (count- or time-based) of call outcomes.
In CLOSED, once `minimum_number_of_calls` are in the window, a failure rate or a slow-call
rate at or above its threshold opens it. OPEN refuses calls (`CallNotPermittedError`) for
`wait_duration_in_open_state_s`, then the breaker is HALF_OPEN (checked on every read of
`state`, so the transition is automatic without a timer task): it lets
`permitted_number_of_calls_in_half_open_state` trial calls through and, once they are all
recorded, closes or reopens on the same thresholds. FORCED_OPEN refuses calls until its
deadline (a recovery command) or `reset()`; DISABLED lets everything through.

`SharedBreakerState` (Redis, atomic Lua) spreads OPEN between instances: an instance that
opens writes the key with a TTL equal to its open wait; other instances read it at most
every `sync_interval_s` and open too, each keeping its own window. When Redis does not
answer the breaker works on local state only and retries Redis later.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, TypeVar

__all__ = [
    "BreakerConfig", "BreakerState", "CallNotPermittedError", "CircuitBreaker", "Outcome", "Transition",
    "WindowSnapshot", "CountWindow", "TimeWindow", "SharedBreakerState", "SharedOpen", "RedisBreakerState",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], float]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    SLOW_SUCCESS = "slow_success"
    SLOW_FAILURE = "slow_failure"

    @property
    def failed(self) -> int:
        return _FAILED[self]

    @property
    def slow(self) -> int:
        return _SLOW[self]


# Plain dict lookups: this sits on every guarded call, and enum tuple membership is slow.
_FAILED = {Outcome.SUCCESS: 0, Outcome.FAILURE: 1, Outcome.SLOW_SUCCESS: 0, Outcome.SLOW_FAILURE: 1}
_SLOW = {Outcome.SUCCESS: 0, Outcome.FAILURE: 0, Outcome.SLOW_SUCCESS: 1, Outcome.SLOW_FAILURE: 1}


class CallNotPermittedError(Exception):
    """The breaker is open (or its half-open permits are taken): the call was not made."""

    def __init__(self, name: str, state: BreakerState) -> None:
        super().__init__(f"circuit breaker {name!r} is {state.value}; call not permitted")
        self.name = name
        self.state = state


@dataclass(frozen=True)
class BreakerConfig:
    """resilience4j's CircuitBreakerConfig (durations in seconds). Defaults are resilience4j's."""

    failure_rate_threshold: float = 50.0
    slow_call_rate_threshold: float = 100.0
    slow_call_duration_threshold_s: float = 60.0
    sliding_window_type: Literal["count_based", "time_based"] = "count_based"
    sliding_window_size: int = 100
    minimum_number_of_calls: int = 100
    wait_duration_in_open_state_s: float = 60.0
    permitted_number_of_calls_in_half_open_state: int = 10
    max_wait_duration_in_half_open_state_s: float = 0.0
    record_exceptions: tuple[type[BaseException], ...] = (Exception,)
    ignore_exceptions: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            if not 0 < getattr(self, name) <= 100:
                raise ValueError(f"{name} must be in (0, 100]")
        for name in ("sliding_window_size", "minimum_number_of_calls", "permitted_number_of_calls_in_half_open_state"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("slow_call_duration_threshold_s", "wait_duration_in_open_state_s",
                     "max_wait_duration_in_half_open_state_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    @property
    def effective_minimum_calls(self) -> int:
        # resilience4j caps minimumNumberOfCalls at the size of a count-based window.
        if self.sliding_window_type == "count_based":
            return min(self.minimum_number_of_calls, self.sliding_window_size)
        return self.minimum_number_of_calls

    @classmethod
    def for_database(cls, **overrides: Any) -> BreakerConfig:
        """The runbook's database breaker: a query over 500 ms is slow; opens at 50 % failed or slow."""
        base: dict[str, Any] = dict(
            failure_rate_threshold=50.0, slow_call_rate_threshold=50.0, slow_call_duration_threshold_s=0.5,
            sliding_window_type="time_based", sliding_window_size=10, minimum_number_of_calls=10,
            wait_duration_in_open_state_s=30.0, permitted_number_of_calls_in_half_open_state=5,
        )
        return cls(**{**base, **overrides})

    @classmethod
    def for_cache(cls, **overrides: Any) -> BreakerConfig:
        """Redis: a call over 100 ms is slow; shorter open wait (a cache miss path exists)."""
        return cls.for_database(**{"slow_call_duration_threshold_s": 0.1, "wait_duration_in_open_state_s": 10.0,
                                   **overrides})


@dataclass(frozen=True)
class WindowSnapshot:
    calls: int
    failed: int
    slow: int

    @property
    def failure_rate(self) -> float:
        return 100.0 * self.failed / self.calls if self.calls else -1.0

    @property
    def slow_call_rate(self) -> float:
        return 100.0 * self.slow / self.calls if self.calls else -1.0


class CountWindow:
    """The last `size` outcomes (a ring)."""

    def __init__(self, size: int) -> None:
        self._ring: deque[Outcome] = deque(maxlen=size)
        self._failed = 0
        self._slow = 0

    def record(self, outcome: Outcome, now: float) -> WindowSnapshot:
        if len(self._ring) == self._ring.maxlen:
            old = self._ring[0]
            self._failed -= _FAILED[old]
            self._slow -= _SLOW[old]
        self._ring.append(outcome)
        self._failed += _FAILED[outcome]
        self._slow += _SLOW[outcome]
        return self.snapshot(now)

    def snapshot(self, now: float) -> WindowSnapshot:
        return WindowSnapshot(len(self._ring), self._failed, self._slow)


class TimeWindow:
    """Outcomes of the last `size` whole seconds, in per-second buckets (epoch = floor(now))."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._buckets: deque[list[int]] = deque()  # [second, calls, failed, slow]
        self._calls = self._failed = self._slow = 0

    def _evict(self, now: float) -> None:
        oldest = int(now) - self.size + 1
        while self._buckets and self._buckets[0][0] < oldest:
            _, c, f, s = self._buckets.popleft()
            self._calls -= c
            self._failed -= f
            self._slow -= s

    def record(self, outcome: Outcome, now: float) -> WindowSnapshot:
        self._evict(now)
        sec = int(now)
        if not self._buckets or self._buckets[-1][0] != sec:
            self._buckets.append([sec, 0, 0, 0])
        b = self._buckets[-1]
        f, sl = _FAILED[outcome], _SLOW[outcome]
        b[1] += 1
        b[2] += f
        b[3] += sl
        self._calls += 1
        self._failed += f
        self._slow += sl
        return WindowSnapshot(self._calls, self._failed, self._slow)

    def snapshot(self, now: float) -> WindowSnapshot:
        self._evict(now)
        return WindowSnapshot(self._calls, self._failed, self._slow)


@dataclass(frozen=True)
class Transition:
    breaker: str
    from_state: BreakerState
    to_state: BreakerState
    reason: str
    shared: bool = False
    snapshot: WindowSnapshot | None = None
    open_for_s: float | None = None


@dataclass(frozen=True)
class SharedOpen:
    remaining_s: float
    by: str
    reason: str
    forced: bool


class SharedBreakerState(Protocol):
    async def publish_open(self, name: str, *, duration_s: float, by: str, reason: str, forced: bool) -> None: ...
    async def read(self, name: str) -> SharedOpen | None: ...
    async def clear(self, name: str) -> None: ...


@dataclass
class _Counters:
    not_permitted: int = 0
    successful: int = 0
    failed: int = 0
    slow: int = 0
    ignored: int = 0


@dataclass
class _Phase:
    state: BreakerState
    entered: float
    until: float = float("inf")
    window: CountWindow | TimeWindow | None = None
    permits_left: int = 0
    completed: int = 0
    counters: _Counters = field(default_factory=_Counters)


class CircuitBreaker:
    """One breaker. Sync core (`try_acquire`, `on_success`, `on_error`) plus async `call`."""

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        shared: SharedBreakerState | None = None,
        instance: str = "local",
        sync_interval_s: float = 0.5,
        on_transition: Callable[[Transition], None] | None = None,
    ) -> None:
        self.name = name
        self.config = config or BreakerConfig()
        self.clock = clock
        self.shared = shared
        self.instance = instance
        self.sync_interval_s = sync_interval_s
        self.on_transition = on_transition
        self.counters = _Counters()
        self._phase = self._closed_phase()
        self._next_sync = 0.0
        self._pending_share: tuple[float, str, bool] | None = None

    # ---------------------------------------------------------------- state
    @property
    def state(self) -> BreakerState:
        self._advance()
        return self._phase.state

    def snapshot(self) -> WindowSnapshot:
        w = self._phase.window
        return w.snapshot(self.clock()) if w is not None else WindowSnapshot(0, 0, 0)

    def _closed_phase(self) -> _Phase:
        size = self.config.sliding_window_size
        window = CountWindow(size) if self.config.sliding_window_type == "count_based" else TimeWindow(size)
        return _Phase(BreakerState.CLOSED, self.clock(), window=window)

    def _advance(self) -> None:
        now = self.clock()
        p = self._phase
        if p.state in (BreakerState.OPEN, BreakerState.FORCED_OPEN) and now >= p.until:
            self._to_half_open(reason="open wait elapsed")
        elif (p.state is BreakerState.HALF_OPEN and self.config.max_wait_duration_in_half_open_state_s > 0
              and now - p.entered >= self.config.max_wait_duration_in_half_open_state_s):
            self._to_open(reason="half-open wait elapsed without a verdict", snapshot=None)

    def _transition(self, phase: _Phase, reason: str, *, shared: bool = False,
                    snapshot: WindowSnapshot | None = None, open_for_s: float | None = None) -> None:
        before = self._phase.state
        self._phase = phase
        if before is phase.state:
            return
        log.info("circuit breaker %s: %s -> %s (%s)", self.name, before.value, phase.state.value, reason)
        if self.on_transition is not None:
            self.on_transition(Transition(self.name, before, phase.state, reason, shared, snapshot, open_for_s))

    def _to_open(self, *, reason: str, snapshot: WindowSnapshot | None, duration_s: float | None = None,
                 shared: bool = False, forced: bool = False) -> None:
        wait = self.config.wait_duration_in_open_state_s if duration_s is None else duration_s
        now = self.clock()
        state = BreakerState.FORCED_OPEN if forced else BreakerState.OPEN
        self._transition(_Phase(state, now, until=now + wait, window=self._phase.window), reason,
                         shared=shared, snapshot=snapshot, open_for_s=wait)
        if not shared:
            self._pending_share = (wait, reason, forced)

    def _to_half_open(self, *, reason: str) -> None:
        n = self.config.permitted_number_of_calls_in_half_open_state
        self._transition(_Phase(BreakerState.HALF_OPEN, self.clock(), window=CountWindow(n), permits_left=n), reason)

    def _to_closed(self, *, reason: str, snapshot: WindowSnapshot | None = None) -> None:
        self._transition(self._closed_phase(), reason, snapshot=snapshot)

    # ---------------------------------------------------------------- manual transitions
    def transition_to_open(self, *, reason: str = "manual") -> None:
        self._to_open(reason=reason, snapshot=None)

    def force_open(self, duration_s: float, *, reason: str = "forced", shared: bool = False) -> None:
        """Refuse every call for `duration_s` (then half-open), e.g. on an OpenCircuitBreaker command."""
        self._to_open(reason=reason, snapshot=None, duration_s=duration_s, shared=shared, forced=True)

    def disable(self) -> None:
        self._transition(_Phase(BreakerState.DISABLED, self.clock()), "disabled")

    def reset(self) -> None:
        self._pending_share = None
        self._to_closed(reason="reset")

    # ---------------------------------------------------------------- the call protocol
    def try_acquire(self) -> bool:
        self._advance()
        p = self._phase
        if p.state in (BreakerState.CLOSED, BreakerState.DISABLED):
            return True
        if p.state is BreakerState.HALF_OPEN and p.permits_left > 0:
            p.permits_left -= 1
            return True
        self.counters.not_permitted += 1
        return False

    def acquire(self) -> None:
        if not self.try_acquire():
            raise CallNotPermittedError(self.name, self._phase.state)

    def release(self) -> None:
        """Give back a half-open permit of a call whose outcome is not recorded (ignored error)."""
        p = self._phase
        if p.state is BreakerState.HALF_OPEN:
            p.permits_left = min(p.permits_left + 1, self.config.permitted_number_of_calls_in_half_open_state)

    def on_success(self, duration_s: float) -> None:
        slow = duration_s > self.config.slow_call_duration_threshold_s
        self.counters.successful += 1
        self._record(Outcome.SLOW_SUCCESS if slow else Outcome.SUCCESS)

    def on_error(self, duration_s: float, error: BaseException) -> None:
        c = self.config
        if isinstance(error, c.ignore_exceptions) or not isinstance(error, c.record_exceptions):
            self.counters.ignored += 1
            self.release()
            return
        slow = duration_s > c.slow_call_duration_threshold_s
        self.counters.failed += 1
        self._record(Outcome.SLOW_FAILURE if slow else Outcome.FAILURE)

    def _record(self, outcome: Outcome) -> None:
        self.counters.slow += _SLOW[outcome]
        p = self._phase
        if p.window is None or p.state not in (BreakerState.CLOSED, BreakerState.HALF_OPEN):
            return  # DISABLED, or a call that started before the breaker opened
        snap = p.window.record(outcome, self.clock())
        needed = (self.config.permitted_number_of_calls_in_half_open_state if p.state is BreakerState.HALF_OPEN
                  else self.config.effective_minimum_calls)
        if snap.calls < needed:
            return
        c = self.config
        over = snap.failure_rate >= c.failure_rate_threshold or snap.slow_call_rate >= c.slow_call_rate_threshold
        if over:
            why = (f"failure rate {snap.failure_rate:.1f}% / slow {snap.slow_call_rate:.1f}% over {snap.calls} calls"
                   f" (thresholds {c.failure_rate_threshold}% / {c.slow_call_rate_threshold}%)")
            self._to_open(reason=why, snapshot=snap)
        elif p.state is BreakerState.HALF_OPEN:
            self._to_closed(reason=f"half-open trial passed ({snap.calls} calls)", snapshot=snap)

    # ---------------------------------------------------------------- async edge
    async def sync(self, *, force: bool = False) -> None:
        """Push a local OPEN to the shared store; adopt an OPEN another instance shared."""
        if self.shared is None:
            return
        if self._pending_share is not None:
            wait, reason, forced = self._pending_share
            self._pending_share = None
            await self.shared.publish_open(self.name, duration_s=wait, by=self.instance, reason=reason, forced=forced)
        now = self.clock()
        if not force and now < self._next_sync:
            return
        self._next_sync = now + self.sync_interval_s
        found = await self.shared.read(self.name)
        if found is None or found.by == self.instance:
            return
        p = self._phase
        if p.state in (BreakerState.CLOSED, BreakerState.HALF_OPEN) or (
                p.state in (BreakerState.OPEN, BreakerState.FORCED_OPEN) and p.until < now + found.remaining_s - 1):
            self._to_open(reason=f"opened by {found.by}: {found.reason}", snapshot=None,
                          duration_s=found.remaining_s, shared=True, forced=found.forced)

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await `fn(*args, **kwargs)` through the breaker; raises CallNotPermittedError when open."""
        await self.sync()
        self.acquire()
        start = time.perf_counter()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self.on_error(time.perf_counter() - start, exc)
            if self._pending_share is not None:
                await self.sync()
            raise
        self.on_success(time.perf_counter() - start)
        if self._pending_share is not None:
            await self.sync()
        return result


_OPEN_LUA = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'by', ARGV[2], 'reason', ARGV[3], 'forced', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

_READ_LUA = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return false end
local v = redis.call('HMGET', KEYS[1], 'by', 'reason', 'forced')
return {ttl, v[1] or '', v[2] or '', v[3] or '0'}
"""


class RedisBreakerState:
    """The OPEN state of a service's breakers in Redis: `<prefix><service>:<breaker>` with a TTL.

    Lua keeps "open for at least this long" atomic (a shorter open never shortens a longer
    one). Durations are relative (PTTL), so instances need no synchronised clocks. Any Redis
    error makes the store answer "nothing shared" for `retry_after_s`, and breakers run on
    their local state meanwhile.
    """

    def __init__(self, redis: Any, *, service: str, prefix: str = "safeguard:breaker:",
                 timeout_s: float = 0.25, retry_after_s: float = 5.0, clock: Clock = time.monotonic) -> None:
        self.redis = redis
        self.prefix = f"{prefix}{service}:"
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.clock = clock
        self._down_until = 0.0
        self._open = redis.register_script(_OPEN_LUA)
        self._read = redis.register_script(_READ_LUA)

    @property
    def available(self) -> bool:
        return self.clock() >= self._down_until

    async def _guard(self, op: Callable[[], Awaitable[Any]]) -> Any:
        import asyncio

        if not self.available:
            return None
        try:
            return await asyncio.wait_for(op(), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - Redis down: local state only, retry later
            self._down_until = self.clock() + self.retry_after_s
            log.warning("breaker store unavailable, using local state for %.0f s: %s", self.retry_after_s,
                        type(exc).__name__)
            return None

    async def publish_open(self, name: str, *, duration_s: float, by: str, reason: str, forced: bool) -> None:
        ms = max(1, int(duration_s * 1000))
        await self._guard(lambda: self._open(keys=[self.prefix + name], args=[ms, by, reason[:300], int(forced)]))

    async def read(self, name: str) -> SharedOpen | None:
        raw = await self._guard(lambda: self._read(keys=[self.prefix + name]))
        if not raw:
            return None
        ttl, by, reason, forced = (x.decode() if isinstance(x, bytes) else x for x in raw)
        return SharedOpen(remaining_s=int(ttl) / 1000, by=str(by), reason=str(reason), forced=str(forced) == "1")

    async def clear(self, name: str) -> None:
        await self._guard(lambda: self.redis.delete(self.prefix + name))
