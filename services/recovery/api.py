"""Inbound edge: HTTP. Recent actions, the policy, and the operator's one-shot run."""

from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, HTTPException, Query

from services.recovery.effects import ActionView, KeptOff
from services.recovery.kept_off import FlagsAudit, kept_off
from services.recovery.models import ActionRecord, RunRequest
from services.recovery.service import ClaimBusy, RecoveryService
from shared.auth import Authenticator
from shared.http import state

__all__ = ["build_router"]


Svc = Annotated[RecoveryService, state("recovery")]


def build_router(auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/api/recovery", tags=["recovery"])
    Admin = Annotated[str, Depends(auth.require_admin)]

    @router.get("/actions", response_model=list[ActionView])
    async def actions(svc: Svc, limit: int = Query(default=50, ge=1, le=1000),
                      service: str | None = Query(default=None, max_length=200)) -> list[ActionView]:
        """Recent recovery actions, newest first (the audit log), each with its verified effect
        (`verify_outcome`, `effect`, `verified_at`, `verify_seconds`) and the flags it turned off."""
        return await svc.audit.recent(limit=limit, service=service)

    @router.get("/kept-off", response_model=list[KeptOff])
    async def kept_off_flags(svc: Svc, limit: int = Query(default=50, ge=1, le=200),
                             all: bool = Query(default=False)) -> list[KeptOff]:
        """Flags recovery turned off, newest first. They stay off until a person turns them on: `kept_off` is
        True while the flag's newest change in the flags service is recovery's kill. `all=true` also lists
        the ones people turned back on (`changed_by`, `changed_at`)."""
        audit = svc.flags if isinstance(svc.flags, FlagsAudit) else None
        found = await kept_off(await svc.audit.kills(limit=limit), audit=audit)
        return found if all else [k for k in found if k.kept_off is not False]

    @router.get("/policy")
    async def policy(svc: Svc) -> dict[str, Any]:
        """The policy in force, and the episodes (fired, not cleared) recovery knows of."""
        return {"policy": svc.policy.model_dump(),
                "active": [vars(e) for e in await svc.active()]}

    @router.post("/run", response_model=list[ActionRecord])
    async def run(body: RunRequest, svc: Svc, actor: Admin) -> list[ActionRecord]:
        """Operator one-shot (the runbook's Step 3): a named action, or the actions for active triggers.
        Nothing is recorded when the command could not be sent: 503, and the call can simply be repeated."""
        try:
            return await svc.run(body, actor=actor)
        except ClaimBusy as exc:
            raise HTTPException(409, str(exc), headers={"Retry-After": "5"}) from None
        except (OSError, KafkaError) as exc:
            raise HTTPException(503, f"not done, nothing recorded: {type(exc).__name__}: {exc}"[:300],
                                headers={"Retry-After": "5"}) from None

    return router
