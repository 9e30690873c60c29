"""The core of the flags service: changes (audited, outboxed), evaluation from memory, refresh and fallbacks.

Reads and evaluations come from the in-memory `Snapshot`, never from the network. The snapshot is
loaded from Postgres (else from the Redis copy), and refreshed when the revision in Redis (else in
Postgres) moves. Every change is one Postgres transaction that also writes the audit entry; the
audit log doubles as the Kafka outbox (`published`), so a change made while Kafka is down is
published when it is back (by a relay task: never inside a request).

Fail-safe rules: turning a flag OFF never depends on Postgres or Kafka. When the store does not answer
within `store_timeout_s`, a kill or disable is applied in memory, pushed to SDKs, copied to Redis and
written to the `KillJournal` (fsynced), then reconciled into Postgres (audit + outbox) when it is back.
Turning a flag ON needs the store (refused with 503 while it is down). An outbox row Kafka refuses
for good is set aside with the reason (and alerted) so it never blocks the rows after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from services.flags import rules
from services.flags.cache import FlagCache
from services.flags.journal import KillJournal, PendingOff
from services.flags.models import (
    KEY_RE, AuditEntry, DefinitionError, FlagCreate, FlagRecord, FlagUpdate, ImportRequest, ScheduleCreate, ScheduleRead, validate_definition,
)
from services.flags.repository import Change, Repository
from services.flags.snapshot import Broadcaster, Snapshot
from shared.flags.evaluator import Resolution, evaluate, off_variant_of
from shared.flags.jsonlogic import LogicError, compile_rule, resolve_refs
from shared.events import FlagChanged, FlagSnapshot
from shared.events.flags import FlagAction
from shared.kafka import Publisher
from shared.tracing_links import continued, current_traceparent

__all__ = ["FlagService", "Unavailable", "EventSink"]

logger = logging.getLogger(__name__)
_MAX_TRACES = 10_000
_NS = uuid.UUID("8f0d7a52-3c55-4a7e-9a51-5afe00f1a6a5")


class Unavailable(RuntimeError):
    """Postgres is down: changes cannot be made (evaluation still answers)."""


class EventSink(Protocol):
    """Where change events go (a KafkaPublisher, or InMemoryPublisher in tests). Tombstones need publish_raw."""

    async def publish(self, event: Any, *, topic: str | None = None) -> None: ...


class FlagService:
    def __init__(self, *, repo: Repository, cache: FlagCache | None, publisher: Publisher | None = None,
                 topic_prefix: str = "", clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 journal: KillJournal | None = None, store_timeout_s: float = 2.0) -> None:
        self.repo = repo
        self.cache = cache
        self.publisher = publisher
        self.topic_prefix = topic_prefix
        self.clock = clock
        self.snapshot = Snapshot()
        self.broadcaster = Broadcaster()
        self.status: dict[str, str] = {"postgres": "unknown", "redis": "unknown" if cache else "absent",
                                       "kafka": "unknown" if publisher is None else "up"}
        self.loaded_from = "nothing"
        self._relay_lock = asyncio.Lock()
        self._relay_wakeup = asyncio.Event()
        self._traces: dict[int, str] = {}  # outbox (audit) id -> traceparent of the change; lost on a restart
        self.journal = journal
        self.store_timeout_s = store_timeout_s
        self.pending: list[PendingOff] = []
        self.outbox_failed = 0
        self.peers_subscribed = False  # following the other instances' changes (services/flags/peers.py)
        self.peer_changes = 0
        self.changes_applied = 0  # local and peer changes applied to the snapshot: a load racing one is dropped

    @property
    def ready(self) -> bool:
        """Flags are loaded (Postgres or the Redis copy): answers are real, not an empty snapshot."""
        return self.snapshot.loaded

    # ---------------------------------------------------------------- loading and refresh
    def _mark(self, name: str, ok: bool, exc: BaseException | None = None) -> None:
        new = "up" if ok else "down"
        if self.status.get(name) != new:
            (logger.info if ok else logger.warning)("%s is %s", name, new, extra={"error": repr(exc) if exc else None})
        self.status[name] = new

    async def load(self) -> None:
        """Full load: Postgres first (and refill Redis), else the Redis copy, else keep what we have."""
        seen = self.changes_applied
        if self.journal is not None:
            self.pending = await self.journal.pending()
        try:
            records, revision = await self.repo.load_all(), await self.repo.revision()
            self._mark("postgres", True)
            if self.changes_applied != seen:  # read before a change applied meanwhile: it would undo it
                self._reload_soon()
                return
            self._replace(records, revision, "postgres")
            if self.cache is not None:
                try:
                    await self.cache.replace_all(records, revision)
                    self._mark("redis", True)
                except Exception as exc:  # noqa: BLE001 - cache is optional
                    self._mark("redis", False, exc)
            return
        except Exception as exc:  # noqa: BLE001 - fall back to the cache
            self._mark("postgres", False, exc)
        if self.cache is None:
            return
        try:
            records, revision = await self.cache.load_all()
            self._mark("redis", True)
            if self.changes_applied != seen:
                self._reload_soon()
                return
            if not self.snapshot.loaded or revision >= self.snapshot.revision:
                self._replace(records, revision, "redis")
        except Exception as exc:  # noqa: BLE001 - keep serving the last snapshot
            self._mark("redis", False, exc)

    def _reload_soon(self) -> None:
        """A load that raced a change is dropped (applying it, or refilling Redis with it, would undo a kill);
        the next refresh loads again, now that the change is in the store."""
        logger.info("flags load dropped: a change was applied while it read; loading again on the next refresh")
        self.loaded_from = "stale"

    def _replace(self, records: list[FlagRecord], revision: int, source: str) -> None:
        records = self._overlay(records)
        revision = max(revision, self.snapshot.revision) if self.pending else revision
        for key in self.snapshot.replace_all(records, revision):
            entry = self.snapshot.get(key)
            self._broadcast(key, entry.record if entry else None)
        self.loaded_from = source

    def _overlay(self, records: list[FlagRecord]) -> list[FlagRecord]:
        """Turn-offs not yet reconciled into the store win over what the store (or Redis) says."""
        if not self.pending:
            return records
        by_key = {r.key: r for r in records}
        for p in self.pending:
            rec = by_key.get(p.key)
            if rec is not None and not _is_off(rec, kill=p.kill):
                current = self.snapshot.get(p.key)
                version = max(rec.version, current.record.version if current else 0)
                try:
                    off = rules.set_enabled(rec, p.key, enabled=False, kill=p.kill)
                except DefinitionError:  # its off variant was removed since: nothing to serve as off
                    continue
                by_key[p.key] = off.model_copy(update={"version": version})
        return list(by_key.values())

    async def refresh(self) -> None:
        """Cheap check of the shared revision (Redis, else Postgres); reload when another instance changed flags."""
        revision: int | None = None
        if self.cache is not None:
            try:
                revision = await self.cache.revision()
                self._mark("redis", True)
            except Exception as exc:  # noqa: BLE001
                self._mark("redis", False, exc)
        if revision is None or self.status["postgres"] != "up" or self.loaded_from != "postgres":
            try:
                revision = await self.repo.revision()
                self._mark("postgres", True)
            except Exception as exc:  # noqa: BLE001
                self._mark("postgres", False, exc)
        if revision is not None and (revision != self.snapshot.revision or self.loaded_from != "postgres"):
            await self.load()

    # ---------------------------------------------------------------- evaluation (memory only)
    def evaluate(self, key: str, context: Mapping[str, Any]) -> Resolution | None:
        entry = self.snapshot.get(key)
        return evaluate(entry.compiled, context) if entry else None

    def evaluate_all(self, context: Mapping[str, Any]) -> list[tuple[str, Resolution]]:
        return [(k, evaluate(e.compiled, context)) for k, e in sorted(self.snapshot.entries.items())]

    def get(self, key: str) -> FlagRecord | None:
        entry = self.snapshot.get(key)
        return entry.record if entry else None

    def all(self) -> list[FlagRecord]:
        return [e.record for _, e in sorted(self.snapshot.entries.items())]

    # ---------------------------------------------------------------- changes
    async def _commit(self, key: str, mutate: Callable[[FlagRecord | None], Change], *, actor: str,
                      reason: str) -> tuple[FlagRecord | None, AuditEntry]:
        try:
            _before, after, entry = await asyncio.wait_for(self.repo.change(key, mutate, actor=actor, reason=reason),
                                                           self.store_timeout_s)
        except (rules.FlagNotFound, rules.Conflict, ValueError):
            raise
        except Exception as exc:
            self._mark("postgres", False, exc)
            raise Unavailable("the flag store (Postgres) is not available; changes are refused, evaluation goes on"
                              ) from exc
        self._mark("postgres", True)
        revision = after.revision if after else max(self.snapshot.revision + 1, await self._safe_revision())
        self._remember_trace([entry])
        await self._publish_local(key, after, revision)
        self._relay_wakeup.set()
        return after, entry

    async def _publish_local(self, key: str, after: FlagRecord | None, revision: int) -> None:
        """Memory, SSE subscribers, then the Redis copy and the other instances (best effort, one round trip)."""
        prev = self.snapshot.revision
        self.changes_applied += 1
        self.snapshot.apply(key, after)
        self.snapshot.revision = max(self.snapshot.revision, revision)
        self._broadcast(key, after)
        if self.cache is not None:
            try:
                await self.cache.put(after, key, self.snapshot.revision, prev=prev)
                self._mark("redis", True)
            except Exception as exc:  # noqa: BLE001 - the refresher heals the cache later
                self._mark("redis", False, exc)

    async def _safe_revision(self) -> int:
        try:
            return await self.repo.revision()
        except Exception:  # noqa: BLE001 - only used to order a delete
            return 0

    def apply_peer(self, raw: bytes | str) -> bool:
        """A change another instance made (Redis pub/sub): apply it if newer, push it to our subscribers.
        Returns True when a change was missed before it (the caller reloads)."""
        try:
            msg = json.loads(raw)
            record = FlagRecord.model_validate(msg["record"]) if msg["record"] is not None else None
            key, revision, prev = str(msg["key"]), int(msg["revision"]), int(msg.get("prev", 0))
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring an unreadable peer change message")
            return False
        if self.cache is not None and msg.get("origin") == self.cache.origin:
            return False
        missed = prev > self.snapshot.revision
        if self.snapshot.apply_newer(key, record, revision):
            self.changes_applied += 1
            self.peer_changes += 1
            self._broadcast(key, record)
        return missed

    def _broadcast(self, key: str, record: FlagRecord | None) -> None:
        self.broadcaster.publish({"type": "flag", "key": key, "revision": self.snapshot.revision,
                                  "flag": record.client_view() if record else None})

    async def create(self, body: FlagCreate, *, actor: str) -> FlagRecord:
        after, _ = await self._commit(body.key, lambda cur: Change("created", rules.create(cur, body)),
                                      actor=actor, reason=body.reason)
        assert after is not None
        return after

    async def update(self, key: str, body: FlagUpdate, *, actor: str) -> FlagRecord:
        after, _ = await self._commit(key, lambda cur: Change("updated", rules.update(cur, key, body)),
                                      actor=actor, reason=body.reason)
        assert after is not None
        return after

    async def set_enabled(self, key: str, *, enabled: bool, actor: str, reason: str, kill: bool = False
                          ) -> FlagRecord:
        """On needs the store. Off (disable or kill) succeeds without it: see `_turn_off_without_store`."""
        action = "enabled" if enabled else ("killed" if kill else "disabled")
        try:
            after, _ = await self._commit(
                key, lambda cur: Change(action, rules.set_enabled(cur, key, enabled=enabled, kill=kill)),
                actor=actor, reason=reason)
        except Unavailable:
            if enabled or self.journal is None:
                raise
            return await self._turn_off_without_store(key, kill=kill, actor=actor, reason=reason)
        assert after is not None
        return after

    async def kill_new(self, *, actor: str, reason: str) -> list[str]:
        """Kill every flag marked `new` that is on, in one transaction. Returns the keys killed."""
        mutate = _kill_mutation
        try:
            done = await asyncio.wait_for(self.repo.kill_new(mutate, actor=actor, reason=reason), self.store_timeout_s)
        except (rules.FlagNotFound, ValueError):
            raise
        except Exception as exc:  # noqa: BLE001 - the store is down: kill what memory knows
            self._mark("postgres", False, exc)
            if self.journal is None:
                raise Unavailable("the flag store (Postgres) is not available") from exc
            keys = [r.key for r in self.all() if r.new and r.definition.get("state") == "ENABLED"]
            for key in keys:
                await self._turn_off_without_store(key, kill=True, actor=actor, reason=reason)
            return keys
        self._mark("postgres", True)
        self._remember_trace([entry for _, entry in done])
        for after, _entry in done:
            await self._publish_local(after.key, after, after.revision)
        self._relay_wakeup.set()
        return [after.key for after, _ in done]

    async def _turn_off_without_store(self, key: str, *, kill: bool, actor: str, reason: str) -> FlagRecord:
        """Postgres is away: journal the turn-off (durable), apply it everywhere we can reach, reconcile later."""
        current = self.get(key)
        if current is None:
            raise rules.FlagNotFound(key)
        # the same rule as the online path: a flag without an off variant cannot be turned off (422)
        after = rules.set_enabled(current, key, enabled=False, kill=kill).model_copy(
            update={"version": current.version + 1, "revision": self.snapshot.revision + 1})
        entry = PendingOff.new(key, kill=kill, actor=actor, reason=reason)
        assert self.journal is not None
        try:
            await self.journal.record(entry)
        except OSError as exc:
            raise Unavailable(f"the flag store is down and the kill journal cannot be written: {exc}") from exc
        self.pending.append(entry)
        logger.warning("flag %s turned off while the flag store is down: journaled, reconciled when it is back",
                       key, extra={"actor": actor, "kill": kill})
        await self._publish_local(key, after, after.revision)
        return after

    async def reconcile(self) -> int:
        """Replay journaled turn-offs into Postgres (audited as their original actor, outboxed). Returns how many."""
        if self.journal is None:
            return 0
        pending = await self.journal.pending()
        if not pending:
            self.pending = []
            return 0
        resolved: set[str] = set()
        for p in pending:
            reason = f"{p.reason} (accepted at {p.at} while the flag store was down)"
            try:
                await asyncio.wait_for(self.repo.change(p.key, _off_mutation(p.key, kill=p.kill), actor=p.actor,
                                                        reason=reason), self.store_timeout_s)
            except (_AlreadyOff, rules.FlagNotFound):
                pass
            except Exception as exc:  # noqa: BLE001 - still down: try again next round
                self._mark("postgres", False, exc)
                break
            resolved.add(p.id)
        await self.journal.resolve(resolved)
        self.pending = [p for p in pending if p.id not in resolved]
        if resolved:
            self._mark("postgres", True)
            logger.info("reconciled %d turn-off(s) made while the flag store was down", len(resolved))
            self._relay_wakeup.set()
            await self.load()
        return len(resolved)

    async def rollout(self, key: str, percent: float, *, actor: str, reason: str) -> FlagRecord:
        after, _ = await self._commit(key, lambda cur: Change("rollout", rules.rollout(cur, key, percent)),
                                      actor=actor, reason=reason)
        assert after is not None
        return after

    async def delete(self, key: str, *, actor: str, reason: str) -> None:
        def mutate(cur: FlagRecord | None) -> Change:
            rules.delete(cur, key)
            return Change("deleted", None)
        await self._commit(key, mutate, actor=actor, reason=reason)

    async def import_flags(self, req: ImportRequest, *, actor: str, reason: str, strict: bool) -> dict[str, Any]:
        """Create or replace each flag of a flagd file, as flagd would load it. `$ref`s are resolved at import;
        flag-set `metadata` is merged into each flag's (the flag's own keys win, as flagd evaluates it).
        The answer lists the flags that cannot be killed until they get an `offVariant` (flagd's answer is
        kept meanwhile) and the rules that cannot run (they evaluate to PARSE_ERROR, as in flagd).
        With `strict`, both are refused instead (422)."""
        prepared = []
        for key, raw in req.flags.items():
            definition = {k: v for k, v in resolve_refs(raw, req.evaluators).items()
                          if k in ("state", "variants", "defaultVariant", "targeting", "metadata")}
            definition.setdefault("state", "ENABLED")
            if req.metadata and isinstance(definition.get("metadata", {}), dict):
                definition["metadata"] = {**req.metadata, **definition.get("metadata", {})}
            rules_key_ok = rules_key(key)
            validate_definition(definition, None, strict=strict)
            prepared.append((rules_key_ok, definition))
        cannot_kill: list[str] = []
        for key, definition in prepared:
            def mutate(cur: FlagRecord | None, key: str = key, definition: dict[str, Any] = definition) -> Change:
                base = cur or FlagRecord(key=key, definition=definition, new=False)
                return Change("imported", base.model_copy(update={
                    "definition": definition, "killed": False, "rollout_percent": None}))
            after, _ = await self._commit(key, mutate, actor=actor, reason=reason)
            if after is not None and off_variant_of(after.definition, after.off_variant) is None:
                cannot_kill.append(key)
        return {"imported": [k for k, _ in prepared], "cannot_kill": cannot_kill,
                "parse_errors": {k: err for k, d in prepared if (err := _rule_error(d.get("targeting")))}}

    def export(self, *, serve_off: bool = False) -> dict[str, Any]:
        """A flagd flag file. `serve_off`: write killed/off flags as ENABLED with their off variant as the
        static default, so a plain flagd serves the off value too (flagd's DISABLED serves the code default)."""
        flags: dict[str, Any] = {}
        for rec in self.all():
            d = dict(rec.definition)
            entry = self.snapshot.get(rec.key)
            off = entry.compiled.off_variant if entry else None
            if serve_off and d["state"] == "DISABLED" and off is not None:
                d = {"state": "ENABLED", "variants": d["variants"], "defaultVariant": off,
                     **({"metadata": d["metadata"]} if d.get("metadata") else {})}
            flags[rec.key] = d
        return {"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": flags}

    # ---------------------------------------------------------------- audit, schedule
    async def audit(self, key: str | None, *, limit: int, before_id: int | None) -> list[AuditEntry]:
        return await self._pg(self.repo.audit(key, limit=limit, before_id=before_id))

    async def schedule(self, key: str, body: ScheduleCreate, *, actor: str) -> ScheduleRead:
        if self.get(key) is None:
            raise rules.FlagNotFound(key)
        return await self._pg(self.repo.add_schedule(key, action=body.action, percent=body.percent, run_at=body.at,
                                                     reason=body.reason, requested_by=actor))

    async def schedules(self, key: str | None) -> list[ScheduleRead]:
        return await self._pg(self.repo.schedules(key))

    async def cancel_schedule(self, key: str, schedule_id: int) -> bool:
        return await self._pg(self.repo.cancel_schedule(key, schedule_id))

    async def run_due(self) -> int:
        """Apply scheduled changes whose time has come. Each is audited as done by `scheduler`."""
        due = await self.repo.due_schedules(self.clock())
        for s in due:
            actor = f"scheduler:{s.requested_by}"
            reason = s.reason or f"scheduled change #{s.id}"
            try:
                if s.action == "rollout":
                    assert s.percent is not None
                    await self.rollout(s.flag_key, s.percent, actor=actor, reason=reason)
                else:
                    await self.set_enabled(s.flag_key, enabled=s.action == "enable", actor=actor, reason=reason,
                                           kill=s.action == "kill")
                await self.repo.finish_schedule(s.id, status="done", error=None)
            except (rules.FlagNotFound, ValueError) as exc:
                await self.repo.finish_schedule(s.id, status="failed", error=str(exc))
        return len(due)

    async def _pg(self, aw: Any) -> Any:
        try:
            result = await aw
        except Exception as exc:
            self._mark("postgres", False, exc)
            raise Unavailable("the flag store (Postgres) is not available") from exc
        self._mark("postgres", True)
        return result

    # ---------------------------------------------------------------- outbox -> Kafka
    async def publish_pending(self) -> int:
        """Publish unpublished audit entries as FlagChanged + FlagSnapshot (tombstone on delete), in order."""
        if self.publisher is None:
            return 0
        async with self._relay_lock:  # the relay loop and a fresh change must not publish one entry twice
            return await self._relay(self.publisher)

    async def _relay(self, pub: Any) -> int:
        """One relay round, by one instance at a time (a Postgres advisory lock): no entry is published twice."""
        turn = getattr(self.repo, "relay_turn", None)
        if turn is None:
            return await self._relay_round(pub)
        async with contextlib.AsyncExitStack() as stack:
            try:
                mine = await stack.enter_async_context(turn())
            except Exception as exc:  # noqa: BLE001 - Postgres down: nothing to relay now
                self._mark("postgres", False, exc)
                return 0
            if not mine:  # another instance is relaying now: look again shortly
                asyncio.get_running_loop().call_later(0.2, self._relay_wakeup.set)
                return 0
            return await self._relay_round(pub)
        raise AssertionError("unreachable")  # pragma: no cover - mypy: AsyncExitStack may swallow

    async def _relay_round(self, pub: Any) -> int:
        try:
            pending = await self.repo.unpublished(limit=200)
        except Exception as exc:  # noqa: BLE001 - Postgres down: nothing to relay now
            self._mark("postgres", False, exc)
            return 0
        done: list[int] = []
        try:
            for e in pending:
                try:
                    await self._publish_entry(pub, e)
                except Exception as exc:
                    if not _permanent(exc):
                        raise
                    await self._set_aside(e, exc)
                    continue
                done.append(e.id)
            self._mark("kafka", True)
        except Exception as exc:  # noqa: BLE001 - retried by the relay loop, with backoff
            self._mark("kafka", False, exc)
            raise RelayStalled(repr(exc)) from exc
        finally:
            if done:
                await self.repo.mark_published(done)
                for audit_id in done:
                    self._traces.pop(audit_id, None)
        return len(done)

    def _remember_trace(self, entries: list[AuditEntry]) -> None:
        """The relay publishes these entries later, in its own task: it continues the change's trace."""
        parent = current_traceparent()
        if parent is None:
            return
        if len(self._traces) > _MAX_TRACES:  # entries set aside or published elsewhere: forget the oldest
            for audit_id in sorted(self._traces)[:len(self._traces) // 2]:
                del self._traces[audit_id]
        self._traces.update((e.id, parent) for e in entries)

    async def _publish_entry(self, pub: Any, e: AuditEntry) -> None:
        with continued(self._traces.get(e.id), "flags outbox relay", tracer=__name__, attributes={
                "safeguard.flag_key": e.flag_key, "safeguard.audit_id": e.id, "safeguard.action": e.action}):
            await self._publish_entry_events(pub, e)

    async def _publish_entry_events(self, pub: Any, e: AuditEntry) -> None:
        await pub.publish(_changed(e))
        if e.after is not None:
            await pub.publish(FlagSnapshot(id=uuid.uuid5(_NS, f"s{e.id}:{e.at.isoformat()}"),
                                           flag_key=e.flag_key, version=e.version,
                                           definition=_snapshot_definition(e.after)))
        elif hasattr(pub, "publish_raw"):
            await pub.publish_raw(self.topic_prefix + FlagSnapshot.topic, key=e.flag_key.encode(),
                                  value=None, headers=[])

    async def _set_aside(self, e: AuditEntry, exc: BaseException) -> None:
        """Kafka refused this row for good (e.g. too large): record why, alert, go on with the next rows."""
        reason = f"{type(exc).__name__}: {exc}"
        await self.repo.mark_failed(e.id, reason)
        self.outbox_failed += 1
        logger.error("outbox entry %d (%s %s) cannot be published and was set aside: %s", e.id, e.action,
                     e.flag_key, reason, extra={"alert": "flags_outbox_failed", "audit_id": e.id})

    def wake_relay(self) -> None:
        self._relay_wakeup.set()

    async def run_relay(self, *, interval_s: float = 2.0, max_backoff_s: float = 30.0) -> None:
        """The outbox relay: publishes after each change (woken) and every `interval_s`; backs off while Kafka is away."""
        backoff = interval_s
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that lands as the event is set
            # (e.g. Kafka connects while the app stops), and the relay would never stop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._relay_wakeup.wait()
            self._relay_wakeup.clear()
            try:
                await self.publish_pending()
                backoff = interval_s
                continue
            except RelayStalled:
                pass  # Kafka away: already marked down
            except Exception:  # noqa: BLE001 - e.g. Postgres away while marking: next round
                logger.warning("relay round failed", exc_info=True)
            backoff = min(max_backoff_s, backoff * 2)


class RelayStalled(RuntimeError):
    """Kafka is not accepting messages now (retriable): the relay backs off."""


class _AlreadyOff(Exception):
    pass


_PERMANENT = {"MessageSizeTooLargeError", "RecordListTooLargeError", "InvalidRecordError", "CorruptRecordError",
              "ValidationError"}


def _permanent(exc: BaseException) -> bool:
    """This message can never be published (too large, unserialisable); anything else is transient."""
    return type(exc).__name__ in _PERMANENT or isinstance(exc, (ValueError, TypeError))


def _is_off(rec: FlagRecord, *, kill: bool) -> bool:
    return rec.definition.get("state") == "DISABLED" and (rec.killed or not kill)


def _off_mutation(key: str, *, kill: bool) -> Callable[[FlagRecord | None], Change]:
    def mutate(cur: FlagRecord | None) -> Change:
        if cur is not None and _is_off(cur, kill=kill):
            raise _AlreadyOff(key)
        return Change("killed" if kill else "disabled", rules.set_enabled(cur, key, enabled=False, kill=kill))
    return mutate


def _kill_mutation(cur: FlagRecord | None) -> Change:
    assert cur is not None
    return Change("killed", rules.set_enabled(cur, cur.key, enabled=False, kill=True))


def _changed(e: AuditEntry) -> FlagChanged:
    return FlagChanged(id=uuid.uuid5(_NS, f"c{e.id}:{e.at.isoformat()}"), time=e.at, flag_key=e.flag_key,
                       action=cast(FlagAction, e.action if e.action in _ACTIONS else "updated"), actor=e.actor, reason=e.reason,
                       version=e.version, before=e.before, after=e.after)


_ACTIONS = {"created", "updated", "deleted", "enabled", "disabled", "killed", "rollout", "scheduled", "imported"}


def _snapshot_definition(after: dict[str, Any]) -> dict[str, Any]:
    """The flagd definition plus Safeguard's fields (offVariant, new, killed) for consumers of flags.state."""
    return {**after["definition"], "offVariant": after.get("off_variant"), "new": after.get("new", False),
            "killed": after.get("killed", False), "rolloutPercent": after.get("rollout_percent")}


def _rule_error(targeting: Any) -> str | None:
    if not targeting:
        return None
    try:
        compile_rule(targeting)
    except LogicError as exc:
        return str(exc)
    return None


def rules_key(key: str) -> str:
    if not KEY_RE.match(key):
        raise DefinitionError("flags", f"flag key {key!r} is not valid (letters, digits, _ . -; at most 128)")
    return key
