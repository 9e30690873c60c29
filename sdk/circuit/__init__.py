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

Modules: `states` (states, outcomes, the refusal), `config` (BreakerConfig), `windows`
(sliding windows), `breaker` (the state machine), `shared_state` (the Redis-shared OPEN).
"""

from sdk.circuit.breaker import CircuitBreaker, Transition
from sdk.circuit.config import BreakerConfig
from sdk.circuit.shared_state import RedisBreakerState, SharedBreakerState, SharedOpen
from sdk.circuit.states import BreakerState, CallNotPermittedError, Outcome
from sdk.circuit.windows import CountWindow, TimeWindow, WindowSnapshot

__all__ = [
    "BreakerConfig", "BreakerState", "CallNotPermittedError", "CircuitBreaker", "Outcome", "Transition",
    "WindowSnapshot", "CountWindow", "TimeWindow", "SharedBreakerState", "SharedOpen", "RedisBreakerState",
]
