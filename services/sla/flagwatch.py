"""Inbound edge for flag changes: a new feature turned on re-arms firing error-rate episodes (`rearm.py`).

`flags.changes` is keyed by flag, the SLA state by service, and a flag is not tied to one service
(recovery turns off every `new` flag). So the agent reading `flags.changes` does not touch the
tables: it copies each "new feature turned on" to every partition of an internal topic
(`<app_id>-flags-on`, co-partitioned with the inputs), and the agent of each partition marks the
services of that partition, writing the tables as a batch does (under that partition, flushed
before the record is acked). A replay marks nothing twice (`rearm.mark`).

Needs the `sla` principal to read `flags.changes` (shared/kafka/acls.py); off unless
`SLA_REARM_ON_FLAGS=true`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import faust

from services.sla.agents import Progress, decode_or_refuse
from services.sla.outbox import partition_of
from services.sla.service import SlaCore
from services.sla.tables import Tables
from shared import topics
from shared.events import FlagChanged

__all__ = ["register_flag_watch", "turned_on"]

log = logging.getLogger(__name__)


def turned_on(event: FlagChanged) -> bool:
    """A flag marked `new` went from off (or absent, or killed) to on."""
    return _on(event.after) and bool((event.after or {}).get("new")) and not _on(event.before)


def _on(record: dict[str, Any] | None) -> bool:
    return bool(record) and (record or {}).get("definition", {}).get("state") == "ENABLED" and not (record or {}).get("killed")


def register_flag_watch(app: faust.App, *, core: SlaCore, tables: Tables, publisher: Any, topic_prefix: str,
                        partitions: int, counters: Any, progress: Progress) -> dict[str, Any]:
    """`publisher.dead_letter` takes a flag change that does not parse (to `<topic>.dlq`, with the reason);
    `progress` follows each record in hand (each waits for the broker's acks: /healthz sees a stall)."""
    changes = app.topic(topic_prefix + topics.FLAGS_CHANGES, key_serializer="raw", value_serializer="raw",
                        partitions=partitions)
    fanout = app.topic(f"{app.conf.id}-flags-on", key_serializer="raw", value_serializer="raw", partitions=partitions,
                       internal=True)

    @app.agent(changes, name="sla.watch_flags")
    async def watch_flags(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for record in stream.events():
            with progress.batch(record.message.topic):
                event = await decode_or_refuse(record, keyed_by=None, publisher=publisher, counters=counters,
                                               group=app.conf.id)
                if isinstance(event, FlagChanged) and turned_on(event):
                    body = json.dumps({"flag": event.flag_key, "at": event.time.isoformat()}).encode()
                    for partition in range(partitions):  # acked before this record is: none is lost
                        await (await fanout.send(key=event.flag_key.encode(), value=body, partition=partition))
                    counters["sla_flags_turned_on_total"][event.flag_key] += 1
            yield None

    @app.agent(fanout, name="sla.rearm")
    async def rearm(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for record in stream.events():
            with progress.batch(record.message.topic):
                data = json.loads(record.value)
                _rearm(core, tables, partition=record.message.partition, flag=data["flag"],
                       at=datetime.fromisoformat(data["at"]), partitions=partitions, counters=counters)
                await tables.written()  # acked before this record is
            yield None

    return {"watch_flags": watch_flags, "rearm": rearm}


def _rearm(core: SlaCore, tables: Tables, *, partition: int, flag: str, at: datetime, partitions: int,
           counters: Any) -> None:
    """Mark the firing error-rate episodes of the services in `partition` (`SlaCore.flag_turned_on`)."""
    tables.set_partition(partition)
    try:
        for service in core.services():
            if partition_of(service, partitions=partitions) == partition and \
                    core.flag_turned_on(service=service, flag=flag, at=at):
                log.warning("sla: %s turned on during %s's error-rate episode: re-armed", flag, service)
                counters["sla_rearmed_total"][service] += 1
    finally:
        tables.flush()
