"""Commands the recovery service sends and the facts it reports."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, NonNegativeFloat

from shared import topics
from shared.events.base import Event

__all__ = [
    "Command", "RestartConnectionPool", "RestartProcess", "OpenCircuitBreaker", "DisableNewFeatures",
    "RecoveryActionStarted", "RecoveryActionSucceeded", "RecoveryActionFailed", "RecoveryActionVerified",
]


class Command(Event):
    """A command addressed to every instance of `service` (or to one `instance`)."""

    topic: ClassVar[str] = topics.RECOVERY_COMMANDS
    service: str = Field(min_length=1)
    instance: str | None = None
    reason: str = ""
    episode_id: str | None = None


class RestartConnectionPool(Command):
    """Close and reopen the database connection pool (runbook: database connection lost)."""

    type: Literal["recovery.restart_connection_pool"] = "recovery.restart_connection_pool"
    pool: str = "postgres"


class RestartProcess(Command):
    """Exit cleanly so the process manager starts a fresh process (runbook: memory > 90 %)."""

    type: Literal["recovery.restart_process"] = "recovery.restart_process"


class OpenCircuitBreaker(Command):
    """Force a breaker open for a while (runbook: response time > 5 s)."""

    type: Literal["recovery.open_circuit_breaker"] = "recovery.open_circuit_breaker"
    breaker: str = "postgres"
    duration_seconds: NonNegativeFloat = 60


class DisableNewFeatures(Command):
    """Kill every flag marked `new` (runbook: error rate > 5 %)."""

    type: Literal["recovery.disable_new_features"] = "recovery.disable_new_features"


class _Action(Event):
    topic: ClassVar[str] = topics.RECOVERY_ACTIONS
    service: str = Field(min_length=1)
    action_id: str = Field(min_length=1)
    action: str = Field(min_length=1, description="e.g. disable_new_features")
    trigger: str | None = None
    episode_id: str | None = None
    attempt: int = 1
    detail: str = ""


class RecoveryActionStarted(_Action):
    """Recovery began an action in answer to a trigger (level 1 of the escalation path)."""

    type: Literal["recovery.action_started"] = "recovery.action_started"


class RecoveryActionSucceeded(_Action):
    """The action finished and the trigger is expected to clear."""

    type: Literal["recovery.action_succeeded"] = "recovery.action_succeeded"


class RecoveryActionFailed(_Action):
    """The action failed or did not clear the trigger in time; the notifier escalates."""

    type: Literal["recovery.action_failed"] = "recovery.action_failed"


class RecoveryActionVerified(_Action):
    """The action's effect was seen, before (and whether or not) the trigger clears: the process has a new
    PID and answers, the pool is connected again, the breaker is open, the killed flags serve off. The
    notifier marks the incident mitigated. `effect` says what was seen; `seconds` from the action's start."""

    type: Literal["recovery.action_verified"] = "recovery.action_verified"
    effect: str = Field(min_length=1, max_length=1000)
    seconds: NonNegativeFloat = 0.0
