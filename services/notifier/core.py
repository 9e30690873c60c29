"""What every job of the notifier's core shares: the ports, the write of one `Change` (then sent by the
relay), the lookups of an incident, and the timeline and notices a change carries.

A change is written in one transaction (the incident, its timeline, the events to publish, the notices
to deliver); nothing is kept in memory, so a failed write leaves nothing behind, and a restarted process
or another instance reads the same state (escalation deadlines included)."""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime, timedelta

from services.notifier import grouping
from services.notifier.ack import AckLinks
from services.notifier.impact import ImpactSource
from services.notifier.maintenance import Silences
from services.notifier.models import Change, DeliveryRecord, Incident, TimelineEntry
from services.notifier.oncall import OnCallSchedule
from services.notifier.policy import ChannelName, NotifierPolicy
from services.notifier.ports import IncidentStore, Sender
from services.notifier.relay import SCOPE, Relay
from shared.events import UNRESPONSIVE, IncidentEscalated
from shared.ports import Clock, Publisher

__all__ = ["IncidentCore", "NotFound", "Conflict", "StaleIncident", "detector_of", "incident_id_for"]

log = logging.getLogger(SCOPE)


class NotFound(LookupError):
    """No such incident."""


class Conflict(ValueError):
    """The incident is not in a state that allows this."""


class StaleIncident(RuntimeError):
    """Another instance changed the incident since it was read (the consumer's retry reads it again)."""


def detector_of(trigger: str, service: str) -> str:
    """Who makes `trigger` (the actor of its timeline entries): for `unresponsive` the health service's watchdog,
    or the notifier when the health service is the one not answering (health_watch.py); else the SLA processor."""
    if trigger == UNRESPONSIVE:
        return "notifier" if service == "health" else "health"
    return "sla"


