"""The Faust tables of the SLA processor: memory stores restored from their changelog topics.

The agents process records in batches; `WriteBack` is the mapping the core sees during a
batch: writes stay in a local overlay and `flush()` sends each changed key once (its last
value) to the changelog, instead of one changelog message per write.

A record is acked only once the changelog writes of its batch are acked by the broker (`Tables.written`):
Faust flushes its producer before committing offsets, but that flush gives up after 0.1 s without a
message sent (`ProducerBuffer.flush_atmost`), so a busy loop could commit offsets ahead of the state on the
changelog, and a worker killed then lost those records' counts (tests/integration/sla/test_sla_changelog.py).
A write the broker refuses is sent again (the key's current value) until it is acked; the records wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import faust

__all__ = ["Tables", "WriteBack", "changelog_topics", "compact_changelogs", "define_tables"]

log = logging.getLogger(__name__)
_DELETED = object()


@dataclass(frozen=True, slots=True)
class _Send:
    """One changelog write in flight: which key (to send its value again if the write fails)."""

    key: str
    partition: int | None
    future: Any  # Faust's FutureMessage

    def failed(self) -> bool:
        return bool(self.future.done() and (self.future.cancelled() or self.future.exception() is not None))


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
        self.sending: list[_Send] = []  # the changelog writes not yet seen acked, and the failed ones

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
        store = self.table.data
        new = []
        for key, value in self._dirty.items():
            partition = self._partitions[key]
            if value is _DELETED:
                if key in store:
                    new.append(self._send(key, partition, value))
                    del store[key]
                continue
            new.append(self._send(key, partition, value))
            store[key] = value
        # a timer's flushes are not awaited by anyone: forget what is acked already (a failed write stays until
        # `resend`: the state it carried must still reach the changelog)
        self.sending = [s for s in self.sending if not s.future.done() or s.failed()] + new
        self._dirty.clear()
        self._partitions.clear()
        return len(new)

    def resend(self, sent: _Send) -> bool:
        """Send `sent`'s key again, with the value the table holds now (what the failed write carried, or newer;
        a tombstone if the key is gone). False when another caller already did."""
        if sent not in self.sending:
            return False
        self.sending.remove(sent)
        self.sending.append(self._send(sent.key, sent.partition, self.stored().get(sent.key, _DELETED)))
        return True

    def _send(self, key: str, partition: int | None, value: Any) -> _Send:
        """Write `key`'s `value` to its changelog partition (`_DELETED`: a tombstone)."""
        if value is _DELETED:
            return _Send(key, partition, self.table.send_changelog(partition, key, None, value_serializer="raw"))
        return _Send(key, partition, self.table.send_changelog(partition, key, value))


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

    async def written(self, *, retry_s: float = 0.5, max_retry_s: float = 10.0) -> None:
        """Wait until every changelog write flushed so far is acked by the broker: call it before the records that
        caused them are acked, so offsets never run ahead of the changelog. A write that failed (the producer
        gave up: the broker away for longer than its own retries) is sent again, with the key's current value,
        after `retry_s` doubling up to `max_retry_s`, for as long as it takes: the records wait (they were acked
        before, and a worker stopped then lost their state).

        The agents share the tables: each waits for all the writes it sees, and none takes them away from
        another (a flush forgets only the acked ones; a failed one is sent again once). `asyncio.wait`, not
        `gather`: a caller cancelled while waiting must not cancel Faust's sends, which other callers wait for."""
        overlays = (self.buckets, self.status, self.maintenance)
        delay = retry_s
        while True:
            sending = [s.future for wb in overlays for s in wb.sending]
            if not sending:
                return
            await asyncio.wait(sending)
            failed = [(wb, s) for wb in overlays for s in wb.sending if s.failed()]
            if not failed:
                return
            reason = next((repr(s.future.exception()) for _, s in failed if not s.future.cancelled()), "cancelled")
            log.warning("%d changelog write(s) failed (%s): sending the keys' current values again in %.1f s",
                        len(failed), reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_retry_s)
            for wb, sent in failed:
                wb.resend(sent)


# The changelogs are compacted while the worker runs, so a restarted worker replays about one value per key. The
# broker compacts closed segments only; with its defaults (a segment closes at 100 MB here, or after 7 days)
# `service_to_status` had 26,000 records to replay after an hour, 30 s of a restarted worker counting nothing.
CHANGELOG_CONFIG = {"segment.ms": "60000", "min.cleanable.dirty.ratio": "0.1"}
TABLE_NAMES = ("bucket_to_counts", "service_to_status", "service_to_maintenance")


def changelog_topics(app_id: str) -> list[str]:
    """The changelog topic of each table, as Faust names them (`<app id>-<table>-changelog`)."""
    return [f"{app_id}-{t}-changelog" for t in TABLE_NAMES]


def define_tables(app: faust.App, *, partitions: int = 3) -> Tables:
    """Keys are strings, values JSON; every input topic is keyed by service with the same partition
    count, so a service's state lands in the changelog partition of its input partition."""
    schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")  # type: ignore[var-annotated]
    common: dict[str, Any] = {"default": None, "partitions": partitions, "schema": schema,
                              "extra_topic_configs": CHANGELOG_CONFIG}
    buckets = app.Table(TABLE_NAMES[0], help="Time-bucketed request / probe counts", **common)
    status = app.Table(TABLE_NAMES[1], help="Per-service window and detection state", **common)
    planned = app.Table(TABLE_NAMES[2], help="Maintenance windows from the notifier, per service", **common)
    return Tables(bucket_to_counts=buckets, service_to_status=status, service_to_maintenance=planned,
                  buckets=WriteBack(buckets), status=WriteBack(status), maintenance=WriteBack(planned))


async def compact_changelogs(client_kwargs: dict[str, Any], app_id: str) -> list[str]:
    """Set `CHANGELOG_CONFIG` on the changelogs that exist already (made by an older version, with the broker's
    defaults; Faust sets a topic's configs only when it creates it). Returns the topics set; a failure is logged,
    never raised (the worker counts without it, its restarts are only slower)."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from shared.kafka.admin import kafka_admin

    names = changelog_topics(app_id)
    try:
        async with kafka_admin(client_kwargs) as admin:
            existing = set(await admin.list_topics()) & set(names)
            if not existing:
                return []
            answers = await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t,
                                                                {"cleanup.policy": "compact", **CHANGELOG_CONFIG})
                                                 for t in sorted(existing)])
        refused = [f"{name}: {code} {message}" for answer in answers
                   for code, message, _type, name in answer.resources if code]
        if refused:
            log.warning("the broker refused to set the changelogs' compaction: %s", "; ".join(refused))
        return sorted(existing)
    except Exception:  # noqa: BLE001 - slower restarts, not a reason to stop
        log.warning("could not set the compaction of the changelogs %s", names, exc_info=True)
        return []
