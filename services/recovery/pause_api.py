"""Inbound edge: HTTP for pause / resume of automatic recovery (admin token; the actor is recorded)."""

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends

from services.recovery.service import RecoveryService

from services.recovery.pause import EVERYTHING, PauseEntry, PauseRequest, PauseStore, PauseView, view
from shared.auth import Authenticator
from shared.http import state

__all__ = ["build_router"]


log = logging.getLogger(__name__)


Store = Annotated[PauseStore, state("recovery.pauses")]
Svc = Annotated[RecoveryService, state("recovery")]


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
    async def resume(store: Store, svc: Svc, actor: Admin,
                     body: Annotated[PauseRequest | None, Body()] = None) -> PauseView:
        """Resume automatic recovery (every service, or `service`), then act on the triggers still firing
        that were skipped while paused (`acted`). When that cannot be done now (Kafka, Postgres), the resume
        stands and `not_acted` says why: `POST /api/recovery/run` acts on the active triggers."""
        body = body or PauseRequest()
        state = await change(store, body, actor=actor, paused=False)
        try:
            acted = await svc.act_on_skipped(service=body.service, actor=actor)
        except Exception as exc:  # noqa: BLE001 - the resume is recorded; acting can be repeated with /run
            log.warning("resumed, but the skipped episodes were not acted on: %s", type(exc).__name__)
            return state.model_copy(update={"not_acted": f"{type(exc).__name__}: {exc}"[:300]})
        return state.model_copy(update={"acted": acted})

    return router
