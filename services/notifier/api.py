"""Inbound edge: HTTP. Incidents, acknowledge / resolve (admin, audited), reports, the status page."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from services.notifier.edge import Admin, Edge, Svc, bound, incident_or_404, notifier, reader_required
from services.notifier.models import DeliveryRecord, Incident
from services.notifier.service import NotFound
from services.notifier.status_page import HISTORY, render_feed, render_html
from shared.auth import Authenticator

__all__ = ["build_router", "require_incident_reader", "HISTORY"]


# incident details and deliveries (names, messages, webhook errors) are for operators
require_incident_reader = reader_required(
    "for incident details (Authorization: Bearer <key> or X-API-Key); the status page is public")


routes = APIRouter()
_reader = [Depends(require_incident_reader)]


def build_router(auth: Authenticator) -> APIRouter:
    return bound(Edge(auth=auth), routes)


async def _status(request: Request) -> dict[str, Any]:
    status: dict[str, Any] = await request.app.state.status.status(store=notifier(request).store,
                                                                   now=datetime.now(UTC))
    return status


@routes.get("/status", response_class=HTMLResponse, tags=["status"])
async def status_page(request: Request) -> HTMLResponse:
    """The public status page: components, 90-day uptime bars, incidents (no JS, refreshes every 30 s)."""
    return HTMLResponse(render_html(await _status(request)))


@routes.get("/status.json", tags=["status"])
async def status_json(request: Request) -> dict[str, Any]:
    """State per service and per component (with uptime bars), open incidents with timelines,
    incidents resolved in the last 7 days."""
    return await _status(request)


@routes.get("/status/feed.atom", tags=["status"], response_class=Response,
            responses={200: {"content": {"application/atom+xml": {}}}})
async def status_feed(request: Request) -> Response:
    """Open and recent incidents as an Atom feed (one entry per incident, updated with its timeline)."""
    page = str(request.url_for("status_page"))
    return Response(render_feed(await _status(request), self_url=str(request.url), page_url=page),
                    media_type="application/atom+xml; charset=utf-8")


@routes.get("/api/incidents", response_model=list[Incident], tags=["incidents"], dependencies=_reader)
async def incidents(svc: Svc, limit: int = Query(default=100, ge=1, le=1000),
                    days: float = Query(default=7, gt=0, le=365)) -> list[Incident]:
    """Open incidents and those resolved in the last `days`, newest first."""
    return await svc.store.recent(since=datetime.now(UTC) - timedelta(days=days), limit=limit)


@routes.get("/api/incidents/{incident_id}", response_model=Incident, tags=["incidents"], dependencies=_reader)
async def incident(incident_id: str, svc: Svc) -> Incident:
    """One incident with its timeline."""
    return await incident_or_404(svc, incident_id)


@routes.get("/api/incidents/{incident_id}/deliveries", response_model=list[DeliveryRecord], tags=["incidents"],
            dependencies=_reader)
async def deliveries(incident_id: str, svc: Svc) -> list[DeliveryRecord]:
    await incident_or_404(svc, incident_id)
    return await svc.store.deliveries(incident_id)


@routes.get("/api/incidents/{incident_id}/report", response_class=PlainTextResponse, tags=["incidents"],
            dependencies=_reader)
async def report(incident_id: str, svc: Svc) -> PlainTextResponse:
    """The post-incident report (Markdown), written when the incident resolved."""
    await incident_or_404(svc, incident_id)
    text = await svc.store.report(incident_id)
    if text is None:
        raise HTTPException(404, "no report yet: the incident is not resolved")
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")


@routes.post("/api/incidents/{incident_id}/acknowledge", response_model=Incident, tags=["incidents"])
async def acknowledge(incident_id: str, svc: Svc, actor: Admin) -> Incident:
    """Take the incident: escalation stops (admin token; the actor is written in the timeline)."""
    await incident_or_404(svc, incident_id)
    try:
        return await svc.acknowledge(incident_id, actor=actor)
    except NotFound:
        raise HTTPException(409, "the incident is already resolved") from None


@routes.post("/api/incidents/{incident_id}/resolve", response_model=Incident, tags=["incidents"])
async def resolve(incident_id: str, svc: Svc, actor: Admin,
                  note: Annotated[str, Body(embed=True, max_length=1000)] = "") -> Incident:
    """Close the incident by hand (admin token); writes the post-incident report."""
    await incident_or_404(svc, incident_id)
    try:
        return await svc.resolve(incident_id, actor=actor, note=note)
    except NotFound:
        raise HTTPException(409, "the incident is already resolved") from None
