"""The audited record of one recovery action, and the operator's run request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ActionRecord", "Status", "RunRequest", "Episode", "History", "Claim"]

Status = Literal["started", "succeeded", "failed", "skipped"]
Claim = Literal["free", "busy", "done"]


@dataclass
class Episode:
    """A trigger that fired and has not cleared yet. `attempts`: its actions so far (skips excluded)."""

    service: str
    trigger: str
    episode_id: str
    instance: str | None
    reason: str
    attempts: int = 0


@dataclass(frozen=True)
class History:
    """What the store knows before an action is claimed, read under the claim lock.

    `automatic`: "busy" while another instance executes this episode's automatic action, "done" once it
    was sent or skipped, "free" otherwise."""

    last_action_at: datetime | None
    attempts: int
    automatic: Claim


class ActionRecord(BaseModel):
    """Who did what, why (trigger, episode), how it went, when."""

    action_id: str
    service: str
    action: str
    trigger: str | None = None
    episode_id: str | None = None
    instance: str | None = None
    attempt: int = 1
    actor: str = "recovery"
    reason: str = ""
    status: Status = "started"
    detail: str = ""
    started_at: datetime
    finished_at: datetime | None = None


class RunRequest(BaseModel):
    """`POST /api/recovery/run`: the actions for the service's active triggers, or one named action."""

    model_config = ConfigDict(extra="forbid")
    service: str = Field(default="demo", min_length=1, max_length=200)
    action: Literal["disable_new_features", "open_circuit_breaker", "restart_process",
                    "restart_connection_pool"] | None = None
    instance: str | None = Field(default=None, max_length=200)
    reason: str = Field(default="", max_length=500)
