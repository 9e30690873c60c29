"""Composition root of the recovery service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict, Unpack

from fastapi import FastAPI

from services.recovery import api, pause_api
from services.recovery.executors.factory import open_operator
from services.recovery.flags_client import HttpFlagsClient
from services.recovery.handlers import build_handlers
from services.recovery.pause import MemoryPauseStore, PauseStore
from services.recovery.pause_store import PgPauseStore
from services.recovery.policy import RecoveryPolicy, load_policy
from services.recovery.ports import AuditStore, FlagsClient
from services.recovery.repository import MIGRATIONS, PgAuditStore
from services.recovery.service import RecoveryService
from services.recovery.settings import RecoverySettings
from shared.auth import Authenticator
from shared.http import expose, healthz_router, upstream_client
from shared.kafka import Publisher
from shared.kafka.consumer import start_service_consumer
from shared.lifespan import open_migrated_pool, open_publisher
from shared.tasks import background, every
from shared.telemetry import setup_telemetry
from shared.topics import SLA_TRIGGERS

__all__ = ["create_app", "prepare_core", "Adapters"]


class Adapters(TypedDict, total=False):
    """What a test may replace: Kafka (`publisher`), Postgres (`audit`, `pauses`), the flags API (`flags`)."""

    publisher: Publisher
    audit: AuditStore
    pauses: PauseStore
    flags: FlagsClient


async def _stores(stack: AsyncExitStack, settings: RecoverySettings, adapters: Adapters) -> tuple[AuditStore, PauseStore]:
    """The given audit store (with the given pauses, else in memory), else both in Postgres."""
    audit = adapters.get("audit")
    if audit is not None:
        return audit, adapters.get("pauses") or MemoryPauseStore()
    pool = await open_migrated_pool(stack, settings.postgres, schema=settings.db_schema, migrations=MIGRATIONS)
    return PgAuditStore(pool), adapters.get("pauses") or PgPauseStore(pool)


async def _flags(stack: AsyncExitStack, settings: RecoverySettings) -> FlagsClient:
    http = await stack.enter_async_context(upstream_client(timeout=5.0))
    return HttpFlagsClient(http, flags_url=settings.flags_url, token=settings.auth.admin_token)


async def prepare_core(settings: RecoverySettings, *, stack: AsyncExitStack, policy: RecoveryPolicy,
                       watch_kafka: bool = True, **adapters: Unpack[Adapters]) -> RecoveryService:
    """The recovery core with its adapters (those not given are opened on `stack`); `watch_kafka=False`
    leaves out the health.checks watch that verifies effects."""
    audit, pauses = await _stores(stack, settings, adapters)
    publisher = await open_publisher(stack, settings.kafka, service="recovery", given=adapters.get("publisher"))
    flags = adapters.get("flags") or await _flags(stack, settings)
    operator = await open_operator(stack, settings, watch_kafka=watch_kafka)
    return RecoveryService(policy=policy, publisher=publisher, flags=flags, audit=audit, pauses=pauses,
                           operator=operator)


def create_app(settings: RecoverySettings, *, policy: RecoveryPolicy | None = None, consume: bool = True,
               **adapters: Unpack[Adapters]) -> FastAPI:
    """The policy is loaded here, so a bad file stops the service before it serves. The adapters replace
    Kafka / Postgres / the flags API (tests); `consume=False` skips the consumer."""
    loaded = policy or load_policy(settings.policy_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_telemetry("recovery", settings.telemetry)
        async with AsyncExitStack() as stack:
            svc = await prepare_core(settings, stack=stack, policy=loaded, watch_kafka=consume, **adapters)
            expose(app, recovery=svc)
            if consume:
                await start_service_consumer(stack, topics=[SLA_TRIGGERS], group_id=settings.group_id,
                                             handlers=build_handlers(svc), kafka=settings.kafka,
                                             redis_url=settings.redis.url.get_secret_value())
            async with background(every(settings.tick_interval_s, svc.check_timeouts, what="verify"), name="tick"):
                yield

    app = FastAPI(title="Safeguard recovery", version="1.0.0", lifespan=lifespan,
                  description="Level 1 of the escalation path: trigger -> policy -> action, verified, audited.")
    app.include_router(healthz_router("recovery"))
    app.include_router(api.build_router(Authenticator(settings.auth)))
    app.include_router(pause_api.build_router(Authenticator(settings.auth)))
    return app
