"""Composition root of the intake service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import psutil
from fastapi import FastAPI

from services.intake import api
from services.intake.grpc_otlp import MetricsService, serve_grpc
from services.intake.series import SeriesStore
from services.intake.service import Intake
from services.intake.settings import IntakeSettings
from services.intake.traces import TraceForwarder
from shared.auth import AuthSettings
from shared.guard import GuardSettings, install_guard
from shared.http import expose, healthz_router
from shared.kafka import Publisher
from shared.lifespan import open_publisher
from shared.ratelimit import RateLimiter
from shared.telemetry import ZipkinSettings, setup_telemetry

__all__ = ["create_app", "prepare_core"]


def _limit_of(settings: IntakeSettings) -> Callable[[str], float]:
    """The limit for an app that sends none: its `memory_limits` entry, else the default, else this host's RAM."""
    fallback = settings.default_memory_limit_bytes or psutil.virtual_memory().total

    def limit(service: str) -> float:
        return float(settings.memory_limits.get(service, fallback))
    return limit


def prepare_core(settings: IntakeSettings) -> Intake:
    """The intake core: OTLP and beacons mapped to events (framework-free; the edges publish them)."""
    return Intake(store=SeriesStore(max_series=settings.max_series), first_window_s=settings.first_window_s,
                  memory_limit=_limit_of(settings), report_window_s=settings.report_window_s)


def _limiter(settings: IntakeSettings) -> RateLimiter:
    """Beacons come through HAProxy: SAFEGUARD_TRUSTED_PROXIES names it (compose) as for auth."""
    proxies = [*settings.ratelimit.trusted_proxies, *AuthSettings().trusted_proxies]
    return RateLimiter.from_settings(settings.ratelimit.model_copy(update={"trusted_proxies": proxies}),
                                     redis_url=settings.redis.url)


async def _traces(stack: AsyncExitStack) -> TraceForwarder | None:
    """OTLP traces go on to the trace view when there is one (`OTEL_EXPORTER_ZIPKIN_ENDPOINT`)."""
    zipkin = ZipkinSettings()
    if not zipkin.endpoint:
        return None
    http = await stack.enter_async_context(httpx.AsyncClient(timeout=zipkin.timeout))
    return TraceForwarder(endpoint=zipkin.endpoint, http=http)


def create_app(settings: IntakeSettings, *, publisher: Publisher | None = None,
               limiter: RateLimiter | None = None) -> FastAPI:
    """`publisher` replaces Kafka, `limiter` the Redis-backed rate limiter (tests)."""
    limiter = limiter or _limiter(settings)
    intake = prepare_core(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_telemetry("intake", settings.telemetry)
        async with AsyncExitStack() as stack:
            pub = await open_publisher(stack, settings.kafka, service="intake", given=publisher)
            state: dict[str, object] = {"intake": intake, "publisher": pub, "traces": await _traces(stack)}
            if settings.grpc_port is not None:  # the port bound (0: any free port)
                state["grpc_port"] = await stack.enter_async_context(serve_grpc(
                    service=MetricsService(intake=intake, publisher=lambda: pub), host=settings.host,
                    port=settings.grpc_port, max_bytes=settings.max_otlp_bytes))
            expose(app, **state)
            yield

    app = FastAPI(title="Safeguard intake", version="1.0.0", lifespan=lifespan,
                  description="OpenTelemetry metrics (OTLP/HTTP) and page-load beacons in, Safeguard events out.")
    app.include_router(healthz_router("intake"))
    app.include_router(api.build_router(intake=intake, settings=settings,
                                       beacon_limit=limiter.dependency(settings.beacon_rate, name="beacon")))
    RateLimiter.install_handler(app)
    guard = GuardSettings()  # beacon pages may write here: their origins pass the cross-site check
    install_guard(app, own_host=settings.host, settings=guard.model_copy(update={
        "max_body_bytes": settings.max_otlp_bytes,
        "allowed_origins": [*guard.allowed_origins, *settings.beacon_origins]}))
    app.add_middleware(api.BeaconOrigins, settings=settings)  # outermost: before the guard's origin check
    return app
