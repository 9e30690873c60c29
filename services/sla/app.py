"""Composition root of the SLA processor: one Faust app, built at run time.

Its web server serves only our views (`services.sla.api`): Faust's own (`/table`, `/router`,
`/graph`, `/stats`, the index at `/`) are off, since they show table data and cluster topology.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import faust
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from services.sla.agents import Counters, FaustPublisher, Progress, register_agents
from services.sla.flagwatch import register_flag_watch
from services.sla.maintenance import register_maintenance_watch
from services.sla.api import register_views
from services.sla.outbox import Outbox, partition_of
from services.sla.policy import SlaPolicy, load_policy
from services.sla.service import SlaCore
from services.sla.settings import SlaSettings
from services.sla.tables import Tables, compact_changelogs, define_tables
from services.sla.ticks import register_ticks
from shared import topics
from shared.guard import aiohttp_guard

__all__ = ["create_app", "SlaApp"]


@dataclass(frozen=True)
class SlaApp:
    app: faust.App
    core: SlaCore
    tables: Tables
    agents: dict[str, Any]
    counters: Counters
    republish: Callable[[], Awaitable[int]]
    progress: Progress


class _Web(AiohttpWeb):
    """Faust's web server without Faust's built-in views (only what `app.page` adds)."""

    default_blueprints: ClassVar[Any] = ()
    production_blueprints: ClassVar[Any] = ()
    debug_blueprints: ClassVar[Any] = ()
    optional_blueprints: ClassVar[Any] = ()

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.web_app.middlewares.append(aiohttp_guard(own_host=app.conf.web_host))  # Host allow-list (DNS rebinding)


class _App(faust.App):
    kafka_kwargs: dict[str, Any] | None = None  # the admin client's connection, for `compact_changelogs`

    def _new_web(self) -> Any:
        return _Web(self)

    async def on_first_start(self) -> None:
        await super().on_first_start()
        if self.kafka_kwargs is not None:
            await compact_changelogs(self.kafka_kwargs, self.conf.id)


def create_app(settings: SlaSettings, *, policy: SlaPolicy | None = None, publisher: Any = None,
               clock: Callable[[], float] = time.time) -> SlaApp:
    """Build the Faust app. `policy` defaults to `settings.policy_file` (PolicyError when invalid);
    `publisher` (publish / dead_letter) defaults to Faust topics with CloudEvents headers; `clock`
    is what event times are checked against."""
    policy = policy or load_policy(settings.policy_file or None)
    app = _faust_app(settings)
    tables = define_tables(app, partitions=settings.partitions)
    core = SlaCore(policy=policy, buckets=tables.buckets, status=tables.status, clock=clock,
                   maintenance=tables.maintenance)
    counters: Counters = defaultdict(Counter)
    publisher = publisher or FaustPublisher(app, topic_prefix=settings.kafka.topic_prefix, timeout_s=settings.publish_timeout,
                                           partitions=settings.partitions)
    outbox = Outbox(core=core, tables=tables, publisher=publisher, counters=counters, partitions=settings.partitions)
    progress = Progress(stall_after=settings.stall_after)
    agents = register_agents(app, core=core, tables=tables, publisher=publisher, outbox=outbox, counters=counters,
                             topic_prefix=settings.kafka.topic_prefix, batch_size=settings.batch_size,
                             batch_within=settings.batch_within, partitions=settings.partitions, progress=progress)
    _republish_on_a_timer(app, outbox, every=settings.republish_every, topic=settings.kafka.topic_prefix + topics.TELEMETRY_REQUESTS,
                          partitions=settings.partitions)
    register_ticks(app, core=core, tables=tables, outbox=outbox, publisher=publisher, counters=counters,
                   topic=settings.kafka.topic_prefix + topics.TELEMETRY_REQUESTS, every=settings.tick_every,
                   idle_after=settings.tick_idle, partitions=settings.partitions)
    if settings.rearm_on_flags:
        agents |= register_flag_watch(app, core=core, tables=tables, publisher=publisher, topic_prefix=settings.kafka.topic_prefix,
                                      partitions=settings.partitions, counters=counters, progress=progress)
    if settings.maintenance_from_notifier:
        agents |= register_maintenance_watch(app, core=core, tables=tables, publisher=publisher,
                                             topic_prefix=settings.kafka.topic_prefix, partitions=settings.partitions,
                                             counters=counters, progress=progress)
    register_views(app, core=core, counters=counters, progress=progress)
    return SlaApp(app=app, core=core, tables=tables, agents=agents, counters=counters, republish=outbox.republish,
                  progress=progress)


def _faust_app(settings: SlaSettings) -> _App:
    """The Faust app of `settings`: memory tables restored from their changelogs, web views only ours."""
    app = _App(
        settings.app_id,
        broker=f"kafka://{settings.kafka.bootstrap_servers}",
        broker_credentials=_credentials(settings),
        datadir=settings.data_dir,
        web_enabled=settings.web_enabled,
        web_host=settings.host,
        web_port=settings.port,
        web_bind=settings.host,
        web_router_enabled=False, web_tables_enabled=False, web_stats_enabled=False, web_graph_enabled=False,
        web_metrics_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        producer_acks=-1,
        # a killed worker's partitions go to its restarted self after 10 s, not Faust's 60 s default
        # (make chaos: kill -9 sla left the triggers blind for a minute while /healthz said pass)
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        # with an id (the stack's worker: SLA_GROUP_INSTANCE_ID), its restarted self takes them back at once
        consumer_group_instance_id=settings.group_instance_id,
        store="memory://",
        table_cleanup_interval=60.0,
        # A batch flush sends its changelog writes and outputs together: let the producer group them
        # into few produce requests (5 ms adds nothing measurable to a detection of ~3 s).
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
    )
    # Faust pauses consumption when more than `max_messages` sends are queued ("producer buffer
    # full"); a batch flush queues one per changed key, so allow a whole batch.
    app.producer.buffer.max_messages = max(app.producer.buffer.max_messages, settings.batch_size)
    app.kafka_kwargs = settings.kafka.client_kwargs()
    return app


def _republish_on_a_timer(app: faust.App, outbox: Outbox, *, every: float, topic: str, partitions: int) -> None:
    """Once the tables are recovered, and every `every` seconds, send what is left in the outboxes of the
    services whose partitions this worker owns (a standby's copy is not ours to send)."""

    @app.timer(interval=every, name="sla.republish")  # type: ignore[untyped-decorator]
    async def republish_pending() -> None:
        if app.rebalancing or not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            return
        owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}
        await outbox.republish(owned=lambda service: partition_of(service, partitions=partitions) in owned)


def _credentials(settings: SlaSettings) -> faust.SASLCredentials | None:
    """The SLA principal's SCRAM login (None: PLAINTEXT, a broker without SASL)."""
    kafka = settings.kafka
    if not kafka.client_kwargs()["security_protocol"].startswith("SASL"):
        return None
    password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
    return faust.SASLCredentials(username=kafka.sasl_username, password=password, mechanism=kafka.sasl_mechanism)
