"""Composition root of the health service."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.health import api
from services.health.config import HealthConfig, load_config
from services.health.feed import SystemFeed
from services.health.probes import Defaults, Prober
from services.health.runner import ProbeRunner
from services.health.settings import HealthSettings
from services.health.view import SystemView
from shared.http import healthz_router
from shared.kafka import KafkaPublisher, Publisher
from shared.telemetry import setup_telemetry

__all__ = ["create_app"]


def create_app(settings: HealthSettings, *, config: HealthConfig | None = None,
               publisher: Publisher | None = None, prober: Prober | None = None) -> FastAPI:
    """`config` defaults to `settings.config_path`, loaded (and validated) here, before serving."""
    config = config or load_config(settings.config_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        setup_telemetry("health", settings.telemetry)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe is noise
        async with AsyncExitStack() as stack:
            pub = publisher or await stack.enter_async_context(
                KafkaPublisher.start(settings.kafka, source="/safeguard/health"))
            probes = prober or Prober(Defaults(
                postgres_dsn=settings.postgres.dsn.get_secret_value(), redis_url=settings.redis.url.get_secret_value(),
                kafka_bootstrap=settings.kafka.bootstrap_servers,
                kafka_auth={k: v for k, v in settings.kafka.client_kwargs().items() if k != "bootstrap_servers"}))
            stack.push_async_callback(probes.aclose)
            runner = ProbeRunner(config, prober=probes, publisher=pub, interval_s=settings.interval_seconds)
            view = SystemView(instance_stale_s=settings.instance_stale_seconds)
            feed = None
            if settings.status_feed:
                feed = await stack.enter_async_context(SystemFeed(view, settings.kafka).running())
            await stack.enter_async_context(runner.running())
            yield {"runner": runner, "view": view, "feed": feed, "publisher": pub}

    app = FastAPI(title="Safeguard health", lifespan=lifespan)
    app.include_router(healthz_router("health"))
    app.include_router(api.router)
    return app
