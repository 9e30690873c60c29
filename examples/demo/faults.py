"""Fault injection: make the demo misbehave on purpose so every runbook trigger can be provoked.

- error_rate (0..1): that share of requests answers 500         -> error rate > 5 %
- latency_ms: added to every request                             -> response time > 5 s
- slow_query_ms: every query sleeps in Postgres (pg_sleep)       -> slow calls, DB breaker
- slow_db_ms: every database call waits first, inside the breaker  -> response time > 5 s with the
  (a slow network to Postgres; holds no connection)                 database the slow dependency
- memory: grow the heap by N MB (kept until reset)              -> memory > 90 %
- drop_db: terminate the pool and stay disconnected until a     -> database connection lost
  RestartConnectionPool command (or reset)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Faults", "FaultUpdate"]


class FaultUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error_rate: float | None = Field(default=None, ge=0, le=1)
    latency_ms: float | None = Field(default=None, ge=0, le=60_000)
    slow_query_ms: float | None = Field(default=None, ge=0, le=30_000)
    slow_db_ms: float | None = Field(default=None, ge=0, le=60_000)
    grow_memory_mb: int | None = Field(default=None, ge=0, le=4096)
    drop_db: bool | None = None


@dataclass
class Faults:
    error_rate: float = 0.0
    latency_ms: float = 0.0
    slow_query_ms: float = 0.0
    ballast: list[bytearray] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)

    @property
    def memory_mb(self) -> int:
        return sum(len(b) for b in self.ballast) // (1024 * 1024)

    def grow(self, mb: int) -> None:
        for _ in range(mb):
            chunk = bytearray(1024 * 1024)
            chunk[::4096] = b"x" * len(chunk[::4096])  # touch every page so RSS really grows
            self.ballast.append(chunk)

    def should_fail(self) -> bool:
        return self.error_rate > 0 and self.rng.random() < self.error_rate

    def reset(self) -> None:
        self.error_rate = self.latency_ms = self.slow_query_ms = 0.0
        self.ballast.clear()

    def describe(self) -> dict[str, float | int]:
        return {"error_rate": self.error_rate, "latency_ms": self.latency_ms, "slow_query_ms": self.slow_query_ms,
                "memory_mb": self.memory_mb}
