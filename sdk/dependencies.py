"""How slow each guarded dependency is: the calls of the last `window_s` seconds, timed around the real call.

The breaker's own sliding window restarts on every state change (half-open keeps a handful of trial
calls), so it cannot answer "which dependency was slow for the last half minute?". A `CallTimer` per
breaker does: `BreakerRegistry` records every permitted call into it, and `ProcessStatsReported`
carries the result as `DependencyStats`, from which recovery picks the breaker to open on
`latency_high` (services/recovery/slow_dependency.py).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable

from shared.events import DependencyStats

__all__ = ["CallTimer"]


class CallTimer:
    """Completed calls (end time, seconds) of the last `window_s`, plus the start times of calls in flight."""

    def __init__(self, name: str, *, slow_threshold_s: float, window_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.slow_threshold_s, self.window_s, self.clock = name, slow_threshold_s, window_s, clock
        self._done: deque[tuple[float, float]] = deque()
        self._started: dict[int, float] = {}
        self._ids = itertools.count()

    def start(self) -> int:
        token = next(self._ids)
        self._started[token] = self.clock()
        return token

    def finish(self, token: int) -> None:
        began = self._started.pop(token, None)
        if began is not None:
            now = self.clock()
            self._done.append((now, now - began))

    def stats(self) -> DependencyStats:
        now = self.clock()
        while self._done and self._done[0][0] < now - self.window_s:
            self._done.popleft()
        durations = [d for _, d in self._done]
        hung = [now - s for s in self._started.values() if now - s > self.slow_threshold_s]
        slow = sum(d > self.slow_threshold_s for d in durations) + len(hung)
        calls = len(durations) + len(hung)
        every = durations + hung
        return DependencyStats(
            name=self.name, window_seconds=self.window_s, calls=calls, slow_calls=slow,
            slow_call_rate=round(100.0 * slow / calls, 1) if calls else 0.0,
            slow_threshold_ms=self.slow_threshold_s * 1000, mean_ms=round(1000 * sum(every) / calls, 1) if calls else 0.0,
            max_ms=round(1000 * max(every), 1) if every else 0.0, in_flight=len(self._started),
        )
