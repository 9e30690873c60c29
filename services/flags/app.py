"""Composition root of the flags service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.flags import api, ofrep, peers, rules, sync_grpc
from services.flags.cache import FlagCache, open_redis
from services.flags.exposure import ExposureRecorder, ExposureStore
from services.flags.journal import KillJournal
from services.flags.models import DefinitionError, FlagCreate
from services.flags.ports import Repository
from services.flags.repository import PgRepository, migrate, open_pool
from services.flags.service import FlagService, Unavailable
from services.flags.settings import FlagsSettings
from services.flags.snapshot import StreamSlots
from shared.flags.jsonlogic import LogicError
from shared.auth import Authenticator
from shared.guard import install_guard
from shared.kafka import KafkaPublisher, Publisher
from shared.ratelimit import RateLimiter, RateLimitMiddleware
from shared.telemetry import setup_telemetry

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(settings: FlagsSettings, *, publisher: Publisher | None = None,
               repository: Repository | None = None, limiter: RateLimiter | None = None) -> FastAPI:
    """`publisher`/`repository` replace Kafka/Postgres (tests). Without a repository, Postgres from settings."""
    auth = Authenticator(settings.auth)
    limiter = limiter or RateLimiter.from_settings(settings.ratelimit.model_copy(update={
        "default": settings.rate_limit, "local": settings.rate_limit_local}), redis_url=settings.redis.url)
    if limiter.identify is None:  # buckets by verified token, else by address (a random token earns none)
        limiter.identify = auth.verified_identity

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_telemetry("flags", settings.telemetry)
        async with AsyncExitStack() as stack:
            repo, pool = repository, None
            if repo is None:
                pool = await stack.enter_async_context(open_pool(settings.postgres, schema=settings.db_schema))
                repo = PgRepository(pool)
            redis = await stack.enter_async_context(open_redis(settings.redis.url.get_secret_value()))
            journal = KillJournal(Path(settings.journal_path).expanduser(), redis=redis,
                                  redis_key=settings.cache_prefix + "pending-off")
            cache = FlagCache(redis, prefix=settings.cache_prefix)
            svc = FlagService(repo=repo, cache=cache, publisher=publisher,
                              topic_prefix=settings.kafka.topic_prefix, journal=journal,
                              store_timeout_s=settings.store_timeout_s)
            app.state.flags = svc
            app.state.exposures = ExposureRecorder(ExposureStore(redis, prefix=settings.cache_prefix))
            app.state.sync_port = await stack.enter_async_context(
                sync_grpc.serve(svc, auth=auth, host=settings.host, port=settings.sync_port))
            migrated = pool is None or await _try(migrate(pool, schema=settings.db_schema), "migrations")
            await svc.load()
            if migrated:
                await _seed(svc, settings)
            stopping = asyncio.Event()
            tasks = [asyncio.create_task(_every(settings.refresh_interval_s, svc.refresh, "refresh")),
                     asyncio.create_task(_every(settings.scheduler_interval_s, svc.run_due, "scheduler")),
                     asyncio.create_task(_every(settings.reconcile_interval_s, svc.reconcile, "reconcile")),
                     asyncio.create_task(svc.run_relay(interval_s=settings.relay_interval_s)),
                     asyncio.create_task(app.state.exposures.run()),
                     asyncio.create_task(peers.follow_peers(svc, url=settings.redis.url.get_secret_value(),
                                                            channel=cache.channel, stop=stopping))]
            if pool is not None and not migrated:
                tasks.append(asyncio.create_task(_migrate_later(pool, svc, settings)))
            if publisher is None:
                tasks.append(asyncio.create_task(_connect_kafka(svc, settings, stack)))
            try:
                yield
            finally:
                await limiter.aclose()
                svc.broadcaster.close()
                stopping.set()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await app.state.exposures.flush()  # the last second's exposures (a Redis error is counted)

    app = FastAPI(title="Safeguard flags", version="1.0.0", lifespan=lifespan,
                  description="Feature flags (flagd definitions), OFREP evaluation, kill switch, audit.",
                  telemetry={"exclude": ofrep.untraced(ratio=settings.ofrep_trace_ratio)})
    slots = StreamSlots(max_total=settings.sse_max_subscribers, max_per_client=settings.sse_max_per_client)
    app.include_router(api.build_router(auth, write_limit=limiter.dependency(settings.write_limit, name="writes"),
                                        slots=slots, client_key=limiter.key))
    app.include_router(ofrep.build_ofrep_router(auth, max_bytes=settings.max_context_bytes,
                                                max_depth=settings.max_context_depth))
    _install_health(app)
    _install_errors(app)
    RateLimiter.install_handler(app)
    app.add_middleware(ofrep.OfrepFastPath, auth=auth, max_bytes=settings.max_context_bytes,
                       max_depth=settings.max_context_depth,
                       cache=ofrep.AnswerCache(max_entries=settings.ofrep_cache_entries))
    app.add_middleware(RateLimitMiddleware, limiter=limiter, exempt=("/healthz", "/readyz"))
    install_guard(app, settings=settings.guard, own_host=settings.host)  # outermost
    return app


async def _try(aw: Awaitable[Any], what: str) -> bool:
    try:
        await aw
        return True
    except Exception:  # noqa: BLE001 - retried in the background
        logger.warning("%s failed; will retry", what, exc_info=True)
        return False


async def _every(interval: float, fn: Callable[[], Awaitable[Any]], name: str) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await fn()
        except Exception:  # noqa: BLE001 - a loop must survive one failed round
            logger.warning("%s round failed", name, exc_info=True)


async def _migrate_later(pool: Any, svc: FlagService, settings: FlagsSettings) -> None:
    while not await _try(migrate(pool, schema=settings.db_schema), "migrations"):
        await asyncio.sleep(5)
    await svc.load()
    await _seed(svc, settings)


async def _seed(svc: FlagService, settings: FlagsSettings) -> None:
    """The local stack's `gamification` flag: new and off, created once (never overwritten)."""
    if not (settings.seed if settings.seed is not None else settings.auth.env == "local"):
        return
    if svc.get("gamification") is not None:
        return
    body = FlagCreate(key="gamification", description="The demo app's gamification feature (runbook example).",
                      reason="seeded by the local stack")
    try:
        await svc.create(body, actor="seed")
    except rules.Conflict:
        pass
    except Exception:  # noqa: BLE001
        logger.warning("could not seed gamification", exc_info=True)


