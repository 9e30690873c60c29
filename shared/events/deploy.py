"""What `safeguard deploy` / `switch` / `rollback` did: the notifier puts a rollback in an incident."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field, NonNegativeFloat

from shared import topics
from shared.events.base import Event

__all__ = ["DeploymentFinished", "DeploymentRolledBack", "DeploymentStarted"]


class _Deployment(Event):
    topic: ClassVar[str] = topics.DEPLOY_EVENTS
    service: str = Field(min_length=1, description="The protected app (its service name).")
    deploy_id: str = Field(min_length=1)
    version: str = Field(min_length=1, description="The version being deployed (or rolled back from).")
    from_version: str | None = None
    colour: str = Field(min_length=1, description="The colour that runs `version`.")
    from_colour: str | None = None
    actor: str = "safeguard"


class DeploymentStarted(_Deployment):
    """A new version started on the idle colour; traffic will follow in `steps` percent."""

    type: Literal["deploy.started"] = "deploy.started"
    steps: list[int] = Field(default_factory=list)


class DeploymentFinished(_Deployment):
    """All traffic is on the new version."""

    type: Literal["deploy.finished"] = "deploy.finished"
    seconds: NonNegativeFloat = 0


class DeploymentRolledBack(_Deployment):
    """Traffic went back to `from_colour` (auto, on a trigger or the canary's own errors, or by hand)."""

    type: Literal["deploy.rolled_back"] = "deploy.rolled_back"
    reason: str = Field(min_length=1)
    automatic: bool = True
    switch_ms: NonNegativeFloat = Field(default=0, description="Time to move all traffic back.")
    flags_killed: list[str] = Field(default_factory=list)
    database_to: str | None = Field(default=None, description="The migration the database was rolled back to.")
    healthy: bool = Field(default=True, description="The old colour answers its health check after the switch.")
    started_at: datetime | None = Field(default=None, description="When the deploy began: an incident opened since "
                                                                  "then is this deploy's.")
