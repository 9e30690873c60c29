"""The outbox relay: audit entries not yet published become FlagChanged + FlagSnapshot (a tombstone on
delete), in order, by one instance at a time, never inside a request. A change made while Kafka is down
is published when it is back; a row Kafka refuses for good is set aside with the reason (and alerted) so
it never blocks the rows after it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, cast

from services.flags.models import AuditEntry
from services.flags.ports import Outbox
from services.flags.state import FlagState
from shared.events import FlagChanged, FlagSnapshot
from shared.events.flags import FlagAction
from shared.ports import Publisher, RawPublisher
from shared.tracing_links import continued, current_traceparent

__all__ = ["OutboxRelay", "RelayStalled"]

logger = logging.getLogger(__name__)
_MAX_TRACES = 10_000
_NS = uuid.UUID("8f0d7a52-3c55-4a7e-9a51-5afe00f1a6a5")


class RelayStalled(RuntimeError):
    """Kafka is not accepting messages now (retriable): the relay backs off."""


class OutboxRelay:
    def __init__(self, *, outbox: Outbox, state: FlagState, publisher: Publisher | None, topic_prefix: str) -> None:
        self.outbox = outbox
        self.state = state
        self.publisher = publisher  # None until Kafka is connected (the app connects in the background)
        self.topic_prefix = topic_prefix
        self.failed = 0  # rows set aside since start
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._traces: dict[int, str] = {}  # outbox (audit) id -> traceparent of the change; lost on a restart

    def wake(self) -> None:
        self._wakeup.set()

    def remember_trace(self, entries: list[AuditEntry]) -> None:
        """The relay publishes these entries later, in its own task: it continues the change's trace."""
        parent = current_traceparent()
        if parent is None:
            return
        if len(self._traces) > _MAX_TRACES:  # entries set aside or published elsewhere: forget the oldest
            for audit_id in sorted(self._traces)[:len(self._traces) // 2]:
                del self._traces[audit_id]
        self._traces.update((e.id, parent) for e in entries)

    async def publish_pending(self) -> int:
        """Publish unpublished audit entries as FlagChanged + FlagSnapshot (tombstone on delete), in order."""
        if self.publisher is None:
            return 0
        async with self._lock:  # the relay loop and a fresh change must not publish one entry twice
            return await self._take_turn(self.publisher)

    async def run(self, *, interval_s: float = 2.0, max_backoff_s: float = 30.0) -> None:
        """Publishes after each change (woken) and every `interval_s`; backs off while Kafka is away."""
        backoff = interval_s
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that lands as the event is set
            # (e.g. Kafka connects while the app stops), and the relay would never stop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self.publish_pending()
                backoff = interval_s
                continue
            except RelayStalled:
                pass  # Kafka away: already marked down
            except Exception:  # noqa: BLE001 - e.g. Postgres away while marking: next round
                logger.warning("relay round failed", exc_info=True)
            backoff = min(max_backoff_s, backoff * 2)

    async def _take_turn(self, pub: Publisher) -> int:
        """One relay round, by one instance at a time (a Postgres advisory lock): no entry is published twice."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                mine = await stack.enter_async_context(self.outbox.relay_turn())
            except Exception as exc:  # noqa: BLE001 - Postgres down: nothing to relay now
                self.state.mark("postgres", False, exc)
                return 0
            if not mine:  # another instance is relaying now: look again shortly
                asyncio.get_running_loop().call_later(0.2, self._wakeup.set)
                return 0
            return await self._round(pub)
        raise AssertionError("unreachable")  # pragma: no cover - mypy: AsyncExitStack may swallow

    async def _round(self, pub: Publisher) -> int:
        try:
            pending = await self.outbox.unpublished(limit=200)
        except Exception as exc:  # noqa: BLE001 - Postgres down: nothing to relay now
            self.state.mark("postgres", False, exc)
            return 0
        done: list[int] = []
        try:
            await self._publish_all(pub, pending, done)
            self.state.mark("kafka", True)
        except Exception as exc:  # noqa: BLE001 - retried by the relay loop, with backoff
            self.state.mark("kafka", False, exc)
            raise RelayStalled(repr(exc)) from exc
        finally:
            if done:
                await self.outbox.mark_published(done)
                for audit_id in done:
                    self._traces.pop(audit_id, None)
        return len(done)

    async def _publish_all(self, pub: Publisher, pending: list[AuditEntry], done: list[int]) -> None:
        """Appends each published entry's id to `done`; a transient failure stops the round (raises)."""
        for e in pending:
            try:
                await self._publish_entry(pub, e)
            except Exception as exc:
                if not _permanent(exc):
                    raise
                await self._set_aside(e, exc)
                continue
            done.append(e.id)

    async def _publish_entry(self, pub: Publisher, e: AuditEntry) -> None:
        with continued(self._traces.get(e.id), "flags outbox relay", tracer=__name__, attributes={
                "safeguard.flag_key": e.flag_key, "safeguard.audit_id": e.id, "safeguard.action": e.action}):
            await pub.publish(_changed(e))
            if e.after is not None:
                await pub.publish(FlagSnapshot(id=uuid.uuid5(_NS, f"s{e.id}:{e.at.isoformat()}"),
                                               flag_key=e.flag_key, version=e.version,
                                               definition=_snapshot_definition(e.after)))
            elif isinstance(pub, RawPublisher):  # the delete's tombstone on the compacted flags.state
                await pub.publish_raw(self.topic_prefix + FlagSnapshot.topic, key=e.flag_key.encode(),
                                      value=None, headers=[])

    async def _set_aside(self, e: AuditEntry, exc: BaseException) -> None:
        """Kafka refused this row for good (e.g. too large): record why, alert, go on with the next rows."""
        reason = f"{type(exc).__name__}: {exc}"
        await self.outbox.mark_failed(e.id, reason)
        self.failed += 1
        logger.error("outbox entry %d (%s %s) cannot be published and was set aside: %s", e.id, e.action,
                     e.flag_key, reason, extra={"alert": "flags_outbox_failed", "audit_id": e.id})


_PERMANENT = {"MessageSizeTooLargeError", "RecordListTooLargeError", "InvalidRecordError", "CorruptRecordError",
              "ValidationError"}
_ACTIONS = {"created", "updated", "deleted", "enabled", "disabled", "killed", "rollout", "scheduled", "imported"}


def _permanent(exc: BaseException) -> bool:
    """This message can never be published (too large, unserialisable); anything else is transient."""
    return type(exc).__name__ in _PERMANENT or isinstance(exc, (ValueError, TypeError))


def _changed(e: AuditEntry) -> FlagChanged:
    return FlagChanged(id=uuid.uuid5(_NS, f"c{e.id}:{e.at.isoformat()}"), time=e.at, flag_key=e.flag_key,
                       action=cast(FlagAction, e.action if e.action in _ACTIONS else "updated"), actor=e.actor,
                       reason=e.reason, version=e.version, before=e.before, after=e.after)


def _snapshot_definition(after: dict[str, Any]) -> dict[str, Any]:
    """The flagd definition plus Safeguard's fields (offVariant, new, killed) for consumers of flags.state."""
    return {**after["definition"], "offVariant": after.get("off_variant"), "new": after.get("new", False),
            "killed": after.get("killed", False), "rolloutPercent": after.get("rollout_percent")}
