"""Composition root of the notifier service."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI

from services.notifier import api, incident_api, public_api
from services.notifier.ack import AckLinks
from services.notifier.channels import ChannelSender
from services.notifier.handlers import build_handlers
from services.notifier.impact import ImpactSource, SlaImpact
from services.notifier.maintenance_store import MaintenanceStore
from services.notifier.oncall import OnCallSchedule, load_oncall
from services.notifier.policy import NotifierPolicy, load_policy
from services.notifier.public import Public, open_public
from services.notifier.repository import PgIncidentStore, migrate, open_pool
from services.notifier.ports import IncidentStore, Sender
from services.notifier.service import NotifierService
from services.notifier.settings import NotifierSettings
from services.notifier.status_sources import StatusData, StatusPageSettings, open_status_data
from shared.auth import Authenticator
from shared.http import healthz_router
from shared.kafka import KafkaPublisher, Publisher
from shared.kafka.consumer import start_service_consumer
from shared.ratelimit import RateLimiter
from shared.tasks import background, every
from shared.telemetry import setup_telemetry
from shared.topics import DEPLOY_EVENTS, RECOVERY_ACTIONS, SLA_TRIGGERS

__all__ = ["create_app"]



async def _ack_links(settings: NotifierSettings, public: Public) -> AckLinks:
    """Signed with NOTIFIER_ACK_SECRET, else the notifier's key in Postgres (shared by instances)."""
    if settings.ack_secret is not None:
        key = settings.ack_secret.get_secret_value().encode()
    elif public.subscribers is not None:
        key = await public.subscribers.key()
    else:
        key = secrets.token_bytes(32)  # no Postgres (tests): links work in this process only
    return AckLinks(key=key, base_url=settings.subscriptions.public_url,
                    valid_for=timedelta(seconds=settings.ack_valid_s))


def create_app(settings: NotifierSettings, *, policy: NotifierPolicy | None = None,
               publisher: Publisher | None = None, store: IncidentStore | None = None,
               sender: Sender | None = None, consume: bool = True, status: StatusData | None = None,
               maintenance: MaintenanceStore | None = None, oncall: OnCallSchedule | None = None,
               impact: ImpactSource | None = None) -> FastAPI:
    """The policy is loaded here, so a bad file stops the service before it serves. The keyword
    arguments replace Kafka / Postgres / the channels (tests); `consume=False` skips the consumer."""
    policy = policy or load_policy(settings.policy_file)
    schedule = oncall or (load_oncall(settings.oncall_file) if settings.oncall_file else OnCallSchedule())
    limiter = RateLimiter.from_settings(settings.ratelimit, redis_url=settings.redis.url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_telemetry("notifier", settings.telemetry)
        async with AsyncExitStack() as stack:
            db, pool = store, None
            if db is None:
                pool = await stack.enter_async_context(open_pool(settings.postgres, schema=settings.db_schema))
                await migrate(pool, schema=settings.db_schema)
                db = PgIncidentStore(pool)
            pub = publisher
            if pub is None:
                pub = await stack.enter_async_context(KafkaPublisher.start(settings.kafka, source="/safeguard/notifier"))
            out = sender
            if out is None:
                http = await stack.enter_async_context(httpx.AsyncClient())
                out = ChannelSender(policy=policy, http=http, secrets=settings.channels, smtp=settings.smtp,
                                    addresses=schedule.email)
            public = await stack.enter_async_context(open_public(settings=settings, policy=policy, pool=pool,
                                                                maintenance=maintenance))
            app.state.public = public
            sla_http = await stack.enter_async_context(httpx.AsyncClient())
            svc = NotifierService(policy=policy, publisher=pub, store=db, sender=public.wrap(out), silences=public.store,
                                  oncall=schedule, ack=await _ack_links(settings, public),
                                  impact=impact or SlaImpact(http=sla_http, sla_url=StatusPageSettings().sla_url))
            await svc.restore()
            app.state.notifier = svc
            app.state.status = status or await stack.enter_async_context(open_status_data(pool=pool, store=db,
                                                                                          maintenance=public.store))
            if consume:
                await start_service_consumer(stack, topics=[SLA_TRIGGERS, RECOVERY_ACTIONS, DEPLOY_EVENTS], group_id=settings.group_id,
                                             handlers=build_handlers(svc), kafka=settings.kafka,
                                             redis_url=settings.redis.url.get_secret_value())
            tick = every(settings.tick_interval_s, svc.tick, what="escalation and relay")
            async with background(tick, name="tick"):
                yield

    app = FastAPI(title="Safeguard notifier", version="1.0.0", lifespan=lifespan,
                  description="Incidents, escalation L1-L4, notices, the status page and post-incident reports.")
    app.include_router(healthz_router("notifier"))
    app.include_router(api.build_router(Authenticator(settings.auth)))
    app.include_router(incident_api.build_router(Authenticator(settings.auth)))
    app.include_router(public_api.build_router(Authenticator(settings.auth), limiter=limiter,
                                               subscribe_rate=settings.subscriptions.rate))
    RateLimiter.install_handler(app)
    return app
