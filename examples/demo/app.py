"""Composition root of the demo protected app: every SDK piece wired in one lifespan."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from examples.demo import api
from examples.demo.faults import Faults
from examples.demo.flags import FlagSource, OfrepFlags, SdkFlags
from examples.demo.settings import DemoSettings
from sdk.breakers import BreakerRegistry, GuardedPool, GuardedRedis
from sdk.commands import CommandHandlers, CommandListener, RedisRestartGate
from sdk.middleware import RequestRecorder, RequestsMiddleware, add_rate_limiting
from sdk.stats import ProcessStatsReporter
from shared.auth import Authenticator
from sdk.circuit import BreakerConfig, RedisBreakerState
from shared.guard import install_guard
from shared.kafka import KafkaPublisher, Publisher
from shared.kafka.liveness import consumer_health
from shared.migrations import migrate
from shared.telemetry import setup_telemetry

__all__ = ["create_app"]

log = logging.getLogger(__name__)
_HERE = Path(__file__).resolve().parent

def schema_version(release: str) -> str:
    """The last migration `release` runs on (examples/demo/safeguard.toml, `[releases.<v>] migration`)."""
    spec = tomllib.loads((_HERE / "safeguard.toml").read_text())
    return str(spec["releases"][release]["migration"])


async def prepare_schema(dsn: str, *, release: str) -> None:
    """Migrate the demo's schema up to what this release runs on (examples/demo/migrations, one advisory
    lock: blue and green start together); a newer schema is left alone (it is backward compatible)."""
    import asyncpg

    try:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, timeout=5,
                                         server_settings={"search_path": "demo"})
    except Exception as exc:  # noqa: BLE001 - the app starts without its database; queries then fail fast
        log.warning("schema not prepared, database unavailable: %s", type(exc).__name__)
        return
    try:
        await migrate(pool, schema="demo", directory=_HERE / "migrations", until=schema_version(release))
    finally:
        await pool.close()


def create_app(settings: DemoSettings, *, publisher: Publisher | None = None,
               flags: FlagSource | None = None) -> FastAPI:
    recorder = RequestRecorder(service=settings.service, instance=settings.instance)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        import redis.asyncio as aioredis

        setup_telemetry(settings.instance, settings.telemetry)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        dsn = settings.postgres.dsn.get_secret_value()
        async with AsyncExitStack() as stack:
            pub = publisher or await stack.enter_async_context(
                KafkaPublisher.start(settings.kafka, source=f"/demo/{settings.instance}"))
            redis = aioredis.from_url(settings.redis.url.get_secret_value(), socket_timeout=0.5,
                                      socket_connect_timeout=0.5)
            stack.push_async_callback(redis.aclose)
            registry = BreakerRegistry(service=settings.service, instance=settings.instance,
                                       shared=RedisBreakerState(redis, service=settings.service))
            db = GuardedPool(dsn=dsn, breaker=registry.breaker(
                "postgres", BreakerConfig.for_database(minimum_number_of_calls=settings.db_breaker_min_calls)),
                             max_size=settings.postgres.max_size, command_timeout_s=settings.postgres.command_timeout_s)
            cache = GuardedRedis(redis, breaker=registry.breaker("redis", BreakerConfig.for_cache()))
            await prepare_schema(dsn, release=settings.release)
            await stack.enter_async_context(db)
            await stack.enter_async_context(registry.running(pub))
            await stack.enter_async_context(recorder.running(pub))
            stats = ProcessStatsReporter(service=settings.service, instance=settings.instance,
                                         interval_s=settings.stats_interval_s,
                                         memory_limit=int(settings.memory_limit_mb * 1024 * 1024),
                                         pools=lambda: [db.stats()], breakers=registry.states,
                                         dependencies=registry.dependencies)
            await stack.enter_async_context(stats.running(pub))
            if settings.commands:
                # a restart addressed to every instance goes one instance at a time (turns in Redis)
                handlers = CommandHandlers(service=settings.service, instance=settings.instance,
                                           pools={"postgres": db}, breakers=registry,
                                           restart_gate=RedisRestartGate(redis, service=settings.service))
                await stack.enter_async_context(CommandListener(handlers=handlers, kafka=settings.kafka).running())
            source = flags
            if source is None and settings.flag_source == "sdk":
                from sdk.flags import FlagClient

                client = await stack.enter_async_context(FlagClient(settings.flags_url))
                source = SdkFlags(client)
            elif source is None:
                ofrep = OfrepFlags(settings.flags_url, cache_s=settings.flag_cache_s)
                stack.push_async_callback(ofrep.aclose)
                source = ofrep
            yield {"settings": settings, "db": db, "cache": cache, "registry": registry, "flags": source,
                   "faults": Faults(), "auth": Authenticator(settings.auth), "recorder": recorder}

    app = FastAPI(title=f"Safeguard demo ({settings.color}, {settings.release})", lifespan=lifespan)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, Any]:
        """Always 200 while serving (a hung broker must not take the app out of HAProxy); a dead or stuck
        command consumer shows as `warn` with its report."""
        consumers = consumer_health()
        return {"status": "pass" if consumers.status == "pass" else "warn", "service": settings.service,
                "instance": settings.instance, "version": settings.release, "consumers": consumers.consumers}

    app.include_router(api.router)
    if settings.release == "v2":
        app.include_router(api.v2_router)
    app.include_router(api.admin_router)
    add_rate_limiting(app, settings.ratelimit, redis_url=settings.redis.url, exempt=("/healthz", "/api/faults"))
    app.add_middleware(RequestsMiddleware, recorder=recorder)  # 429s are counted too
    install_guard(app, settings=settings.guard, own_host=settings.host)  # outermost: no rebound host, no CSRF
    return app
