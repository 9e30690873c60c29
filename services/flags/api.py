"""Inbound edge: the management API (`/api/flags`), the runbook endpoint and the SSE stream."""


import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope, Send

from services.flags.exposure import ExposureBatch, ExposureRecorder
from services.flags.models import (
    AuditEntry, FlagCreate, FlagRead, FlagUpdate, ImportRequest, ReasonBody, RolloutRequest, ScheduleCreate,
    ScheduleRead, SystemStatusRequest,
)
from services.flags.service import FlagService, Unavailable
from services.flags.snapshot import StreamSlots
from shared.auth import Authenticator

__all__ = ["build_router", "read_json", "ready", "not_ready"]

Key = Annotated[str, "flag key"]


class BadBody(ValueError):
    """The body is not JSON (400) or does not match the model (422)."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail


async def read_json(request: Request, *, empty: Any = None) -> Any:
    """Parse the body as JSON whatever the Content-Type (the runbook's curl sends a form type)."""
    raw = await request.body()
    if not raw.strip():
        if empty is not None:
            return empty
        raise BadBody(400, "the body is empty; JSON expected")
    try:
        data = json.loads(raw, parse_constant=_not_json, parse_float=_finite)
        if _SURROGATE_ESCAPE.search(raw):
            json.dumps(data, ensure_ascii=False).encode()  # a lone surrogate cannot be stored as UTF-8
    except (ValueError, UnicodeError) as exc:
        raise BadBody(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadBody(400, "the body nests too deep") from None
    return data


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range")
    return value


def ready(svc: FlagService) -> bool:
    """Flags are loaded (from Postgres or the Redis copy): what SDKs receive is the real set."""
    flag = getattr(svc, "ready", None)
    if flag is None:
        return svc.snapshot.loaded
    return bool(flag() if callable(flag) else flag)


def not_ready() -> JSONResponse:
    return JSONResponse({"errorCode": "NOT_READY", "detail": "flags are not loaded yet (Postgres and the Redis "
                         "copy have not answered since start); retry, or ask another instance"},
                        status_code=503, headers={"Retry-After": "2"})


class _Stream(StreamingResponse):
    """Gives its SSE slot back however the stream ends (also when it never started)."""

    def __init__(self, body: AsyncIterator[bytes], *, release: Callable[[], None]) -> None:
        super().__init__(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache",
                                                                         "X-Accel-Buffering": "no"})
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _model(cls: Any, data: Any) -> Any:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise BadBody(422, json.loads(exc.json(include_url=False, include_context=False, include_input=False))) from None


def _body(model: Any, *, required: bool = True) -> dict[str, Any]:
    """Document a body we parse by hand (so a non-JSON body is a 400, whatever its Content-Type)."""
    return {"requestBody": {"required": required, "content": {"application/json": {
        "schema": model.model_json_schema(ref_template="#/$defs/{model}")}}}}


def service(request: Request) -> FlagService:
    svc: FlagService = request.app.state.flags
    return svc


Svc = Annotated[FlagService, Depends(service)]


def build_router(auth: Authenticator, *, write_limit: Any = None, slots: StreamSlots | None = None,
                 client_key: Callable[[HTTPConnection], str] | None = None,
                 ) -> APIRouter:  # noqa: C901 - one route per verb
    router = APIRouter()
    slots = slots or StreamSlots(max_total=1024, max_per_client=64)
    key_of = client_key or (lambda conn: conn.client.host if conn.client else "")
    W = [Depends(write_limit)] if write_limit is not None else []
    Admin = Annotated[str, Depends(auth.require_admin)]
    Reader = Annotated[str, Depends(auth.require_reader)]
    Operator = Annotated[str, Depends(auth.require_admin_or_loopback)]

    @router.post("/api/system/status", dependencies=W, tags=["runbook"], summary="Turn a feature on or off (the runbook's curl)",
                 openapi_extra=_body(SystemStatusRequest))
    async def system_status(request: Request, svc: Svc, actor: Operator) -> dict[str, Any]:
        body: SystemStatusRequest = _model(SystemStatusRequest, await read_json(request))
        rec = await svc.set_enabled(body.feature, enabled=body.enabled, actor=actor,
                                    reason=body.reason or "POST /api/system/status", kill=not body.enabled)
        return {"feature": rec.key, "enabled": rec.definition["state"] == "ENABLED",
                "state": rec.definition["state"], "version": rec.version, "actor": actor}

    @router.get("/api/flags", tags=["flags"], response_model=list[FlagRead])
    async def list_flags(svc: Svc, _: Reader, new: bool | None = None) -> list[FlagRead]:
        return [FlagRead.of(r) for r in svc.all() if new is None or r.new == new]

    @router.post("/api/flags", dependencies=W, tags=["flags"], status_code=201, response_model=FlagRead,
                 openapi_extra=_body(FlagCreate))
    async def create_flag(request: Request, svc: Svc, actor: Admin) -> FlagRead:
        body: FlagCreate = _model(FlagCreate, await read_json(request))
        return FlagRead.of(await svc.create(body, actor=actor))

    @router.get("/api/flags/_snapshot", tags=["sdk"], response_model=None)
    async def snapshot(svc: Svc, _: Reader) -> dict[str, Any] | JSONResponse:
        """Every flag in the form SDKs evaluate locally, with the revision to resume the stream from.
        503 until the flags are loaded (an empty set would make SDKs forget killed flags)."""
        return svc.snapshot.client_payload() if ready(svc) else not_ready()

    @router.get("/api/flags/_stream", tags=["sdk"], response_class=StreamingResponse, response_model=None)
    async def stream(request: Request, svc: Svc, _: Reader) -> StreamingResponse | JSONResponse:
        """Server-sent events: `snapshot` (all flags) first, then one `flag` event per change.
        503 until loaded; 429 past the streams allowed per client, 503 past the total (Retry-After)."""
        if not ready(svc):
            return not_ready()
        client = key_of(request)
        refused = slots.take(client)
        if refused is not None:
            status, why = refused
            return JSONResponse({"errorCode": "TOO_MANY_STREAMS", "detail": why}, status_code=status,
                                headers={"Retry-After": "10"})
        return _Stream(_events(request, svc), release=lambda: slots.give_back(client))

    @router.post("/api/flags/_kill-new", dependencies=W, tags=["flags"])
    async def kill_new(request: Request, svc: Svc, actor: Admin) -> dict[str, Any]:
        """Kill every flag marked `new` (what recovery does when the error rate passes 5 %)."""
        body: ReasonBody = _model(ReasonBody, await read_json(request, empty={}))
        killed = await svc.kill_new(actor=actor, reason=body.reason or "kill all new features")
        return {"killed": killed}

    @router.post("/api/flags/_import", dependencies=W, tags=["flags"])
    async def import_flags(request: Request, svc: Svc, actor: Admin, strict: bool = False,
                           reason: str = Query(default="", max_length=500)) -> dict[str, Any]:
        """Load a flagd flag file as flagd would: `{"imported", "cannot_kill": flags without an off variant,
        "parse_errors": rules that evaluate to PARSE_ERROR}`. `strict=true` refuses both (422)."""
        body: ImportRequest = _model(ImportRequest, await read_json(request))
        return await svc.import_flags(body, actor=actor, reason=reason or "import", strict=strict)

    @router.get("/api/flags/_export", tags=["flags"])
    async def export(svc: Svc, _: Reader, serve_off: bool = False) -> dict[str, Any]:
        return svc.export(serve_off=serve_off)

    @router.get("/api/flags/_audit", tags=["audit"], response_model=list[AuditEntry])
    async def audit_all(svc: Svc, _: Admin, limit: int = Query(default=100, ge=1, le=1000),
                        before_id: int | None = Query(default=None, ge=1, le=2**63 - 1)) -> list[AuditEntry]:
        return await svc.audit(None, limit=limit, before_id=before_id)

    @router.get("/api/flags/_schedule", tags=["schedule"], response_model=list[ScheduleRead])
    async def schedules_all(svc: Svc, _: Admin) -> list[ScheduleRead]:
        return await svc.schedules(None)

    @router.post("/api/flags/_exposures", tags=["sdk"], status_code=202, openapi_extra=_body(ExposureBatch))
    async def exposures(request: Request, svc: Svc, _: Reader) -> dict[str, int]:
        """SDKs report `[{flag, key_hash, in}]` (hashed targeting keys that saw a flag; `in`: served other than
        the off variant). Buffered and written to Redis in the background; unknown flags are ignored."""
        batch: ExposureBatch = _model(ExposureBatch, await read_json(request))
        recorder: ExposureRecorder = request.app.state.exposures
        known = [e for e in batch.root if svc.get(e.flag) is not None]
        for e in known:
            recorder.add(e.flag, e.key_hash, e.in_)
        return {"accepted": len(known), "ignored": len(batch.root) - len(known)}

    @router.get("/api/flags/{key}/exposure", tags=["flags"])
    async def exposure(key: Key, request: Request, svc: Svc, _: Reader) -> dict[str, Any]:
        """Distinct targeting keys that evaluated the flag in the last hour, and how many got it on
        (HyperLogLog: about 0.8 % error). Counts OFREP evaluations and SDK reports."""
        if svc.get(key) is None:
            raise _not_found(key)
        try:
            found: dict[str, Any] = await request.app.state.exposures.store.last_hour(key)
        except (RedisError, OSError) as exc:
            raise Unavailable(f"exposure counts are in Redis, which did not answer ({type(exc).__name__})") from None
        return found

    @router.get("/api/flags/{key}", tags=["flags"], response_model=FlagRead)
    async def get_flag(key: Key, svc: Svc, _: Reader) -> FlagRead:
        rec = svc.get(key)
        if rec is None:
            raise _not_found(key)
        return FlagRead.of(rec)

    @router.patch("/api/flags/{key}", dependencies=W, tags=["flags"], response_model=FlagRead,
                  openapi_extra=_body(FlagUpdate))
    async def update_flag(key: Key, request: Request, svc: Svc, actor: Admin) -> FlagRead:
        body: FlagUpdate = _model(FlagUpdate, await read_json(request))
        return FlagRead.of(await svc.update(key, body, actor=actor))

    @router.delete("/api/flags/{key}", dependencies=W, tags=["flags"], status_code=204)
    async def delete_flag(key: Key, svc: Svc, actor: Admin,
                          reason: str = Query(default="", max_length=500)) -> Response:
        await svc.delete(key, actor=actor, reason=reason)
        return Response(status_code=204)

    async def _toggle(key: str, request: Request, svc: FlagService, actor: str, *, enabled: bool,
                      kill: bool = False) -> FlagRead:
        body: ReasonBody = _model(ReasonBody, await read_json(request, empty={}))
        return FlagRead.of(await svc.set_enabled(key, enabled=enabled, actor=actor, reason=body.reason, kill=kill))

    @router.post("/api/flags/{key}/enable", dependencies=W, tags=["flags"], response_model=FlagRead)
    async def enable(key: Key, request: Request, svc: Svc, actor: Admin) -> FlagRead:
        return await _toggle(key, request, svc, actor, enabled=True)

    @router.post("/api/flags/{key}/disable", dependencies=W, tags=["flags"], response_model=FlagRead)
    async def disable(key: Key, request: Request, svc: Svc, actor: Admin) -> FlagRead:
        return await _toggle(key, request, svc, actor, enabled=False)

    @router.post("/api/flags/{key}/kill", dependencies=W, tags=["flags"], response_model=FlagRead)
    async def kill(key: Key, request: Request, svc: Svc, actor: Admin) -> FlagRead:
        """Turn the flag off now: it serves its off variant everywhere (reason DISABLED)."""
        return await _toggle(key, request, svc, actor, enabled=False, kill=True)

    @router.post("/api/flags/{key}/rollout", dependencies=W, tags=["flags"], response_model=FlagRead,
                 openapi_extra=_body(RolloutRequest))
    async def rollout(key: Key, request: Request, svc: Svc, actor: Admin) -> FlagRead:
        body: RolloutRequest = _model(RolloutRequest, await read_json(request))
        return FlagRead.of(await svc.rollout(key, body.percent, actor=actor, reason=body.reason))

    @router.get("/api/flags/{key}/audit", tags=["audit"], response_model=list[AuditEntry])
    async def audit(key: Key, svc: Svc, _: Admin, limit: int = Query(default=100, ge=1, le=1000),
                    before_id: int | None = Query(default=None, ge=1, le=2**63 - 1)) -> list[AuditEntry]:
        return await svc.audit(key, limit=limit, before_id=before_id)

    @router.post("/api/flags/{key}/schedule", dependencies=W, tags=["schedule"], status_code=201, response_model=ScheduleRead,
                 openapi_extra=_body(ScheduleCreate))
    async def schedule(key: Key, request: Request, svc: Svc, actor: Admin) -> ScheduleRead:
        body: ScheduleCreate = _model(ScheduleCreate, await read_json(request))
        return await svc.schedule(key, body, actor=actor)

    @router.get("/api/flags/{key}/schedule", tags=["schedule"], response_model=list[ScheduleRead])
    async def schedules(key: Key, svc: Svc, _: Admin) -> list[ScheduleRead]:
        return await svc.schedules(key)

    @router.delete("/api/flags/{key}/schedule/{schedule_id}", dependencies=W, tags=["schedule"], status_code=204)
    async def cancel(key: Key, schedule_id: Annotated[int, Path(ge=1, le=2**63 - 1)], svc: Svc, _: Admin) -> Response:
        if not await svc.cancel_schedule(key, schedule_id):
            return JSONResponse({"detail": f"no pending scheduled change {schedule_id} for {key!r}"}, status_code=404)
        return Response(status_code=204)

    return router


def _not_found(key: str) -> Exception:
    from services.flags.rules import FlagNotFound
    return FlagNotFound(key)


async def _events(request: Request, svc: FlagService) -> AsyncIterator[bytes]:
    queue = svc.broadcaster.subscribe()
    try:
        snap = svc.snapshot.client_payload()
        yield _sse("snapshot", snap, snap["revision"])
        while True:
            try:
                msg = await asyncio.wait_for(queue.get(), timeout=15.0)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            if msg is None:
                return
            yield _sse("flag", msg, msg["revision"])
    finally:
        svc.broadcaster.unsubscribe(queue)


def _sse(event: str, data: Any, revision: int) -> bytes:
    return f"event: {event}\nid: {revision}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
