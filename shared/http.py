"""Serving a FastAPI app: uvicorn on loopback, clean shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import gc
import importlib.util
import os
import signal
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.guard import install_guard
from shared.settings import HttpSettings
from shared.startup import build_or_exit, exit_bad_config

__all__ = ["serve", "healthz_router", "run_service", "expose", "state", "loop_options", "LOOP_SETTING",
           "frozen_after_startup", "upstream_client", "KEEP_ALIVE_S", "UPSTREAM_KEEPALIVE_S"]

S = TypeVar("S", bound=HttpSettings)

# How long our servers keep an idle kept-alive connection open (uvicorn's timeout_keep_alive; its default is 5 s).
# Longer than any of their clients keeps one: httpx's 5 s (the SDK, the CLI, the demo), HAProxy's 15 s on its client
# side (`timeout http-keep-alive`, which bounds the connection HAProxy keeps to flags for that client). A client that
# lets go first never sends a request on a connection the server is closing at that instant.
KEEP_ALIVE_S = 20
UPSTREAM_KEEPALIVE_S = 2.0  # how long our clients of them keep one: well under KEEP_ALIVE_S


def upstream_client(**kwargs: Any) -> httpx.AsyncClient:
    """An httpx client for calls to our own services. It drops an idle kept-alive connection after
    UPSTREAM_KEEPALIVE_S, well before the server closes it (KEEP_ALIVE_S). With httpx's default (5 s, the same as
    uvicorn's default), a request sent on a pooled connection just as the server closes it gets no answer ("Server
    disconnected without sending a response"): the console's flags page answered 502 that way in CI (2026-12-02),
    5.0 s after its previous call to flags. Pool sizes stay httpx's defaults."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=UPSTREAM_KEEPALIVE_S)
    return httpx.AsyncClient(limits=limits, **kwargs)


def healthz_router(service: str) -> APIRouter:
    """`GET /healthz`: the liveness probe HAProxy and supervisord's waiters use. It fails (503) while a
    Kafka consumer of this process is dead or stuck (`shared.kafka.liveness`); "warn" while one retries."""
    from fastapi.responses import JSONResponse

    from shared.kafka.liveness import consumer_health

    router = APIRouter()

    @router.get("/healthz", tags=["ops"])
    async def healthz() -> JSONResponse:
        health = consumer_health()
        body = {"status": health.status, "service": service, "consumers": health.consumers}
        return JSONResponse(body, status_code=503 if health.status == "fail" else 200)

    return router


LOOP_SETTING = "SAFEGUARD_HTTP_LOOP"
_LOOPS = {"asyncio": ("asyncio", "h11"), "uvloop": ("uvloop", "httptools")}


def loop_options(*, env: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """uvicorn's (`loop`, `http`) from SAFEGUARD_HTTP_LOOP: `asyncio` (the default: asyncio + h11) or `uvloop`
    (uvloop + httptools, when both are installed). Never uvicorn's "auto", which would switch silently on what
    happens to be installed. A bad value, or `uvloop` without them, exits 2 naming the setting."""
    choice = env.get(LOOP_SETTING, "asyncio").strip().lower() or "asyncio"
    if choice not in _LOOPS:
        exit_bad_config([f"bad setting {LOOP_SETTING}={choice!r}: use one of {', '.join(_LOOPS)}"])
    loop, http = _LOOPS[choice]
    missing = [m for m in (loop, http) if choice == "uvloop" and importlib.util.find_spec(m) is None]
    if missing:
        exit_bad_config([f"{LOOP_SETTING}=uvloop needs {' and '.join(missing)} installed (pip install uvloop "
                         f"httptools), or set {LOOP_SETTING}=asyncio"])
    return loop, http


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Run behind `shared.guard` (Host allow-list, no cross-site writes, size caps) until SIGTERM/SIGINT;
    uvicorn drains in-flight requests and runs the lifespan exit.

    uvicorn re-raises the signal it caught once it has shut down; these handlers turn that into
    exit status 0, so a process manager sees a clean exit rather than death by signal.
    """
    loop, http = loop_options()  # before anything else: a bad setting stops here
    install_guard(app, own_host=host)  # no-op when create_app installed it with its own settings
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    uvicorn.run(frozen_after_startup(app), host=host, port=port, log_config=None, access_log=False,
                timeout_graceful_shutdown=10, timeout_keep_alive=KEEP_ALIVE_S, loop=loop, http=http)


class frozen_after_startup:  # noqa: N801 - used as a function: frozen_after_startup(app)
    """`app`, with every object alive once its lifespan started (modules, the app, its caches and pools) moved to
    the collector's permanent generation (`gc.freeze`). A full collection otherwise walks them all: in flags
    (119,000 objects) that is a 49-60 ms pause, and a kill that meets it waits for it (docs/kill-fanout.md)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)

        async def started(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                gc.collect()
                gc.freeze()
            await send(message)

        return await self.app(scope, receive, started)


def run_service(create_app: Callable[[S], FastAPI], settings_type: Callable[[], S], *,
                service: str | None = None) -> None:
    """`python -m services.<name>`: read `settings_type()` (a settings class, or any factory of settings, e.g.
    one instance's) from the environment, `create_app(settings)` (which
    loads the policy), then serve on the settings' host and port. A bad setting or policy exits 2 naming
    the field (`shared.startup`). `service` defaults to the package of `create_app` (services.<name>.app)."""
    parts = create_app.__module__.split(".")
    name = service or (parts[1] if parts[0] == "services" and len(parts) > 2 else parts[-1])

    def build() -> tuple[S, FastAPI]:
        settings = settings_type()
        return settings, create_app(settings)

    settings, app = build_or_exit(build, service=name)
    serve(app, host=settings.host, port=settings.port)


def expose(app: FastAPI, **objects: object) -> None:
    """The one way a service keeps its run-time objects: `app.state.<name>`, set once in the lifespan.
    Routes read them as `request.app.state.<name>` with the type annotated where they are read."""
    for name, value in objects.items():
        setattr(app.state, name, value)


def state(path: str) -> Any:
    """A route's dependency on what `expose` kept: `Annotated[FlagService, state("flags")]` is
    `request.app.state.flags` (a dotted path goes further: `state("recovery.pauses")`).

    It is `async def` on purpose: FastAPI calls a plain `def` dependency in its threadpool, so every request
    paid a hop to a worker thread and back (and waited for the GIL there) just to read an attribute."""
    first, *rest = path.split(".")

    async def read(request: Request) -> Any:
        found = getattr(request.app.state, first)
        for name in rest:
            found = getattr(found, name)
        return found

    read.__name__ = read.__qualname__ = f"state_{path.replace('.', '_')}"
    return Depends(read)
