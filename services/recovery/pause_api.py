"""Inbound edge: HTTP for pause / resume of automatic recovery (admin token; the actor is recorded)."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request

from services.recovery.pause import EVERYTHING, PauseEntry, PauseRequest, PauseStore, PauseView, view
from shared.auth import Authenticator

__all__ = ["build_router"]


def _store(request: Request) -> PauseStore:
    store: PauseStore = request.app.state.recovery.pauses
    return store


Store = Annotated[PauseStore, Depends(_store)]


def build_router(auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/api/recovery", tags=["recovery"])
    Admin = Annotated[str, Depends(auth.require_admin)]

    async def change(store: PauseStore, body: PauseRequest, *, actor: str, paused: bool) -> PauseView:
        await store.record(PauseEntry(scope=body.service or EVERYTHING, paused=paused, actor=actor,
                                      reason=body.reason, at=datetime.now(UTC)))
        return await view(store)

    @router.get("/pause", response_model=PauseView)
    async def state(store: Store) -> PauseView:
        """Whether automatic recovery is paused (for every service, or which ones), and the latest changes."""
        return await view(store)

    @router.post("/pause", response_model=PauseView)
    async def pause(store: Store, actor: Admin, body: Annotated[PauseRequest | None, Body()] = None) -> PauseView:
        """Pause automatic recovery (every service, or `service`): fired triggers are recorded as skipped
        ("paused: ...") and nothing is acted on; operator runs still act."""
        return await change(store, body or PauseRequest(), actor=actor, paused=True)

    @router.post("/resume", response_model=PauseView)
    async def resume(store: Store, actor: Admin, body: Annotated[PauseRequest | None, Body()] = None) -> PauseView:
        """Resume automatic recovery (every service, or `service`). Episodes skipped while paused are not
        acted on afterwards: `POST /api/recovery/run` acts on the active ones."""
        return await change(store, body or PauseRequest(), actor=actor, paused=False)

    return router
