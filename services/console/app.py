"""Composition root of the console: Jinja2 pages (services/console/pages/*), htmx and uPlot served
from static/vendor (pinned npm files, stack/vendor-console.sh), everything under `/console`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.console.auth import SessionKeeper
from services.console.backends import Backends
from services.console.pages import ROUTERS
from services.console.settings import ConsoleSettings
from shared.auth import AuthSettings
from shared.http import expose, healthz_router
from shared.telemetry import setup_telemetry

__all__ = ["create_app", "prepare_core", "ConsoleCore", "PREFIX"]

PREFIX = "/console"
STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class ConsoleCore:
    """What the pages read, each as `app.state.<field>` (`shared.http.expose`)."""

    settings: ConsoleSettings
    sessions: SessionKeeper
    backends: Backends


async def prepare_core(settings: ConsoleSettings, *, stack: AsyncExitStack, backends: Backends | None = None,
                       auth: AuthSettings | None = None) -> ConsoleCore:
    """The sessions and the clients to the services (opened on `stack` unless given)."""
    if backends is None:
        backends = await stack.enter_async_context(Backends.open(settings))
    return ConsoleCore(settings=settings, sessions=SessionKeeper(auth or AuthSettings()), backends=backends)


def create_app(settings: ConsoleSettings, *, backends: Backends | None = None,
               auth: AuthSettings | None = None) -> FastAPI:
    """`backends` replaces the HTTP clients to the services (tests point them at in-process apps)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_telemetry("console", settings.telemetry)
        async with AsyncExitStack() as stack:
            expose(app, **vars(await prepare_core(settings, stack=stack, backends=backends, auth=auth)))
            yield

    app = FastAPI(title="Safeguard console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(healthz_router("console"))
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router, prefix=PREFIX)
    return app
