"""Inbound edge: OFREP (OpenFeature Remote Evaluation Protocol) single and bulk evaluation.

Answers follow open-feature/protocol's openapi.yaml with two documented choices:
- `variant` is always sent (the Python OFREP provider reads it); a code-default answer (no
  `value`: flagd DISABLED without an off variant, or no default variant) sends `variant: ""`.
- reason `DEFAULT` is sent as flagd does (an OpenFeature reason the OFREP enum lacks).
Evaluation errors are 400 with `errorCode` (PARSE_ERROR, GENERAL, INVALID_CONTEXT); unknown flag 404.
"""


import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response

from services.flags.service import FlagService
from services.flags.snapshot import etag_for
from sdk.flags.evaluator import Resolution
from shared.auth import Authenticator

__all__ = ["build_ofrep_router", "ofrep_body"]

_CONTEXT_SCHEMA = {"type": "object", "properties": {"context": {
    "type": "object", "properties": {"targetingKey": {"type": "string"}}, "additionalProperties": True}}}


def ofrep_body(key: str, r: Resolution) -> tuple[int, dict[str, Any]]:
    """(status, body) of one evaluation."""
    if r.error_code is not None:
        return 400, {"key": key, "errorCode": r.error_code, "errorDetails": r.error_message or r.error_code}
    body: dict[str, Any] = {"key": key, "reason": r.reason, "variant": r.variant or ""}
    if not r.is_code_default:
        body["value"] = r.value
    if r.metadata:
        body["metadata"] = dict(r.metadata)
    return 200, body


def _not_found(key: str) -> JSONResponse:
    return JSONResponse({"key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": f"flag {key!r} was not found"},
                        status_code=404)


def _invalid(detail: str, key: str | None = None) -> JSONResponse:
    body = {"errorCode": "INVALID_CONTEXT", "errorDetails": detail}
    if key is not None:
        body["key"] = key
    return JSONResponse(body, status_code=400)


async def _context(request: Request) -> dict[str, Any] | str:
    """The evaluation context, or an error message. A missing body or context is an empty context."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "the body is not valid JSON"
    if not isinstance(body, dict):
        return "the body must be a JSON object with a `context` object"
    ctx = body.get("context", {})
    if ctx is None:
        return {}
    if not isinstance(ctx, dict):
        return "`context` must be a JSON object"
    return ctx


def build_ofrep_router(auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/ofrep/v1", tags=["OFREP"])
    Reader = Annotated[str, Depends(auth.require_reader)]

    def svc(request: Request) -> FlagService:
        s: FlagService = request.app.state.flags
        return s

    Svc = Annotated[FlagService, Depends(svc)]
    body_doc = {"requestBody": {"required": True, "content": {"application/json": {"schema": _CONTEXT_SCHEMA}}}}

    @router.post("/evaluate/flags/{key}", openapi_extra=body_doc, summary="Evaluate one flag")
    async def evaluate_one(key: str, request: Request, service: Svc, _: Reader) -> Response:
        ctx = await _context(request)
        if isinstance(ctx, str):
            return _invalid(ctx, key)
        r = service.evaluate(key, ctx)
        if r is None:
            return _not_found(key)
        status, body = ofrep_body(key, r)
        return JSONResponse(body, status_code=status)

    @router.post("/evaluate/flags", openapi_extra=body_doc, summary="Evaluate every flag (ETag / If-None-Match)")
    async def evaluate_all(request: Request, service: Svc, _: Reader,
                           if_none_match: Annotated[str | None, Header()] = None) -> Response:
        ctx = await _context(request)
        if isinstance(ctx, str):
            return _invalid(ctx)
        etag = etag_for(service.snapshot.revision, ctx, len(service.snapshot.entries))
        if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
            return Response(status_code=304, headers={"ETag": etag})
        flags = [ofrep_body(k, r)[1] for k, r in service.evaluate_all(ctx)]
        return JSONResponse({"flags": flags}, headers={"ETag": etag})

    return router
