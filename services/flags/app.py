"""Composition root of the flags service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.flags.settings import FlagsSettings
from shared.http import healthz_router
from shared.kafka import KafkaPublisher, Publisher
from shared.telemetry import setup_telemetry

__all__ = ["create_app"]


def create_app(settings: FlagsSettings, *, publisher: Publisher | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        setup_telemetry("flags", settings.telemetry)
        if publisher is not None:
            yield {"publisher": publisher}
            return
        async with KafkaPublisher.start(settings.kafka, source="/safeguard/flags") as pub:
            yield {"publisher": pub}

    app = FastAPI(title="Safeguard flags", lifespan=lifespan)
    app.include_router(healthz_router("flags"))
    return app
