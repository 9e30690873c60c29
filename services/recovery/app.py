"""Composition root of the recovery service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI

from services.recovery import api, pause_api
from services.recovery.executors.factory import open_operator
from services.recovery.flags_client import HttpFlagsClient
from services.recovery.handlers import build_handlers
from services.recovery.pause import MemoryPauseStore, PauseStore
from services.recovery.pause_store import PgPauseStore
from services.recovery.policy import RecoveryPolicy, load_policy
from services.recovery.repository import PgAuditStore, migrate, open_pool
from services.recovery.ports import AuditStore, FlagsClient
from services.recovery.service import RecoveryService
from services.recovery.settings import RecoverySettings
from shared.auth import Authenticator
from shared.http import healthz_router
from shared.kafka import KafkaPublisher, Publisher
from shared.kafka.consumer import start_service_consumer
from shared.tasks import background, every
from shared.telemetry import setup_telemetry
from shared.topics import SLA_TRIGGERS

__all__ = ["create_app"]



def create_app(settings: RecoverySettings, *, policy: RecoveryPolicy | None = None,
               publisher: Publisher | None = None, audit: AuditStore | None = None,
               flags: FlagsClient | None = None, consume: bool = True, pauses: PauseStore | None = None) -> FastAPI:
    """The policy is loaded here, so a bad file stops the service before it serves. The keyword
    arguments replace Kafka / Postgres / the flags API (tests); `consume=False` skips the consumer."""
    policy = policy or load_policy(settings.policy_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_telemetry("recovery", settings.telemetry)
        async with AsyncExitStack() as stack:
            store, pause_store = audit, pauses or MemoryPauseStore()
            if store is None:
                pool = await stack.enter_async_context(open_pool(settings.postgres, schema=settings.db_schema))
                await migrate(pool, schema=settings.db_schema)
                store, pause_store = PgAuditStore(pool), pauses or PgPauseStore(pool)
            pub = publisher or await stack.enter_async_context(
                KafkaPublisher.start(settings.kafka, source="/safeguard/recovery"))
            client = flags
            if client is None:
                http = await stack.enter_async_context(httpx.AsyncClient(timeout=5.0))
                client = HttpFlagsClient(http, flags_url=settings.flags_url, token=settings.auth.admin_token)
            operator = await open_operator(stack, settings, watch_kafka=consume)
            svc = RecoveryService(policy=policy, publisher=pub, flags=client, audit=store, pauses=pause_store,
                                  operator=operator)
            app.state.recovery = svc
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
