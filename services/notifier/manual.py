"""Manual incidents: a person opens one (a customer report, a problem no trigger sees), posts updates and
changes its severity. Each change is one `Change` of the core, written with who made it (the audit trail is
the incident's timeline: every entry names its actor).
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.notifier.models import Change, Incident
from services.notifier.service import Conflict, NotifierService, incident_id_for
from shared.events import IncidentMitigated, IncidentOpened

__all__ = ["ManualOpen", "ManualUpdate", "SeverityChange", "open_manual", "post_update", "change_severity"]

Severity = Literal["critical", "major", "minor"]
_STEP = {"investigating": "Investigating", "identified": "Identified", "monitoring": "Monitoring", None: "Update"}


class ManualOpen(BaseModel):
    """`page`: page the level 2 on-call now (and escalate while nobody acknowledges); without it the incident
    is the opener's (acknowledged by them)."""

    model_config = ConfigDict(extra="forbid")
    service: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    title: str = Field(min_length=3, max_length=200)
    severity: Severity = "major"
    note: str = Field(default="", max_length=1000)
    page: bool = False


class ManualUpdate(BaseModel):
    """`status` `monitoring` marks the incident mitigated (a fix is in place)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=1000)
    status: Literal["investigating", "identified", "monitoring"] | None = None


class SeverityChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    severity: Severity
    reason: str = Field(default="", max_length=500)


async def open_manual(svc: NotifierService, *, body: ManualOpen, actor: str) -> Incident:
    episode = f"manual-{uuid.uuid4().hex[:12]}"
    inc = Incident(incident_id=incident_id_for(body.service, episode), service=body.service, trigger="manual",
                   episode_id=episode, title=f"{body.service}: {body.title}", severity=body.severity,
                   opened_at=svc.now(), level=2, acknowledged_by=None if body.page else actor)
    ch = Change(inc, version=None)
    svc._entry(ch, "opened", f"opened by hand{': ' + body.note if body.note else ''}"
                             f"{'; paging level 2' if body.page else '; owned by ' + actor}", actor=actor)
    ch.events.append(IncidentOpened(service=inc.service, incident_id=inc.incident_id, title=inc.title,
                                    severity=inc.severity, trigger="manual", episode_id=episode))
    if body.page:
        svc._arm(inc, since=inc.opened_at)
        svc._page(ch, f"[L2 {svc.policy.level(2).name}] {inc.severity.upper()} {inc.title}: opened by {actor}")
    svc._announce(ch, f"Investigating: {inc.title}", public=True)
    await svc._commit(ch)
    return inc


async def post_update(svc: NotifierService, incident_id: str, *, body: ManualUpdate, actor: str) -> Incident:
    inc = await _unresolved(svc, incident_id)
    ch = Change(inc, version=inc.version)
    svc._entry(ch, "update", f"{body.status + ': ' if body.status else ''}{body.text}", actor=actor)
    if body.status == "monitoring" and inc.status == "open":
        inc.status, inc.mitigated_at, inc.escalate_at = "mitigated", svc.now(), None
        svc._entry(ch, "mitigated", body.text, actor=actor)
        ch.events.append(IncidentMitigated(service=inc.service, incident_id=inc.incident_id, by=actor,
                                           note=body.text[:500]))
    svc._announce(ch, f"{_STEP[body.status]}: {inc.title}: {body.text}", public=False)
    await svc._commit(ch)
    return inc


async def change_severity(svc: NotifierService, incident_id: str, *, body: SeverityChange, actor: str) -> Incident:
    inc = await _unresolved(svc, incident_id)
    if inc.severity == body.severity:
        return inc
    ch = Change(inc, version=inc.version)
    old, inc.severity = inc.severity, body.severity
    svc._entry(ch, "severity", f"severity {old} -> {body.severity}{': ' + body.reason if body.reason else ''}",
               actor=actor)
    svc._announce(ch, f"Update: {inc.title} is now {body.severity}", public=False)
    await svc._commit(ch)
    return inc


async def _unresolved(svc: NotifierService, incident_id: str) -> Incident:
    inc = await svc.get(incident_id)
    if inc.status == "resolved":
        raise Conflict(f"{incident_id} is already resolved")
    return inc
