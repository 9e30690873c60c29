"""`/console/incidents` (open first) and `/console/incidents/{id}`: the timeline (opened, triggers, recovery
actions, escalation L1-L4, notices, acknowledged, resolved), acknowledge / resolve through the notifier's API
as `admin:<name>`, the post-incident report rendered, and "Open trace" when the incident has a trace id."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.console.auth import Session, checked_operator, viewer
from services.console.human import since
from services.console.incident_views import duration, human_title, ladder, ordered, report_html, timeline
from services.console.ops_api import UpstreamError, ops_api
from services.console.templating import render

__all__ = ["router"]

router = APIRouter()

IncidentId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]
Viewer = Annotated[Session | None, Depends(viewer)]
Operator = Annotated[Session, Depends(checked_operator)]
_DONE = {"acknowledged": "Acknowledged: escalation stopped.", "resolved": "Resolved: the report is written."}


def _error(request: Request, session: Session | None, exc: UpstreamError) -> HTMLResponse:
    return render(request, "ops_error.html", status_code=exc.status, page="incidents", session=session,
                  title="Incidents", message=exc.message, back="/console/incidents")


def _row(incident: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    end = incident.get("resolved_at")
    opened = datetime.fromisoformat(incident["opened_at"].replace("Z", "+00:00"))
    stop = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else now
    return incident | {"human_title": human_title(incident), "opened_ago": since(incident["opened_at"], now=now),
                       "lasted": duration((stop - opened).total_seconds())}


@router.get("/incidents", response_class=HTMLResponse)
async def incidents_page(request: Request, session: Viewer) -> HTMLResponse:
    """Open incidents and those resolved in the last 30 days (200 at most), open first."""
    try:
        found = await ops_api(request, "notifier").call("GET", "/api/incidents", params={"limit": 200, "days": 30})
    except UpstreamError as exc:
        return _error(request, session, exc)
    now = datetime.now(UTC)
    rows = [_row(i, now=now) for i in ordered(found)]
    return render(request, "incidents.html", page="incidents", session=session, incidents=rows,
                  open_count=sum(i["status"] != "resolved" for i in rows))


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
async def incident_page(request: Request, incident_id: IncidentId, session: Viewer, done: str = "") -> HTMLResponse:
    api = ops_api(request, "notifier")
    base = f"/api/incidents/{incident_id}"
    try:
        incident, deliveries, report = await asyncio.gather(
            api.call("GET", base), api.call("GET", f"{base}/deliveries"),
            api.call("GET", f"{base}/report", missing_ok=True))
    except UpstreamError as exc:
        return _error(request, session, exc)
    trace_id = incident.get("trace_id")
    trace = request.app.state.settings.trace_url.format(trace_id=trace_id) if trace_id else None
    return render(request, "incident.html", page="incidents", session=session,
                  inc=_row(incident, now=datetime.now(UTC)), timeline=timeline(incident, deliveries),
                  ladder=ladder(incident), report=report_html(report), trace_url=trace, flash=_DONE.get(done, ""))


@router.post("/incidents/{incident_id}/{action}")
async def change(request: Request, incident_id: IncidentId, action: Literal["acknowledge", "resolve"],
                 session: Operator, note: Annotated[str, Form(max_length=1000)] = "") -> Response:
    """Acknowledge (escalation stops) or resolve (the report is written), as `admin:<name>`."""
    body = {"note": note.strip() or f"resolved from the console by {session.actor}"} if action == "resolve" else None
    try:
        await ops_api(request, "notifier", session).call("POST", f"/api/incidents/{incident_id}/{action}", json=body)
    except UpstreamError as exc:
        return _error(request, session, exc)
    done = "acknowledged" if action == "acknowledge" else "resolved"
    return RedirectResponse(request.url_for("incident_page", incident_id=incident_id).include_query_params(done=done),
                            status_code=303)
