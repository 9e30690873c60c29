"""The core of recovery: trigger -> policy -> action, cooldowns, attempts, verification.

No framework imports: the publisher, the flags client, the store and the clock are ports, so unit
tests drive it with fakes.

Everything recovery remembers lives in the store (Postgres), and is written before it counts:
an action is first *claimed* (a row with a lease, under a per-(service, trigger) lock, so two
instances never both act on one trigger), then announced and executed, then *settled* (pending
verification). When Kafka refuses an event on the way, the claim is released and the error
raised, so the consumer's retry acts fully instead of meeting its own cooldown.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from opentelemetry import trace

from services.recovery.effects import ActionView, Outcome
from services.recovery.executors import ExecutorError
from services.recovery.models import ActionRecord, Episode, History, RunRequest
from services.recovery.operator import Operator
from services.recovery.pause import MemoryPauseStore, PauseStore, pause_reason
from services.recovery.policy import ActionRule, RecoveryPolicy
from services.recovery.ports import AuditStore, FlagsClient
from services.recovery.slow_dependency import NO_SLOW_DEPENDENCY, choose_breaker, forced_open, reports_dependencies
from shared.events import (
    Command, DisableNewFeatures, OpenCircuitBreaker, RecoveryActionFailed, RecoveryActionStarted,
    RecoveryActionSucceeded, RecoveryActionVerified, RestartConnectionPool, RestartProcess, TriggerCleared,
    TriggerFired,
)
from shared.humanize import describe_trigger
from shared.ports import Clock, Publisher

__all__ = ["RecoveryService", "Episode", "ClaimBusy", "RESUMED"]

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)


RESUMED = "recovery:resumed"  # the actor of an action taken after a resume on an episode skipped while paused


class ClaimBusy(RuntimeError):
    """Another instance is still executing this episode's action (the consumer retries later)."""


