"""The Faust tables of the SLA processor: memory stores restored from their changelog topics.

The agents process records in batches; `WriteBack` is the mapping the core sees during a
batch: writes stay in a local overlay and `flush()` sends each changed key once (its last
value) to the changelog, instead of one changelog message per write.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
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

    def __getitem__(self, key: str) -> Any:
        value = self._dirty.get(key, self)
        if value is self:
            return self.table[key]
        if value is _DELETED:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self._dirty.get(key, self)
        if value is self:
            value = self.table.get(key)
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
        return key in self.table if value is self else value is not _DELETED

    def __iter__(self) -> Iterator[str]:
        for key in self.table.keys():
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
        sent = 0
        for key, value in self._dirty.items():
            partition = self._partitions[key]
            if value is _DELETED:
                if key in store:
                    table.send_changelog(partition, key, None, value_serializer="raw")
                    del store[key]
                    sent += 1
                continue
            table.send_changelog(partition, key, value)
            store[key] = value
            sent += 1
        self._dirty.clear()
        self._partitions.clear()
        return sent


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
