"""Inbound edge: OFREP (OpenFeature Remote Evaluation Protocol) single and bulk evaluation.

Answers follow open-feature/protocol's openapi.yaml with two documented choices:
- `variant` is always sent (the Python OFREP provider reads it); a code-default answer (no
  `value`: flagd DISABLED without an off variant, or no default variant) sends `variant: ""`.
- reason `DEFAULT` is sent as flagd does (an OpenFeature reason the OFREP enum lacks).
Evaluation errors are 400 with `errorCode` (PARSE_ERROR, GENERAL, INVALID_CONTEXT); unknown flag 404.
A context larger than `max_bytes` or nested deeper than `max_depth` is INVALID_CONTEXT (400). Until the
flags are loaded every evaluation is 503 with Retry-After (never FLAG_NOT_FOUND for a flag that exists).
"""


import json
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import orjson

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from services.flags.api import Svc, not_ready, ready
from services.flags.exposure import ExposureRecorder
from services.flags.service import FlagService
from services.flags.snapshot import Snapshot, etag_for
from services.flags.wire import send_whole
from shared.flags.evaluator import Resolution
from shared.auth import Authenticator

__all__ = ["build_ofrep_router", "ofrep_body", "parse_context", "Answers", "OfrepFastPath", "AnswerCache", "dumps",
           "untraced", "ofrep_route", "read_body", "final", "respond", "Answer", "TRACED", "STREAM"]

Header_ = tuple[bytes, bytes]

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


MAX_BYTES, MAX_DEPTH = 64 * 1024, 16


