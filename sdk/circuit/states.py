"""A breaker's states, a call's outcomes, and the error a refused call raises."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["BreakerState", "Outcome", "CallNotPermittedError", "FAILED", "SLOW"]


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
        return FAILED[self]

    @property
    def slow(self) -> int:
        return SLOW[self]


# Plain dict lookups: this sits on every guarded call, and enum tuple membership is slow.
FAILED = {Outcome.SUCCESS: 0, Outcome.FAILURE: 1, Outcome.SLOW_SUCCESS: 0, Outcome.SLOW_FAILURE: 1}
SLOW = {Outcome.SUCCESS: 0, Outcome.FAILURE: 0, Outcome.SLOW_SUCCESS: 1, Outcome.SLOW_FAILURE: 1}


class CallNotPermittedError(Exception):
    """The breaker is open (or its half-open permits are taken): the call was not made."""

    def __init__(self, name: str, state: BreakerState) -> None:
        super().__init__(f"circuit breaker {name!r} is {state.value}; call not permitted")
        self.name = name
        self.state = state
