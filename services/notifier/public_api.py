"""Inbound edge: maintenance windows (`/api/maintenance`, admin to change, audited) and status page
subscriptions (`/status/subscribe`, public and rate limited; confirm and unsubscribe links)."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError

from services.notifier.edge import Admin, Edge, Pub, bound, reader_required, require_subscribe_limit
from services.notifier.maintenance import MaintenanceCreate, MaintenanceWindow
from services.notifier.maintenance_service import Conflict, InBusinessHours, Invalid, NotFound
from services.notifier.public import Public
from services.notifier.status_page import render_message
from services.notifier.subscriber_relay import Links
from services.notifier.subscription_store import PgSubscriberStore
from services.notifier.subscriptions import (
    Notice, SubscribeRequest, TokenError, is_private_url, new_secret, read_token,
)
from shared.auth import Authenticator
from shared.ratelimit import RateLimiter

__all__ = ["build_router"]


# as the incidents: who scheduled a window is for operators
require_maintenance_reader = reader_required("(the status page and /status.json show scheduled maintenance publicly)")


routes = APIRouter()
_reader = [Depends(require_maintenance_reader)]
_limited = [Depends(require_subscribe_limit)]


def build_router(auth: Authenticator, *, limiter: RateLimiter, subscribe_rate: str) -> APIRouter:
    return bound(Edge(auth=auth, subscribe_limit=limiter.dependency(subscribe_rate, name="subscribe")), routes)


def _subscriptions(public: Public) -> tuple[PgSubscriberStore, Links]:
    if public.subscribers is None or public.links is None:
        raise HTTPException(503, "subscriptions need the Postgres store (not configured in this process)")
    return public.subscribers, public.links


async def _subscribe_request(request: Request) -> tuple[SubscribeRequest, bool]:
    """The body as JSON or as the page's form; 422 saying what is wrong."""
    form = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    raw = await request.body()
    if len(raw) > 8192:
        raise HTTPException(413, "the body is larger than 8 KiB: send {\"email\": ...} or {\"webhook\": ...}")
    try:
        data: Any = ({k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()} if form
                     else json.loads(raw or b"null"))
        return SubscribeRequest.model_validate(data), form
    except json.JSONDecodeError:
        raise HTTPException(422, "the body is not JSON: send {\"email\": ...} or {\"webhook\": ...}") from None
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise HTTPException(422, problems) from None


async def _subscribe_email(public: Public, email: str) -> str:
    subs, _ = _subscriptions(public)
    if not public.mailer.configured:
        raise HTTPException(503, "e-mail subscriptions are off: no SMTP host configured")
    now = datetime.now(UTC)
    sub, _ = await subs.subscribe(kind="email", target=email.lower(), secret=None, now=now, confirmed=False)
    if sub.confirmed_at is None:
        await subs.send_to(sub.subscriber_id, Notice(
            notice_id=f"confirm:{now:%Y%m%d%H}", type="subscription.confirm", at=now,
            title="Confirm your subscription", message="Confirm your subscription"))
    return f"A confirmation link is on its way to {email}; nothing is sent before it is followed."



async def _subscribe_webhook(public: Public, url: str) -> JSONResponse:
    subs, links = _subscriptions(public)
    if is_private_url(url) and not public.settings.subscriptions.allow_private_webhooks:
        raise HTTPException(422, "the webhook points at a loopback or private address; use a public URL")
    sub, created = await subs.subscribe(kind="webhook", target=url, secret=new_secret(), now=datetime.now(UTC),
                                        confirmed=True)
    if not created:
        raise HTTPException(409, "this webhook is already subscribed (its secret was given when it was); "
                                 "unsubscribe it first to get a new one")
    return JSONResponse({"subscriber_id": sub.subscriber_id, "secret": sub.secret,
                         "unsubscribe_token": links.unsubscribe_token(sub.subscriber_id),
                         "unsubscribe_url": links.unsubscribe(sub.subscriber_id),
                         "detail": "keep the secret: it signs every notice (X-Safeguard-Signature) and is "
                                   "not shown again"}, status_code=201)


# --- maintenance windows ------------------------------------------------------------------------------
@routes.post("/api/maintenance", status_code=201, tags=["maintenance"],
             responses={409: {"description": "the window overlaps business hours (the message names the overlap)"}})
async def schedule(body: MaintenanceCreate, public: Pub, actor: Admin,
                   force: bool = Query(default=False, description="Schedule a window that overlaps business hours "
                                                                  "anyway (marked `forced`, with who did it)."),
                   strict: bool = Query(default=False, deprecated=True,
                                        description="No effect: a window inside business hours is refused unless "
                                                    "forced.")) -> dict[str, Any]:
    """Schedule a window (admin token; who did it is recorded). Incidents of the components in it are
    recorded but page nobody while it is in progress, the SLA leaves them out of the budgets; subscribers are
    told. A window that overlaps business hours is refused (409) unless `?force=true`."""
    try:
        window, warnings = await public.maintenance.schedule(body, actor=actor, force=force)
    except Invalid as exc:
        raise HTTPException(422, str(exc)) from None
    except InBusinessHours as exc:
        raise HTTPException(409, str(exc)) from None
    return {"window": window.model_dump(mode="json"), "warnings": warnings}


