"""`/console/recovery`: recovery's actions with their outcome and verified effect, the triggers it knows are
firing, the features it turned off that stay off until a person turns them on, and pause / resume of
automatic recovery (every service or one) through recovery's API as `admin:<name>`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.console.auth import Session, checked_operator, viewer
from services.console.human import since
from services.console.incident_views import human_reason
from services.console.kept_off import effect_view, kept_off
from services.console.ops_api import UpstreamError, ops_api
from services.console.templating import render

__all__ = ["router"]

router = APIRouter()

Viewer = Annotated[Session | None, Depends(viewer)]
Operator = Annotated[Session, Depends(checked_operator)]
_DONE = {"pause": "Automatic recovery paused.", "resume": "Automatic recovery resumed."}
_OUTCOME = {"succeeded": "ok", "failed": "bad", "skipped": "warn", "started": "muted"}


def _error(request: Request, session: Session | None, exc: UpstreamError) -> HTMLResponse:
    return render(request, "ops_error.html", status_code=exc.status, page="recovery", session=session,
                  title="Recovery", message=exc.message, back="/console/recovery")


def _action(a: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    effect, effect_class = effect_view(a)
    return a | {"outcome": _OUTCOME.get(a["status"], "muted"), "ago": since(a["started_at"], now=now),
                "reason": human_reason(a.get("reason") or ""), "effect_text": effect, "effect_class": effect_class,
                "verified_title": a.get("verified_at") or "",
                "paused": a["status"] == "skipped" and a["detail"].startswith("paused")}


@router.get("/recovery", response_class=HTMLResponse)
async def recovery_page(request: Request, session: Viewer, done: str = "") -> HTMLResponse:
    api = ops_api(request, "recovery")
    try:
        actions, pause, policy, kept = await asyncio.gather(
            api.call("GET", "/api/recovery/actions", params={"limit": 100}), api.call("GET", "/api/recovery/pause"),
            api.call("GET", "/api/recovery/policy"), kept_off(request))
    except UpstreamError as exc:
        return _error(request, session, exc)
    now = datetime.now(UTC)
    return render(request, "recovery.html", page="recovery", session=session, pause=pause,
                  actions=[_action(a, now=now) for a in actions],
                  active=[e | {"reason": human_reason(e.get("reason") or "")} for e in policy.get("active", [])],
                  kept=None if kept is None else sorted(kept.values(), key=lambda k: k["killed_at"], reverse=True),
                  flash=_DONE.get(done, ""))


@router.post("/recovery/{verb}")
async def change(request: Request, verb: Literal["pause", "resume"], session: Operator,
                 service: Annotated[str, Form(max_length=200)] = "",
                 reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Pause or resume automatic recovery (every service when `service` is empty), audited as `admin:<name>`."""
    body = {"reason": reason.strip() or f"from the console by {session.actor}"}
    if service.strip():
        body["service"] = service.strip()
    try:
        await ops_api(request, "recovery", session).call("POST", f"/api/recovery/{verb}", json=body)
    except UpstreamError as exc:
        return _error(request, session, exc)
    return RedirectResponse(request.url_for("recovery_page").include_query_params(done=verb), status_code=303)
