"""Changes to flags: each is one unit of work on the store that also writes its audit entry (the outbox row),
then lands in memory, SSE, the Redis copy and the other instances (`FlagState.publish_local`). When memory holds
the flag as stored, the unit of work is one statement (`_save_as_held`, `FlagStore.save_if_current`).

Fail-safe rules: turning a flag OFF never depends on Postgres or Kafka. When the store does not answer
within `store_timeout_s`, a kill or disable is applied in memory, pushed to SDKs, copied to Redis and
written to the `KillJournal` (fsynced), then reconciled into Postgres (audit + outbox) when it is back.
Turning a flag ON needs the store (refused with 503 while it is down).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from services.flags import rules
from services.flags.journal import KillJournal, PendingOff
from services.flags.models import (
    KEY_RE, AuditEntry, DefinitionError, FlagCreate, FlagRecord, FlagUpdate, ImportRequest, validate_definition,
)
from services.flags.outbox import OutboxRelay
from services.flags.ports import Change, FlagStore, Saved
from services.flags.state import FlagState, Unavailable
from shared.flags.evaluator import off_variant_of
from shared.flags.jsonlogic import LogicError, compile_rule, resolve_refs

__all__ = ["Changes", "Decide", "is_off"]

logger = logging.getLogger(__name__)
Decide = Callable[[FlagRecord | None], Change]  # a pure decision on the flag as stored (None: absent)


class Changes:
    def __init__(self, *, store: FlagStore, state: FlagState, relay: OutboxRelay, journal: KillJournal | None,
                 store_timeout_s: float) -> None:
        self.store = store
        self.state = state
        self.relay = relay
        self.journal = journal
        self.store_timeout_s = store_timeout_s

    # ---------------------------------------------------------------- one flag
    async def create(self, body: FlagCreate, *, actor: str) -> FlagRecord:
        return await self._one(body.key, lambda cur: Change("created", rules.create(cur, body)),
                               actor=actor, reason=body.reason)

    async def update(self, key: str, body: FlagUpdate, *, actor: str) -> FlagRecord:
        return await self._one(key, lambda cur: Change("updated", rules.update(cur, key, body)),
                               actor=actor, reason=body.reason)

    async def rollout(self, key: str, percent: float, *, actor: str, reason: str) -> FlagRecord:
        return await self._one(key, lambda cur: Change("rollout", rules.rollout(cur, key, percent)),
                               actor=actor, reason=reason)

    async def delete(self, key: str, *, actor: str, reason: str) -> None:
        def decide(cur: FlagRecord | None) -> Change:
            rules.delete(cur, key)
            return Change("deleted", None)
        await self._apply(key, decide, actor=actor, reason=reason)

    async def set_enabled(self, key: str, *, enabled: bool, actor: str, reason: str, kill: bool = False
                          ) -> FlagRecord:
        """On needs the store. Off (disable or kill) succeeds without it: see `_turn_off_without_store`."""
        action = "enabled" if enabled else ("killed" if kill else "disabled")
        try:
            return await self._one(
                key, lambda cur: Change(action, rules.set_enabled(cur, key, enabled=enabled, kill=kill)),
                actor=actor, reason=reason)
        except Unavailable:
            if enabled or self.journal is None:
                raise
            return await self._turn_off_without_store(key, kill=kill, actor=actor, reason=reason)

    async def _one(self, key: str, decide: Decide, *, actor: str, reason: str) -> FlagRecord:
        after = await self._apply(key, decide, actor=actor, reason=reason)
        assert after is not None
        return after

    async def _apply(self, key: str, decide: Decide, *, actor: str, reason: str) -> FlagRecord | None:
        async with self._store_call():
            saved = await self._save_as_held(key, decide, actor=actor, reason=reason)
            if saved is None:
                async with self.store.unit_of_work() as uow:
                    saved = await uow.flags.save(key, decide(await uow.flags.get(key)), actor=actor, reason=reason)
                    await uow.commit()
        after, entry = saved
        revision = after.revision if after else max(self.state.snapshot.revision + 1, await self._safe_revision())
        self.relay.remember_trace([entry])
        await self.state.publish_local(key, after, revision)
        self.relay.wake()
        return after

    async def _save_as_held(self, key: str, decide: Decide, *, actor: str, reason: str) -> Saved | None:
        """The change decided on the flag as memory holds it, saved in one statement if the store still holds that
        version (`save_if_current`): the kill's path, 1 round trip instead of 5. None, nothing written, when memory
        has no such flag, a turn-off of it waits in the journal, the change is a delete, or the decision refuses:
        the unit of work then decides on the stored row (and answers a refusal as always)."""
        held = self.state.get(key)
        if held is None or any(p.key == key for p in self.state.pending):
            return None
        try:
            change = decide(held)
        except Exception:  # noqa: BLE001 - decided again on the stored row, which raises it where it belongs
            return None
        if change.after is None:
            return None
        return await self.store.save_if_current(key, change, before=held, actor=actor, reason=reason)

    @asynccontextmanager
    async def _store_call(self) -> AsyncIterator[None]:
        """The store within `store_timeout_s`, else `Unavailable`; the change's own refusals pass through."""
        try:
            async with asyncio.timeout(self.store_timeout_s):
                yield
        except (rules.FlagNotFound, rules.Conflict, ValueError):
            raise
        except Exception as exc:
            self.state.mark("postgres", False, exc)
            raise Unavailable("the flag store (Postgres) is not available; changes are refused, evaluation goes on"
                              ) from exc
        self.state.mark("postgres", True)

    async def _safe_revision(self) -> int:
        try:
            return await self.store.revision()
        except Exception:  # noqa: BLE001 - only used to order a delete
            return 0

    # ---------------------------------------------------------------- every new flag
    async def kill_new(self, *, actor: str, reason: str) -> list[str]:
        """Kill every flag marked `new` that is on, in one transaction. Returns the keys killed."""
        try:
            async with self._store_call():
                done = await self._kill_new_in_store(actor=actor, reason=reason)
        except Unavailable:  # the store is down: kill what memory knows
            if self.journal is None:
                raise
            keys = [r.key for r in self.state.all() if r.new and r.definition.get("state") == "ENABLED"]
            for key in keys:
                await self._turn_off_without_store(key, kill=True, actor=actor, reason=reason)
            return keys
        self.relay.remember_trace([entry for _, entry in done])
        for after, _entry in done:
            assert after is not None
            await self.state.publish_local(after.key, after, after.revision)
        self.relay.wake()
        return [after.key for after, _ in done if after is not None]

    async def _kill_new_in_store(self, *, actor: str, reason: str) -> list[Saved]:
        async with self.store.unit_of_work() as uow:
            done = [await uow.flags.save(cur.key, Change("killed", rules.set_enabled(cur, cur.key, enabled=False,
                                                                                     kill=True)),
                                         actor=actor, reason=reason)
                    for cur in await uow.flags.new_and_on()]
            await uow.commit()
        return done

    # ---------------------------------------------------------------- without the store, and back
    async def _turn_off_without_store(self, key: str, *, kill: bool, actor: str, reason: str) -> FlagRecord:
        """Postgres is away: journal the turn-off (durable), apply it everywhere we can reach, reconcile later."""
        current = self.state.get(key)
        if current is None:
            raise rules.FlagNotFound(key)
        # the same rule as the online path: a flag without an off variant cannot be turned off (422)
        after = rules.set_enabled(current, key, enabled=False, kill=kill).model_copy(
            update={"version": current.version + 1, "revision": self.state.snapshot.revision + 1})
        entry = PendingOff.new(key, kill=kill, actor=actor, reason=reason)
        assert self.journal is not None
        try:
            await self.journal.record(entry)
        except OSError as exc:
            raise Unavailable(f"the flag store is down and the kill journal cannot be written: {exc}") from exc
        self.state.journaled(entry)  # once, though a reload may have read it while it was written
        logger.warning("flag %s turned off while the flag store is down: journaled, reconciled when it is back",
                       key, extra={"actor": actor, "kill": kill})
        await self.state.publish_local(key, after, after.revision)
        return after

    async def reconcile(self) -> int:
        """Replay journaled turn-offs into Postgres (audited as their original actor, outboxed). Returns how many
        (the caller reloads when any was)."""
        if self.journal is None:
            return 0
        since = self.state.journal_seq
        pending = await self.journal.pending()
        if not pending:
            self.state.journal_read([], since=since)
            return 0
        resolved: set[str] = set()
        for p in pending:
            if not await self._replay(p):
                break
            resolved.add(p.id)
        await self.journal.resolve(resolved)
        self.state.journal_read([p for p in pending if p.id not in resolved], since=since)
        if resolved:
            self.state.mark("postgres", True)
            logger.info("reconciled %d turn-off(s) made while the flag store was down", len(resolved))
            self.relay.wake()
        return len(resolved)

    async def _replay(self, p: PendingOff) -> bool:
        """One journaled turn-off into the store (nothing to do when the flag is already off or gone).
        False while the store is still down."""
        reason = f"{p.reason} (accepted at {p.at} while the flag store was down)"
        try:
            async with asyncio.timeout(self.store_timeout_s):
                async with self.store.unit_of_work() as uow:
                    cur = await uow.flags.get(p.key)
                    if cur is None or is_off(cur, kill=p.kill):
                        return True
                    change = Change("killed" if p.kill else "disabled",
                                    rules.set_enabled(cur, p.key, enabled=False, kill=p.kill))
                    await uow.flags.save(p.key, change, actor=p.actor, reason=reason)
                    await uow.commit()
        except Exception as exc:  # noqa: BLE001 - still down: try again next round
            self.state.mark("postgres", False, exc)
            return False
        return True

    # ---------------------------------------------------------------- a flagd file
    async def import_flags(self, req: ImportRequest, *, actor: str, reason: str, strict: bool) -> dict[str, Any]:
        """Create or replace each flag of a flagd file, as flagd would load it. `$ref`s are resolved at import;
        flag-set `metadata` is merged into each flag's (the flag's own keys win, as flagd evaluates it).
        The answer lists the flags that cannot be killed until they get an `offVariant` (flagd's answer is
        kept meanwhile) and the rules that cannot run (they evaluate to PARSE_ERROR, as in flagd).
        With `strict`, both are refused instead (422)."""
        prepared = [_prepare(key, raw, req, strict=strict) for key, raw in req.flags.items()]
        cannot_kill: list[str] = []
        for key, definition in prepared:
            def decide(cur: FlagRecord | None, key: str = key, definition: dict[str, Any] = definition) -> Change:
                base = cur or FlagRecord(key=key, definition=definition, new=False)
                return Change("imported", base.model_copy(update={
                    "definition": definition, "killed": False, "rollout_percent": None}))
            after = await self._apply(key, decide, actor=actor, reason=reason)
            if after is not None and off_variant_of(after.definition, after.off_variant) is None:
                cannot_kill.append(key)
        return {"imported": [k for k, _ in prepared], "cannot_kill": cannot_kill,
                "parse_errors": {k: err for k, d in prepared if (err := _rule_error(d.get("targeting")))}}

    async def audit(self, key: str | None, *, limit: int, before_id: int | None) -> list[AuditEntry]:
        return await self.state.guarded(self.store.audit(key, limit=limit, before_id=before_id))


def is_off(rec: FlagRecord, *, kill: bool) -> bool:
    return rec.definition.get("state") == "DISABLED" and (rec.killed or not kill)


def _prepare(key: str, raw: dict[str, Any], req: ImportRequest, *, strict: bool) -> tuple[str, dict[str, Any]]:
    """One flag of a flagd file as it will be stored; refused (422) when it is not valid."""
    definition = {k: v for k, v in resolve_refs(raw, req.evaluators).items()
                  if k in ("state", "variants", "defaultVariant", "targeting", "metadata")}
    definition.setdefault("state", "ENABLED")
    if req.metadata and isinstance(definition.get("metadata", {}), dict):
        definition["metadata"] = {**req.metadata, **definition.get("metadata", {})}
    key = valid_key(key)
    validate_definition(definition, None, strict=strict)
    return key, definition


def _rule_error(targeting: Any) -> str | None:
    if not targeting:
        return None
    try:
        compile_rule(targeting)
    except LogicError as exc:
        return str(exc)
    return None


def valid_key(key: str) -> str:
    if not KEY_RE.match(key):
        raise DefinitionError("flags", f"flag key {key!r} is not valid (letters, digits, _ . -; at most 128)")
    return key
