"""What recovery does with its hands, the way an operator would: restart through the configured executor
(one instance at a time), refuse a second action on a target while one is in flight, only say what it
would do in dry-run mode, and after acting look for the effect (services/recovery/verify.py), publishing
RecoveryActionVerified when it shows (the notifier then marks the incident mitigated)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from services.recovery.executors import Executor, Restarted, Target, restart_in_turn
from services.recovery.models import ActionRecord
from services.recovery.policy import ActionRule
from services.recovery.ports import HealthReports
from services.recovery.verify import Verifier
from shared.tasks import cancel_and_wait

__all__ = ["Operator", "Effect"]

log = logging.getLogger(__name__)
Effect = Callable[[ActionRecord, str | None, float], Awaitable[None]]  # (action, what was seen or None, seconds)


class Operator:
    def __init__(self, *, executor: Executor | None = None, targets: Mapping[str, Sequence[Target]] | None = None,
                 verifier: Verifier | None = None, watch: HealthReports | None = None, dry_run: bool = False) -> None:
        self.executor, self.targets, self.verifier = executor, dict(targets or {}), verifier
        self.watch, self.dry_run = watch, dry_run
        self._in_flight: dict[str, tuple[str, str, str | None]] = {}
        self._verifying: set[asyncio.Task[None]] = set()

    # --- before acting ------------------------------------------------------------------------------------
    def refusal(self, *, service: str, action: str, instance: str | None, rule: ActionRule) -> str | None:
        """Why this action must not run now (another one on the same target is in flight; dry-run), or None."""
        for other, (svc, act, inst) in self._in_flight.items():
            if svc == service and act == action and (inst is None or instance is None or inst == instance):
                return f"in flight: {action} {other[:12]} on {service}{'/' + inst if inst else ''} is still running"
        if self.dry_run:
            return "dry run: would " + self.would(service=service, action=action, instance=instance, rule=rule)
        return None

    def would(self, *, service: str, action: str, instance: str | None, rule: ActionRule) -> str:
        where = f"{service}/{instance}" if instance else service
        if action == "restart_process":
            targets = self.restart_targets(service, instance)
            if self.executor is not None and targets:
                return "; then ".join(f"{t.instance}: {self.executor.describe(t)}" for t in targets)
            return f"send RestartProcess to {where} (the SDK exits cleanly)"
        if action == "open_circuit_breaker":
            return f"open breaker {rule.breaker} of {where} for {rule.duration:g}s"
        if action == "restart_connection_pool":
            return f"restart pool {rule.pool} of {where}"
        return f"kill every flag marked new (for {service})" if action == "disable_new_features" else action

    @contextmanager
    def in_flight(self, rec: ActionRecord) -> Iterator[None]:
        self._in_flight[rec.action_id] = (rec.service, rec.action, rec.instance)
        try:
            yield
        finally:
            self._in_flight.pop(rec.action_id, None)

    # --- acting -------------------------------------------------------------------------------------------
    def restart_targets(self, service: str, instance: str | None) -> list[Target]:
        return [t for t in self.targets.get(service, []) if instance is None or t.instance == instance]

    async def restart(self, rec: ActionRecord) -> list[Restarted] | None:
        """The executor restarts the targets one by one; None when the SDK's clean exit is the way (no
        executor, or no target known for this service / instance)."""
        targets = self.restart_targets(rec.service, rec.instance)
        if self.executor is None or not targets:
            return None
        return await restart_in_turn(self.executor.restart, targets)

    def pids(self, service: str, instance: str | None) -> dict[str, int]:
        """The PIDs the service's instances reported last (before a restart sent to the SDK)."""
        if self.watch is None:
            return {}
        return {i: pid for (s, i), pid in self.watch.pids.items() if s == service and instance in (None, i)}

    # --- after acting -------------------------------------------------------------------------------------
    def verify(self, rec: ActionRecord, *, rule: ActionRule, since: datetime, killed: list[str],
               pids: dict[str, int], restarted: list[Restarted] | None, publish: Effect) -> None:
        """Look for the effect in the background (the consumer goes on); hand what was seen (None: nothing
        within the check's timeout) to `publish`, which keeps it in the audit log and publishes a seen effect."""
        task = asyncio.create_task(self._verify(rec, rule=rule, since=since, killed=killed, pids=pids,
                                                restarted=restarted, publish=publish), name=f"verify:{rec.action_id}")
        self._verifying.add(task)
        task.add_done_callback(self._verifying.discard)

    async def _verify(self, rec: ActionRecord, *, rule: ActionRule, since: datetime, killed: list[str],
                      pids: dict[str, int], restarted: list[Restarted] | None, publish: Effect) -> None:
        try:
            if restarted:
                effect: str | None = "new process answering: " + "; ".join(r.describe() for r in restarted)
            elif rec.action == "disable_new_features" and not killed:
                return  # nothing was turned off: nothing to see, and nothing to keep
            elif self.verifier is not None:
                effect = await self.verifier.effect(rec, rule=rule, since=since, killed=killed, pids=pids)
            else:
                return
            if effect is None:
                log.warning("recovery %s %s on %s: no effect seen", rec.action, rec.action_id, rec.service)
            await publish(rec, effect, (datetime.now(UTC) - since).total_seconds())
        except Exception:  # noqa: BLE001 - verification is an observer: the clear / verify window still decide
            log.exception("verifying %s %s failed", rec.action, rec.action_id)

    async def settled(self) -> None:
        """Wait for every verification under way (tests, shutdown)."""
        while self._verifying:
            await asyncio.gather(*list(self._verifying), return_exceptions=True)

    async def aclose(self) -> None:
        await cancel_and_wait(list(self._verifying))