def parse_context(raw: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> dict[str, Any] | str:
    """The evaluation context, or an error message. A missing body or context is an empty context."""
    if len(raw) > max_bytes:
        return f"the body is {len(raw)} bytes; a context may take at most {max_bytes}"
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "the body is not valid JSON"
    except RecursionError:
        return "the body nests too deep"
    if not isinstance(body, dict):
        return "the body must be a JSON object with a `context` object"
    ctx = body.get("context", {})
    if ctx is None:
        return {}
    if not isinstance(ctx, dict):
        return "`context` must be a JSON object"
    if _depth(ctx, max_depth) > max_depth:
        return f"`context` nests deeper than {max_depth} levels"
    return ctx


def _depth(value: Any, limit: int) -> int:
    """Nesting of `value` (a scalar is 0), counted to `limit + 1` at most, without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack and deepest <= limit:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth + 1)
            stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict) else node))
    return deepest


_BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": _CONTEXT_SCHEMA}}}}


def build_ofrep_router(auth: Authenticator, answers: "Answers") -> APIRouter:
    """The OFREP routes: the OpenAPI document and the 401 / 503 answers (the edge, `services/flags/edge.py`, and
    `OfrepFastPath` answer the rest), from the same `answers`."""
    router = APIRouter(prefix="/ofrep/v1", tags=["OFREP"])
    Reader = Annotated[str, Depends(auth.require_reader)]

    @router.post("/evaluate/flags/{key}", openapi_extra=_BODY_DOC, summary="Evaluate one flag")
    async def evaluate_one(key: str, request: Request, service: Svc, _: Reader) -> Response:
        return await _evaluate(request, service, answers, key)

    @router.post("/evaluate/flags", openapi_extra=_BODY_DOC, summary="Evaluate every flag (ETag / If-None-Match)")
    async def evaluate_all(request: Request, service: Svc, _: Reader,
                           if_none_match: Annotated[str | None, Header()] = None) -> Response:
        return await _evaluate(request, service, answers, None, if_none_match)

    return router


async def _evaluate(request: Request, service: FlagService, answers: "Answers", key: str | None,
                    if_none_match: str | None = None) -> Response:
    if not ready(service):
        return not_ready()
    answer = answers.answer(request.app.state, key, await request.body())
    status, raw, headers = final(answer, bulk=key is None, if_none_match=if_none_match)
    return Response(raw, status_code=status, headers={k.decode(): v.decode() for k, v in headers})


def _saw(recorder: ExposureRecorder | None, service: FlagService, found: list[tuple[str, Resolution]],
         ctx: dict[str, Any]) -> None:
    """Buffer the exposures of evaluations (flushed to Redis in the background: services/flags/exposure.py)."""
    if recorder is not None and ctx.get("targetingKey"):
        entries = service.snapshot.entries
        recorder.saw(targeting_key=ctx["targetingKey"],
                     found=((entries[k].compiled, r) for k, r in found if k in entries))


STREAM = "/api/flags/_stream"  # the SDKs' SSE stream: never traced
TRACED = "safeguard.ofrep.traced"  # scope key: the request's sampling decision, once taken


def untraced(*, ratio: float) -> Callable[[Scope], bool]:
    """FastAPI's telemetry `exclude` for the flags app: an OFREP evaluation gets its request span when the
    caller's traceparent is sampled, never when it is not, else for a `ratio` share (parent-based ratio).
    The SDKs' SSE stream never has one. Every other request keeps its span. A decision already taken for the
    request (`TRACED` in its scope, set by the edge ahead of FastAPI) stands: one draw per request."""
    draw = random.Random().random  # its own generator: the global one belongs to callers (and tests' seeds)

    def exclude(scope: Scope) -> bool:
        path = scope.get("path", "")
        if path == STREAM:
            return True  # an SDK's stream lives for hours: its span would be held open all that time
        if not path.startswith("/ofrep/"):
            return False
        decided = scope.get(TRACED)
        if decided is not None:
            return not decided
        for name, value in scope.get("headers", ()):
            if name == b"traceparent":
                if len(value) == 55 and _HEX.fullmatch(value[-2:]):
                    return not int(value[-2:], 16) & 1
                break
        return draw() >= ratio
    return exclude


_HEX = re.compile(rb"[0-9a-f]{2}")
_BULK = "/ofrep/v1/evaluate/flags"
_SINGLE = _BULK + "/"
_JSON = (b"content-type", b"application/json")


def dumps(body: Any) -> bytes:
    """Compact JSON; orjson, else the standard library (an integer past 64 bits, a NaN)."""
    try:
        return orjson.dumps(body)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(body, separators=(",", ":")).encode()


Answer = tuple[int, bytes, list[Header_]]


class AnswerCache:
    """Encoded OFREP answers by (flag key, or None for bulk; the request body) for repeated contexts.

    Emptied whenever the snapshot's generation moves (any load or change: a kill is answered at once) and
    at every second (a rule may read `$flagd.timestamp`). Bounded: bodies up to `max_body` bytes, at most
    `max_entries` answers (then nothing more is kept until the next emptying)."""

    def __init__(self, *, max_entries: int = 4096, max_body: int = 2048, clock: Callable[[], float] = time.time) -> None:
        self.max_entries, self.max_body, self.clock = max_entries, max_body, clock
        self._answers: dict[tuple[str | None, bytes], Answer] = {}
        self._stamp: tuple[int, int, int] = (0, -1, 0)

    def get(self, snapshot: Snapshot, key: str | None, body: bytes) -> Answer | None:
        stamp = (id(snapshot), snapshot.generation, int(self.clock()))
        if stamp != self._stamp:
            self._answers.clear()
            self._stamp = stamp
            return None
        return self._answers.get((key, body))

    def put(self, key: str | None, body: bytes, answer: Answer) -> None:
        if len(body) <= self.max_body and len(self._answers) < self.max_entries:
            self._answers[(key, body)] = answer


class Answers:
    """OFREP single and bulk answers, encoded (orjson) and kept in an `AnswerCache` for repeated contexts: the one
    place answers are made, for the edge ahead of FastAPI and for the FastAPI routes alike."""

    def __init__(self, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
                 cache: AnswerCache | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.cache = cache if cache is not None else AnswerCache()

    def answer(self, state: Any, key: str | None, body: bytes) -> Answer:
        """The encoded answer to one evaluation (`key`) or a bulk one (None), from the cache when it holds it."""
        service: FlagService = state.flags
        answer = self.cache.get(service.snapshot, key, body)
        if answer is None:  # a cached answer was recorded when it was made, in the same second
            ctx = parse_context(body, max_bytes=self.max_bytes, max_depth=self.max_depth)
            recorder = getattr(state, "exposures", None)
            answer = (self._single(service, key, ctx, recorder) if key is not None
                      else self._bulk(service, ctx, recorder))
            self.cache.put(key, body, answer)
        return answer

    @staticmethod
    def _single(service: FlagService, key: str, ctx: dict[str, Any] | str,
                recorder: ExposureRecorder | None = None) -> Answer:
        if isinstance(ctx, str):
            return 400, dumps({"key": key, "errorCode": "INVALID_CONTEXT", "errorDetails": ctx}), [_JSON]
        r = service.evaluate(key, ctx)
        if r is None:
            return 404, dumps({"key": key, "errorCode": "FLAG_NOT_FOUND",
                               "errorDetails": f"flag {key!r} was not found"}), [_JSON]
        _saw(recorder, service, [(key, r)], ctx)
        status, body = ofrep_body(key, r)
        return status, dumps(body), [_JSON]

    @staticmethod
    def _bulk(service: FlagService, ctx: dict[str, Any] | str, recorder: ExposureRecorder | None = None) -> Answer:
        """The 200 answer's ETag header comes last (`final` answers 304 from it)."""
        if isinstance(ctx, str):
            return 400, dumps({"errorCode": "INVALID_CONTEXT", "errorDetails": ctx}), [_JSON]
        etag = etag_for(service.snapshot.revision, ctx, len(service.snapshot.entries))
        found = service.evaluate_all(ctx)
        _saw(recorder, service, found, ctx)
        flags = [ofrep_body(k, r)[1] for k, r in found]
        return 200, dumps({"flags": flags}), [_JSON, (b"etag", etag.encode())]


class OfrepFastPath:
    """Plain-ASGI answers inside the full app (inside the guard and the rate limiter) for the OFREP requests the
    edge leaves to it, chiefly the sampled ones: their span is the request's own, with no FastAPI routing and
    dependency spans under it. No reader or flags not loaded: the FastAPI route answers 401 / 503."""

    def __init__(self, app: ASGIApp, *, auth: Authenticator, answers: Answers) -> None:
        self.app, self.auth, self.answers = app, auth, answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ours, key = ofrep_route(scope)
        conn = HTTPConnection(scope) if ours else None
        if conn is None or self.auth.reader_actor(conn) is None or not ready(scope["app"].state.flags):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:  # the client left
            return
        answer = self.answers.answer(scope["app"].state, key, body)
        await respond(send, answer, bulk=key is None, if_none_match=conn.headers.get("if-none-match"))


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def ofrep_route(scope: Scope) -> tuple[bool, str | None]:
    """(whether the request is an OFREP evaluation, its flag key or None for bulk)."""
    path = scope.get("path", "")
    if scope["type"] != "http" or scope["method"] != "POST" or not path.startswith(_BULK):
        return False, None
    if path == _BULK:
        return True, None
    key = path[len(_SINGLE):] if path.startswith(_SINGLE) else ""
    return (True, key) if key and "/" not in key else (False, None)


def final(answer: Answer, *, bulk: bool, if_none_match: str | None) -> Answer:
    """The answer to send: a bulk 200 whose ETag the caller holds is 304 (with that ETag only)."""
    status, _, headers = answer
    if bulk and status == 200 and _matches(if_none_match, headers[-1][1]):
        return 304, b"", headers[-1:]
    return answer


async def respond(send: Send, answer: Answer, *, bulk: bool, if_none_match: str | None,
                  extra: Sequence[Header_] = ()) -> None:
    """Send an encoded answer (plain ASGI), `final`'s choice of 200 or 304, with `extra` headers."""
    status, raw, headers = final(answer, bulk=bulk, if_none_match=if_none_match)
    length = [(b"content-length", str(len(raw)).encode())] if status != 304 else []
    await send_whole(send, {"type": "http.response.start", "status": status, "headers": [*headers, *length, *extra]},
                     {"type": "http.response.body", "body": raw})


def _matches(if_none_match: str | None, etag: bytes) -> bool:
    return if_none_match is not None and etag.decode() in [t.strip() for t in if_none_match.split(",")]
