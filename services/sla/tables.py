"""The Faust tables of the SLA processor: memory stores restored from their changelog topics.

The agents process records in batches; `WriteBack` is the mapping the core sees during a
batch: writes stay in a local overlay and `flush()` sends each changed key once (its last
value) to the changelog, instead of one changelog message per write.

A record is acked only once the changelog writes of its batch are acked by the broker (`Tables.written`):
Faust flushes its producer before committing offsets, but that flush gives up after 0.1 s without a
message sent (`ProducerBuffer.flush_atmost`), so a busy loop could commit offsets ahead of the state on the
changelog, and a worker killed then lost those records' counts (tests/integration/sla/test_sla_changelog.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import faust

__all__ = ["Tables", "WriteBack", "define_tables"]

_DELETED = object()


class WriteBack(MutableMapping[str, Any]):
    """A batch overlay over a Faust table.

    Reads see the batch's own writes first, then the table. `partition` is set by the agent
    to the partition of the record being processed, and a key written then goes to that
    changelog partition (as a direct table write would: every input topic is keyed by
    service, so a service's state follows its partition). `flush()` writes every changed
    key once, in one go, and is called before the batch's offsets are acked, so a restart
    replays at most the records whose state was not yet on the changelog.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self.partition: int | None = None
        self._dirty: dict[str, Any] = {}
        self._partitions: dict[str, int | None] = {}
        self.sending: list[Any] = []  # the changelog sends (Faust's FutureMessage) not yet seen acked

    def stored(self) -> Mapping[str, Any]:
        """The table's store, read directly (a memory store's dict): a read through the Faust table calls its
        sensor hook and, for a missing key, raises and catches a KeyError (`Mapping.get`), ~2 us each, and the
        core reads the tables a few times per record. Writes go to the store directly too (`flush`)."""
        store = self.table.data
        return getattr(store, "data", store)  # type: ignore[no-any-return]

    def __getitem__(self, key: str) -> Any:
        value = self._dirty.get(key, self)
        if value is self:
            return self.stored()[key]
        if value is _DELETED:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self._dirty.get(key, self)
        if value is self:
            value = self.stored().get(key)
            return default if value is None else value
        return default if value is _DELETED else value

    def __setitem__(self, key: str, value: Any) -> None:
        self._dirty[key] = value
        self._partitions[key] = self.partition

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._dirty[key] = _DELETED
        self._partitions[key] = self.partition

    def __contains__(self, key: object) -> bool:
        value = self._dirty.get(key, self)  # type: ignore[call-overload]
        return key in self.stored() if value is self else value is not _DELETED

    def __iter__(self) -> Iterator[str]:
        for key in self.stored():
            if key not in self._dirty:
                yield key
        for key, value in list(self._dirty.items()):
            if value is not _DELETED:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def pending(self) -> int:
        return len(self._dirty)

    def flush(self) -> int:
        """Send each changed key once to its changelog partition and store it; returns how many."""
        table, store = self.table, self.table.data
        new = []
        for key, value in self._dirty.items():
            partition = self._partitions[key]
            if value is _DELETED:
                if key in store:
                    new.append(table.send_changelog(partition, key, None, value_serializer="raw"))
                    del store[key]
                continue
            new.append(table.send_changelog(partition, key, value))
            store[key] = value
        # a timer's flushes are not awaited by anyone: forget what is acked already
        self.sending = [f for f in self.sending if not f.done()] + new
        self._dirty.clear()
        self._partitions.clear()
        return len(new)


@dataclass(frozen=True)
class Tables:
    bucket_to_counts: Any  # faust.Table[str, list]: "<service>|<series>|<bucket>" -> counts
    service_to_status: Any  # faust.Table[str, dict]: watermark, hot seconds, trigger states, instances, probes, budgets
    service_to_maintenance: Any  # faust.Table[str, dict]: the notifier's windows covering it, {id: [start, end]}
    buckets: WriteBack
    status: WriteBack
    maintenance: WriteBack

    def set_partition(self, partition: int | None) -> None:
        self.buckets.partition = self.status.partition = self.maintenance.partition = partition

    def flush(self) -> int:
        return self.buckets.flush() + self.status.flush() + self.maintenance.flush()

    async def written(self) -> None:
        """Wait until every changelog write flushed so far is acked by the broker (a failed one raises): call it
        before the records that caused them are acked, so offsets never run ahead of the changelog.

        The agents share the tables: each waits for all the writes it sees, and none takes them away from
        another (a flush forgets the finished ones). `asyncio.wait`, not `gather`: a caller cancelled while
        waiting must not cancel Faust's sends, which other callers wait for too."""
        sending = [f for wb in (self.buckets, self.status, self.maintenance) for f in wb.sending]
        if not sending:
            return
        await asyncio.wait(sending)
        for fut in sending:
            if (exc := fut.exception()) is not None:
                raise exc


def define_tables(app: faust.App, *, partitions: int = 3) -> Tables:
    """Keys are strings, values JSON; every input topic is keyed by service with the same partition
    count, so a service's state lands in the changelog partition of its input partition."""
    schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")  # type: ignore[var-annotated]
    common: dict[str, Any] = {"default": None, "partitions": partitions, "schema": schema}
    buckets = app.Table("bucket_to_counts", help="Time-bucketed request / probe counts", **common)
    status = app.Table("service_to_status", help="Per-service window and detection state", **common)
    planned = app.Table("service_to_maintenance", help="Maintenance windows from the notifier, per service", **common)
    return Tables(bucket_to_counts=buckets, service_to_status=status, service_to_maintenance=planned,
                  buckets=WriteBack(buckets), status=WriteBack(status), maintenance=WriteBack(planned))
