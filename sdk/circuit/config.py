"""`BreakerConfig`: resilience4j's CircuitBreakerConfig, with the runbook's database and cache presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["BreakerConfig"]


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
