"""Events about the health of targets and processes."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt

from shared import topics
from shared.events.base import Event

__all__ = [
    "HealthCheckCompleted", "ProcessStatsReported", "PoolStats", "ProbeKind", "ProbeStatus", "BreakerState",
    "CircuitBreakerStateChanged", "DependencyStats",
]

ProbeKind = Literal["http", "tcp", "postgres", "redis", "kafka", "process"]
ProbeStatus = Literal["pass", "warn", "fail"]
BreakerState = Literal["closed", "open", "half_open", "forced_open", "disabled"]


class HealthCheckCompleted(Event):
    """One probe of one target by the health service.

    `status` is this probe's result; `state` is the target's debounced state after N
    consecutive failures / M successes, so consumers need not re-implement hysteresis.
    """

    topic: ClassVar[str] = topics.HEALTH_CHECKS
    type: Literal["health.check_completed"] = "health.check_completed"
    service: str = Field(min_length=1, description="The service the target belongs to.")
    target: str = Field(min_length=1)
    kind: ProbeKind
    status: ProbeStatus
    state: Literal["up", "down"]
    latency_ms: NonNegativeFloat
    observed_value: float | str | None = None
    observed_unit: str | None = None
    message: str = ""
    consecutive: NonNegativeInt = 1


class PoolStats(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str = "postgres"
    size: NonNegativeInt
    idle: NonNegativeInt
    max_size: NonNegativeInt
    connected: bool


class DependencyStats(BaseModel):
    """The calls of one process to one dependency (a breaker's name: `postgres`, `redis`) over the last
    `window_seconds`, timed by the SDK around the real call (refused calls of an open breaker excluded).
    `slow_calls`: completed calls over `slow_threshold_ms` plus calls still in flight past it, so a hung
    dependency shows as slow before anything returns; `slow_call_rate` is their share in percent."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str = Field(min_length=1)
    window_seconds: NonNegativeFloat
    calls: NonNegativeInt
    slow_calls: NonNegativeInt
    slow_call_rate: NonNegativeFloat = Field(le=100)
    slow_threshold_ms: NonNegativeFloat
    mean_ms: NonNegativeFloat = 0.0
    max_ms: NonNegativeFloat = 0.0
    in_flight: NonNegativeInt = 0


class ProcessStatsReported(Event):
    """Memory and connection-pool state of one process of a protected app (or of a service)."""

    topic: ClassVar[str] = topics.HEALTH_CHECKS
    type: Literal["health.process_stats_reported"] = "health.process_stats_reported"
    service: str = Field(min_length=1)
    instance: str = Field(min_length=1)
    pid: NonNegativeInt
    rss_bytes: NonNegativeInt
    memory_limit_bytes: NonNegativeInt
    memory_percent: NonNegativeFloat = Field(description="rss / limit * 100 (cgroup limit, else host RAM).")
    pools: list[PoolStats] = Field(default_factory=list)
    breakers: dict[str, BreakerState] = Field(
        default_factory=dict, description="Current state of each circuit breaker of the process, by name."
    )
    dependencies: list[DependencyStats] = Field(
        default_factory=list, description="Call latency and slow-call rate of each guarded dependency.")


class CircuitBreakerStateChanged(Event):
    """A circuit breaker of one process of a protected app changed state (emitted by the SDK).

    `shared` is true when the change came from another instance through the shared OPEN
    state in Redis (or from a recovery command), false when this instance's own sliding
    window decided it. Rates are percentages over the window that decided, -1 when unknown.
    """

    topic: ClassVar[str] = topics.HEALTH_CHECKS
    type: Literal["health.breaker_state_changed"] = "health.breaker_state_changed"
    service: str = Field(min_length=1)
    instance: str = Field(min_length=1)
    breaker: str = Field(min_length=1)
    from_state: BreakerState
    to_state: BreakerState
    reason: str = ""
    shared: bool = False
    failure_rate: float = -1.0
    slow_call_rate: float = -1.0
    open_for_seconds: NonNegativeFloat | None = None
