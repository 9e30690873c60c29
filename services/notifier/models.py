"""An incident, its timeline, and the record of each notification."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["Incident", "TimelineEntry", "DeliveryRecord", "Status", "EntryKind"]

Status = Literal["open", "mitigated", "resolved"]
EntryKind = Literal["opened", "action", "escalated", "acknowledged", "mitigated", "resolved", "notified"]


class TimelineEntry(BaseModel):
    at: datetime
    kind: EntryKind
    text: str
    actor: str = "notifier"


class Incident(BaseModel):
    """One incident per (service, trigger episode). `level`: the escalation level reached (1 = auto-recovery)."""

    incident_id: str
    service: str
    trigger: str
    episode_id: str
    title: str
    severity: Literal["critical", "major", "minor"]
    status: Status = "open"
    level: int = 1
    acknowledged_by: str | None = None
    opened_at: datetime
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)

    @property
    def escalating(self) -> bool:
        return self.status == "open" and self.acknowledged_by is None and self.level < 4


class DeliveryRecord(BaseModel):
    delivery_id: str
    incident_id: str | None
    channel: str
    recipient: str
    ok: bool
    error: str = ""
    message: str
    at: datetime
