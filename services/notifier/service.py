"""The core of the notifier: incidents from triggers, escalation L1-L4, notices, reports.

No framework imports: the publisher, the store, the sender and the clock are ports, so unit tests
drive it with fakes.

Every change of an incident is one `Change` written in one transaction (the incident, its timeline,
the events to publish, the notices to deliver); nothing is kept in memory, so a failed write leaves
nothing behind and the consumer's retry does the whole change, and a restarted process or another
instance reads the same state (escalation deadlines included). Events and notices are sent after
the write by `dispatch()` (right away, and by the relay tick for what failed: Kafka down, a webhook
refusing), each claimed with a lease so two instances never send one twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import cast

from opentelemetry import trace

from services.notifier import grouping
from services.notifier.ack import AckLinks
from services.notifier.impact import ImpactSource
from services.notifier.maintenance import Silences
from services.notifier.models import Change, DeliveryRecord, Incident, TimelineEntry
from services.notifier.oncall import OnCallSchedule
from services.notifier.policy import ChannelName, NotifierPolicy
from services.notifier.ports import IncidentStore, Sender
from services.notifier.report import VERIFIED, fmt_duration, kept_off_note, render_report
from shared.events import (
    DeploymentRolledBack, IncidentAcknowledged, IncidentEscalated, IncidentMitigated, IncidentOpened, IncidentResolved,
    NotificationDelivered, NotificationFailed, RecoveryActionFailed, RecoveryActionStarted, RecoveryActionSucceeded,
    RecoveryActionVerified, TriggerCleared, TriggerFired,
)
from shared.humanize import describe_clear, describe_trigger
from shared.ports import Clock, Publisher
from shared.tracing_links import continued, current_traceparent

__all__ = ["NotifierService", "NotFound", "Conflict", "StaleIncident", "incident_id_for"]

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)


class NotFound(LookupError):
    """No such incident."""


class Conflict(ValueError):
    """The incident is not in a state that allows this."""


class StaleIncident(RuntimeError):
    """Another instance changed the incident since it was read (the consumer's retry reads it again)."""


def incident_id_for(service: str, episode_id: str) -> str:
    """Deterministic, so a redelivered trigger finds its incident instead of opening a second one."""
    return "inc-" + hashlib.sha256(f"{service}\x00{episode_id}".encode()).hexdigest()[:16]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class NotifierService:
    def __init__(self, *, policy: NotifierPolicy, publisher: Publisher, store: IncidentStore, sender: Sender,
                 now: Clock = _utcnow, lease_s: float = 120.0, silences: Silences | None = None,
                 oncall: OnCallSchedule | None = None, ack: AckLinks | None = None,
                 impact: ImpactSource | None = None) -> None:
        """`lease_s`: how long a claimed event or notice is left to its instance before another may send it.
        `silences`: the maintenance windows (a service in one pages nobody). `oncall`: who a rotation's
        contact pages; `ack`: the signed acknowledge links put in pages. `impact`: requests failed and budget spent,
        asked of the SLA service when an incident resolves (for its report)."""
        self.silences, self.oncall, self.ack, self.impact = silences, oncall, ack, impact
        self.policy = policy
        self.publisher = publisher
        self.store = store
        self.sender = sender
        self.now = now
        self.lease = timedelta(seconds=lease_s)
        self.budget_notes: dict[str, str] = {}

    async def restore(self) -> int:
        """The open incidents after a restart (their escalation deadlines are in the store)."""
        return len(await self.store.open_incidents())

    # --- sla.triggers -------------------------------------------------------------------------------
    async def open_incident(self, event: TriggerFired) -> Incident | None:
        """A fired trigger opens one incident per (service, episode), at level 1 (auto-recovery), in the
        trigger's trace (its span's traceparent is kept with the incident: later notices continue it)."""
        with _tracer.start_as_current_span("incident open", attributes={
                "safeguard.service": event.service, "safeguard.trigger": event.trigger,
                "safeguard.episode_id": event.episode_id}):
            return await self._open_incident(event)

    async def _open_incident(self, event: TriggerFired) -> Incident | None:
        age = (self.now() - event.time).total_seconds()
        if age > self.policy.max_trigger_age:
            log.info("ignoring stale %s for %s (%.0fs old)", event.trigger, event.service, age)
            return None
        if event.trigger == "budget_burn":
            self.budget_notes[event.service] = describe_trigger(event.trigger, event.value, event.threshold) + (
                f" ({event.detail})" if event.detail else "")
            return None
        iid = incident_id_for(event.service, event.episode_id)
        if await self.store.get(iid) is not None:
            return None
        title = f"{event.service}: {describe_trigger(event.trigger, event.value, event.threshold)}"
        joined = await self._deploy_incident(event.service)
        if joined is not None:  # the same root cause as the rollback in progress: one incident
            ch = Change(joined, version=joined.version)
            self._entry(ch, "action", f"{title} (episode {event.episode_id}) during the rollback", actor="sla")
            await self._commit(ch)
            return None
        joined = grouping.joining(await self.store.open_incidents(), service=event.service, trigger=event.trigger,
                                  now=self.now())
        if joined is not None:  # a consequence of that incident's trigger (grouping.py): one incident
            ch = Change(joined, version=joined.version)
            self._entry(ch, "action", grouping.joined_text(title=title, trigger=event.trigger,
                                                           episode_id=event.episode_id, into=joined), actor="sla")
            await self._commit(ch)
            return None
        inc = Incident(incident_id=iid, service=event.service, trigger=event.trigger, episode_id=event.episode_id,
                       title=title, severity=self.policy.severity_of(event.trigger), opened_at=self.now(),
                       traceparent=current_traceparent())
        ch = Change(inc, version=None)
        self._entry(ch, "opened", f"{title}{'; ' + event.detail if event.detail else ''}; "
                                  f"level 1: {self.policy.level(1).name}", actor="sla")
        if event.first_bad_at is not None and event.first_bad_at < inc.opened_at:
            detected = TimelineEntry(at=event.first_bad_at, kind="detected", actor="sla",
                                     text=f"first bad at the SLA processor; detected after "
                                          f"{fmt_duration((inc.opened_at - event.first_bad_at).total_seconds())}")
            inc.timeline.append(detected)
            ch.entries.append(detected)
        self._arm(inc)
        ch.events.append(IncidentOpened(service=inc.service, incident_id=iid, title=title, severity=inc.severity,
                                        trigger=event.trigger, episode_id=event.episode_id))
        self._announce(ch, f"Investigating: {title}", public=True)
        return inc if await self._commit(ch) else None

    async def resolve_on_clear(self, event: TriggerCleared) -> Incident | None:
        inc = await self._unresolved(incident_id_for(event.service, event.episode_id))
        if inc is None:
            inc = await self._deploy_incident(event.service, joined_episode=event.episode_id)
        if inc is None:
            inc = grouping.joined_by(await self.store.open_incidents(), service=event.service,
                                     episode_id=event.episode_id)
        if inc is None:
            return None
        note = (f"trigger cleared ({describe_clear(event.trigger, event.value, event.threshold)}"
                f"{'; ' + event.reason if event.reason else ''})")
        if waiting := grouping.still_firing(inc, cleared=event.episode_id):  # resolved with its last episode
            ch = Change(inc, version=inc.version)
            self._entry(ch, "action", grouping.cleared_text(trigger=event.trigger, episode_id=event.episode_id,
                                                            note=f"{note}; still firing: {', '.join(waiting)}"),
                        actor="sla")
            await self._commit(ch)
            return None
        return await self._resolve(inc, by="sla", note=note)

    # --- recovery.actions ---------------------------------------------------------------------------
    async def record_action(self, event: RecoveryActionStarted) -> None:
        inc = await self._for_action(event.service, event.episode_id)
        if inc is not None:
            ch = Change(inc, version=inc.version)
            self._entry(ch, "action", f"recovery started {event.action} (attempt {event.attempt})", actor="recovery")
            await self._commit(ch)

    async def mitigate(self, event: RecoveryActionSucceeded | RecoveryActionVerified) -> Incident | None:
        """A verified effect (or, without one, the action's success) marks the incident mitigated. On an incident
        already mitigated, a verified effect and the features turned off are still written to its timeline."""
        inc = await self._for_action(event.service, event.episode_id)
        if inc is None:
            return None
        note = (f"{event.action} verified after {event.seconds:.1f}s: {event.effect}"
                if isinstance(event, RecoveryActionVerified)
                else f"{event.action} succeeded" + (f": {event.detail}" if event.detail else ""))
        if inc.status != "open":
            await self._note_effect(inc, VERIFIED + note if isinstance(event, RecoveryActionVerified) else None,
                                    kept_off_note(action=event.action, detail=event.detail))
            return None
        ch = Change(inc, version=inc.version)
        inc.status, inc.mitigated_at, inc.escalate_at = "mitigated", self.now(), None
        self._entry(ch, "mitigated", note, actor="recovery")
        if (kept := kept_off_note(action=event.action, detail=event.detail)) is not None:
            self._entry(ch, "action", kept, actor="recovery")
        ch.events.append(IncidentMitigated(service=inc.service, incident_id=inc.incident_id, by="recovery",
                                           note=note[:500]))
        self._announce(ch, f"Monitoring: a fix is in place for {inc.title}", public=False)
        await self._commit(ch)
        return inc

    async def _note_effect(self, inc: Incident, *texts: str | None) -> None:
        """Timeline entries not there yet (a republished event adds nothing)."""
        new = [t for t in texts if t is not None and all(e.text != t[:1000] for e in inc.timeline)]
        if not new:
            return
        ch = Change(inc, version=inc.version)
        for text in new:
            self._entry(ch, "action", text, actor="recovery")
        await self._commit(ch)

    async def escalate_on_failure(self, event: RecoveryActionFailed) -> Incident | None:
        inc = await self._for_action(event.service, event.episode_id)
        if inc is None:
            return None
        ch = Change(inc, version=inc.version)
        self._entry(ch, "action", f"recovery {event.action} failed: {event.detail}", actor="recovery")
        if inc.status == "mitigated":  # a later action failed: impact is back
            inc.status, inc.mitigated_at = "open", None
            self._arm(inc)
        escalate = inc.escalating and inc.level < 2
        if escalate:
            self._escalate(ch, reason=f"auto-recovery failed ({event.action})")
        await self._commit(ch)
        return inc if escalate else None

    # --- deploy.events ------------------------------------------------------------------------------
    async def record_rollback(self, event: DeploymentRolledBack) -> Incident | None:
        """A deploy rolled back: it joins the service's unresolved incident (the trigger that caused it)
        or opens its own; either way the rollback is its action, and a healthy rollback mitigates it."""
        episode = f"deploy-{event.deploy_id}"
        iid = incident_id_for(event.service, episode)
        inc = await self.store.get(iid) or await self._incident_of(event)
        if inc is None:
            title = f"{event.service}: deploy {event.version} rolled back"
            inc = Incident(incident_id=iid, service=event.service, trigger="deploy_rollback", episode_id=episode,
                           title=title, severity=self.policy.severity_of("deploy_rollback"), opened_at=self.now(),
                           traceparent=current_traceparent())
            ch = Change(inc, version=None)
            self._entry(ch, "opened", f"{title}: {event.reason}", actor="deploy")
            ch.events.append(IncidentOpened(service=inc.service, incident_id=iid, title=title, severity=inc.severity,
                                            trigger="deploy_rollback", episode_id=episode))
            self._announce(ch, f"Investigating: {title}", public=True)
        else:
            ch = Change(inc, version=inc.version)
        how = "automatically" if event.automatic else f"by {event.actor}"
        self._entry(ch, "action", f"[deploy {event.deploy_id}] deploy {event.version} rolled back {how}: "
                                  f"{event.reason}; traffic on "
                                  f"{event.colour} ({event.from_version or '?'}) in {event.switch_ms:.0f} ms; flags "
                                  f"killed: {', '.join(event.flags_killed) or 'none'}; database "
                                  f"{'at ' + event.database_to if event.database_to else 'unchanged'}", actor="deploy")
        if inc.status == "open" and event.healthy:
            inc.status, inc.mitigated_at, inc.escalate_at = "mitigated", self.now(), None
            self._entry(ch, "mitigated", f"back on {event.colour}, which is healthy", actor="deploy")
            ch.events.append(IncidentMitigated(service=inc.service, incident_id=inc.incident_id, by="deploy",
                                               note=f"rolled back to {event.from_version or event.colour}"))
            self._announce(ch, f"Monitoring: {inc.title}: rolled back to the previous version", public=False)
        elif inc.status == "open":
            self._arm(inc)
        await self._commit(ch)
        return inc

    async def _deploy_incident(self, service: str, *, joined_episode: str | None = None) -> Incident | None:
        """The service's unresolved incident opened by a rollback (with `joined_episode`: one that took in
        that trigger episode)."""
        for inc in reversed(await self.store.open_incidents()):
            if inc.service == service and inc.episode_id.startswith("deploy-") and (
                    joined_episode is None or any(f"(episode {joined_episode})" in e.text for e in inc.timeline)):
                return inc
        return None

    async def _incident_of(self, event: DeploymentRolledBack) -> Incident | None:
        """The unresolved incident this deploy already appears in, else the newest one of the service opened
        since the deploy began (the trigger its canary set off)."""
        mine = [i for i in await self.store.open_incidents() if i.service == event.service]
        for inc in reversed(mine):
            if any(f"[deploy {event.deploy_id}]" in e.text for e in inc.timeline):
                return inc
        since = event.started_at
        recent = [i for i in mine if since is not None and i.opened_at >= since]
        return recent[-1] if recent else None

    # --- the periodic tick --------------------------------------------------------------------------
    async def tick(self) -> None:
        """Escalate what is overdue, then send what is due (the relay)."""
        await self.escalate_overdue()
        await self.dispatch()

    async def escalate_overdue(self) -> list[Incident]:
        """Escalate every incident whose level's delay ran out without ack, mitigation or resolution (the
        escalated ones); page again those whose level repeats its page before that."""
        out = []
        for inc in await self.store.due_escalations(now=self.now()):
            if not inc.escalating or await self._silenced(inc.service):
                continue  # in maintenance: it escalates when the window ends (like an Alertmanager silence)
            level, since = self.policy.level(inc.level), self._level_since(inc)
            after = level.escalate_after
            ch = Change(inc, version=inc.version)
            repeat = level.repeat_every is not None and (after is None or self.now() < since + timedelta(seconds=after))
            if repeat:
                self._repeat_page(ch, since=since)
            else:
                why = f"not mitigated or acknowledged within {fmt_duration(after or 0)} at level {inc.level}"
                self._escalate(ch, reason=why)
            try:
                with continued(inc.traceparent, "incident escalate", tracer=__name__,
                               attributes={"safeguard.incident_id": inc.incident_id, "safeguard.level": inc.level}):
                    await self._commit(ch)
            except StaleIncident:
                continue  # another instance changed it first
            if not repeat:
                out.append(inc)
        return out

    # --- operators ----------------------------------------------------------------------------------
    async def acknowledge(self, incident_id: str, *, actor: str) -> Incident:
        inc = await self._open_or_raise(incident_id)
        if inc.acknowledged_by is not None:
            return inc
        ch = Change(inc, version=inc.version)
        inc.acknowledged_by, inc.escalate_at = actor, None
        self._entry(ch, "acknowledged", f"acknowledged at level {inc.level}; escalation stopped", actor=actor)
        ch.events.append(IncidentAcknowledged(service=inc.service, incident_id=incident_id, by=actor))
        self._announce(ch, f"Identified: {inc.title} is being worked on", public=False)
        await self._commit(ch)
        return inc

    async def resolve(self, incident_id: str, *, actor: str, note: str = "") -> Incident:
        inc = await self._open_or_raise(incident_id)
        return await self._resolve(inc, by=actor, note=note or "resolved by an operator")

    async def get(self, incident_id: str) -> Incident:
        inc = await self.store.get(incident_id)
        if inc is None:
            raise NotFound(incident_id)
        return inc

    # --- the relay ----------------------------------------------------------------------------------
    async def dispatch(self) -> None:
        """Send the due notices, all at once (a slow or failing channel does not hold up the others, and a page
        does not wait for Kafka), then publish the due outbox events in order (the notices' results last)."""
        await asyncio.gather(*(self._send(n) for n in await self.store.claim_notices(now=self.now(),
                                                                                      lease=self.lease)))
        await self._publish_due()

    async def _publish_due(self) -> None:
        for row in await self.store.claim_events(now=self.now(), lease=self.lease):
            try:
                await self.publisher.publish(row.event)
            except Exception as exc:  # noqa: BLE001 - kept in the outbox, tried again with backoff
                log.warning("publishing %s failed (attempt %d): %s", type(row.event).__name__, row.attempts + 1, exc)
                wait = min(2.0 ** row.attempts, 60.0)
                await self.store.event_failed(row.row_id, error=f"{type(exc).__name__}: {exc}"[:300],
                                              next_at=self.now() + timedelta(seconds=wait))
                return  # the broker is likely down: the rest waits for the next round, not a timeout each
            await self.store.event_sent(row.row_id)

    async def _send(self, notice: DeliveryRecord) -> None:
        inc = await self.store.get(notice.incident_id) if notice.incident_id else None
        with continued(inc.traceparent if inc else None, f"notice {notice.channel}", tracer=__name__, attributes={
                "safeguard.incident_id": notice.incident_id or "", "safeguard.attempt": notice.attempts + 1}) as span:
            ok = await self._deliver_notice(notice, inc)
            span.set_attribute("safeguard.ok", ok)

    async def _deliver_notice(self, notice: DeliveryRecord, inc: Incident | None) -> bool:
        """Send one notice and record the result (with its event); whether it went out."""
        attempts, common = notice.attempts + 1, {"service": inc.service if inc else "", "channel": notice.channel,
                                                 "incident_id": notice.incident_id, "recipient": notice.recipient}
        try:
            await self.sender.send(channel=cast(ChannelName, notice.channel), recipient=notice.recipient,
                                   message=notice.message, incident=inc)
        except Exception as exc:  # noqa: BLE001 - a failed notice is a result: recorded, published, redelivered
            error = f"{type(exc).__name__}: {exc}"[:300]
            expired = self.now() - notice.at >= timedelta(seconds=self.policy.webhook.expire_after)
            last = attempts >= self.policy.webhook.redeliveries or expired
            log.warning("notice to %s/%s failed (try %d%s): %s", notice.channel, notice.recipient, attempts,
                        ", giving up" if last else "", error)
            nxt = None if last else self.now() + timedelta(seconds=self.policy.webhook.redeliver_in(attempts))
            done = notice.model_copy(update={"ok": False, "error": error, "attempts": attempts, "next_at": nxt,
                                             "status": "failed" if last else "pending"})
            await self.store.notice_done(done, event=NotificationFailed(**common, error=error))
            return False
        done = notice.model_copy(update={"ok": True, "error": "", "attempts": attempts, "status": "sent",
                                         "next_at": None})
        await self.store.notice_done(done, event=NotificationDelivered(**common))
        return True

    # --- internals ----------------------------------------------------------------------------------
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

    def _arm(self, inc: Incident, *, since: datetime | None = None) -> None:
        """The next deadline at this level (from `since`, default now): the escalation, or a repeated page
        before it."""
        level = self.policy.level(inc.level)
        start, now = since or self.now(), self.now()
        due = [] if level.escalate_after is None else [start + timedelta(seconds=level.escalate_after)]
        if level.repeat_every is not None and inc.level > 1:
            due.append(now + timedelta(seconds=level.repeat_every))
        inc.escalate_at = min(due) if inc.escalating and due else None

    @staticmethod
    def _level_since(inc: Incident) -> datetime:
        """When the incident reached its level (its last escalation, else its opening)."""
        return next((e.at for e in reversed(inc.timeline) if e.kind == "escalated"), inc.opened_at)

    def _escalate(self, ch: Change, *, reason: str) -> None:
        inc = ch.incident
        inc.level += 1
        level = self.policy.level(inc.level)
        self._entry(ch, "escalated", f"level {inc.level}: {level.name} ({reason})")
        self._arm(inc, since=inc.timeline[-1].at)
        ch.events.append(IncidentEscalated(service=inc.service, incident_id=inc.incident_id, level=inc.level,
                                           target=level.name))
        self._page(ch, f"[L{inc.level} {level.name}] {inc.severity.upper()} {inc.title}: {reason}")
        self._deliver(ch, "status_page", "status", f"Escalated to {level.name}: {inc.title}")

    def _repeat_page(self, ch: Change, *, since: datetime) -> None:
        """Page the level's contacts again (still unacknowledged) and arm the next deadline."""
        inc, level = ch.incident, self.policy.level(ch.incident.level)
        waited = fmt_duration((self.now() - since).total_seconds())
        people = self._page(ch, f"[L{inc.level} {level.name}] {inc.severity.upper()} {inc.title}: "
                                f"still not acknowledged after {waited} (repeat)")
        self._entry(ch, "notified", f"page repeated to {', '.join(people)}: not acknowledged after {waited}")
        self._arm(inc, since=since)

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

    async def _resolve(self, inc: Incident, *, by: str, note: str) -> Incident:
        with continued(inc.traceparent, "incident resolve", tracer=__name__,
                       attributes={"safeguard.incident_id": inc.incident_id, "safeguard.by": by}):
            return await self._resolved(inc, by=by, note=note)

    async def _resolved(self, inc: Incident, *, by: str, note: str) -> Incident:
        ch = Change(inc, version=inc.version)
        at = self.now()
        inc.status, inc.resolved_at, inc.resolved_by, inc.escalate_at = "resolved", at, by, None
        duration = (at - inc.opened_at).total_seconds()
        self._entry(ch, "resolved", f"{note}; duration {fmt_duration(duration)}", actor=by)
        # the report is written with the change, so whoever reads IncidentResolved can fetch it
        impact = None if self.impact is None else await self.impact.impact(service=inc.service, start=inc.opened_at,
                                                                            end=at)
        ch.report = render_report(inc, targets=self.policy.targets, budget_note=self.budget_notes.get(inc.service),
                                  impact=impact)
        ch.events.append(IncidentResolved(service=inc.service, incident_id=inc.incident_id, by=by,
                                          duration_seconds=max(duration, 0.0)))
        self._announce(ch, f"Resolved: {inc.title} (after {fmt_duration(duration)})", public=True)
        await self._commit(ch)
        return inc

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
