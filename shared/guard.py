"""The HTTP front guard every service runs: Host allow-list, no cross-site writes, body size and JSON depth caps.

    install_guard(app, settings=GuardSettings(), own_host="127.0.0.1")   # or serve(), which does it

- Host (DNS rebinding): the name in `Host` must be in `allowed_hosts` (default localhost, 127.0.0.1,
  ::1), the service's own bind address, an IP literal or a single-label name (compose service names
  such as `flags`): rebinding needs a name in a DNS zone the attacker runs, never one of these. 400.
- Cross-site writes (CSRF from a page in the operator's browser): a POST/PUT/PATCH/DELETE whose
  `Origin` is not this host (or in `allowed_origins`), or without Origin but with `Sec-Fetch-Site:
  cross-site`/`same-site`, is 403. curl and the SDKs send neither header, so they pass.
- Body: more than `max_body_bytes` is 413 (Content-Length or counted while reading, chunked too).
- JSON nested deeper than `max_json_depth` is 400 before any parser sees it (whatever the
  Content-Type: the runbook's curl sends JSON as a form).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["GuardSettings", "Guard", "install_guard", "is_guarded", "json_depth", "host_name", "aiohttp_guard",
           "replay"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_TO_PARENS = bytes.maketrans(b"[{]}", b"(())")


class GuardSettings(BaseSettings):
    """`SAFEGUARD_ALLOWED_HOSTS`, `SAFEGUARD_ALLOWED_ORIGINS`, `SAFEGUARD_MAX_BODY_BYTES`, `SAFEGUARD_MAX_JSON_DEPTH`..."""

    model_config = SettingsConfigDict(env_prefix="SAFEGUARD_", extra="ignore")
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "::1"])
    allow_ip_hosts: bool = Field(default=True, description="Any IP literal in Host (no DNS, so no rebinding).")
    allow_single_label_hosts: bool = Field(default=True, description="Host names without a dot (compose services).")
    allowed_origins: list[str] = Field(default_factory=list, description="Extra origins allowed to write, "
                                                                         "e.g. https://ops.example.com.")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    max_json_depth: int = Field(default=64, ge=1)


def host_name(host: str) -> str:
    """`Host` without its port, lower case, no trailing dot; IPv6 without brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def json_depth(raw: bytes, limit: int) -> int:
    """How deep `raw` nests (lists and objects), counted to `limit + 1` at most, in C-speed passes.

    Escapes and strings are removed first, then brackets only are kept and innermost pairs are
    removed one level per pass. Unclosed brackets (truncated input) count as levels too."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return 0 if not (b"[" in raw or b"{" in raw) else 1
    s = _STRING.sub(b"", _ESCAPE.sub(b"", raw)).translate(_TO_PARENS, _NOT_BRACKET)
    depth = 0
    while b"()" in s and depth <= limit:
        s = s.replace(b"()", b"")
        depth += 1
    return min(limit + 1, depth + s.count(b"("))


def _looks_json(content_type: str, body: bytes) -> bool:
    return "json" in content_type or body.lstrip()[:1] in (b"{", b"[")


class _Refused(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class Guard:
    """Pure ASGI middleware (see the module docstring). Outermost, so nothing runs for a refused request."""

    def __init__(self, app: ASGIApp, *, settings: GuardSettings | None = None, own_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.settings = settings or GuardSettings()
        wildcard = {"0.0.0.0", "::", ""}
        self.hosts = frozenset(host_name(h) for h in [*self.settings.allowed_hosts, *own_hosts]
                               if host_name(h) not in wildcard)
        self.origins = frozenset(o.rstrip("/").lower() for o in self.settings.allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            self._check_host(headers)
            if scope["type"] == "http" and scope["method"] not in _SAFE_METHODS:
                self._check_origin(headers)
            if scope["type"] == "http" and _has_body(headers):
                receive = await self._read_body(headers, receive)
        except _Refused as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                if exc.status == 413:
                    await _drain(receive)
                await _refuse(send, exc)
            return
        await self.app(scope, receive, send)

    @classmethod
    def checks_only(cls, *, settings: GuardSettings | None = None, own_hosts: Iterable[str] = ()) -> Guard:
        """A guard that is asked (`host_allowed`, the settings) and never called: for edges in other frameworks."""
        return cls(_no_app, settings=settings, own_hosts=own_hosts)

    def host_allowed(self, host: str) -> bool:
        name = host_name(host)
        s = self.settings
        return (name in self.hosts or (s.allow_ip_hosts and _is_ip(name))
                or (s.allow_single_label_hosts and bool(name) and "." not in name))

    def _check_host(self, headers: Mapping[str, str]) -> None:
        host = headers.get("host")
        if host is not None and not self.host_allowed(host):  # no Host at all: HTTP/1.0 health checks
            raise _Refused(400, "HOST_NOT_ALLOWED",
                           f"host {host_name(host)!r} is not allowed here (SAFEGUARD_ALLOWED_HOSTS)")

    def _check_origin(self, headers: Mapping[str, str]) -> None:
        origin = headers.get("origin")
        if origin is None:
            site = headers.get("sec-fetch-site", "").lower()
            if site in ("cross-site", "same-site"):
                raise _Refused(403, "CROSS_SITE", f"a {site} request cannot change anything here")
            return
        origin = origin.strip().rstrip("/").lower()
        if origin in self.origins:
            return
        if origin != "null" and urlsplit(origin).netloc == headers.get("host", "").strip().lower():
            return
        raise _Refused(403, "CROSS_SITE", f"requests from origin {origin!r} cannot change anything here "
                                          "(SAFEGUARD_ALLOWED_ORIGINS); use curl, the CLI or an API token")

    async def _read_body(self, headers: Headers, receive: Receive) -> Receive:
        cap = self.settings.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _Refused(413, "BODY_TOO_LARGE", f"the body is {int(declared)} bytes; at most {cap} are accepted")
        body, more, last = bytearray(), True, None
        while more:
            last = await receive()
            if last["type"] != "http.request":
                break
            body += last.get("body", b"")
            more = bool(last.get("more_body"))
            if len(body) > cap:
                raise _Refused(413, "BODY_TOO_LARGE", f"the body is larger than {cap} bytes")
        raw = bytes(body)
        limit = self.settings.max_json_depth
        if _looks_json(headers.get("content-type", ""), raw) and json_depth(raw, limit) > limit:
            raise _Refused(400, "JSON_TOO_DEEP", f"the JSON body nests deeper than {limit} levels")
        return replay(raw, receive, disconnect=last if last is not None and last["type"] != "http.request" else None)


async def _drain(receive: Receive, *, limit: int = 64 * 1024 * 1024, timeout_s: float = 2.0) -> None:
    """Read and drop what the client is still sending (bounded), so the 413 is not lost to a reset
    when we close a connection with unread data (a proxy in front then sees no answer at all)."""
    seen = 0

    async def rest() -> None:
        nonlocal seen
        while seen <= limit:
            msg = await receive()
            if msg["type"] != "http.request" or not msg.get("more_body"):
                return
            seen += len(msg.get("body", b""))

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await rest()


def _has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


def replay(body: bytes, receive: Receive, *, disconnect: Message | None = None) -> Receive:
    """A `receive` that gives `body` once more, then `disconnect` when one was read, else the connection's own."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return disconnect if disconnect is not None else await receive()

    return replayed