def incident_id_for(service: str, episode_id: str) -> str:
    """Deterministic, so a redelivered trigger finds its incident instead of opening a second one."""
    return "inc-" + hashlib.sha256(f"{service}\x00{episode_id}".encode()).hexdigest()[:16]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class IncidentCore(Relay):
    def __init__(self, *, policy: NotifierPolicy, publisher: Publisher, store: IncidentStore, sender: Sender,
                 now: Clock = _utcnow, lease_s: float = 120.0, silences: Silences | None = None,
                 oncall: OnCallSchedule | None = None, ack: AckLinks | None = None,
                 impact: ImpactSource | None = None) -> None:
        """`lease_s`: how long a claimed event or notice is left to its instance before another may send it.
        `silences`: the maintenance windows (a service in one pages nobody). `oncall`: who a rotation's
        contact pages; `ack`: the signed acknowledge links put in pages. `impact`: requests failed and budget spent,
        asked of the SLA service when an incident resolves (for its report)."""
        super().__init__(policy=policy, publisher=publisher, store=store, sender=sender, now=now, lease_s=lease_s)
        self.silences, self.oncall, self.ack, self.impact = silences, oncall, ack, impact
        self.budget_notes: dict[str, str] = {}

    async def restore(self) -> int:
        """The open incidents after a restart (their escalation deadlines are in the store)."""
        return len(await self.store.open_incidents())

    async def get(self, incident_id: str) -> Incident:
        inc = await self.store.get(incident_id)
        if inc is None:
            raise NotFound(incident_id)
        return inc

    # --- writing a change ---------------------------------------------------------------------------
    async def _commit(self, ch: Change) -> bool:
        """Write the change; then send it right away (what fails here the tick sends later)."""
        await self._hold_if_silenced(ch)
        if not await self.store.commit(ch):
            if ch.version is None:
                return False  # opened meanwhile by another instance or delivery
            raise StaleIncident(f"{ch.incident.incident_id} changed since version {ch.version}")
        ch.incident.version = 0 if ch.version is None else ch.version + 1
        try:
            await self.dispatch()
        except Exception:  # noqa: BLE001 - written: the relay sends it on a later tick
            log.warning("sending after %s deferred to the relay", ch.incident.incident_id, exc_info=True)
        return True

    async def _silenced(self, service: str) -> str | None:
        return None if self.silences is None else await self.silences.silencing(service=service, at=self.now())

    async def _hold_if_silenced(self, ch: Change) -> None:
        """In a maintenance window of its service the incident is recorded (`during_maintenance`) and its
        notices are held: nobody is paged, stakeholders and users are not told."""
        window = await self._silenced(ch.incident.service) if ch.notices else None
        if window is None:
            return
        ch.incident.during_maintenance = True
        self._entry(ch, "notified", f"{len(ch.notices)} notice(s) held: maintenance '{window}' in progress")
        ch.notices.clear()

    # --- finding the incident -----------------------------------------------------------------------
    async def _unresolved(self, incident_id: str) -> Incident | None:
        inc = await self.store.get(incident_id)
        return None if inc is None or inc.status == "resolved" else inc

    async def _open_or_raise(self, incident_id: str) -> Incident:
        inc = await self._unresolved(incident_id)
        if inc is None:
            raise NotFound(incident_id)
        return inc

    async def _for_action(self, service: str, episode_id: str | None) -> Incident | None:
        """The incident of the episode, or the one that took it in (grouping.py)."""
        if not episode_id:
            return None
        return await self._unresolved(incident_id_for(service, episode_id)) or grouping.joined_by(
            await self.store.open_incidents(), service=service, episode_id=episode_id)

    async def _deploy_incident(self, service: str, *, joined_episode: str | None = None) -> Incident | None:
        """The service's unresolved incident opened by a rollback (with `joined_episode`: one that took in
        that trigger episode)."""
        for inc in reversed(await self.store.open_incidents()):
            if inc.service == service and inc.episode_id.startswith("deploy-") and (
                    joined_episode is None or any(f"(episode {joined_episode})" in e.text for e in inc.timeline)):
                return inc
        return None

    # --- what a change carries ----------------------------------------------------------------------
    def _arm(self, inc: Incident, *, since: datetime | None = None) -> None:
        """The next deadline at this level (from `since`, default now): the escalation, or a repeated page
        before it."""
        level = self.policy.level(inc.level)
        start, now = since or self.now(), self.now()
        due = [] if level.escalate_after is None else [start + timedelta(seconds=level.escalate_after)]
        if level.repeat_every is not None and inc.level > 1:
            due.append(now + timedelta(seconds=level.repeat_every))
        inc.escalate_at = min(due) if inc.escalating and due else None

    def _escalate(self, ch: Change, *, reason: str) -> None:
        """One level up: armed again, announced, and the new level's contacts paged."""
        inc = ch.incident
        inc.level += 1
        level = self.policy.level(inc.level)
        self._entry(ch, "escalated", f"level {inc.level}: {level.name} ({reason})")
        self._arm(inc, since=inc.timeline[-1].at)
        ch.events.append(IncidentEscalated(service=inc.service, incident_id=inc.incident_id, level=inc.level,
                                           target=level.name))
        self._page(ch, f"[L{inc.level} {level.name}] {inc.severity.upper()} {inc.title}: {reason}")
        self._deliver(ch, "status_page", "status", f"Escalated to {level.name}: {inc.title}")

    def _entry(self, ch: Change, kind: str, text: str, *, actor: str = "notifier") -> None:
        entry = TimelineEntry(at=self.now(), kind=kind, text=text[:1000], actor=actor)
        ch.incident.timeline.append(entry)
        ch.entries.append(entry)

    def _announce(self, ch: Change, message: str, *, public: bool) -> None:
        """Status page always; stakeholders always; users for the severities the policy names (opening and
        resolution only: `public`)."""
        self._deliver(ch, "status_page", "status", message)
        for r in self.policy.channels.stakeholder.recipients:
            self._deliver(ch, "stakeholder", r, message)
        if public and ch.incident.severity in self.policy.user_notice_severities:
            for r in self.policy.channels.user.recipients:
                self._deliver(ch, "user", r, message)

    def _deliver(self, ch: Change, channel: ChannelName, recipient: str, message: str) -> None:
        now = self.now()
        ch.notices.append(DeliveryRecord(delivery_id=uuid.uuid4().hex, incident_id=ch.incident.incident_id,
                                         channel=channel, recipient=recipient, ok=False, message=message, at=now,
                                         status="pending", next_at=now))

    def _page(self, ch: Change, text: str) -> list[str]:
        """Page each contact of the level (a rotation's contact: whoever is on call in it now), each page
        with its own acknowledge link; who was paged."""
        inc, now, people = ch.incident, self.now(), []
        for contact in self.policy.level(inc.level).contacts or ["default"]:
            rota = self.oncall is not None and self.oncall.has(contact)
            person = self.oncall.who(contact, at=now) if rota and self.oncall is not None else contact
            on_call = f" (on call: {contact})" if rota else ""
            link = "" if self.ack is None else \
                f" Acknowledge: {self.ack.link(incident_id=inc.incident_id, person=person, now=now)}"
            self._deliver(ch, "oncall_page", person, f"{text}{on_call}.{link}")
            people.append(person)
        return people
