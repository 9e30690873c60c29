"""`CircuitBreaker`: the state machine (sync core plus an async `call`), on an injected clock."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sdk.circuit.config import BreakerConfig
from sdk.circuit.shared_state import SharedBreakerState
from sdk.circuit.states import SLOW, BreakerState, CallNotPermittedError, Outcome
from sdk.circuit.windows import CountWindow, TimeWindow, WindowSnapshot

__all__ = ["CircuitBreaker", "Transition"]

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], float]


@dataclass(frozen=True)
class Transition:
    breaker: str
    from_state: BreakerState
    to_state: BreakerState
    reason: str
    shared: bool = False
    snapshot: WindowSnapshot | None = None
    open_for_s: float | None = None


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
        self.counters.slow += SLOW[outcome]
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
