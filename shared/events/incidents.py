"""The incident life cycle (owned by the notifier) and notification deliveries."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from shared import topics
from shared.events.base import Event

__all__ = [
    "Severity", "IncidentOpened", "IncidentEscalated", "IncidentAcknowledged", "IncidentMitigated",
    "IncidentResolved", "NotificationDelivered", "NotificationFailed",
]

Severity = Literal["critical", "major", "minor"]


class _Incident(Event):
    topic: ClassVar[str] = topics.INCIDENTS_EVENTS
    service: str = Field(min_length=1)
    incident_id: str = Field(min_length=1)


class IncidentOpened(_Incident):
    """A trigger opened an incident."""

    type: Literal["incidents.opened"] = "incidents.opened"
    title: str
    severity: Severity = "major"
    trigger: str | None = None
    episode_id: str | None = None


class IncidentEscalated(_Incident):
    """The incident moved up the escalation path (L1 auto-recovery .. L4 infrastructure)."""

    type: Literal["incidents.escalated"] = "incidents.escalated"
    level: int = Field(ge=1, le=4)
    target: str = Field(description="Who is now paged, e.g. 'on-call developer'.")


class IncidentAcknowledged(_Incident):
    """A person took the incident."""

    type: Literal["incidents.acknowledged"] = "incidents.acknowledged"
    by: str


class IncidentMitigated(_Incident):
    """Impact stopped (e.g. recovery action succeeded) but the cause is not closed."""

    type: Literal["incidents.mitigated"] = "incidents.mitigated"
    by: str
    note: str = ""


class IncidentResolved(_Incident):
    """The incident is over."""

    type: Literal["incidents.resolved"] = "incidents.resolved"
    by: str
    duration_seconds: float = Field(ge=0)


class _Delivery(Event):
    topic: ClassVar[str] = topics.NOTIFIER_DELIVERIES
    service: str = Field(min_length=1)
    incident_id: str | None = None
    channel: str = Field(description="status_page, user, stakeholder, webhook, ...")
    recipient: str


class NotificationDelivered(_Delivery):
    """A notification reached its channel."""

    type: Literal["notifier.delivered"] = "notifier.delivered"


class NotificationFailed(_Delivery):
    """A notification could not be delivered after its retries."""

    type: Literal["notifier.failed"] = "notifier.failed"
    error: str