@routes.get("/api/maintenance", tags=["maintenance"], dependencies=_reader)
async def listing(public: Pub, days: float = Query(default=30, gt=0, le=365)) -> dict[str, list[MaintenanceWindow]]:
    """Windows in progress, upcoming, past (ended in the last `days`, newest first) and cancelled."""
    return {str(k): v for k, v in (await public.maintenance.listing(past=timedelta(days=days))).items()}


@routes.get("/api/maintenance/{window_id}", tags=["maintenance"], dependencies=_reader)
async def one(window_id: str, public: Pub) -> MaintenanceWindow:
    w = await public.store.get(window_id)
    if w is None:
        raise HTTPException(404, f"no maintenance window {window_id!r}")
    return w


@routes.delete("/api/maintenance/{window_id}", tags=["maintenance"])
async def cancel(window_id: str, public: Pub, actor: Admin) -> MaintenanceWindow:
    """Cancel an upcoming window, or end one in progress now (admin token; recorded as `cancelled_by`)."""
    try:
        return await public.maintenance.cancel(window_id, actor=actor)
    except NotFound:
        raise HTTPException(404, f"no maintenance window {window_id!r}") from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None


# --- status page subscriptions ------------------------------------------------------------------------
@routes.post("/status/subscribe", tags=["status"], dependencies=_limited, response_model=None,
             openapi_extra={"requestBody": {"content": {
                 "application/json": {"schema": SubscribeRequest.model_json_schema()},
                 "application/x-www-form-urlencoded": {"schema": SubscribeRequest.model_json_schema()}}}},
             responses={201: {"description": "webhook subscribed"}, 202: {"description": "confirmation sent"}})
async def subscribe(request: Request, public: Pub) -> Response:
    """Subscribe to incident and maintenance notices: `{"email": ...}` (a confirmation link is sent first)
    or `{"webhook": "https://..."}` (its signing secret is returned once, here). The status page's form
    posts the same as `application/x-www-form-urlencoded` and gets a page back."""
    body, form = await _subscribe_request(request)
    if body.email is None:
        assert body.webhook is not None
        return await _subscribe_webhook(public, body.webhook)
    detail = await _subscribe_email(public, body.email)
    if form:
        return HTMLResponse(render_message("Check your inbox", detail), status_code=202)
    return JSONResponse({"detail": detail}, status_code=202)


@routes.get("/status/subscribe/confirm", response_class=HTMLResponse, tags=["status"])
async def confirm(public: Pub, token: str = Query(max_length=2000)) -> HTMLResponse:
    subs, links = _subscriptions(public)
    now = datetime.now(UTC)
    try:
        sub = await subs.confirm(read_token(token, key=links.key, purpose="confirm", now=now), now=now)
    except TokenError as exc:
        return HTMLResponse(render_message("Not confirmed", str(exc)), status_code=400)
    if sub is None:
        return HTMLResponse(render_message("Not confirmed", "this subscription has ended"), status_code=410)
    return HTMLResponse(render_message("Subscribed", "You will get a message when an incident opens, changes or "
                                       "is resolved, and about scheduled maintenance.",
                                       link=links.unsubscribe(sub.subscriber_id), link_text="Unsubscribe"))


@routes.get("/status/unsubscribe", response_class=HTMLResponse, tags=["status"])
async def unsubscribe_page(token: str = Query(max_length=2000)) -> HTMLResponse:
    """A button (a POST), so a mail scanner following links does not unsubscribe anyone."""
    return HTMLResponse(render_message("Unsubscribe", "Stop all status notices to this subscription?",
                                       form_token=token))


@routes.post("/status/unsubscribe", tags=["status"], dependencies=_limited)
async def unsubscribe(request: Request, public: Pub, token: str | None = Query(default=None, max_length=2000),
                      ) -> HTMLResponse:
    """Ends the subscription; the token from the link, the form, or the webhook's subscribe answer
    (also RFC 8058 one-click from mail clients)."""
    subs, links = _subscriptions(public)
    if token is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        token = next(iter(parse_qs((await request.body()).decode(errors="replace")).get("token", [])), None)
    if token is None:
        raise HTTPException(422, "the unsubscribe token is missing (?token=...)")
    now = datetime.now(UTC)
    try:
        subscriber_id = read_token(token, key=links.key, purpose="unsubscribe", now=now)
    except TokenError as exc:
        raise HTTPException(400, str(exc)) from None
    await subs.unsubscribe(subscriber_id, now=now)
    return HTMLResponse(render_message("Unsubscribed", "No more status notices will be sent to it."))
