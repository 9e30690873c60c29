"""The recovery policy (`config/recovery.yaml`): which action answers which trigger, and the limits.

Validated at start: a bad file raises `PolicyError` naming the field, and the service stops
with that message instead of running on a guess.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

__all__ = ["PolicyError", "ActionName", "ActionRule", "RecoveryPolicy", "load_policy", "ACTIONS"]

ActionName = Literal["disable_new_features", "open_circuit_breaker", "restart_process",
                     "restart_connection_pool", "none"]
ACTIONS: tuple[str, ...] = ("disable_new_features", "open_circuit_breaker", "restart_process",
                            "restart_connection_pool")
_UNITS = {"s": 1, "m": 60, "h": 3600}


class PolicyError(ValueError):
    """The policy file is missing a field, has a bad value, or cannot be read."""


def _duration(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    raise ValueError(f"not a duration: {value!r} (use seconds or 90s / 5m / 1h)")


Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActionRule(_Strict):
    """What to do for one trigger. `breaker`/`duration` for open_circuit_breaker, `pool` for the pool."""

    action: ActionName
    breaker: str = Field(default="postgres", min_length=1)
    duration: Duration = Field(default=60.0, gt=0)
    pool: str = Field(default="postgres", min_length=1)


class Triggers(_Strict):
    error_rate_high: ActionRule = ActionRule(action="disable_new_features")
    latency_high: ActionRule = ActionRule(action="open_circuit_breaker")
    memory_high: ActionRule = ActionRule(action="restart_process")
    db_connection_lost: ActionRule = ActionRule(action="restart_connection_pool")
    budget_burn: ActionRule = ActionRule(action="none")


class RecoveryPolicy(_Strict):
    """`verify_window`: how long the trigger has to clear after an action (runbook: auto-recovery < 5 min).
    `cooldown`: no new automatic action for the same (service, trigger) within it.
    `max_attempts`: actions per episode at most (automatic and operator together)."""

    verify_window: Duration = Field(default=300.0, gt=0)
    cooldown: Duration = 120.0
    max_attempts: int = Field(default=2, ge=1, le=10)
    triggers: Triggers = Triggers()

    def rule(self, trigger: str) -> ActionRule:
        rule = getattr(self.triggers, trigger, None)
        return rule if isinstance(rule, ActionRule) else ActionRule(action="none")


def load_policy(path: Path | str) -> RecoveryPolicy:
    """Read and validate the YAML policy; `PolicyError` names the first bad field."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: the top level must be a mapping")
    try:
        return RecoveryPolicy.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise PolicyError(f"{path}: field '{field}': {first['msg']}") from exc
