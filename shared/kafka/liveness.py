"""What every Kafka consumer of this process is doing, for `/healthz` (shared.http.healthz_router).

Each `EventConsumer` registers a `ConsumerLiveness` while it runs and updates it from its loop.
A consumer is failing when it is dead (it gave up and the process is going down) or stuck: its
loop has not polled for `stuck_after_s`, or it holds partitions and the broker has not answered a
fetch for that long (a hung or unreachable broker).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ConsumerLiveness", "ConsumersHealth", "State", "consumer_health", "register", "registered", "unregister"]

State = Literal["starting", "running", "retrying", "dead"]


@dataclass(eq=False)
class ConsumerLiveness:
    """Times are `time.monotonic()` seconds."""

    group: str
    topics: list[str]
    stuck_after_s: float
    state: State = "starting"
    since: float = field(default_factory=time.monotonic)
    last_poll: float | None = None
    last_fetch: float | None = None
    last_commit: float | None = None
    assigned: int = 0
    lag: int | None = None
    retries: int = 0
    dedupe_fallbacks: int = 0
    last_dedupe_fallback: float | None = None
    last_error: str | None = None

    def polled(self, *, now: float) -> None:
        self.last_poll = now
        if self.state in ("starting", "retrying"):
            self.state = "running"

    def problem(self, *, now: float) -> str | None:
        """Why this consumer fails its health check, or None."""
        if self.state == "dead":
            return f"dead: {self.last_error}"
        idle = now - (self.last_poll or self.since)
        if idle > self.stuck_after_s:
            return f"stuck: no poll for {idle:.0f} s"
        silent = now - (self.last_fetch or self.since)
        if self.assigned and silent > self.stuck_after_s:
            return f"stuck: no answer from the broker for {silent:.0f} s"
        return None

    def worried(self, *, now: float) -> bool:
        """Working, but retrying a step or running without its dedupe store lately."""
        recent = self.last_dedupe_fallback is not None and now - self.last_dedupe_fallback < self.stuck_after_s
        return self.state == "retrying" or recent

    def report(self, *, now: float) -> dict[str, Any]:
        def age(t: float | None) -> float | None:
            return None if t is None else round(now - t, 1)

        return {
            "group": self.group, "topics": self.topics, "state": self.state, "problem": self.problem(now=now),
            "last_poll_age_s": age(self.last_poll), "last_fetch_age_s": age(self.last_fetch),
            "last_commit_age_s": age(self.last_commit), "assigned_partitions": self.assigned, "lag": self.lag,
            "retries": self.retries, "dedupe_fallbacks": self.dedupe_fallbacks,
            "last_dedupe_fallback_age_s": age(self.last_dedupe_fallback), "last_error": self.last_error,
        }


@dataclass
class ConsumersHealth:
    status: Literal["pass", "warn", "fail"]
    consumers: list[dict[str, Any]]


_REGISTRY: list[ConsumerLiveness] = []


def register(entry: ConsumerLiveness) -> ConsumerLiveness:
    _REGISTRY.append(entry)
    return entry


def unregister(entry: ConsumerLiveness) -> None:
    if entry in _REGISTRY:
        _REGISTRY.remove(entry)


def registered() -> list[ConsumerLiveness]:
    return list(_REGISTRY)


def consumer_health(*, now: float | None = None) -> ConsumersHealth:
    """fail if any consumer is dead or stuck; warn if one is retrying or runs without its dedupe store."""
    now = time.monotonic() if now is None else now
    reports = [entry.report(now=now) for entry in _REGISTRY]
    if any(r["problem"] for r in reports):
        return ConsumersHealth("fail", reports)
    warn = any(entry.worried(now=now) for entry in _REGISTRY)
    return ConsumersHealth("warn" if warn else "pass", reports)
