"""The core of the notifier: incidents from triggers, escalation L1-L4, notices, reports.

No framework imports: the publisher, the store, the sender and the clocks are ports, so unit
tests drive it with fakes. `clock` (monotonic seconds) times escalation; `now` stamps the timeline.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from services.notifier.models import DeliveryRecord, Incident, TimelineEntry
from services.notifier.policy import ChannelName, NotifierPolicy
from services.notifier.report import fmt_duration, render_report
from shared.events import (
    IncidentAcknowledged, IncidentEscalated, IncidentMitigated, IncidentOpened, IncidentResolved,
    NotificationDelivered, NotificationFailed, RecoveryActionFailed, RecoveryActionStarted, RecoveryActionSucceeded,
    TriggerCleared, TriggerFired,
)
from shared.kafka import Publisher

__all__ = ["NotifierService", "IncidentStore", "Sender", "NotFound", "Conflict", "incident_id_for"]

log = logging.getLogger(__name__)


class NotFound(LookupError):
    """No such incident."""


class Conflict(ValueError):
    """The incident is not in a state that allows this."""


class IncidentStore(Protocol):
    async def save_incident(self, incident: Incident) -> None: ...
    async def add_entry(self, incident_id: str, entry: TimelineEntry) -> None: ...
    async def save_delivery(self, record: DeliveryRecord) -> None: ...
    async def save_report(self, incident_id: str, markdown: str, at: datetime) -> None: ...
    async def get(self, incident_id: str) -> Incident | None: ...
    async def open_incidents(self) -> list[Incident]: ...
    async def recent(self, *, since: datetime, limit: int = 200) -> list[Incident]: ...
    async def report(self, incident_id: str) -> str | None: ...
    async def deliveries(self, incident_id: str) -> list[DeliveryRecord]: ...


class Sender(Protocol):
    async def send(self, *, channel: ChannelName, recipient: str, message: str, incident: Incident | None) -> None:
        """Deliver one notice; raise when it could not be delivered (after the sender's own retries)."""


@dataclass
class _Timer:
    deadline: float


def incident_id_for(service: str, episode_id: str) -> str:
    """Deterministic, so a redelivered trigger finds its incident instead of opening a second one."""
    return "inc-" + hashlib.sha256(f"{service}\x00{episode_id}".encode()).hexdigest()[:16]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class NotifierService:
    def __init__(self, *, policy: NotifierPolicy, publisher: Publisher, store: IncidentStore, sender: Sender,
                 clock: Callable[[], float], now: Callable[[], datetime] = _utcnow) -> None:
        self.policy = policy
        self.publisher = publisher
        self.store = store
        self.sender = sender
        self.clock = clock
        self.now = now
        self.open: dict[str, Incident] = {}
        self.timers: dict[str, _Timer] = {}
        self.budget_notes: dict[str, str] = {}

    async def restore(self) -> int:
        """Reload open incidents after a restart; their escalation timers start afresh."""
        for inc in await self.store.open_incidents():
            self.open[inc.incident_id] = inc
            self._arm(inc)
        return len(self.open)

    # --- sla.triggers -------------------------------------------------------------------------------
    async def open_incident(self, event: TriggerFired) -> Incident | None:
        """A fired trigger opens one incident per (service, episode), at level 1 (auto-recovery)."""
        age = (self.now() - event.time).total_seconds()
        if age > self.policy.max_trigger_age:
            log.info("ignoring stale %s for %s (%.0fs old)", event.trigger, event.service, age)
            return None
        if event.trigger == "budget_burn":
            self.budget_notes[event.service] = f"error budget burning: {event.value:g} > {event.threshold:g}" + (
                f" ({event.detail})" if event.detail else "")
            return None
        iid = incident_id_for(event.service, event.episode_id)
        if iid in self.open or await self.store.get(iid) is not None:
            return None
        at = self.now()
        title = f"{event.service}: {event.trigger.replace('_', ' ')} ({event.value:g} > {event.threshold:g})"
        inc = Incident(incident_id=iid, service=event.service, trigger=event.trigger, episode_id=event.episode_id,
                       title=title, severity=self.policy.severity_of(event.trigger), opened_at=at)
        self.open[iid] = inc
        await self.store.save_incident(inc)
        await self._entry(inc, "opened", f"{title}{'; ' + event.detail if event.detail else ''}; "
                                         f"level 1: {self.policy.level(1).name}", actor="sla")
        self._arm(inc)
        await self.publisher.publish(IncidentOpened(service=inc.service, incident_id=iid, title=title,
                                                    severity=inc.severity, trigger=event.trigger,
                                                    episode_id=event.episode_id))
        await self._announce(inc, f"Investigating: {title}", public=True)
        return inc

    async def resolve_on_clear(self, event: TriggerCleared) -> Incident | None:
        inc = self.open.get(incident_id_for(event.service, event.episode_id))
        if inc is None:
            return None
        return await self._resolve(inc, by="sla", note=f"trigger cleared ({event.value:g} <= {event.threshold:g})")

    # --- recovery.actions ---------------------------------------------------------------------------
    async def record_action(self, event: RecoveryActionStarted) -> None:
        inc = self._for_action(event.service, event.episode_id)
        if inc is not None:
            await self._entry(inc, "action", f"recovery started {event.action} (attempt {event.attempt})",
                              actor="recovery")

    async def mitigate(self, event: RecoveryActionSucceeded) -> Incident | None:
        inc = self._for_action(event.service, event.episode_id)
        if inc is None or inc.status != "open":
            return None
        inc.status, inc.mitigated_at = "mitigated", self.now()
        self.timers.pop(inc.incident_id, None)
        note = f"{event.action} succeeded" + (f": {event.detail}" if event.detail else "")
        await self.store.save_incident(inc)
        await self._entry(inc, "mitigated", note, actor="recovery")
        await self.publisher.publish(IncidentMitigated(service=inc.service, incident_id=inc.incident_id,
                                                       by="recovery", note=note[:500]))
        await self._announce(inc, f"Monitoring: a fix is in place for {inc.title}", public=False)
        return inc

    async def escalate_on_failure(self, event: RecoveryActionFailed) -> Incident | None:
        inc = self._for_action(event.service, event.episode_id)
        if inc is None:
            return None
        await self._entry(inc, "action", f"recovery {event.action} failed: {event.detail}", actor="recovery")
        if inc.status == "mitigated":  # a later action failed: impact is back
            inc.status, inc.mitigated_at = "open", None
            await self.store.save_incident(inc)
            self._arm(inc)
        if not inc.escalating or inc.level >= 2:
            return None
        return await self._escalate(inc, reason=f"auto-recovery failed ({event.action})")

    # --- the periodic tick --------------------------------------------------------------------------
    async def escalate_overdue(self) -> list[Incident]:
        """Escalate every incident whose level's delay ran out without ack, mitigation or resolution."""
        now, out = self.clock(), []
        for iid, timer in list(self.timers.items()):
            inc = self.open.get(iid)
            if inc is None or not inc.escalating:
                self.timers.pop(iid, None)
            elif now >= timer.deadline:
                after = self.policy.level(inc.level).escalate_after or 0
                out.append(await self._escalate(inc, reason=f"not mitigated or acknowledged within "
                                                            f"{fmt_duration(after)} at level {inc.level}"))
        return out

    # --- operators ----------------------------------------------------------------------------------
    async def acknowledge(self, incident_id: str, *, actor: str) -> Incident:
        inc = self._open_or_raise(incident_id)
        if inc.acknowledged_by is not None:
            return inc
        inc.acknowledged_by = actor
        self.timers.pop(incident_id, None)
        await self.store.save_incident(inc)
        await self._entry(inc, "acknowledged", f"acknowledged at level {inc.level}; escalation stopped", actor=actor)
        await self.publisher.publish(IncidentAcknowledged(service=inc.service, incident_id=incident_id, by=actor))
        await self._announce(inc, f"Identified: {inc.title} is being worked on", public=False)
        return inc

    async def resolve(self, incident_id: str, *, actor: str, note: str = "") -> Incident:
        inc = self._open_or_raise(incident_id)
        return await self._resolve(inc, by=actor, note=note or "resolved by an operator")

    # --- internals ----------------------------------------------------------------------------------
    async def get(self, incident_id: str) -> Incident:
        inc = self.open.get(incident_id) or await self.store.get(incident_id)
        if inc is None:
            raise NotFound(incident_id)
        return inc

    def _open_or_raise(self, incident_id: str) -> Incident:
        inc = self.open.get(incident_id)
        if inc is None:
            raise NotFound(incident_id)
        return inc

    def _for_action(self, service: str, episode_id: str | None) -> Incident | None:
        return self.open.get(incident_id_for(service, episode_id)) if episode_id else None

    def _arm(self, inc: Incident) -> None:
        after = self.policy.level(inc.level).escalate_after
        if inc.escalating and after is not None:
            self.timers[inc.incident_id] = _Timer(self.clock() + after)
        else:
            self.timers.pop(inc.incident_id, None)

    async def _escalate(self, inc: Incident, *, reason: str) -> Incident:
        inc.level += 1
        level = self.policy.level(inc.level)
        await self.store.save_incident(inc)
        self._arm(inc)
        await self._entry(inc, "escalated", f"level {inc.level}: {level.name} ({reason})")
        await self.publisher.publish(IncidentEscalated(service=inc.service, incident_id=inc.incident_id,
                                                       level=inc.level, target=level.name))
        page = f"[L{inc.level} {level.name}] {inc.severity.upper()} {inc.title}: {reason}"
        for contact in level.contacts or ["default"]:
            await self._deliver(inc, "oncall_page", contact, page)
        await self._deliver(inc, "status_page", "status", f"Escalated to {level.name}: {inc.title}")
        return inc

    async def _resolve(self, inc: Incident, *, by: str, note: str) -> Incident:
        at = self.now()
        inc.status, inc.resolved_at, inc.resolved_by = "resolved", at, by
        self.open.pop(inc.incident_id, None)
        self.timers.pop(inc.incident_id, None)
        duration = (at - inc.opened_at).total_seconds()
        await self.store.save_incident(inc)
        await self._entry(inc, "resolved", f"{note}; duration {fmt_duration(duration)}", actor=by)
        # the report is stored before IncidentResolved goes out, so whoever reads that event can fetch it
        report = render_report(inc, targets=self.policy.targets, budget_note=self.budget_notes.get(inc.service))
        await self.store.save_report(inc.incident_id, report, self.now())
        await self.publisher.publish(IncidentResolved(service=inc.service, incident_id=inc.incident_id, by=by,
                                                      duration_seconds=max(duration, 0.0)))
        await self._announce(inc, f"Resolved: {inc.title} (after {fmt_duration(duration)})", public=True)
        return inc

    async def _entry(self, inc: Incident, kind: str, text: str, *, actor: str = "notifier") -> None:
        entry = TimelineEntry(at=self.now(), kind=kind, text=text[:1000], actor=actor)
        inc.timeline.append(entry)
        await self.store.add_entry(inc.incident_id, entry)

    async def _announce(self, inc: Incident, message: str, *, public: bool) -> None:
        """Status page always; stakeholders always; users for the severities the policy names (opening and
        resolution only: `public`)."""
        await self._deliver(inc, "status_page", "status", message)
        for r in self.policy.channels.stakeholder.recipients:
            await self._deliver(inc, "stakeholder", r, message)
        if public and inc.severity in self.policy.user_notice_severities:
            for r in self.policy.channels.user.recipients:
                await self._deliver(inc, "user", r, message)

    async def _deliver(self, inc: Incident, channel: ChannelName, recipient: str, message: str) -> None:
        rec = DeliveryRecord(delivery_id=uuid.uuid4().hex, incident_id=inc.incident_id, channel=channel,
                             recipient=recipient, ok=True, message=message, at=self.now())
        try:
            await self.sender.send(channel=channel, recipient=recipient, message=message, incident=inc)
        except Exception as exc:  # noqa: BLE001 - a failed notice is a result: recorded and published
            rec.ok, rec.error = False, f"{type(exc).__name__}: {exc}"[:300]
            log.warning("notice to %s/%s failed: %s", channel, recipient, rec.error)
        await self.store.save_delivery(rec)
        common = {"service": inc.service, "incident_id": inc.incident_id, "channel": channel, "recipient": recipient}
        await self.publisher.publish(NotificationDelivered(**common) if rec.ok
                                     else NotificationFailed(**common, error=rec.error))
