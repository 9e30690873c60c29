"""The SLA processor on the clock: a Faust timer ticks every owned service (`SlaCore.tick`).

Without it a service's triggers change only when its records arrive, so an episode whose
traffic stopped stayed firing for as long as the silence lasted (issue 14). The tick writes
the tables the way an agent's batch does: under the partition of the service's records
(`WriteBack.set_partition`), flushed to the changelogs before anything is published; its
trigger events go through the outbox, so a crash after the flush re-publishes them (same
deterministic ids) and a crash before it repeats the tick's decision on the next tick.
Only the services whose partitions this worker owns are ticked (a standby's copy is not ours).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import faust

from services.sla.outbox import Outbox, partition_of
from services.sla.service import SlaCore
from services.sla.tables import Tables
from shared.events import Event, TriggerCleared, TriggerFired

__all__ = ["register_ticks"]

log = logging.getLogger(__name__)
_TRIGGERS = (TriggerFired, TriggerCleared)


@dataclass
class _Owner:
    """The partitions this worker owned at the last tick, and since when."""

    partitions: frozenset[int] = frozenset()
    since: float = 0.0


def register_ticks(
    app: faust.App, *, core: SlaCore, tables: Tables, outbox: Outbox, publisher: Any, counters: Any, topic: str,
    every: float, idle_after: float, partitions: int,
) -> Callable[[Collection[int]], Awaitable[int]]:
    """Tick every `every` seconds once the tables are recovered; `topic` (an input topic) tells which
    partitions this worker owns. Returns the tick itself (`await tick(owned_partitions)` -> events out)."""

    owner = _Owner()

    async def tick(owned: Collection[int]) -> int:
        if frozenset(owned) != owner.partitions:  # a new assignment: silence counts from now
            owner.partitions, owner.since = frozenset(owned), core.clock()
        touched: dict[str, int] = {}
        reports: list[Event] = []
        try:
            for service in core.services():
                partition = partition_of(service, partitions=partitions)
                if partition not in owned:
                    continue
                tables.set_partition(partition)
                try:
                    out = core.tick(service, idle_after=idle_after, not_before=owner.since)
                except Exception:  # noqa: BLE001 - one service's bad state must not stop the others' clock
                    log.exception("sla tick failed for %s", service)
                    counters["sla_tick_failures_total"][service] += 1
                    continue
                if any(isinstance(e, _TRIGGERS) for e in out):
                    touched[service] = partition
                reports += [e for e in out if not isinstance(e, _TRIGGERS)]
        finally:
            tables.flush()
        for report in reports:  # budget reports: a lost one is replaced by the next
            try:
                await publisher.publish(report)
            except Exception:  # noqa: BLE001
                kind = str(getattr(report, "type"))
                log.exception("could not publish %s", kind)
                counters["sla_publish_failures_total"][kind] += 1
        sent = await outbox.publish(sorted(touched), partitions=touched) if touched else 0
        counters["sla_ticks_total"]["all"] += 1
        return sent

    @app.timer(interval=every, name="sla.tick")  # type: ignore[untyped-decorator]
    async def tick_on_the_clock() -> None:
        if app.rebalancing or not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            return
        await tick({tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic})

    return tick
