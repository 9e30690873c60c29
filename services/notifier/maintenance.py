"""Maintenance windows (like Statuspage's scheduled maintenance and Alertmanager's silences): the models, the
checks a new window must pass, the business-hours overlap (refused unless forced) and a window's phase.
Pure: no framework imports.

While a window is in progress for a service, that service's incidents are still recorded (marked
`during_maintenance`) but their notices are held (`Silences`), and the status page shows the component
"under maintenance".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from services.notifier.policy import WEEKDAYS, BusinessHours, MaintenancePolicy
from shared.events import MaintenanceWindowCancelled, MaintenanceWindowScheduled

__all__ = ["MaintenanceCreate", "MaintenanceWindow", "Phase", "Silences", "problems", "business_hours_overlap",
           "business_hours_warning", "phase", "COMPONENT", "scheduled_event", "cancelled_event"]

Phase = Literal["upcoming", "in_progress", "past", "cancelled"]
COMPONENT = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
GRACE = timedelta(minutes=5)  # a start a little in the past (a slow client, clock skew) still counts as now


class MaintenanceCreate(BaseModel):
    """`POST /api/maintenance`. Without `starts_at` the window starts now."""

    model_config = {"extra": "forbid"}
    title: str = Field(min_length=1, max_length=200)
    components: list[str] = Field(min_length=1, max_length=50,
                                  description="The services / components affected (names as on the status page).")
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime
    description: str = Field(default="", max_length=4000)

    @field_validator("components")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        bad = [n for n in names if not re.fullmatch(COMPONENT, n)]
        if bad:
            raise ValueError(f"not a component name: {', '.join(map(repr, bad))} (letters, digits, _ . : -)")
        return sorted(set(names))


class MaintenanceWindow(BaseModel):
    window_id: str
    title: str
    description: str = ""
    components: list[str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    created_at: datetime
    cancelled_by: str | None = None
    cancelled_at: datetime | None = None
    forced: bool = Field(default=False, description="Inside business hours, scheduled anyway (`?force=true`) "
                                                    "by `created_by`.")

    @field_validator("starts_at", "ends_at", "created_at", "cancelled_at")
    @classmethod
    def _utc(cls, t: datetime | None) -> datetime | None:
        return t.astimezone(UTC) if t is not None and t.tzinfo is not None else t

    def phase(self, now: datetime) -> Phase:
        return phase(self, now)

    @property
    def called_off(self) -> bool:
        """Cancelled before it began (one cancelled while in progress ended early: `ends_at` moved)."""
        return self.cancelled_at is not None and self.cancelled_at <= self.starts_at

    def covers(self, service: str, at: datetime) -> bool:
        return not self.called_off and service in self.components and self.starts_at <= at < self.ends_at


def phase(w: MaintenanceWindow, now: datetime) -> Phase:
    if w.called_off:
        return "cancelled"
    if now < w.starts_at:
        return "upcoming"
    return "in_progress" if now < w.ends_at else "past"


class Silences(Protocol):
    async def silencing(self, *, service: str, at: datetime) -> str | None:
        """The title of a maintenance window in progress for `service` at `at`, else None."""


def problems(req: MaintenanceCreate, *, now: datetime, policy: MaintenancePolicy) -> list[str]:
    """Why the window cannot be scheduled (empty: it can). Checked against the clock, so not in the model."""
    start = req.starts_at or now
    out = []
    if req.ends_at <= start:
        out.append(f"ends_at ({req.ends_at.isoformat()}) must be after starts_at ({start.isoformat()})")
    if start < now - GRACE:
        out.append(f"starts_at ({start.isoformat()}) is in the past; leave it out to start now")
    if req.ends_at <= now:
        out.append(f"ends_at ({req.ends_at.isoformat()}) is in the past")
    longest = timedelta(seconds=policy.max_duration)
    if req.ends_at - start > longest:
        out.append(f"the window lasts {_human(req.ends_at - start)}; the longest allowed is {_human(longest)} "
                   "(policy maintenance.max_duration)")
    return out


def business_hours_overlap(start: datetime, end: datetime, hours: BusinessHours) -> tuple[datetime, datetime] | None:
    """The first stretch of [start, end) inside business hours (in their time zone), else None."""
    tz = ZoneInfo(hours.timezone)
    day, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    while day <= last:
        if WEEKDAYS[day.weekday()] in hours.days:
            lo = max(datetime.combine(day, hours.start, tz), start)
            hi = min(datetime.combine(day, hours.end, tz), end)
            if lo < hi:
                return lo, hi
        day += timedelta(days=1)
    return None


def business_hours_warning(start: datetime, end: datetime, hours: BusinessHours) -> str | None:
    hit = business_hours_overlap(start, end, hours)
    if hit is None:
        return None
    tz = ZoneInfo(hours.timezone)
    lo, hi = hit[0].astimezone(tz), hit[1].astimezone(tz)  # the request may be in UTC: say it in local time
    return (f"the window falls inside business hours ({hours}): {lo:%a %Y-%m-%d %H:%M}-{hi:%H:%M} local time; "
            "the runbook plans maintenance outside business hours")


def scheduled_event(w: MaintenanceWindow) -> MaintenanceWindowScheduled:
    return MaintenanceWindowScheduled(time=w.created_at, window_id=w.window_id, components=w.components,
                                      starts_at=w.starts_at, ends_at=w.ends_at, by=w.created_by, title=w.title,
                                      forced=w.forced)


def cancelled_event(w: MaintenanceWindow) -> MaintenanceWindowCancelled:
    """`w` as cancelled (`cancelled_at` set, `ends_at` moved to it when it was in progress)."""
    assert w.cancelled_at is not None and w.cancelled_by is not None
    return MaintenanceWindowCancelled(time=w.cancelled_at, window_id=w.window_id, components=w.components,
                                      starts_at=w.starts_at, ends_at=max(w.ends_at, w.starts_at + timedelta(seconds=1)),
                                      by=w.cancelled_by, cancelled_at=w.cancelled_at)


def _human(d: timedelta) -> str:
    s = d.total_seconds()
    if s >= 86400:
        return f"{s / 86400:g} days"
    return f"{s / 3600:g} h" if s >= 3600 else f"{s / 60:g} min"
