"""Inbound edge: the management API (`/api/flags`), the runbook endpoint, the SSE stream (its body:
`sse.py`), and how the core's errors map to HTTP answers.

Routes are flat functions on one module-level `router`; what they need besides the core (the
authenticator, the write limit, the SSE slots) is on `app.state.flags_edge` (`install`). Bodies are
parsed by `json_body(Model)` whatever the Content-Type (the runbook's curl sends a form type): not JSON
is 400, not the model 422, always after the caller's credentials were checked."""


import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection

from services.flags import rules
from services.flags.exposure import ExposureBatch, ExposureRecorder
from services.flags.models import (
    AuditEntry, DefinitionError, FlagCreate, FlagRead, FlagUpdate, ImportRequest, ReasonBody, RolloutRequest,
    ScheduleCreate, ScheduleRead, SystemStatusRequest,
)
from services.flags.service import FlagService, Unavailable
from services.flags.snapshot import StreamSlots
from services.flags.sse import Stream
from shared.auth import Authenticator
from shared.http import state
from shared.flags.jsonlogic import LogicError

__all__ = ["router", "install", "json_body", "read_json", "ready", "not_ready", "service", "Svc", "BadBody"]

Key = Annotated[str, "flag key"]
M = TypeVar("M", bound=BaseModel)
router = APIRouter()


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
    return svc.ready


def not_ready() -> JSONResponse:
    return JSONResponse({"errorCode": "NOT_READY", "detail": "flags are not loaded yet (Postgres and the Redis "
                         "copy have not answered since start); retry, or ask another instance"},
                        status_code=503, headers={"Retry-After": "2"})


def _model(cls: type[M], data: Any) -> M:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise BadBody(422, json.loads(exc.json(include_url=False, include_context=False, include_input=False))) from None


def json_body(model: type[M], *, empty: Any = None) -> Any:
    """A dependency: the body parsed as JSON whatever its Content-Type, validated as `model` (400 / 422).
    `empty`: what an empty body stands for (else an empty body is a 400). Declare it after the caller's
    credentials so that an unauthenticated caller learns nothing about the body."""
    async def parse(request: Request) -> M:
        return _model(model, await read_json(request, empty=empty))
    return Depends(parse)


def _body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """Document a body we parse by hand (so a non-JSON body is a 400, whatever its Content-Type)."""
    return {"requestBody": {"required": required, "content": {"application/json": {
        "schema": model.model_json_schema(ref_template="#/$defs/{model}")}}}}


@dataclass(frozen=True, slots=True)
class Edge:
    """What the routes need besides the core: `app.state.flags_edge`."""

    auth: Authenticator
    slots: StreamSlots
    client_key: Callable[[HTTPConnection], str]
    write_limit: Callable[[HTTPConnection], Awaitable[Any]] | None = None


def install(app: FastAPI, *, auth: Authenticator, write_limit: Callable[[HTTPConnection], Awaitable[Any]] | None = None,
            slots: StreamSlots | None = None, client_key: Callable[[HTTPConnection], str] | None = None) -> None:
    """The routes and the error answers on `app`."""
    app.state.flags_edge = Edge(auth=auth, slots=slots or StreamSlots(max_total=1024, max_per_client=64),
                                client_key=client_key or _address, write_limit=write_limit)
    app.include_router(router)
    install_errors(app)


def _address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else ""


def _edge(conn: HTTPConnection) -> Edge:
    edge: Edge = conn.app.state.flags_edge
    return edge


def service(request: Request) -> FlagService:
    svc: FlagService = request.app.state.flags
    return svc


async def _admin(request: Request) -> str:
    return await _edge(request).auth.require_admin(request)


async def _reader(request: Request) -> str:
    return await _edge(request).auth.require_reader(request)


async def _operator(request: Request) -> str:
    return await _edge(request).auth.require_admin_or_loopback(request)


async def _writes(conn: HTTPConnection) -> None:
    """The per-client limit on changes (admin and runbook)."""
    limit = _edge(conn).write_limit
    if limit is not None:
        await limit(conn)


Svc = Annotated[FlagService, state("flags")]
Admin = Annotated[str, Depends(_admin)]
Reader = Annotated[str, Depends(_reader)]
Operator = Annotated[str, Depends(_operator)]
W = [Depends(_writes)]


# ---------------------------------------------------------------- the runbook
@router.post("/api/system/status", dependencies=W, tags=["runbook"], summary="Turn a feature on or off (the runbook's curl)",
             openapi_extra=_body(SystemStatusRequest))
async def system_status(svc: Svc, actor: Operator,
                        body: Annotated[SystemStatusRequest, json_body(SystemStatusRequest)]) -> dict[str, Any]:
    rec = await svc.set_enabled(body.feature, enabled=body.enabled, actor=actor,
                                reason=body.reason or "POST /api/system/status", kill=not body.enabled)
    return {"feature": rec.key, "enabled": rec.definition["state"] == "ENABLED",
            "state": rec.definition["state"], "version": rec.version, "actor": actor}