async def _connect_kafka(svc: FlagService, settings: FlagsSettings, stack: AsyncExitStack) -> None:
    """Kafka may be down at start: keep trying; until then changes wait in the outbox."""
    while True:
        try:
            pub = await stack.enter_async_context(KafkaPublisher.start(settings.kafka, source="/safeguard/flags"))
        except Exception as exc:  # noqa: BLE001
            svc.mark("kafka", False, exc)
            await asyncio.sleep(5)
            continue
        svc.publisher = pub
        svc.mark("kafka", True)
        svc.wake_relay()
        return


def _install_health(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> dict[str, Any]:
        """Liveness (always 200 while the process serves) with the state of each dependency."""
        svc: FlagService = request.app.state.flags
        degraded = any(v == "down" for v in svc.status.values()) or bool(svc.outbox_failed or svc.pending)
        return {"status": "warn" if degraded else "pass", "service": "flags", "checks": dict(svc.status),
                "outbox_failed": svc.outbox_failed, "pending_turn_offs": len(svc.pending),
                "flags": len(svc.snapshot.entries), "revision": svc.snapshot.revision,
                "loaded_from": svc.loaded_from, "sse_subscribers": svc.broadcaster.subscribers,
                "peers": {"subscribed": svc.peers_subscribed, "changes_applied": svc.peer_changes}}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONResponse:
        """Ready when flags are loaded (from Postgres or the Redis copy): evaluation can answer."""
        svc: FlagService = request.app.state.flags
        ok = api.ready(svc)
        return JSONResponse({"status": "pass" if ok else "fail", "loaded_from": svc.loaded_from},
                            status_code=200 if ok else 503)


def _install_errors(app: FastAPI) -> None:
    def handler(status: int, code: str) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def h(_: Request, exc: Exception) -> JSONResponse:
            body: dict[str, Any] = {"errorCode": code, "detail": str(exc)}
            headers = {"Retry-After": "5"} if status == 503 else None
            if isinstance(exc, rules.FlagNotFound):
                body["key"] = exc.key
            if isinstance(exc, DefinitionError):
                body["detail"] = [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]
            return JSONResponse(body, status_code=status, headers=headers)
        return h

    app.add_exception_handler(rules.FlagNotFound, handler(404, "FLAG_NOT_FOUND"))
    app.add_exception_handler(rules.Conflict, handler(409, "CONFLICT"))
    app.add_exception_handler(DefinitionError, handler(422, "INVALID_DEFINITION"))
    app.add_exception_handler(LogicError, handler(422, "INVALID_DEFINITION"))  # a `$ref` cycle or blow-up
    app.add_exception_handler(Unavailable, handler(503, "UNAVAILABLE"))

    async def bad_body(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, api.BadBody)
        return JSONResponse({"errorCode": "BAD_REQUEST" if exc.status == 400 else "INVALID_BODY",
                             "detail": exc.detail}, status_code=exc.status)

    async def validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
        return JSONResponse({"errorCode": "INVALID_REQUEST", "detail": jsonable(errors)}, status_code=status)

    app.add_exception_handler(api.BadBody, bad_body)
    app.add_exception_handler(RequestValidationError, validation)


def jsonable(errors: Any) -> Any:
    from fastapi.encoders import jsonable_encoder
    return jsonable_encoder(errors, custom_encoder={Exception: str})
