"""Composition root of the notifier service."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypedDict, Unpack

import httpx
from fastapi import FastAPI

from services.notifier import api, heartbeat, incident_api, public_api
from services.notifier.ack import AckLinks
from services.notifier.channels import ChannelSender
from services.notifier.handlers import build_handlers
from services.notifier.health_watch import HealthWatch
from services.notifier.impact import ImpactSource, SlaImpact
from services.notifier.maintenance_store import MaintenanceStore
from services.notifier.oncall import OnCallSchedule, load_oncall
from services.notifier.policy import NotifierPolicy, load_policy
from services.notifier.ports import IncidentStore, Sender
from services.notifier.public import Public, open_public
from services.notifier.repository import MIGRATIONS, PgIncidentStore
from services.notifier.service import NotifierService
from services.notifier.settings import NotifierSettings
from services.notifier.status_sources import Snapshot, StatusData, StatusPageSettings, open_status_data
from shared.auth import Authenticator
from shared.http import expose, healthz_router
from shared.kafka import Publisher
from shared.kafka.consumer import start_service_consumer
from shared.kafka.liveness import consumer_health
from shared.lifespan import open_migrated_pool, open_publisher
from shared.ratelimit import RateLimiter
from shared.tasks import background, every
from shared.telemetry import setup_telemetry
from shared.topics import DEPLOY_EVENTS, RECOVERY_ACTIONS, SLA_TRIGGERS

__all__ = ["create_app", "prepare_core", "Adapters", "NotifierCore"]

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Adapters(TypedDict, total=False):
    """What a test may replace: Kafka (`publisher`), Postgres (`store`, `maintenance`), the channels
    (`sender`), the status page's data (`status`), the SLA service (`impact`)."""

    publisher: Publisher
    store: IncidentStore
    sender: Sender
    status: StatusData
    maintenance: MaintenanceStore
    impact: ImpactSource


@dataclass(frozen=True)
class NotifierCore:
    """What the routes read, each as `app.state.<field>` (`shared.http.expose`)."""

    notifier: NotifierService
    public: Public
    status: StatusData


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


async def _incidents(stack: AsyncExitStack, settings: NotifierSettings, adapters: Adapters) -> tuple[IncidentStore, Any]:
    """(the incident store, the pool): the given store and no pool, else Postgres."""
    store = adapters.get("store")
    if store is not None:
        return store, None
    pool = await open_migrated_pool(stack, settings.postgres, schema=settings.db_schema, migrations=MIGRATIONS)
    return PgIncidentStore(pool), pool


async def prepare_core(settings: NotifierSettings, *, stack: AsyncExitStack, policy: NotifierPolicy,
                       oncall: OnCallSchedule, **adapters: Unpack[Adapters]) -> NotifierCore:
    """The notifier core (its open incidents restored) with its adapters; those not given are opened on
    `stack`. One HTTP client serves the channels and the SLA service."""
    store, pool = await _incidents(stack, settings, adapters)
    publisher = await open_publisher(stack, settings.kafka, service="notifier", given=adapters.get("publisher"))
    http = await stack.enter_async_context(httpx.AsyncClient())
    sender = adapters.get("sender") or ChannelSender(policy=policy, http=http, secrets=settings.channels,
                                                     smtp=settings.smtp, addresses=oncall.email)
    public = await stack.enter_async_context(open_public(settings=settings, policy=policy, pool=pool,
                                                         maintenance=adapters.get("maintenance")))
    impact = adapters.get("impact") or SlaImpact(http=http, sla_url=StatusPageSettings().sla_url)
    svc = NotifierService(policy=policy, publisher=publisher, store=store, sender=public.wrap(sender),
                          silences=public.store, oncall=oncall, ack=await _ack_links(settings, public), impact=impact)
    await svc.restore()
    status = adapters.get("status")
    if status is None:
        def watch(sources: StatusPageSettings) -> Callable[[Snapshot], Awaitable[None]]:
            return HealthWatch(svc, after_s=sources.health_unresponsive_after_s).observe

        status = await stack.enter_async_context(open_status_data(pool=pool, store=store, maintenance=public.store,
                                                                  watch=watch))
    return NotifierCore(notifier=svc, public=public, status=status)


def _lifespan(settings: NotifierSettings, *, policy: NotifierPolicy, oncall: OnCallSchedule, consume: bool,
              adapters: Adapters) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_telemetry("notifier", settings.telemetry)
        async with AsyncExitStack() as stack:
            core = await prepare_core(settings, stack=stack, policy=policy, oncall=oncall, **adapters)
            expose(app, **vars(core))
            if consume:
                await start_service_consumer(stack, topics=[SLA_TRIGGERS, RECOVERY_ACTIONS, DEPLOY_EVENTS],
                                             group_id=settings.group_id, handlers=build_handlers(core.notifier),
                                             kafka=settings.kafka, redis_url=settings.redis.url.get_secret_value())
            if beat_url := (settings.heartbeat_url.get_secret_value() if settings.heartbeat_url else ""):
                http = await stack.enter_async_context(httpx.AsyncClient())
                await stack.enter_async_context(background(heartbeat.run(
                    http, beat_url, interval_s=settings.heartbeat_interval_s,
                    healthy=lambda: consumer_health().status != "fail"), name="heartbeat"))
            async with background(every(settings.tick_interval_s, core.notifier.tick, what="escalation and relay"),
                                  name="tick"):
                yield
    return lifespan


def create_app(settings: NotifierSettings, *, policy: NotifierPolicy | None = None,
               oncall: OnCallSchedule | None = None, consume: bool = True, **adapters: Unpack[Adapters]) -> FastAPI:
    """The policy and on-call schedule are loaded here, so a bad file stops the service before it serves.
    The adapters replace Kafka / Postgres / the channels (tests); `consume=False` skips the consumer."""
    loaded = policy or load_policy(settings.policy_file)
    schedule = oncall or (load_oncall(settings.oncall_file) if settings.oncall_file else OnCallSchedule())
    app = FastAPI(title="Safeguard notifier", version="1.0.0",
                  lifespan=_lifespan(settings, policy=loaded, oncall=schedule, consume=consume, adapters=adapters),
                  description="Incidents, escalation L1-L4, notices, the status page and post-incident reports.")
    auth = Authenticator(settings.auth)
    limiter = RateLimiter.from_settings(settings.ratelimit, redis_url=settings.redis.url)
    app.include_router(healthz_router("notifier"))
    app.include_router(api.build_router(auth))
    app.include_router(incident_api.build_router(auth))
    app.include_router(public_api.build_router(auth, limiter=limiter, subscribe_rate=settings.subscriptions.rate))
    RateLimiter.install_handler(app)
    return app
