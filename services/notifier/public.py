"""Composition of maintenance windows and subscriptions (kept out of app.py): their stores, the maintenance
tick and the subscriber relay, each a background loop of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx

from services.notifier.maintenance_service import MaintenanceService
from services.notifier.maintenance_store import MaintenanceStore, MemoryMaintenanceStore, PgMaintenanceStore
from services.notifier.policy import NotifierPolicy
from services.notifier.ports import Sender
from services.notifier.settings import NotifierSettings
from services.notifier.subscriber_relay import FanOutSender, Links, SmtpMailer, SubscriberRelay
from services.notifier.subscription_store import PgSubscriberStore
from shared.tasks import background, every

__all__ = ["Public", "open_public"]


@dataclass
class Public:
    """`subscribers` / `links` / `relay`: None without Postgres (subscriptions are then refused)."""

    maintenance: MaintenanceService
    store: MaintenanceStore
    settings: NotifierSettings
    mailer: SmtpMailer
    subscribers: PgSubscriberStore | None = None
    links: Links | None = None
    relay: SubscriberRelay | None = None
    severities: tuple[str, ...] = ("major", "critical")  # the policy's user_notice_severities

    def wrap(self, sender: Sender) -> Sender:
        return sender if self.subscribers is None else FanOutSender(inner=sender, store=self.subscribers,
                                                                    severities=self.severities)


@asynccontextmanager
async def open_public(*, settings: NotifierSettings, policy: NotifierPolicy, pool: asyncpg.Pool | None,
                      maintenance: MaintenanceStore | None = None) -> AsyncIterator[Public]:
    store = maintenance or (PgMaintenanceStore(pool) if pool is not None else MemoryMaintenanceStore())
    public = Public(MaintenanceService(store=store, policy=policy.maintenance), store, settings,
                    SmtpMailer(settings.smtp), severities=tuple(policy.user_notice_severities))
    async with AsyncExitStack() as stack:
        if pool is not None:
            public.subscribers = PgSubscriberStore(pool)
            public.links = Links(key=await public.subscribers.key(), settings=settings.subscriptions)
            http = await stack.enter_async_context(httpx.AsyncClient())
            public.relay = SubscriberRelay(store=public.subscribers, http=http, mailer=public.mailer,
                                           links=public.links, retry=policy.webhook)
            await stack.enter_async_context(background(
                every(settings.subscriptions.relay_interval_s, public.relay.run_once, what="subscriber relay"),
                name="subscriber relay"))
        await stack.enter_async_context(background(
            every(settings.tick_interval_s, public.maintenance.tick, what="maintenance tick"), name="maintenance"))
        yield public
