"""`/console/flags`: search, enable / disable / kill (each confirmed, with a reason for the audit log),
"kill all new features", and `/console/flags/{key}`: rollout slider, audit log, scheduled changes.

Changes go through the flags API with the admin token on behalf of the signed-in operator. Every form
works without JavaScript (a 303 back to the page); with htmx the changed part is swapped in place."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.console.auth import Session, checked_operator, viewer
from services.console.flag_views import audit_view, exposure_view, flag_view, matches
from services.console.flags_api import FlagsApi, UpstreamError
from services.console.kept_off import kept_off, kept_off_by_audit
from services.console.templating import render

__all__ = ["router"]

router = APIRouter()
PAGE = 100
# After a form post without JavaScript (303): fixed words, so a link cannot make the page say anything else
_DONE = {"kill-new": "Every new feature that was on is killed (each flag's audit log has it).",
         "changed": "Done: the flag below is as the flags service now holds it."}

Key = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")]
Viewer = Annotated[Session | None, Depends(viewer)]
Operator = Annotated[Session, Depends(checked_operator)]
Reason = Annotated[str, Form(max_length=500)]


def _api(request: Request, session: Session | None = None) -> FlagsApi:
    return FlagsApi(request.app.state.backends.flags, token=request.app.state.sessions.auth.admin_token,
                    actor=session.name if session else None)


def _reason(request: Request, reason: str, what: str) -> str:
    """The form's reason, or what the operator typed into htmx's prompt (HX-Prompt), or a default."""
    typed = (reason or request.headers.get("hx-prompt", "")).strip()[:500]
    return typed or f"console: {what}"


def _htmx_target(request: Request) -> str:
    return request.headers.get("hx-target", "") if request.headers.get("hx-request") else ""


def _error(request: Request, session: Session | None, exc: UpstreamError) -> HTMLResponse:
    """A refused change: the message, with the flags service's status (htmx puts it in #flash)."""
    if _htmx_target(request):
        response = render(request, "flash.html", status_code=exc.status, kind="bad", message=exc.message)
        response.headers.update({"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
        return response
    return render(request, "flags_error.html", status_code=exc.status, page="flags", session=session,
                  message=exc.message)


# ------------------------------------------------------------------ list


@router.get("/flags", response_class=HTMLResponse)
async def flags_page(request: Request, session: Viewer, q: Annotated[str, Query(max_length=200)] = "",
                     page: Annotated[int, Query(ge=1, le=10_000)] = 1, done: str = "") -> HTMLResponse:
    return await _list(request, session, q=q, page=page, flash=_DONE.get(done, ""))


async def _list(request: Request, session: Session | None, *, q: str, page: int, flash: str) -> HTMLResponse:
    """The list, PAGE rows at a time ("show more" appends the next ones); htmx asks for the rows alone."""
    try:
        flags, kept = await asyncio.gather(_api(request).all(), kept_off(request))
    except UpstreamError as exc:
        return _error(request, session, exc)
    found = [f for f in sorted(flags, key=lambda f: f["key"]) if not q or matches(f, q)]
    shown = [flag_view(f) | {"kept_off": (kept or {}).get(f["key"], {}).get("text", "")}
             for f in found[(page - 1) * PAGE:page * PAGE]]
    new_on = [f["key"] for f in flags if f.get("new") and f.get("state") == "ENABLED"]
    name = {"flag-rows": "flags_rows.html", "flag-more": "flags_more.html"}.get(_htmx_target(request), "flags.html")
    return render(request, name, page="flags", session=session, flags=shown, total=len(flags), found=len(found),
                  q=q, page_size=PAGE, next_page=page + 1 if page * PAGE < len(found) else None, new_on=new_on,
                  flash=flash)


@router.post("/flags/_kill-new")
async def kill_new(request: Request, session: Operator, reason: Reason = "") -> Response:
    try:
        killed = await _api(request, session).kill_new(reason=_reason(request, reason, "kill all new features"))
    except UpstreamError as exc:
        return _error(request, session, exc)
    flash = f"Killed {len(killed)} new feature(s): {', '.join(killed)}" if killed else "No new feature was on."
    if not _htmx_target(request):
        return RedirectResponse("/console/flags?done=kill-new", status_code=303)
    return await _list(request, session, q="", page=1, flash=flash)  # htmx selects #flags-main from it


# ------------------------------------------------------------------ one flag


async def _detail(request: Request, session: Session | None, key: str, *, flash: str = "",
                  status_code: int = 200) -> HTMLResponse:
    api = _api(request)
    try:
        flag, audit, schedules, exposure = await asyncio.gather(api.get(key), api.audit(key), api.schedules(key),
                                                                _exposure(api, key))
    except UpstreamError as exc:
        return _error(request, session, exc)
    view = flag_view(flag, detail=True) | {"kept_off": kept_off_by_audit(audit)}
    percent = view["rollout"] if view["rollout"] is not None else (100 if view["on"] else 0)
    return render(request, "flag.html", status_code=status_code, page="flags", session=session, flag=view,
                  audit=[audit_view(e) for e in audit], schedules=schedules, flash=flash,
                  exposure=exposure_view(exposure, percent=percent), now=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M"))


async def _exposure(api: FlagsApi, key: str) -> dict[str, Any] | None:
    """Users of the last hour (`GET /api/flags/{key}/exposure`), or None when the flags service cannot say
    (Redis down, an older service): the page shows the rest."""
    try:
        found: dict[str, Any] | None = await api.exposure(key)
        return found
    except UpstreamError:
        return None


@router.get("/flags/{key}", response_class=HTMLResponse)
async def flag_page(request: Request, key: Key, session: Viewer, done: str = "") -> HTMLResponse:
    return await _detail(request, session, key, flash=_DONE.get(done, ""))


async def _changed(request: Request, session: Session, key: str, flag: dict[str, Any], flash: str) -> Response:
    """After a change: the row (list page), the flag's page (detail), or a redirect (no JavaScript)."""
    target = _htmx_target(request)
    if target.startswith("flag-row-"):
        return render(request, "flag_row.html", f=flag_view(flag), session=session)
    if target:
        return await _detail(request, session, key, flash=flash)
    return RedirectResponse(f"/console/flags/{key}?done=changed", status_code=303)


@router.post("/flags/{key}/rollout")
async def rollout(request: Request, key: Key, session: Operator, percent: Annotated[float, Form(ge=0, le=100)],
                  reason: Reason = "") -> Response:
    try:
        flag = await _api(request, session).rollout(key, percent=percent,
                                                    reason=_reason(request, reason, f"rollout {percent:g} %"))
    except UpstreamError as exc:
        return _error(request, session, exc)
    return await _changed(request, session, key, flag, f"{key}: on for {percent:g} % of users")


@router.post("/flags/{key}/schedule")
async def schedule(request: Request, key: Key, session: Operator,
                   action: Annotated[Literal["enable", "disable", "kill", "rollout"], Form()],
                   at: Annotated[datetime, Form()], percent: Annotated[float | None, Form(ge=0, le=100)] = None,
                   reason: Reason = "") -> Response:
    """`at` from a datetime-local field is read as UTC (the page says so)."""
    when = at if at.tzinfo else at.replace(tzinfo=UTC)
    body = {"action": action, "at": when.isoformat(), "reason": _reason(request, reason, f"scheduled {action}"),
            **({"percent": percent} if action == "rollout" else {})}
    try:
        await _api(request, session).schedule(key, body=body)
        flag = await _api(request).get(key)
    except UpstreamError as exc:
        return _error(request, session, exc)
    return await _changed(request, session, key, flag, f"{key}: {action} scheduled for {when:%Y-%m-%d %H:%M} UTC")


@router.post("/flags/{key}/schedule/{schedule_id}/cancel")
async def cancel(request: Request, key: Key, schedule_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
                 session: Operator) -> Response:
    try:
        await _api(request, session).cancel_schedule(key, schedule_id)
        flag = await _api(request).get(key)
    except UpstreamError as exc:
        return _error(request, session, exc)
    return await _changed(request, session, key, flag, f"{key}: scheduled change {schedule_id} cancelled")


# declared last: its path also matches /rollout and /schedule
@router.post("/flags/{key}/{action}")
async def change(request: Request, key: Key, action: Literal["enable", "disable", "kill"], session: Operator,
                 reason: Reason = "") -> Response:
    try:
        flag = await _api(request, session).act(key, action, reason=_reason(request, reason, action))
    except UpstreamError as exc:
        return _error(request, session, exc)
    return await _changed(request, session, key, flag, f"{key}: {action}d" if action != "kill" else f"{key}: killed")
