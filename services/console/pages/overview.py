"""`/console`: the overview, and `/console/overview/stream` (SSE) that pushes its re-rendered body when
the status changes (one shared poller per process, however many browsers watch)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.responses import HTMLResponse

from services.console.auth import Session, viewer
from services.console.feed import SharedFeed
from services.console.overview import shape
from services.console.templating import render, templates
from shared.events import utcnow

__all__ = ["router", "overview_feed", "POLL_S"]

router = APIRouter()
POLL_S = 1.5


async def _status(app: FastAPI) -> dict[str, Any] | str:
    """The health service's system status, or why there is none."""
    try:
        r = await app.state.backends.health.get("/api/system/status")
    except httpx.HTTPError as exc:
        return f"the health service does not answer ({type(exc).__name__})"
    if r.status_code != 200:
        return f"the health service answered {r.status_code}"
    status: dict[str, Any] = r.json()
    return status


def overview_feed(app: FastAPI) -> SharedFeed:
    feed: SharedFeed | None = getattr(app.state, "overview_feed", None)
    if feed is None:
        async def produce() -> str:
            status = await _status(app)
            now = utcnow()
            context = {"error": status, "now": now} if isinstance(status, str) else {**shape(status, now=now), "error": ""}
            return templates.get_template("overview_body.html").render(now=now, **context)
        feed = app.state.overview_feed = SharedFeed(produce=produce, interval_s=POLL_S)
    return feed


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def overview(request: Request, session: Annotated[Session | None, Depends(viewer)]) -> HTMLResponse:
    body = await overview_feed(request.app).current()
    return render(request, "overview.html", page="overview", session=session, body=body)


@router.get("/overview/stream", response_class=EventSourceResponse)
async def stream(request: Request, _: Annotated[Session | None, Depends(viewer)]) -> AsyncIterator[ServerSentEvent]:
    async for html in overview_feed(request.app).listen():
        yield ServerSentEvent(raw_data=html, event="overview", retry=3000)
