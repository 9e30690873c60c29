"""One fault's window of the run: the counters every load generator adds to while it lasts."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Phase", "Produced", "KILL_DEADLINE_S"]

KILL_DEADLINE_S = 2.0  # an observer still serving the flag on this long after the kill could be made is stale


@dataclass
class Produced:
    """One RequestsObserved an app instance handed to its publisher."""

    service: str
    count: int
    acked: bool | None = None  # None: still in flight; False: the SDK gave up (its window is dropped)


@dataclass
class Phase:
    name: str
    service: str                      # the telemetry service name of this phase (one per fault and run)
    started: float = field(default_factory=time.time)
    kill_at: float | None = None      # when the runbook kill was first sent
    kill_ok_at: float | None = None   # when a kill request was first answered 2xx
    kill_codes: list[str] = field(default_factory=list)
    evals: Counter[str] = field(default_factory=Counter)      # sdk / sdk_fail / ofrep / ofrep_fail / ofrep_4xx
    seen: dict[str, float] = field(default_factory=dict)      # observer -> when it first served the kill
    reverted: Counter[str] = field(default_factory=Counter)   # observer -> "on" again after serving the kill
    last_on: dict[str, float] = field(default_factory=dict)   # observer -> its last "on" after the kill was sent
    observers: set[str] = field(default_factory=set)
    last: dict[str, object] = field(default_factory=dict)     # observer -> the value it served last
    failures: list[str] = field(default_factory=list)         # first few failure messages

    def fail(self, kind: str, message: str) -> None:
        self.evals[kind] += 1
        if len(self.failures) < 5:
            self.failures.append(f"{kind}: {message}"[:160])

    def served(self, observer: str, value: object) -> None:
        """An observer (an SDK, OFREP, a demo instance) served `value` for the flag just now."""
        self.observers.add(observer)
        self.last[observer] = value
        if self.kill_at is None:
            return
        if value is False and observer not in self.seen:
            self.seen[observer] = time.time()
        elif value is True and observer in self.seen:
            self.reverted[observer] += 1
        elif value is True:
            self.last_on[observer] = time.time()
