"""The flags service's edge: plain ASGI ahead of FastAPI for its two hot paths (issue 12), OFREP evaluations
and the SDKs' SSE stream.

An evaluation is cheap; what cost time was everything around it: FastAPI's per-request layers (native
telemetry, error middleware), the guard re-reading headers and replaying the body, the rate limiter
building an `HTTPConnection` and hashing the caller's identity, and the header bytes built per request.
The edge takes an OFREP POST first and answers it itself when it is the plain case:

    not sampled for a span   ->  the guard's checks pass  ->  a reader  ->  flags loaded
    ->  body read (Content-Length, at most the context cap; nesting under the guard's cap)
    ->  the rate limiter's decision  ->  the cached or evaluated answer, with the RateLimit headers

Anything else (a sampled request, a refused host or origin, a chunked or oversized body, a deep body, no
reader, flags not loaded) goes on to the full app, unchanged and with the body replayed, which answers
it as before: the span is recorded, the guard answers 400/403/413, the route 401/503. No step with an
effect (the limiter's count) runs before that choice, so nothing is counted twice.

The SSE stream (`GET /api/flags/_stream`) in the plain case (the guard's Host check passes, a reader, flags
loaded, a stream slot free) takes its slot, the limiter's decision, and is sent by `sse.serve`: one coroutine
per stream writing straight to the server, instead of FastAPI's route, a streaming response's task group and
the middleware's send wrappers on every event. Streams carry no request span (`ofrep.untraced`).

A caller's verdict (reader or not, rate-limit key) depends only on the credentials it presents and its
addresses, so it is kept per (peer, Authorization, X-API-Key, X-Forwarded-For), bounded."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope, Send

from services.flags import sse
from services.flags.api import ready
from services.flags.ofrep import STREAM, TRACED, Answers, dumps, ofrep_route, read_body, respond
from services.flags.snapshot import StreamSlots
from shared.auth import Authenticator
from shared.guard import Guard, json_depth, replay
from shared.ratelimit import RateLimiter, header_bytes, refuse

__all__ = ["FlagsEdge"]

logger = logging.getLogger(__name__)

_MAX_VERDICTS = 4096
_WANTED = frozenset({b"host", b"origin", b"sec-fetch-site", b"content-length", b"transfer-encoding",
                     b"if-none-match", b"authorization", b"x-api-key", b"x-forwarded-for"})
_CALLER = (b"authorization", b"x-api-key", b"x-forwarded-for")
_SERVER_ERROR = dumps({"errorCode": "GENERAL", "errorDetails": "the evaluation failed; see the service's log"})


@dataclass(frozen=True, slots=True)
class _Verdict:
    reader: bool
    rate_key: str


class FlagsEdge:
    """`await edge(scope, receive, send)` returns None when it answered, else the `receive` the full app
    must read (the body replayed when the edge read it)."""

    def __init__(self, *, state: Any, auth: Authenticator, limiter: RateLimiter, guard: Guard,
                 answers: Answers, traced: Callable[[Scope], bool], slots: StreamSlots) -> None:
        self.state, self.auth, self.limiter, self.guard, self.answers = state, auth, limiter, guard, answers
        self.traced, self.slots = traced, slots
        self._verdicts: dict[tuple[object, ...], _Verdict] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        if scope["path"] == STREAM and scope["method"] == "GET":
            return await self._stream(scope, receive, send)
        ours, key = ofrep_route(scope)
        if not ours:
            return receive
        scope[TRACED] = traced = self.traced(scope)
        headers = _pick(scope["headers"])
        if traced or not self._plain(headers):
            return receive
        verdict = self._verdict(scope, headers)
        if not verdict.reader or not ready(self.state.flags):
            return receive
        body = await read_body(receive)
        if body is None:  # the client left
            return None
        limit = self.guard.settings.max_json_depth
        if json_depth(body, limit) > limit:
            return replay(body, receive)
        await self._answer(send, key, body, headers, verdict)
        return None

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        headers = _pick(scope["headers"])
        if not self._host_allowed(headers):
            return receive
        verdict = self._verdict(scope, headers)
        svc = self.state.flags
        if not verdict.reader or not ready(svc) or self.slots.take(verdict.rate_key) is not None:
            return receive  # the route answers 401 / 503, or 429 / 503 for the slots
        try:
            extra = await self._allowed(send, verdict)
            if extra is not None:
                await sse.serve(svc, receive, send, extra=extra)
        finally:
            self.slots.give_back(verdict.rate_key)
        return None

    async def _allowed(self, send: Send, verdict: _Verdict) -> tuple[tuple[bytes, bytes], ...] | None:
        """The limiter's headers for an allowed request; None when it was refused (429 sent)."""
        if not self.limiter.enabled:
            return ()
        decision = await self.limiter.hit(verdict.rate_key)
        extra = header_bytes(decision)
        if not decision.allowed:
            await refuse(send, extra)
            return None
        return extra

    def _host_allowed(self, headers: dict[bytes, bytes]) -> bool:
        host = headers.get(b"host")  # a foreign or repeated Host: the guard answers
        return host is None or (b"," not in host and self.guard.host_allowed(host.decode("latin-1")))

    def _plain(self, headers: dict[bytes, bytes]) -> bool:
        """The guard would let it through and its body is small and declared (else the full app decides)."""
        if not self._host_allowed(headers):
            return False
        if b"origin" in headers or headers.get(b"sec-fetch-site", b"").lower() in (b"cross-site", b"same-site"):
            return False
        length = headers.get(b"content-length", b"")
        return (b"transfer-encoding" not in headers and length.isdigit()
                and int(length) <= min(self.answers.max_bytes, self.guard.settings.max_body_bytes))

    def _verdict(self, scope: Scope, headers: dict[bytes, bytes]) -> _Verdict:
        client = scope.get("client")
        cache_key = (client[0] if client else None, *(headers.get(h) for h in _CALLER))
        verdict = self._verdicts.get(cache_key)
        if verdict is None:
            if len(self._verdicts) >= _MAX_VERDICTS:
                self._verdicts.clear()
            conn = HTTPConnection(scope)
            verdict = self._verdicts[cache_key] = _Verdict(reader=self.auth.reader_actor(conn) is not None,
                                                           rate_key=self.limiter.key(conn))
        return verdict

    async def _answer(self, send: Send, key: str | None, body: bytes, headers: dict[bytes, bytes],
                      verdict: _Verdict) -> None:
        extra = await self._allowed(send, verdict)
        if extra is None:
            return
        try:
            answer = self.answers.answer(self.state, key, body)
        except Exception:  # noqa: BLE001 - as the full app's error middleware would: logged, 500
            logger.exception("OFREP evaluation failed (flag %r)", key)
            answer = 500, _SERVER_ERROR, [(b"content-type", b"application/json")]
        inm = headers.get(b"if-none-match")
        await respond(send, answer, bulk=key is None, if_none_match=inm.decode("latin-1") if inm else None,
                      extra=extra)


def _pick(raw: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The headers the edge reads (a repeated one joined with ", ", as HTTP allows for lists)."""
    out: dict[bytes, bytes] = {}
    for name, value in raw:
        if name in _WANTED:
            out[name] = out[name] + b", " + value if name in out else value
    return out
