"""Composition root of the health service."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from fastapi import FastAPI

from services.health import api
from services.health.config import HealthConfig, load_config
from services.health.feed import SystemFeed
from services.health.probes import Defaults, Prober
from services.health.runner import ProbeRunner
from services.health.settings import HealthSettings
from services.health.view import SystemView
from shared.http import expose, healthz_router
from shared.kafka import Publisher
from shared.lifespan import open_publisher
from shared.telemetry import setup_telemetry

__all__ = ["create_app", "prepare_core", "HealthCore", "Adapters"]


class Adapters(TypedDict, total=False):
    """What a test may replace: Kafka (`publisher`), the probes' clients (`prober`)."""

    publisher: Publisher
    prober: Prober


@dataclass(frozen=True)
class HealthCore:
    runner: ProbeRunner
    view: SystemView
    feed: SystemFeed | None
    publisher: Publisher


def _prober(settings: HealthSettings) -> Prober:
    kafka_auth = {k: v for k, v in settings.kafka.client_kwargs().items() if k != "bootstrap_servers"}
    return Prober(Defaults(postgres_dsn=settings.postgres.dsn.get_secret_value(),
                           redis_url=settings.redis.url.get_secret_value(),
                           kafka_bootstrap=settings.kafka.bootstrap_servers, kafka_auth=kafka_auth))


async def prepare_core(settings: HealthSettings, *, stack: AsyncExitStack, config: HealthConfig,
                       **adapters: Unpack[Adapters]) -> HealthCore:
    """The probe runner (probing from now on) and the system view, with their adapters entered on `stack`."""
    publisher = await open_publisher(stack, settings.kafka, service="health", given=adapters.get("publisher"))
    prober = adapters.get("prober") or _prober(settings)
    stack.push_async_callback(prober.aclose)
    runner = ProbeRunner(config, prober=prober, publisher=publisher, interval_s=settings.interval_seconds)
    view = SystemView(instance_stale_s=settings.instance_stale_seconds)
    runner.watchdog.open_episode = view.open_episode  # an outage begun before a restart is cleared, not fired again
    feed = await stack.enter_async_context(SystemFeed(view, settings.kafka).running()) if settings.status_feed else None
    await stack.enter_async_context(runner.running())
    return HealthCore(runner=runner, view=view, feed=feed, publisher=publisher)


def create_app(settings: HealthSettings, *, config: HealthConfig | None = None,
               **adapters: Unpack[Adapters]) -> FastAPI:
    """`config` defaults to `settings.config_path`, loaded (and validated) here, before serving."""
    config = config or load_config(settings.config_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_telemetry("health", settings.telemetry)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe is noise
        async with AsyncExitStack() as stack:
            core = await prepare_core(settings, stack=stack, config=config, **adapters)
            expose(app, **vars(core))  # services.health.api reads app.state
            yield

    app = FastAPI(title="Safeguard health", lifespan=lifespan)
    app.include_router(healthz_router("health"))
    app.include_router(api.router)
    return app