# ---------------------------------------------------------------- every flag
@router.get("/api/flags", tags=["flags"], response_model=list[FlagRead])
async def list_flags(svc: Svc, _: Reader, new: bool | None = None) -> list[FlagRead]:
    return [FlagRead.of(r) for r in svc.all() if new is None or r.new == new]


@router.post("/api/flags", dependencies=W, tags=["flags"], status_code=201, response_model=FlagRead,
             openapi_extra=_body(FlagCreate))
async def create_flag(svc: Svc, actor: Admin, body: Annotated[FlagCreate, json_body(FlagCreate)]) -> FlagRead:
    return FlagRead.of(await svc.create(body, actor=actor))


@router.get("/api/flags/_snapshot", tags=["sdk"], response_model=None)
async def snapshot(svc: Svc, _: Reader) -> dict[str, Any] | JSONResponse:
    """Every flag in the form SDKs evaluate locally, with the revision to resume the stream from.
    503 until the flags are loaded (an empty set would make SDKs forget killed flags)."""
    return svc.snapshot.client_payload() if ready(svc) else not_ready()


@router.get("/api/flags/_stream", tags=["sdk"], response_class=StreamingResponse, response_model=None)
async def stream(request: Request, svc: Svc, _: Reader) -> Stream | JSONResponse:
    """Server-sent events: `snapshot` (all flags) first, then one `flag` event per change.
    503 until loaded; 429 past the streams allowed per client, 503 past the total (Retry-After)."""
    if not ready(svc):
        return not_ready()
    edge = _edge(request)
    client = edge.client_key(request)
    refused = edge.slots.take(client)
    if refused is not None:
        status, why = refused
        return JSONResponse({"errorCode": "TOO_MANY_STREAMS", "detail": why}, status_code=status,
                            headers={"Retry-After": "10"})
    return Stream(svc, release=lambda: edge.slots.give_back(client))


@router.post("/api/flags/_kill-new", dependencies=W, tags=["flags"])
async def kill_new(svc: Svc, actor: Admin, body: Annotated[ReasonBody, json_body(ReasonBody, empty={})]
                   ) -> dict[str, Any]:
    """Kill every flag marked `new` (what recovery does when the error rate passes 5 %)."""
    return {"killed": await svc.kill_new(actor=actor, reason=body.reason or "kill all new features")}


@router.post("/api/flags/_import", dependencies=W, tags=["flags"])
async def import_flags(svc: Svc, actor: Admin, body: Annotated[ImportRequest, json_body(ImportRequest)],
                       strict: bool = False, reason: str = Query(default="", max_length=500)) -> dict[str, Any]:
    """Load a flagd flag file as flagd would: `{"imported", "cannot_kill": flags without an off variant,
    "parse_errors": rules that evaluate to PARSE_ERROR}`. `strict=true` refuses both (422)."""
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
async def exposures(request: Request, svc: Svc, _: Reader,
                    batch: Annotated[ExposureBatch, json_body(ExposureBatch)]) -> dict[str, int]:
    """SDKs report `[{flag, key_hash, in}]` (hashed targeting keys that saw a flag; `in`: served other than
    the off variant). Buffered and written to Redis in the background; unknown flags are ignored."""
    recorder: ExposureRecorder = request.app.state.exposures
    known = [e for e in batch.root if svc.get(e.flag) is not None]
    for e in known:
        recorder.add(e.flag, e.key_hash, e.in_)
    return {"accepted": len(known), "ignored": len(batch.root) - len(known)}


# ---------------------------------------------------------------- one flag
@router.get("/api/flags/{key}/exposure", tags=["flags"])
async def exposure(key: Key, request: Request, svc: Svc, _: Reader) -> dict[str, Any]:
    """Distinct targeting keys that evaluated the flag in the last hour, and how many got it on
    (HyperLogLog: about 0.8 % error). Counts OFREP evaluations and SDK reports."""
    if svc.get(key) is None:
        raise rules.FlagNotFound(key)
    try:
        found: dict[str, Any] = await request.app.state.exposures.store.last_hour(key)
    except (RedisError, OSError) as exc:
        raise Unavailable(f"exposure counts are in Redis, which did not answer ({type(exc).__name__})") from None
    return found


@router.get("/api/flags/{key}", tags=["flags"], response_model=FlagRead)
async def get_flag(key: Key, svc: Svc, _: Reader) -> FlagRead:
    rec = svc.get(key)
    if rec is None:
        raise rules.FlagNotFound(key)
    return FlagRead.of(rec)


@router.patch("/api/flags/{key}", dependencies=W, tags=["flags"], response_model=FlagRead,
              openapi_extra=_body(FlagUpdate))
async def update_flag(key: Key, svc: Svc, actor: Admin, body: Annotated[FlagUpdate, json_body(FlagUpdate)]
                      ) -> FlagRead:
    return FlagRead.of(await svc.update(key, body, actor=actor))