async def _refuse(send: Send, exc: _Refused) -> None:
    raw = json.dumps({"errorCode": exc.code, "detail": exc.detail}).encode()
    await send({"type": "http.response.start", "status": exc.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": raw})


def is_guarded(app: Any) -> bool:
    return any(getattr(m, "cls", None) is Guard for m in getattr(app, "user_middleware", ()))


def install_guard(app: Any, *, settings: GuardSettings | None = None, own_host: str | None = None) -> None:
    """Add the guard as the outermost middleware of a Starlette/FastAPI app (once)."""
    if not is_guarded(app):
        app.add_middleware(Guard, settings=settings or GuardSettings(), own_hosts=[own_host] if own_host else [])


def aiohttp_guard(*, settings: GuardSettings | None = None, own_host: str | None = None) -> Any:
    """The Host and cross-site checks as an aiohttp middleware (Faust's web server: the SLA service).
    aiohttp caps bodies itself (`client_max_size`, 1 MiB)."""
    from aiohttp import web

    guard = Guard.checks_only(settings=settings, own_hosts=[own_host] if own_host else [])

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        try:
            guard._check_host(request.headers)
            if request.method not in _SAFE_METHODS:
                guard._check_origin(request.headers)
        except _Refused as exc:
            return web.json_response({"errorCode": exc.code, "detail": exc.detail}, status=exc.status)
        return await handler(request)

    return middleware


async def _no_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("a checks-only Guard is never called")
