"""Composition root of the flags service: the core (`service.FlagService`) on Postgres, the Redis copy and
Kafka, its background loops, and the HTTP edges (`api`, `ofrep`, the health routes).

Postgres may be down at start (the Redis copy is served; migrations are retried), and so may Kafka
(changes wait in the outbox until a publisher connects): neither stops the service from starting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, Unpack

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from services.flags import api, ofrep, peers, rules, sync_grpc
from services.flags.edge import FlagsEdge
from services.flags.cache import FlagCache, open_redis
from services.flags.exposure import ExposureRecorder, ExposureStore
from services.flags.journal import KillJournal
from services.flags.models import FlagCreate
from services.flags.ports import Repository
from services.flags.repository import PgRepository, migrate, open_pool
from services.flags.service import FlagService
from services.flags.settings import FlagsSettings
from services.flags.snapshot import StreamSlots
from shared.auth import Authenticator
from shared.guard import Guard, install_guard
from shared.http import expose
from shared.kafka import KafkaPublisher
from shared.ports import Publisher
from shared.ratelimit import RateLimiter, RateLimitMiddleware
from shared.tasks import cancel_and_wait, every
from shared.telemetry import setup_telemetry

__all__ = ["create_app"]

logger = logging.getLogger(__name__)
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Adapters(TypedDict, total=False):
    """What a test may replace: Kafka (`publisher`), Postgres (`repository`)."""

    publisher: Publisher
    repository: Repository


@dataclass(frozen=True)
class FlagsCore:
    """What the routes read, each as `app.state.<field>` (`shared.http.expose`)."""

    flags: FlagService
    exposures: ExposureRecorder
    sync_port: int | None


def create_app(settings: FlagsSettings, *, limiter: RateLimiter | None = None, **adapters: Unpack[Adapters]) -> FastAPI:
    """The adapters replace Kafka / Postgres (tests); without a repository, Postgres from settings."""
    auth = Authenticator(settings.auth)
    limiter = limiter or _limiter(settings, auth)
    exclude = ofrep.untraced(ratio=settings.ofrep_trace_ratio)
    app = FlagsApp(title="Safeguard flags", version="1.0.0",
                   lifespan=_lifespan(settings, auth=auth, limiter=limiter, adapters=adapters),
                   description="Feature flags (flagd definitions), OFREP evaluation, kill switch, audit.",
                   telemetry={"exclude": exclude})
    slots = StreamSlots(max_total=settings.sse_max_subscribers, max_per_client=settings.sse_max_per_client)
    api.install(app, auth=auth, write_limit=limiter.dependency(settings.write_limit, name="writes"), slots=slots,
                client_key=limiter.key)  # the edge keys slots by the limiter's key too
    answers = ofrep.Answers(max_bytes=settings.max_context_bytes, max_depth=settings.max_context_depth,
                            cache=ofrep.AnswerCache(max_entries=settings.ofrep_cache_entries))
    app.include_router(ofrep.build_ofrep_router(auth, answers))
    _install_health(app)
    RateLimiter.install_handler(app)
    app.add_middleware(ofrep.OfrepFastPath, auth=auth, answers=answers)  # what the edge leaves: sampled requests
    app.add_middleware(RateLimitMiddleware, limiter=limiter, exempt=("/healthz", "/readyz"))
    install_guard(app, settings=settings.guard, own_host=settings.host)  # outermost of the full app
    app.edge = FlagsEdge(state=app.state, auth=auth, limiter=limiter, answers=answers, slots=slots,
                         guard=Guard.checks_only(settings=settings.guard, own_hosts=[settings.host]),
                         traced=lambda scope: not exclude(scope))
    return app


class FlagsApp(FastAPI):
    """FastAPI with the edge ahead of it (`services/flags/edge.py`): an OFREP evaluation or an SDK stream in the
    plain case is served there; everything else, and what the edge leaves, goes through the full app."""

    edge: FlagsEdge | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.edge is not None and scope["type"] == "http":
            left = await self.edge(scope, receive, send)
            if left is None:
                return
            receive = left
        await super().__call__(scope, receive, send)


def _limiter(settings: FlagsSettings, auth: Authenticator) -> RateLimiter:
    limiter = RateLimiter.from_settings(settings.ratelimit.model_copy(update={
        "default": settings.rate_limit, "local": settings.rate_limit_local}), redis_url=settings.redis.url)
    if limiter.identify is None:  # buckets by verified token, else by address (a random token earns none)
        limiter.identify = auth.verified_identity
    return limiter


async def prepare_core(settings: FlagsSettings, *, stack: AsyncExitStack, auth: Authenticator,
                       **adapters: Unpack[Adapters]) -> FlagsCore:
    """The flags core on its adapters, those not given opened on `stack`: Postgres, Redis (the copy, the
    kill journal, exposures), Kafka later (`_connect_kafka`), and the flagd sync server."""
    repo = adapters.get("repository")
    if repo is None:
        repo = PgRepository(await stack.enter_async_context(open_pool(settings.postgres, schema=settings.db_schema)))
    redis = await stack.enter_async_context(open_redis(settings.redis.url.get_secret_value()))
    journal = KillJournal(Path(settings.journal_path).expanduser(), redis=redis,
                          redis_key=settings.cache_prefix + "pending-off")
    svc = FlagService(repo=repo, cache=FlagCache(redis, prefix=settings.cache_prefix),
                      publisher=adapters.get("publisher"), topic_prefix=settings.kafka.topic_prefix, journal=journal,
                      store_timeout_s=settings.store_timeout_s)
    sync_port = await stack.enter_async_context(sync_grpc.serve(svc, auth=auth, host=settings.host,
                                                                port=settings.sync_port))
    return FlagsCore(flags=svc, exposures=ExposureRecorder(ExposureStore(redis, prefix=settings.cache_prefix)),
                     sync_port=sync_port)


def _lifespan(settings: FlagsSettings, *, auth: Authenticator, limiter: RateLimiter, adapters: Adapters) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_telemetry("flags", settings.telemetry)
        async with AsyncExitStack() as stack:
            core = await prepare_core(settings, stack=stack, auth=auth, **adapters)
            expose(app, **vars(core))
            stopping = asyncio.Event()
            tasks = await _start(core, settings, stack, stopping=stopping, connect_kafka="publisher" not in adapters)
            try:
                yield
            finally:
                await limiter.aclose()
                core.flags.broadcaster.close()
                stopping.set()
                await cancel_and_wait(tasks)
                await core.exposures.flush()  # the last second's exposures (a Redis error is counted)
    return lifespan


async def _start(core: FlagsCore, settings: FlagsSettings, stack: AsyncExitStack, *, stopping: asyncio.Event,
                 connect_kafka: bool) -> list[asyncio.Task[Any]]:
    """Migrate (else retry in the background), load, seed; then the background loops."""
    svc = core.flags
    pool = svc.repo.pool if isinstance(svc.repo, PgRepository) else None
    migrated = pool is None or await _try(migrate(pool, schema=settings.db_schema), "migrations")
    await svc.load()
    if migrated:
        await _seed(svc, settings)
    loops: dict[str, Coroutine[Any, Any, Any]] = {
        "refresh": every(settings.refresh_interval_s, svc.refresh, what="refresh"),
        "scheduler": every(settings.scheduler_interval_s, svc.run_due, what="scheduler"),
        "reconcile": every(settings.reconcile_interval_s, svc.reconcile, what="reconcile"),
        "relay": svc.run_relay(interval_s=settings.relay_interval_s),
        "exposures": core.exposures.run(),
        "peers": peers.follow_peers(svc, url=settings.redis.url.get_secret_value(),
                                    channel=settings.cache_prefix + FlagCache.CHANNEL, stop=stopping)}
    if not migrated:
        loops["migrate"] = _migrate_later(pool, svc, settings)
    if connect_kafka:
        loops["kafka"] = _connect_kafka(svc, settings, stack)
    return [asyncio.create_task(loop, name=f"flags-{name}") for name, loop in loops.items()]


async def _try(aw: Awaitable[Any], what: str) -> bool:
    try:
        await aw
        return True
    except Exception:  # noqa: BLE001 - retried in the background
        logger.warning("%s failed; will retry", what, exc_info=True)
        return False


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
        svc = api.service(request)
        degraded = any(v == "down" for v in svc.status.values()) or bool(svc.outbox_failed or svc.pending)
        return {"status": "warn" if degraded else "pass", "service": "flags", "checks": dict(svc.status),
                "outbox_failed": svc.outbox_failed, "pending_turn_offs": len(svc.pending),
                "flags": len(svc.snapshot.entries), "revision": svc.snapshot.revision,
                "loaded_from": svc.loaded_from, "sse_subscribers": svc.broadcaster.subscribers,
                "peers": {"subscribed": svc.peers_subscribed, "changes_applied": svc.peer_changes}}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONResponse:
        """Ready when flags are loaded (from Postgres or the Redis copy): evaluation can answer."""
        svc = api.service(request)
        ok = api.ready(svc)
        return JSONResponse({"status": "pass" if ok else "fail", "loaded_from": svc.loaded_from},
                            status_code=200 if ok else 503)
