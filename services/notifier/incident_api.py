"""Inbound edge: manual incidents (admin, audited in the timeline), acknowledge links from pages (a confirm
page, then a POST), the post-incident report as HTML, and who is on call."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query
from fastapi.responses import HTMLResponse

from services.notifier.ack import AckError
from services.notifier.api import require_incident_reader
from services.notifier.edge import Admin, Edge, Svc, bound, incident_or_404
from services.notifier.manual import (
    ManualOpen, ManualUpdate, SeverityChange, change_severity, open_manual, post_update,
)
from services.notifier.models import Incident
from services.notifier.report import render_report_html, templates
from services.notifier.service import Conflict, NotFound, NotifierService, StaleIncident
from shared.auth import Authenticator

__all__ = ["build_router"]

routes = APIRouter(tags=["incidents"])
_reader = [Depends(require_incident_reader)]


def build_router(auth: Authenticator) -> APIRouter:
    return bound(Edge(auth=auth), routes)


def _page(status: int, title: str, text: str, *, inc: Incident | None = None, token: str | None = None,
          person: str = "") -> HTMLResponse:
    html = templates().get_template("ack.html").render(title=title, text=text, inc=inc, token=token, person=person)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store",
                                                           "Referrer-Policy": "no-referrer"})


async def _changed(call: Any) -> Incident:
    try:
        inc: Incident = await call
    except NotFound as exc:
        raise HTTPException(404, f"no incident {exc}") from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except StaleIncident:
        raise HTTPException(409, "the incident changed meanwhile: read it again and retry") from None
    return inc


@routes.post("/api/incidents", response_model=Incident, status_code=201)
async def open_incident(body: ManualOpen, svc: Svc, actor: Admin) -> Incident:
    """Open an incident by hand (admin token; the opener is in the timeline). `page: true` pages level 2."""
    return await _changed(open_manual(svc, body=body, actor=actor))


@routes.post("/api/incidents/{incident_id}/updates", response_model=Incident)
async def update(incident_id: str, body: ManualUpdate, svc: Svc, actor: Admin) -> Incident:
    """Post an update (status page and stakeholders); `status: monitoring` marks it mitigated."""
    return await _changed(post_update(svc, incident_id, body=body, actor=actor))


@routes.post("/api/incidents/{incident_id}/severity", response_model=Incident)
async def severity(incident_id: str, body: SeverityChange, svc: Svc, actor: Admin) -> Incident:
    return await _changed(change_severity(svc, incident_id, body=body, actor=actor))


@routes.get("/api/incidents/{incident_id}/report.html", response_class=HTMLResponse, dependencies=_reader)
async def report_html(incident_id: str, svc: Svc) -> HTMLResponse:
    """The post-incident report as a page (written when the incident resolved)."""
    inc = await incident_or_404(svc, incident_id)
    text = await svc.store.report(incident_id)
    if text is None:
        raise HTTPException(404, "no report yet: the incident is not resolved")
    return HTMLResponse(render_report_html(text, incident=inc))


@routes.get("/api/incidents/{incident_id}/ack", response_class=HTMLResponse)
async def ack_page(incident_id: str, svc: Svc, token: str = Query(min_length=1, max_length=2000)) -> HTMLResponse:
    """The page behind a page's acknowledge link: it asks to confirm (a link scanner acknowledges nothing)."""
    return await _ack(svc, incident_id, token, confirm=False)


@routes.post("/api/incidents/{incident_id}/ack", response_class=HTMLResponse)
async def ack_confirm(incident_id: str, svc: Svc,
                      token: Annotated[str, Form(min_length=1, max_length=2000)]) -> HTMLResponse:
    """Acknowledge with the link's token: once (then every link of the incident is spent), before it expires."""
    return await _ack(svc, incident_id, token, confirm=True)


@routes.get("/api/oncall", dependencies=_reader)
async def oncall(svc: Svc) -> list[dict[str, object]]:
    """Who is on call now in each rotation of `config/oncall.yaml`, and until when."""
    return [] if svc.oncall is None else svc.oncall.now(at=datetime.now(UTC))


async def _ack(svc: NotifierService, incident_id: str, token: str, *, confirm: bool) -> HTMLResponse:
    if svc.ack is None:
        return _page(404, "Acknowledge links are off", "This notifier does not sign acknowledge links.")
    try:
        grant = svc.ack.read(token, incident_id=incident_id, now=svc.now())
        inc = await svc.get(incident_id)
    except AckError as exc:
        return _page(403, "This link does not work", str(exc))
    except NotFound:
        return _page(404, "No such incident", f"There is no incident {incident_id}.")
    if inc.status == "resolved" or inc.acknowledged_by is not None:
        done = f"resolved by {inc.resolved_by}" if inc.status == "resolved" else \
            f"already acknowledged by {inc.acknowledged_by}"
        return _page(409, "This link was already used", f"Nothing to do: the incident is {done}.", inc=inc)
    if not confirm:
        return _page(200, "Acknowledge this incident?", "Acknowledging stops the escalation and the repeated "
                     "pages; you own the incident until it is resolved.", inc=inc, token=token, person=grant.person)
    actor = f"{grant.person} (page link)"
    acked: Incident | None
    try:
        acked = await svc.acknowledge(incident_id, actor=actor)
    except (NotFound, StaleIncident):
        acked = None
    if acked is None or acked.acknowledged_by != actor:  # acknowledged or resolved meanwhile by someone else
        return _page(409, "This link was already used", "The incident changed meanwhile (acknowledged or "
                     "resolved); look at it in the console.")
    return _page(200, "Acknowledged", f"Thank you, {grant.person}: escalation stopped at level {acked.level}.",
                 inc=acked)