@router.delete("/api/flags/{key}", dependencies=W, tags=["flags"], status_code=204)
async def delete_flag(key: Key, svc: Svc, actor: Admin, reason: str = Query(default="", max_length=500)) -> Response:
    await svc.delete(key, actor=actor, reason=reason)
    return Response(status_code=204)


Reason = Annotated[ReasonBody, json_body(ReasonBody, empty={})]


@router.post("/api/flags/{key}/enable", dependencies=W, tags=["flags"], response_model=FlagRead)
async def enable(key: Key, svc: Svc, actor: Admin, body: Reason) -> FlagRead:
    return FlagRead.of(await svc.set_enabled(key, enabled=True, actor=actor, reason=body.reason))


@router.post("/api/flags/{key}/disable", dependencies=W, tags=["flags"], response_model=FlagRead)
async def disable(key: Key, svc: Svc, actor: Admin, body: Reason) -> FlagRead:
    return FlagRead.of(await svc.set_enabled(key, enabled=False, actor=actor, reason=body.reason))


@router.post("/api/flags/{key}/kill", dependencies=W, tags=["flags"], response_model=FlagRead)
async def kill(key: Key, svc: Svc, actor: Admin, body: Reason) -> FlagRead:
    """Turn the flag off now: it serves its off variant everywhere (reason DISABLED)."""
    return FlagRead.of(await svc.set_enabled(key, enabled=False, actor=actor, reason=body.reason, kill=True))


@router.post("/api/flags/{key}/rollout", dependencies=W, tags=["flags"], response_model=FlagRead,
             openapi_extra=_body(RolloutRequest))
async def rollout(key: Key, svc: Svc, actor: Admin, body: Annotated[RolloutRequest, json_body(RolloutRequest)]
                  ) -> FlagRead:
    return FlagRead.of(await svc.rollout(key, body.percent, actor=actor, reason=body.reason))


@router.get("/api/flags/{key}/audit", tags=["audit"], response_model=list[AuditEntry])
async def audit(key: Key, svc: Svc, _: Admin, limit: int = Query(default=100, ge=1, le=1000),
                before_id: int | None = Query(default=None, ge=1, le=2**63 - 1)) -> list[AuditEntry]:
    return await svc.audit(key, limit=limit, before_id=before_id)


@router.post("/api/flags/{key}/schedule", dependencies=W, tags=["schedule"], status_code=201,
             response_model=ScheduleRead, openapi_extra=_body(ScheduleCreate))
async def schedule(key: Key, svc: Svc, actor: Admin, body: Annotated[ScheduleCreate, json_body(ScheduleCreate)]
                   ) -> ScheduleRead:
    return await svc.schedule(key, body, actor=actor)


@router.get("/api/flags/{key}/schedule", tags=["schedule"], response_model=list[ScheduleRead])
async def schedules(key: Key, svc: Svc, _: Admin) -> list[ScheduleRead]:
    return await svc.schedules(key)


@router.delete("/api/flags/{key}/schedule/{schedule_id}", dependencies=W, tags=["schedule"], status_code=204)
async def cancel(key: Key, schedule_id: Annotated[int, Path(ge=1, le=2**63 - 1)], svc: Svc, _: Admin) -> Response:
    if not await svc.cancel_schedule(key, schedule_id):
        return JSONResponse({"detail": f"no pending scheduled change {schedule_id} for {key!r}"}, status_code=404)
    return Response(status_code=204)


# ---------------------------------------------------------------- errors
def _answer(status: int, code: str) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def answer(_: Request, exc: Exception) -> JSONResponse:
        body: dict[str, Any] = {"errorCode": code, "detail": str(exc)}
        headers = {"Retry-After": "5"} if status == 503 else None
        if isinstance(exc, rules.FlagNotFound):
            body["key"] = exc.key
        if isinstance(exc, DefinitionError):
            body["detail"] = [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]
        return JSONResponse(body, status_code=status, headers=headers)
    return answer


async def _bad_body(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadBody)
    return JSONResponse({"errorCode": "BAD_REQUEST" if exc.status == 400 else "INVALID_BODY",
                         "detail": exc.detail}, status_code=exc.status)


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
    return JSONResponse({"errorCode": "INVALID_REQUEST",
                         "detail": jsonable_encoder(errors, custom_encoder={Exception: str})}, status_code=status)


def install_errors(app: FastAPI) -> None:
    """The core's refusals as HTTP answers: 404 unknown flag, 409 conflict, 422 invalid, 503 store away."""
    app.add_exception_handler(rules.FlagNotFound, _answer(404, "FLAG_NOT_FOUND"))
    app.add_exception_handler(rules.Conflict, _answer(409, "CONFLICT"))
    app.add_exception_handler(DefinitionError, _answer(422, "INVALID_DEFINITION"))
    app.add_exception_handler(LogicError, _answer(422, "INVALID_DEFINITION"))  # a `$ref` cycle or blow-up
    app.add_exception_handler(Unavailable, _answer(503, "UNAVAILABLE"))
    app.add_exception_handler(BadBody, _bad_body)
    app.add_exception_handler(RequestValidationError, _invalid_request)
