"""An incident, its timeline, and the record of each notification."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from shared.tracing_links import trace_id_of

from shared.events import Event

__all__ = ["Incident", "TimelineEntry", "DeliveryRecord", "Status", "EntryKind", "DeliveryStatus", "Change",
           "OutboxRow"]

Status = Literal["open", "mitigated", "resolved"]
DeliveryStatus = Literal["pending", "sent", "failed"]
EntryKind = Literal["opened", "detected", "action", "escalated", "acknowledged", "mitigated", "resolved",
                    "notified", "update", "severity"]


class TimelineEntry(BaseModel):
    at: datetime
    kind: EntryKind
    text: str
    actor: str = "notifier"


class Incident(BaseModel):
    """One incident per (service, trigger episode). `level`: the escalation level reached (1 = auto-recovery).
    `during_maintenance`: it came (or changed) while a maintenance window covered its service; notices held."""

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
    escalate_at: datetime | None = None
    during_maintenance: bool = False
    version: int = 0
    traceparent: str | None = Field(default=None, description="W3C traceparent of the span that opened it")
    timeline: list[TimelineEntry] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def trace_id(self) -> str | None:
        """The trace this incident belongs to (from the failing request to the notices): a trace viewer's id."""
        return trace_id_of(self.traceparent)

    @property
    def escalating(self) -> bool:
        return self.status == "open" and self.acknowledged_by is None and self.level < 4


class DeliveryRecord(BaseModel):
    """One notice on one channel. `pending` until sent; a failed try is retried at `next_at` (the relay) until
    the policy's `redeliveries` are used up (`failed`)."""

    delivery_id: str
    incident_id: str | None
    channel: str
    recipient: str
    ok: bool
    error: str = ""
    message: str
    at: datetime
    status: DeliveryStatus = "sent"
    attempts: int = 0
    next_at: datetime | None = None


@dataclass
class Change:
    """One state change of an incident, written in one transaction: the incident (`version`: the version it
    was read at; None for a new incident, written only if absent), its new timeline entries, the events
    to publish and the notices to deliver (both sent afterwards by the relay), and the report."""

    incident: Incident
    version: int | None
    entries: list[TimelineEntry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    notices: list[DeliveryRecord] = field(default_factory=list)
    report: str | None = None


@dataclass(frozen=True)
class OutboxRow:
    """An event written with a change and not yet published."""

    row_id: int
    event: Event
    attempts: int
