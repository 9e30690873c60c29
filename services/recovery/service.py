"""The core of recovery: trigger -> policy -> action, cooldowns, attempts, verification.

No framework imports: the publisher, the flags client, the audit store and the clocks are
ports, so unit tests drive it with fakes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from services.recovery.models import ActionRecord, RunRequest
from services.recovery.policy import RecoveryPolicy
from shared.events import (
    Command, DisableNewFeatures, OpenCircuitBreaker, RecoveryActionFailed, RecoveryActionStarted,
    RecoveryActionSucceeded, RestartConnectionPool, RestartProcess, TriggerCleared, TriggerFired,
)
from shared.kafka import Publisher

__all__ = ["RecoveryService", "FlagsClient", "AuditStore", "Episode"]

log = logging.getLogger(__name__)


class FlagsClient(Protocol):
    async def kill_new(self, *, reason: str) -> list[str]: ...


class AuditStore(Protocol):
    async def save(self, record: ActionRecord) -> None: ...
    async def recent(self, *, limit: int, service: str | None) -> list[ActionRecord]: ...


@dataclass
class Episode:
    """A trigger that fired and has not cleared yet."""

    service: str
    trigger: str
    episode_id: str
    instance: str | None
    reason: str
    attempts: int = 0


@dataclass
class _Pending:
    record: ActionRecord
    deadline: float


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RecoveryService:
    def __init__(self, *, policy: RecoveryPolicy, publisher: Publisher, flags: FlagsClient, audit: AuditStore,
                 clock: Callable[[], float], now: Callable[[], datetime] = _utcnow) -> None:
        self.policy = policy
        self.publisher = publisher
        self.flags = flags
        self.audit = audit
        self.clock = clock
        self.now = now
        self.episodes: dict[str, Episode] = {}
        self.pending: dict[str, _Pending] = {}
        self.last_action: dict[tuple[str, str], float] = {}

    async def recover_from_trigger(self, event: TriggerFired) -> ActionRecord | None:
        """Run the policy's action for a fired trigger, unless cooldown or max attempts forbid it.

        A trigger older than the verify window is history (a first start reading the topic from the
        beginning, a long outage): acting on it would restart healthy processes, so it is ignored."""
        age = (self.now() - event.time).total_seconds()
        if age > self.policy.verify_window:
            log.info("ignoring stale %s for %s (%.0fs old, episode %s)", event.trigger, event.service, age,
                     event.episode_id)
            return None
        reason = f"{event.trigger}: {event.value:g} > {event.threshold:g}" + (f" ({event.detail})" if event.detail else "")
        ep = self.episodes.setdefault(event.episode_id, Episode(
            service=event.service, trigger=event.trigger, episode_id=event.episode_id, instance=event.instance,
            reason=reason))
        rule = self.policy.rule(event.trigger)
        if rule.action == "none":
            log.info("no recovery action for %s (escalation only)", event.trigger)
            return None
        key = (event.service, event.trigger)
        last = self.last_action.get(key)
        if last is not None and self.clock() - last < self.policy.cooldown:
            return await self._skip(ep, rule.action, f"cooldown: last action {self.clock() - last:.0f}s ago "
                                                     f"(< {self.policy.cooldown:g}s)")
        return await self._act(ep, rule.action, actor="recovery")

    async def verify_cleared(self, event: TriggerCleared) -> list[ActionRecord]:
        """The episode ended: every action still waiting on it succeeded."""
        self.episodes.pop(event.episode_id, None)
        done = []
        for action_id, p in list(self.pending.items()):
            if p.record.episode_id == event.episode_id:
                del self.pending[action_id]
                done.append(await self._finish(p.record, ok=True, detail="trigger cleared"))
        return done

    async def check_timeouts(self) -> list[ActionRecord]:
        """Actions whose trigger did not clear within the verify window failed (the notifier escalates)."""
        now = self.clock()
        failed = []
        for action_id, p in list(self.pending.items()):
            if now >= p.deadline:
                del self.pending[action_id]
                failed.append(await self._finish(
                    p.record, ok=False, detail=f"trigger not cleared within {self.policy.verify_window:g}s"))
        return failed

    async def run(self, request: RunRequest, *, actor: str) -> list[ActionRecord]:
        """Operator one-shot: the named action, or the actions for the service's active triggers."""
        reason = request.reason or f"operator run by {actor}"
        if request.action is not None:
            ep = next((e for e in self.episodes.values()
                       if e.service == request.service and self.policy.rule(e.trigger).action == request.action), None)
            if ep is None:
                ep = Episode(service=request.service, trigger="", episode_id=f"manual-{uuid.uuid4().hex[:12]}",
                             instance=request.instance, reason=reason)
            return [await self._act(ep, request.action, actor=actor, reason=reason)]
        out = []
        for ep in [e for e in self.episodes.values() if e.service == request.service]:
            action = self.policy.rule(ep.trigger).action
            if action != "none":
                out.append(await self._act(ep, action, actor=actor, reason=reason))
        return out

    def active(self, service: str | None = None) -> list[Episode]:
        return [e for e in self.episodes.values() if service is None or e.service == service]

    async def _act(self, ep: Episode, action: str, *, actor: str, reason: str | None = None) -> ActionRecord:
        if ep.attempts >= self.policy.max_attempts:
            return await self._skip(ep, action, f"max attempts reached ({self.policy.max_attempts}) for the episode",
                                    actor=actor)
        ep.attempts += 1
        if ep.trigger:
            self.last_action[(ep.service, ep.trigger)] = self.clock()
        rec = ActionRecord(action_id=uuid.uuid4().hex, service=ep.service, action=action, trigger=ep.trigger or None,
                           episode_id=ep.episode_id, instance=ep.instance, attempt=ep.attempts, actor=actor,
                           reason=reason or ep.reason, status="started", started_at=self.now())
        await self.audit.save(rec)
        await self.publisher.publish(RecoveryActionStarted(**self._fields(rec)))
        try:
            detail = await self._execute(rec)
        except Exception as exc:  # noqa: BLE001 - a failed action is a result, reported and escalated
            log.warning("recovery action %s failed", action, exc_info=True)
            return await self._finish(rec, ok=False, detail=f"{type(exc).__name__}: {exc}"[:500])
        rec = rec.model_copy(update={"detail": detail})
        if not ep.trigger:  # nothing to wait for: an operator's action with no active trigger
            return await self._finish(rec, ok=True, detail=detail + "; no active trigger to verify")
        self.pending[rec.action_id] = _Pending(rec, self.clock() + self.policy.verify_window)
        await self.audit.save(rec)
        return rec

    async def _execute(self, rec: ActionRecord) -> str:
        rule = self.policy.rule(rec.trigger or "")
        common = {"service": rec.service, "reason": rec.reason, "episode_id": rec.episode_id}
        cmd: Command
        detail = ""
        if rec.action == "disable_new_features":
            killed = await self.flags.kill_new(reason=f"recovery: {rec.reason}")
            detail = f"killed flags: {', '.join(killed) or 'none on'}; "
            cmd = DisableNewFeatures(**common)
        elif rec.action == "open_circuit_breaker":
            cmd = OpenCircuitBreaker(**common, breaker=rule.breaker, duration_seconds=rule.duration)
        elif rec.action == "restart_process":
            cmd = RestartProcess(**common, instance=rec.instance)
        elif rec.action == "restart_connection_pool":
            cmd = RestartConnectionPool(**common, pool=rule.pool, instance=rec.instance)
        else:
            raise ValueError(f"unknown action {rec.action!r}")
        await self.publisher.publish(cmd)
        return detail + f"sent {type(cmd).__name__}" + (f" to {rec.instance}" if cmd.instance else "")

    async def _skip(self, ep: Episode, action: str, why: str, *, actor: str = "recovery") -> ActionRecord:
        log.info("recovery skipped %s for %s/%s: %s", action, ep.service, ep.trigger, why)
        rec = ActionRecord(action_id=uuid.uuid4().hex, service=ep.service, action=action, trigger=ep.trigger or None,
                           episode_id=ep.episode_id, instance=ep.instance, attempt=ep.attempts, actor=actor,
                           reason=ep.reason, status="skipped", detail=why, started_at=self.now(),
                           finished_at=self.now())
        await self.audit.save(rec)
        return rec

    async def _finish(self, rec: ActionRecord, *, ok: bool, detail: str) -> ActionRecord:
        rec = rec.model_copy(update={"status": "succeeded" if ok else "failed", "finished_at": self.now(),
                                     "detail": (rec.detail + "; " + detail) if rec.detail else detail})
        await self.audit.save(rec)
        cls = RecoveryActionSucceeded if ok else RecoveryActionFailed
        await self.publisher.publish(cls(**self._fields(rec)))
        return rec

    def _fields(self, rec: ActionRecord) -> dict[str, object]:
        return {"service": rec.service, "action_id": rec.action_id, "action": rec.action, "trigger": rec.trigger,
                "episode_id": rec.episode_id, "attempt": rec.attempt, "detail": rec.detail}
