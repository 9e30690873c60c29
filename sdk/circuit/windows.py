"""Sliding windows of call outcomes: the last N calls, or the last N seconds."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sdk.circuit.states import FAILED, SLOW, Outcome

__all__ = ["WindowSnapshot", "CountWindow", "TimeWindow"]


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
            self._failed -= FAILED[old]
            self._slow -= SLOW[old]
        self._ring.append(outcome)
        self._failed += FAILED[outcome]
        self._slow += SLOW[outcome]
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
        f, sl = FAILED[outcome], SLOW[outcome]
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
