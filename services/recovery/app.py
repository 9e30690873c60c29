"""Composition root of the recovery service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.recovery.settings import RecoverySettings
from shared.http import healthz_router
from shared.kafka import KafkaPublisher, Publisher
from shared.telemetry import setup_telemetry

__all__ = ["create_app"]


def create_app(settings: RecoverySettings, *, publisher: Publisher | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        setup_telemetry("recovery", settings.telemetry)
        if publisher is not None:
            yield {"publisher": publisher}
            return
        async with KafkaPublisher.start(settings.kafka, source="/safeguard/recovery") as pub:
            yield {"publisher": pub}

    app = FastAPI(title="Safeguard recovery", lifespan=lifespan)
    app.include_router(healthz_router("recovery"))
    return app
