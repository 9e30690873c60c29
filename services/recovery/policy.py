"""The recovery policy (`config/recovery.yaml`): which action answers which trigger, and the limits.

Validated at start: a bad file raises `PolicyError` naming the field, and the service stops
with that message instead of running on a guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from shared.policy import Duration, PolicyError, Strict, load_yaml

__all__ = ["PolicyError", "ActionName", "ActionRule", "RecoveryPolicy", "load_policy", "ACTIONS"]

ActionName = Literal["disable_new_features", "open_circuit_breaker", "restart_process",
                     "restart_connection_pool", "none"]
ACTIONS: tuple[str, ...] = ("disable_new_features", "open_circuit_breaker", "restart_process",
                            "restart_connection_pool")


class ActionRule(Strict):
    """What to do for one trigger. `breaker`/`duration` for open_circuit_breaker, `pool` for the pool.
    `services`: only for these services (the others get no action, escalation only); empty: every service."""

    action: ActionName
    breaker: str = Field(default="postgres", min_length=1)
    duration: Duration = Field(default=60.0, gt=0)
    pool: str = Field(default="postgres", min_length=1)
    services: list[str] = Field(default_factory=list, max_length=100)

    def applies_to(self, service: str) -> bool:
        return not self.services or service in self.services


class Triggers(Strict):
    error_rate_high: ActionRule = ActionRule(action="disable_new_features")
    latency_high: ActionRule = ActionRule(action="open_circuit_breaker")
    memory_high: ActionRule = ActionRule(action="restart_process")
    db_connection_lost: ActionRule = ActionRule(action="restart_connection_pool")
    budget_burn: ActionRule = ActionRule(action="none")
    # one of Safeguard's own processors hung (health's watchdog): the SLA processor is restarted; recovery
    # cannot restart itself, so for it the page is all
    unresponsive: ActionRule = ActionRule(action="restart_process", services=["sla"])


class RecoveryPolicy(Strict):
    """`verify_window`: how long the trigger has to clear after an action (runbook: auto-recovery < 5 min).
    `cooldown`: no new automatic action for the same (service, trigger) within it.
    `max_attempts`: actions per episode at most (automatic and operator together)."""

    verify_window: Duration = Field(default=300.0, gt=0)
    cooldown: Duration = 120.0
    max_attempts: int = Field(default=2, ge=1, le=10)
    triggers: Triggers = Triggers()

    def rule(self, trigger: str, service: str | None = None) -> ActionRule:
        """The rule for `trigger`; with `service`, no action where the rule is kept to other services."""
        rule = getattr(self.triggers, trigger, None)
        if not isinstance(rule, ActionRule) or (service is not None and not rule.applies_to(service)):
            return ActionRule(action="none")
        return rule


def load_policy(path: Path | str) -> RecoveryPolicy:
    """Read and validate the YAML policy; `PolicyError` names the bad fields."""
    return load_yaml(path, RecoveryPolicy, what="recovery policy")
