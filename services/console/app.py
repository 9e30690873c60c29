"""Composition root of the console: Jinja2 pages (services/console/pages/*), htmx and uPlot served
from static/vendor (pinned npm files, stack/vendor-console.sh), everything under `/console`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.console.auth import SessionKeeper
from services.console.backends import Backends
from services.console.pages import ROUTERS
from services.console.settings import ConsoleSettings
from shared.auth import AuthSettings
from shared.http import healthz_router
from shared.telemetry import setup_telemetry

__all__ = ["create_app", "PREFIX"]

PREFIX = "/console"
STATIC = Path(__file__).parent / "static"


def create_app(settings: ConsoleSettings, *, backends: Backends | None = None,
               auth: AuthSettings | None = None) -> FastAPI:
    """`backends` replaces the HTTP clients to the services (tests point them at in-process apps)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_telemetry("console", settings.telemetry)
        if backends is not None:
            app.state.backends = backends
            yield
            return
        async with Backends.open(settings) as opened:
            app.state.backends = opened
            yield

    app = FastAPI(title="Safeguard console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.sessions = SessionKeeper(auth or AuthSettings())
    app.include_router(healthz_router("console"))
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router, prefix=PREFIX)
    return app
