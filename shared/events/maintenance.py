"""Maintenance windows scheduled through the notifier's API (`POST /api/maintenance`), for every service that
must treat them as planned: the SLA processor leaves the covered components' requests and probes out of the
budgets while a window is on. One record per change on the compacted `maintenance.windows`, keyed by window."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field, model_validator

from shared import topics
from shared.events.base import Event

__all__ = ["MaintenanceWindowScheduled", "MaintenanceWindowCancelled"]


class _Window(Event):
    topic: ClassVar[str] = topics.MAINTENANCE_WINDOWS
    key_field: ClassVar[str] = "window_id"
    window_id: str = Field(min_length=1, max_length=64)
    components: list[str] = Field(min_length=1, max_length=50, description="The services the window covers.")
    starts_at: AwareDatetime
    ends_at: AwareDatetime = Field(description="When the window ends (a cancellation in progress moves it to then).")
    by: str = Field(min_length=1, description="Who scheduled or cancelled it (the admin actor).")

    @model_validator(mode="after")
    def _ordered(self) -> _Window:
        if self.ends_at <= self.starts_at:
            raise ValueError(f"ends_at ({self.ends_at.isoformat()}) must be after starts_at "
                             f"({self.starts_at.isoformat()})")
        return self


class MaintenanceWindowScheduled(_Window):
    """The notifier scheduled a window (`forced`: inside business hours, scheduled anyway with `?force=true`)."""

    type: Literal["maintenance.window_scheduled"] = "maintenance.window_scheduled"
    title: str = Field(min_length=1, max_length=200)
    forced: bool = False


class MaintenanceWindowCancelled(_Window):
    """The notifier cancelled a window: one called off before it began covers nothing (`cancelled_at` <=
    `starts_at`); one in progress ended at `cancelled_at` (= its new `ends_at`)."""

    type: Literal["maintenance.window_cancelled"] = "maintenance.window_cancelled"
    cancelled_at: AwareDatetime

    @property
    def covers_until(self) -> AwareDatetime:
        """The end of what the window still covers (`starts_at` when it covers nothing)."""
        return max(self.starts_at, min(self.ends_at, self.cancelled_at))
