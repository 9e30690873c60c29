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
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import faust

from services.sla.outbox import Outbox, partition_of
from services.sla.service import SlaCore
from services.sla.tables import Tables
from shared.events import Event, TriggerCleared, TriggerFired

__all__ = ["Ticker", "register_ticks"]

log = logging.getLogger(__name__)
_TRIGGERS = (TriggerFired, TriggerCleared)


class Ticker:
    """`await ticker(owned_partitions)`: tick every service of the owned partitions; returns the trigger
    events sent. A new assignment restarts the silence: it counts from the first tick that saw it."""

    def __init__(self, *, core: SlaCore, tables: Tables, outbox: Outbox, publisher: Any, counters: Any,
                 idle_after: float, partitions: int) -> None:
        self.core, self.tables, self.outbox, self.publisher, self.counters = core, tables, outbox, publisher, counters
        self.idle_after, self.partitions = idle_after, partitions
        self.owned: frozenset[int] = frozenset()
        self.since = 0.0

    async def __call__(self, owned: Collection[int]) -> int:
        if frozenset(owned) != self.owned:  # a new assignment: silence counts from now
            self.owned, self.since = frozenset(owned), self.core.clock()
        touched: dict[str, int] = {}
        reports: list[Event] = []
        try:
            for service in self.core.services():
                partition = partition_of(service, partitions=self.partitions)
                if partition in owned:
                    out = self._tick(service, partition)
                    if any(isinstance(e, _TRIGGERS) for e in out):
                        touched[service] = partition
                    reports += [e for e in out if not isinstance(e, _TRIGGERS)]
        finally:
            self.tables.flush()
        await self._publish(reports)
        sent = await self.outbox.publish(sorted(touched), partitions=touched) if touched else 0
        self.counters["sla_ticks_total"]["all"] += 1
        return sent

    def _tick(self, service: str, partition: int) -> list[Event]:
        self.tables.set_partition(partition)
        try:
            return self.core.tick(service, idle_after=self.idle_after, not_before=self.since)
        except Exception:  # noqa: BLE001 - one service's bad state must not stop the others' clock
            log.exception("sla tick failed for %s", service)
            self.counters["sla_tick_failures_total"][service] += 1
            return []

    async def _publish(self, reports: list[Event]) -> None:
        for report in reports:  # budget reports: a lost one is replaced by the next
            try:
                await self.publisher.publish(report)
            except Exception:  # noqa: BLE001
                kind = str(getattr(report, "type"))
                log.exception("could not publish %s", kind)
                self.counters["sla_publish_failures_total"][kind] += 1


def register_ticks(
    app: faust.App, *, core: SlaCore, tables: Tables, outbox: Outbox, publisher: Any, counters: Any, topic: str,
    every: float, idle_after: float, partitions: int,
) -> Callable[[Collection[int]], Awaitable[int]]:
    """Tick every `every` seconds once the tables are recovered; `topic` (an input topic) tells which
    partitions this worker owns. Returns the tick itself (`await tick(owned_partitions)` -> events out)."""
    tick = Ticker(core=core, tables=tables, outbox=outbox, publisher=publisher, counters=counters,
                  idle_after=idle_after, partitions=partitions)

    @app.timer(interval=every, name="sla.tick")  # type: ignore[untyped-decorator]
    async def tick_on_the_clock() -> None:
        if app.rebalancing or not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            return
        await tick({tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic})

    return tick