class _ActionError(RuntimeError):
    """The action itself failed (flags API down, ...): a result, reported and escalated."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RecoveryService:
    def __init__(self, *, policy: RecoveryPolicy, publisher: Publisher, flags: FlagsClient, audit: AuditStore,
                 now: Clock = _utcnow, lease_s: float = 60.0, busy_poll_s: float = 0.5,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, pauses: PauseStore | None = None,
                 operator: Operator | None = None) -> None:
        """`lease_s`: how long a claim may stay unsent before another instance takes it over (longer than
        the flags call and two publishes take); `busy_poll_s`: how often a busy claim is looked at again;
        `pauses`: where pause / resume of automatic recovery is kept (services/recovery/pause.py);
        `operator`: executors, dry-run, in-flight guard and effect verification (services/recovery/operator.py)."""
        self.policy = policy
        self.publisher = publisher
        self.flags = flags
        self.audit = audit
        self.now = now
        self.lease = timedelta(seconds=lease_s)
        self.busy_poll_s = busy_poll_s
        self.sleep = sleep
        self.pauses: PauseStore = pauses or MemoryPauseStore()
        self.operator = operator or Operator()

    async def recover_from_trigger(self, event: TriggerFired) -> ActionRecord | None:
        """Run the policy's action for a fired trigger, unless cooldown or max attempts forbid it, or the
        episode was already handled (a redelivery, another instance).

        A trigger older than the verify window is history (a first start reading the topic from the
        beginning, a long outage): acting on it would restart healthy processes, so it is ignored."""
        age = (self.now() - event.time).total_seconds()
        if age > self.policy.verify_window:
            log.info("ignoring stale %s for %s (%.0fs old, episode %s)", event.trigger, event.service, age,
                     event.episode_id)
            return None
        detail = f" ({event.detail})" if event.detail else ""
        reason = f"{event.trigger}: {describe_trigger(event.trigger, event.value, event.threshold)}{detail}"
        ep = Episode(service=event.service, trigger=event.trigger, episode_id=event.episode_id,
                     instance=event.instance, reason=reason)
        await self.audit.save_episode(ep, at=self.now())
        rule = self.policy.rule(event.trigger, event.service)
        if rule.action == "none":
            log.info("no recovery action for %s (escalation only)", event.trigger)
            return None
        refuse = self._own_breaker_errors(ep.service) if rule.action == "disable_new_features" else None
        return await self._claim_and_act(ep, rule.action, actor="recovery", refuse=refuse)

    async def verify_cleared(self, event: TriggerCleared) -> list[ActionRecord]:
        """The episode ended: every action still waiting on it succeeded."""
        done = [rec for p in await self.audit.pending(now=self.now(), episode_id=event.episode_id)
                if (rec := await self._finish(p, ok=True, detail="trigger cleared")) is not None]
        await self.audit.end_episode(event.episode_id, at=self.now())
        return done

    async def check_timeouts(self) -> list[ActionRecord]:
        """Actions whose trigger did not clear within the verify window failed (the notifier escalates).
        Results whose event could not be published before are published first."""
        for done in await self.audit.unreported():
            await self._report(done)
        for seen in await self.audit.unreported_effects():
            await self._publish_effect(seen)
        now, why = self.now(), f"trigger not cleared within {self.policy.verify_window:g}s"
        out = []
        for p in await self.audit.pending(now=now, due=now):
            # cleared while the action was still in flight on another instance: that counts
            ok = bool(p.episode_id) and await self.audit.cleared(p.episode_id or "")
            if (rec := await self._finish(p, ok=ok, detail="trigger cleared" if ok else why)) is not None:
                out.append(rec)
        return out

    async def run(self, request: RunRequest, *, actor: str) -> list[ActionRecord]:
        """Operator one-shot: the named action, or the actions for the service's active triggers."""
        reason = request.reason or f"operator run by {actor}"
        active = await self.audit.active(request.service)
        if request.action is not None:
            ep = next((e for e in active if self.policy.rule(e.trigger, e.service).action == request.action), None)
            if ep is None:
                ep = Episode(service=request.service, trigger="", episode_id=f"manual-{uuid.uuid4().hex[:12]}",
                             instance=request.instance, reason=reason)
            return [r for r in [await self._claim_and_act(ep, request.action, actor=actor, reason=reason)] if r]
        out = []
        for ep in active:
            action = self.policy.rule(ep.trigger, ep.service).action
            if action != "none" and (rec := await self._claim_and_act(ep, action, actor=actor, reason=reason)):
                out.append(rec)
        return out

    async def act_on_skipped(self, *, service: str | None, actor: str) -> list[ActionRecord]:
        """After a resume: act on the episodes still firing whose automatic action was skipped while paused
        (like Alertmanager evaluating again when a silence ends). Each is acted on once, as actor
        `recovery:resumed`, and only where automatic recovery is not paused any more."""
        paused = await self.pauses.paused()
        out = []
        for ep in await self.audit.skipped_while_paused(service):
            action = self.policy.rule(ep.trigger, ep.service).action
            if action == "none" or pause_reason(paused, service=ep.service):
                continue
            reason = f"{ep.reason} (skipped while paused; acted on after resume by {actor})"
            refuse = self._own_breaker_errors(ep.service) if action == "disable_new_features" else None
            if rec := await self._claim_and_act(ep, action, actor=RESUMED, reason=reason, once=True, refuse=refuse):
                out.append(rec)
        return out

    async def active(self, service: str | None = None) -> list[Episode]:
        return await self.audit.active(service)

    # --- claim, act, settle -----------------------------------------------------------------------------
    async def _claim_and_act(self, ep: Episode, action: str, *, actor: str, reason: str | None = None,
                             refuse: str | None = None, once: bool = False) -> ActionRecord | None:
        waited = 0.0
        while True:
            try:
                rec = await self._claim(ep, action, actor=actor, reason=reason, refuse=refuse, once=once)
                break
            except ClaimBusy:
                if waited > self.lease.total_seconds():
                    raise
            await self.sleep(self.busy_poll_s)  # the other instance finishes, or its lease runs out
            waited += self.busy_poll_s
        if rec is None or rec.status == "skipped":
            return rec
        return await self._act(ep, rec)

    async def _claim(self, ep: Episode, action: str, *, actor: str, reason: str | None,
                     refuse: str | None = None, once: bool = False) -> ActionRecord | None:
        """The claimed (or skipped) action; None when the episode's automatic action was already taken (or,
        `once`, when anything acted on the episode already)."""
        automatic = actor == "recovery"
        paused = pause_reason(await self.pauses.paused(), service=ep.service) if automatic else None
        async with self.audit.claiming(service=ep.service, trigger=ep.trigger) as claims:
            now = self.now()
            h = await claims.history(service=ep.service, trigger=ep.trigger, episode_id=ep.episode_id, now=now)
            if automatic and h.automatic == "busy":
                raise ClaimBusy(f"episode {ep.episode_id} is being acted on by another instance")
            if (automatic and h.automatic == "done") or (once and h.attempts > 0):
                return None
            why = paused or refuse or self._refusal(h, now=now, automatic=automatic) or self.operator.refusal(
                service=ep.service, action=action, instance=ep.instance, rule=self.policy.rule(ep.trigger, ep.service))
            rec = ActionRecord(action_id=uuid.uuid4().hex, service=ep.service, action=action,
                               trigger=ep.trigger or None, episode_id=ep.episode_id, instance=ep.instance,
                               attempt=h.attempts + (0 if why else 1), actor=actor, reason=reason or ep.reason,
                               status="skipped" if why else "started", detail=why or "", started_at=now,
                               finished_at=now if why else None)
            await claims.insert(rec, lease_until=None if why else now + self.lease,
                                deadline=None if why else now + self.lease + self._window)
        if why:
            log.info("recovery skipped %s for %s/%s: %s", action, ep.service, ep.trigger, why)
        return rec

    def _refusal(self, h: History, *, now: datetime, automatic: bool) -> str | None:
        if automatic and h.last_action_at is not None:
            ago = (now - h.last_action_at).total_seconds()
            if ago < self.policy.cooldown:
                return f"cooldown: last action {ago:.0f}s ago (< {self.policy.cooldown:g}s)"
        if h.attempts >= self.policy.max_attempts:
            return f"max attempts reached ({self.policy.max_attempts}) for the episode"
        return None

    @property
    def _window(self) -> timedelta:
        return timedelta(seconds=self.policy.verify_window)

    async def _act(self, ep: Episode, rec: ActionRecord) -> ActionRecord | None:
        try:
            with _tracer.start_as_current_span(f"recovery {rec.action}", attributes={
                    "safeguard.service": rec.service, "safeguard.action_id": rec.action_id,
                    "safeguard.episode_id": rec.episode_id or "", "safeguard.actor": rec.actor}):
                await self.publisher.publish(RecoveryActionStarted(**self._fields(rec)))
                with self.operator.in_flight(rec):
                    detail, killed = await self._execute(rec)
        except _ActionError as exc:
            log.warning("recovery action %s failed: %s", rec.action, exc)
            return await self._finish(rec, ok=False, detail=str(exc))
        except BaseException:
            await self._release(rec)
            raise
        rec = rec.model_copy(update={"detail": detail})
        try:  # the detail and the killed flags in one write; an operator's action with no trigger ends here
            await self.audit.settle(rec, deadline=self.now() + (self._window if ep.trigger else timedelta()),
                                    killed=killed)
        except Exception:  # noqa: BLE001 - the command is out: raising would make the retry act twice
            log.exception("action %s sent but not settled; it stays pending under its claim", rec.action_id)
            return rec
        if not ep.trigger:  # nothing to wait for: an operator's action with no active trigger
            return await self._finish(rec, ok=True, detail=detail + "; no active trigger to verify")
        if await self.audit.cleared(ep.episode_id):  # the TriggerCleared came while the action was in flight
            return await self._finish(rec, ok=True, detail="trigger cleared")
        return rec

    async def _release(self, rec: ActionRecord) -> None:
        try:
            await self.audit.release(rec.action_id)
        except Exception:  # noqa: BLE001 - the lease expires instead; the original error is raised
            log.exception("could not release the claim of %s (it expires in %s)", rec.action_id, self.lease)

    async def _execute(self, rec: ActionRecord) -> tuple[str, list[str]]:
        """What was done (the audit's detail), and the flags turned off."""
        rule = self.policy.rule(rec.trigger or "", rec.service)
        common = {"service": rec.service, "reason": rec.reason, "episode_id": rec.episode_id}
        cmd: Command | None = None
        detail, killed, restarted = "", [], None
        pids = self.operator.pids(rec.service, rec.instance)
        if rec.action == "disable_new_features":
            try:
                killed = await self.flags.kill_new(reason=f"recovery: {rec.reason}")
            except Exception as exc:  # noqa: BLE001 - turned into a failed action
                raise _ActionError(f"{type(exc).__name__}: {exc}"[:500]) from exc
            detail = f"killed flags: {', '.join(killed) or 'none on'}; "
            cmd = DisableNewFeatures(**common)
        elif rec.action == "open_circuit_breaker":
            rule, detail = await self._slow_breaker(rec, rule)
            detail += "; "
            cmd = OpenCircuitBreaker(**common, breaker=rule.breaker, duration_seconds=rule.duration)
        elif rec.action == "restart_process":
            try:
                restarted = await self.operator.restart(rec)
            except ExecutorError as exc:
                raise _ActionError(str(exc)[:500]) from exc
            cmd = None if restarted is not None else RestartProcess(**common, instance=rec.instance)
        elif rec.action == "restart_connection_pool":
            cmd = RestartConnectionPool(**common, pool=rule.pool, instance=rec.instance)
        else:
            raise _ActionError(f"unknown action {rec.action!r}")
        if cmd is not None:
            await self.publisher.publish(cmd)
        said = rec.model_copy(update={"detail": detail.rstrip("; ")})  # the Verified event names the killed flags
        self.operator.verify(said, rule=rule, since=rec.started_at, killed=killed, pids=pids, restarted=restarted,
                             publish=self._verified)
        if restarted is not None:
            return "restarted one at a time: " + "; ".join(r.describe() for r in restarted), killed
        return detail + f"sent {type(cmd).__name__}" + (f" to {rec.instance}" if cmd and cmd.instance else ""), killed

    async def _slow_breaker(self, rec: ActionRecord, rule: ActionRule) -> tuple[ActionRule, str]:
        """The breaker of the dependency the SDK measured as slow (services/recovery/slow_dependency.py)."""
        if self.operator.watch is None or not reports_dependencies(self.operator.watch.seen, service=rec.service):
            return rule, f"no dependency stats from {rec.service}: breaker {rule.breaker} from the policy"
        slow = await choose_breaker(self.operator.watch, service=rec.service, now=self.now())
        if slow is None:
            raise _ActionError(f"{NO_SLOW_DEPENDENCY} (every dependency of {rec.service} answers within its "
                               "slow threshold); escalating")
        return rule.model_copy(update={"breaker": slow.name}), slow.describe()

    def _own_breaker_errors(self, service: str) -> str | None:
        """Errors that are the fast failures of a breaker recovery forced open do not kill features."""
        watch = self.operator.watch
        names = forced_open(watch.seen, service=service, since=self.now() - timedelta(minutes=10)) if watch else []
        return (f"errors are the fast failures of breaker {', '.join(names)} that recovery forced open: "
                "not killing features") if names else None

    async def _verified(self, rec: ActionRecord, effect: str | None, seconds: float) -> None:
        """Keep what verification saw in the audit log first (one write), then publish a verified effect (the
        tick publishes it again if Kafka refused it)."""
        outcome: Outcome = "verified" if effect else "not_seen"
        text = (effect or f"no effect seen (looked for {seconds:.1f}s)")[:1000]
        if not await self.audit.record_effect(rec.action_id, outcome=outcome, effect=text,
                                              seconds=max(0.0, seconds), at=self.now()):
            return
        if effect:
            log.info("recovery %s on %s verified after %.1fs: %s", rec.action, rec.service, seconds, effect)
            await self._publish_effect(ActionView(**rec.model_dump(), verify_outcome=outcome, effect=text,
                                                  verify_seconds=max(0.0, seconds)))

    async def _publish_effect(self, seen: ActionView) -> None:
        await self.publisher.publish(RecoveryActionVerified(**self._fields(seen), effect=seen.effect or "",
                                                            seconds=seen.verify_seconds or 0.0))
        await self.audit.mark_effect_reported(seen.action_id)

    async def _finish(self, rec: ActionRecord, *, ok: bool, detail: str) -> ActionRecord | None:
        """Write the result (only one instance wins a started action), then publish it."""
        rec = rec.model_copy(update={"status": "succeeded" if ok else "failed", "finished_at": self.now(),
                                     "detail": (rec.detail + "; " + detail) if rec.detail else detail})
        if not await self.audit.finish(rec):
            return None
        await self._report(rec)
        return rec

    async def _report(self, rec: ActionRecord) -> None:
        cls = RecoveryActionSucceeded if rec.status == "succeeded" else RecoveryActionFailed
        await self.publisher.publish(cls(**self._fields(rec)))
        await self.audit.mark_reported(rec.action_id)

    def _fields(self, rec: ActionRecord) -> dict[str, object]:
        return {"service": rec.service, "action_id": rec.action_id, "action": rec.action, "trigger": rec.trigger,
                "episode_id": rec.episode_id, "attempt": rec.attempt, "detail": rec.detail}
