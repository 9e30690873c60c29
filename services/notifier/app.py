"""Composition root of the notifier service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.notifier.settings import NotifierSettings
from shared.http import healthz_router
from shared.kafka import KafkaPublisher, Publisher
from shared.telemetry import setup_telemetry

__all__ = ["create_app"]


def create_app(settings: NotifierSettings, *, publisher: Publisher | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        setup_telemetry("notifier", settings.telemetry)
        if publisher is not None:
            yield {"publisher": publisher}
            return
        async with KafkaPublisher.start(settings.kafka, source="/safeguard/notifier") as pub:
            yield {"publisher": pub}

    app = FastAPI(title="Safeguard notifier", lifespan=lifespan)
    app.include_router(healthz_router("notifier"))
    return app
