"""Inbound edge for maintenance windows scheduled through the notifier's API (`maintenance.windows`): the
covered services' requests and probes stay out of availability and budgets while a window is on, exactly like
the static windows of `config/sla.yaml` (which keep working beside them).

`maintenance.windows` is keyed by window, the SLA state by service. So, as for flag changes (`flagwatch.py`),
the agent reading it does not touch the tables: it copies each window's span for each covered service to that
service's partition of an internal topic (`<app_id>-maintenance`, co-partitioned with the inputs), and the agent
of each partition writes the service's windows (under that partition, flushed before the record is acked). A
replay writes the same span again. A record that does not parse, or whose key is not its window, goes to
`maintenance.windows.dlq` with the reason.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import faust

from services.sla.agents import Progress, decode_or_refuse
from services.sla.outbox import partition_of
from services.sla.service import SlaCore
from services.sla.tables import Tables
from shared import topics
from shared.events import Event, MaintenanceWindowCancelled, MaintenanceWindowScheduled

__all__ = ["register_maintenance_watch", "spans"]

log = logging.getLogger(__name__)


def spans(event: Event) -> list[tuple[str, dict[str, Any]]]:
    """(service, {window, start, end}) for each service the window covers; `end <= start`: it covers nothing."""
    if isinstance(event, MaintenanceWindowScheduled):
        end = event.ends_at
    elif isinstance(event, MaintenanceWindowCancelled):
        end = event.covers_until
    else:
        return []
    span = {"window": event.window_id, "start": event.starts_at.timestamp(), "end": end.timestamp()}
    return [(service, span) for service in event.components]


def register_maintenance_watch(app: faust.App, *, core: SlaCore, tables: Tables, publisher: Any, topic_prefix: str,
                               partitions: int, counters: Any, progress: Progress) -> dict[str, Any]:
    """`publisher.dead_letter` takes a record that does not parse or whose key is not its window; `progress`
    follows each record in hand (each waits for the broker's acks: /healthz sees a stall)."""
    windows = app.topic(topic_prefix + topics.MAINTENANCE_WINDOWS, key_serializer="raw", value_serializer="raw",
                        partitions=partitions)
    fanout = app.topic(f"{app.conf.id}-maintenance", key_serializer="raw", value_serializer="raw",
                       partitions=partitions, internal=True)

    decoded = functools.partial(decode_or_refuse, keyed_by="window", publisher=publisher, counters=counters,
                                group=app.conf.id)

    @app.agent(windows, name="sla.watch_maintenance")
    async def watch_maintenance(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for record in stream.events():
            with progress.batch(record.message.topic):
                event = await decoded(record)
                for service, span in spans(event) if event is not None else []:  # each acked before this record is
                    await (await fanout.send(key=service.encode(), value=json.dumps(span).encode(),
                                             partition=partition_of(service, partitions=partitions)))
                if event is not None:
                    counters["sla_maintenance_windows_total"][type(event).__name__] += 1
            yield None

    @app.agent(fanout, name="sla.plan_maintenance")
    async def plan_maintenance(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for record in stream.events():
            with progress.batch(record.message.topic):
                _plan(core, tables, service=record.message.key.decode(), span=json.loads(record.value),
                      partition=record.message.partition)
                await tables.written()  # acked before this record is
            yield None

    return {"watch_maintenance": watch_maintenance, "plan_maintenance": plan_maintenance}


def _plan(core: SlaCore, tables: Tables, *, service: str, span: dict[str, Any], partition: int) -> None:
    """One window's span for `service`, into the maintenance table under the service's partition."""
    tables.set_partition(partition)
    try:
        core.plan_maintenance(service=service, window_id=span["window"], start=span["start"], end=span["end"])
    finally:
        tables.flush()
    if span["end"] > span["start"]:
        log.info("sla: maintenance %s covers %s over %s-%s", span["window"], service, span["start"], span["end"])
    else:
        log.info("sla: maintenance %s called off: covers %s no more", span["window"], service)
