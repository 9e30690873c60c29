"""Trigger events leave the outbox only once Kafka has them.

The core keeps each TriggerFired / TriggerCleared in its service's `outbox` (in the status
table, so on the changelog with the state that produced it). `Outbox.publish` sends them in
order, waits for the broker's ack, then removes them from the table; a failure leaves them
there, and `republish` (a timer, and so also right after a restart) sends them again. Event ids
are deterministic per episode, so a consumer that saw an earlier copy dedupes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from typing import Any

from aiokafka.partitioner import murmur2
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from services.sla.service import SlaCore
from services.sla.tables import Tables
from shared.telemetry import extract_context

__all__ = ["Outbox", "partition_of"]

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("safeguard.sla")


def partition_of(service: str, *, partitions: int) -> int:
    """The partition of `service`'s records and state: Kafka's default partitioner on the key."""
    return int(murmur2(service.encode()) & 0x7FFFFFFF) % partitions


class Outbox:
    def __init__(self, *, core: SlaCore, tables: Tables, publisher: Any, counters: Any, partitions: int) -> None:
        self.core, self.tables, self.publisher, self.counters = core, tables, publisher, counters
        self.partitions = partitions
        self._lock = asyncio.Lock()  # one sender at a time: the batch handler and the timer never send twice

    async def publish(self, services: Iterable[str], *, headers: Mapping[str, Any] | None = None,
                      partitions: Mapping[str, int] | None = None, sources: Mapping[str, str] | None = None) -> int:
        """Send the pending trigger events of `services`, the services side by side, each one's in order up
        to its first failure. Returns how many were sent.

        `headers` maps an event id to the headers of the record that produced it (its trace continues, in a
        `<record topic> process` span: `sources` maps the event id to that topic);
        `partitions` the partition of a service's records when known (else the default partitioner's)."""
        async with self._lock:
            services = list(services)
            results = await asyncio.gather(*(self._send(s, headers or {}, sources or {}) for s in services))
            for service, (done, _) in zip(services, results):
                if done:
                    known = (partitions or {}).get(service)
                    self.tables.set_partition(partition_of(service, partitions=self.partitions) if known is None else known)
                    self.core.mark_published(service, ids=done)
            self.tables.flush()
        return sum(len(done) for done, _ in results)

    async def republish(self, *, owned: Callable[[str], bool] | None = None) -> int:
        """Send what earlier attempts (or a process that died) left in the outbox of the services owned here."""
        return await self.publish(s for s in self.core.services_pending() if owned is None or owned(s))

    async def _send(self, service: str, headers: Mapping[str, Any], sources: Mapping[str, str]
                    ) -> tuple[list[str], bool]:
        done: list[str] = []
        for event in self.core.pending(service):
            kind = str(getattr(event, "type"))
            context = headers.get(str(event.id))
            span = nullcontext() if context is None else _tracer.start_as_current_span(
                f"{sources.get(str(event.id), 'sla')} process", context=extract_context(context),
                kind=SpanKind.CONSUMER, attributes=_attributes(event))
            try:
                with span:
                    await self.publisher.publish(event)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - kept in the outbox; the timer sends it again
                log.exception("could not publish %s for %s; kept to send again", kind, service)
                self.counters["sla_publish_failures_total"][kind] += 1
                return done, False
            self.counters["sla_published_total"][kind] += 1
            done.append(str(event.id))
        return done, True


def _attributes(event: Any) -> dict[str, str]:
    return {"messaging.system": "kafka", "safeguard.service": str(getattr(event, "service", "")),
            "safeguard.trigger": str(getattr(event, "trigger", "")), "safeguard.event": str(getattr(event, "type", "")),
            "safeguard.episode_id": str(getattr(event, "episode_id", ""))}
