"""What the notifier's HTTP routes share: the core and the public parts from the app's state, and what
the app gives its routers when it builds them (the authenticator, the subscribe rate limit).

The routes are plain module-level functions. `bound(edge, routes)` includes them under a router whose
first dependency puts `edge` in the request's scope: FastAPI runs a router's dependencies before a
route's own, so `require_admin` and the reader checks find it there."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.requests import HTTPConnection

from services.notifier.models import Incident
from services.notifier.public import Public
from services.notifier.service import NotFound, NotifierService
from shared.auth import Authenticator
from shared.http import state

__all__ = ["Edge", "bound", "edge_of", "require_admin", "require_subscribe_limit", "notifier",
           "incident_or_404", "reader_required", "Admin", "Svc", "Pub"]

_SCOPE_KEY = "safeguard.notifier.edge"


@dataclass(frozen=True, kw_only=True)
class Edge:
    """`subscribe_limit`: the rate limit of the public subscribe and unsubscribe routes (a FastAPI dependency
    that raises when the client is over it)."""

    auth: Authenticator
    subscribe_limit: Callable[[HTTPConnection], Awaitable[object]] | None = None


def bound(edge: Edge, routes: APIRouter) -> APIRouter:
    """`routes` as they are, each request carrying `edge`."""
    async def bind_edge(conn: HTTPConnection) -> None:
        conn.scope[_SCOPE_KEY] = edge

    router = APIRouter(dependencies=[Depends(bind_edge)])
    router.include_router(routes)
    return router


def edge_of(conn: HTTPConnection) -> Edge:
    edge: Edge = conn.scope[_SCOPE_KEY]
    return edge


async def require_admin(request: Request) -> str:
    """The admin's actor name (401 without the admin token)."""
    return await edge_of(request).auth.require_admin(request)


async def require_subscribe_limit(conn: HTTPConnection) -> None:
    """429 when the client is over the subscribe rate."""
    limit = edge_of(conn).subscribe_limit
    if limit is not None:
        await limit(conn)


def notifier(request: Request) -> NotifierService:
    svc: NotifierService = request.app.state.notifier
    return svc


async def incident_or_404(svc: NotifierService, incident_id: str) -> Incident:
    try:
        return await svc.get(incident_id)
    except NotFound:
        raise HTTPException(404, f"no incident {incident_id!r}") from None


Admin = Annotated[str, Depends(require_admin)]
Svc = Annotated[NotifierService, state("notifier")]
Pub = Annotated[Public, state("public")]


def reader_required(why: str) -> Callable[[HTTPConnection], Awaitable[str]]:
    """A dependency: the reader's actor; outside local mode a client key or the admin token is needed even while
    no client key is configured (401 says `why`)."""
    async def require_reader(request: HTTPConnection) -> str:
        auth = edge_of(request).auth
        actor = auth.reader_actor(request)
        if actor is None or (actor == "anonymous" and auth.settings.env != "local"):
            raise HTTPException(401, f"a reader key or the admin token is required {why}",
                                headers={"WWW-Authenticate": "Bearer"})
        return actor
    return require_reader

