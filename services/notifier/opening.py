"""Opening and joining incidents: a fired trigger opens one incident per (service, episode), unless it
joins the rollback in progress or the incident it is a consequence of (grouping.py); a rolled-back deploy
joins the incident its canary set off or opens its own."""

from __future__ import annotations

import logging

from opentelemetry import trace

from services.notifier import grouping
from services.notifier.core import IncidentCore, detector_of, incident_id_for
from services.notifier.models import Change, Incident, TimelineEntry
from services.notifier.relay import SCOPE
from services.notifier.report import fmt_duration
from shared.events import DeploymentRolledBack, IncidentMitigated, IncidentOpened, TriggerFired
from shared.humanize import describe_trigger
from shared.tracing_links import current_traceparent

__all__ = ["Opening"]

log = logging.getLogger(SCOPE)
_tracer = trace.get_tracer(SCOPE)


class Opening(IncidentCore):
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
        if await self._join(event, title=title):
            return None
        ch = self._opened(event, incident_id=iid, title=title)
        return ch.incident if await self._commit(ch) else None

    async def _join(self, event: TriggerFired, *, title: str) -> bool:
        """Write the trigger into the rollback in progress (the same root cause) or into the incident whose
        trigger it is a consequence of (grouping.py): one incident, not two; whether it joined one."""
        joined = await self._deploy_incident(event.service)
        if joined is not None:
            text = f"{title} (episode {event.episode_id}) during the rollback"
        else:
            joined = grouping.joining(await self.store.open_incidents(), service=event.service,
                                      trigger=event.trigger, now=self.now())
            if joined is None:
                return False
            text = grouping.joined_text(title=title, trigger=event.trigger, episode_id=event.episode_id, into=joined)
        ch = Change(joined, version=joined.version)
        self._entry(ch, "action", text, actor="sla")
        await self._commit(ch)
        return True

    def _opened(self, event: TriggerFired, *, incident_id: str, title: str) -> Change:
        """The new incident at level 1, armed, announced, with when the SLA processor first saw it bad; at
        level 2 at once for a trigger nothing at level 1 acts on (`page_at_once`)."""
        inc = Incident(incident_id=incident_id, service=event.service, trigger=event.trigger,
                       episode_id=event.episode_id, title=title, severity=self.policy.severity_of(event.trigger),
                       opened_at=self.now(), traceparent=current_traceparent())
        ch = Change(inc, version=None)
        by = detector_of(event.trigger, event.service)
        self._entry(ch, "opened", f"{title}{'; ' + event.detail if event.detail else ''}; "
                                  f"level 1: {self.policy.level(1).name}", actor=by)
        if event.first_bad_at is not None and event.first_bad_at < inc.opened_at:
            first = "first bad at the SLA processor" if by == "sla" else "first failed health check"
            detected = TimelineEntry(at=event.first_bad_at, kind="detected", actor=by,
                                     text=f"{first}; detected after "
                                          f"{fmt_duration((inc.opened_at - event.first_bad_at).total_seconds())}")
            inc.timeline.append(detected)
            ch.entries.append(detected)
        self._arm(inc)
        ch.events.append(IncidentOpened(service=inc.service, incident_id=incident_id, title=title,
                                        severity=inc.severity, trigger=event.trigger, episode_id=event.episode_id))
        self._announce(ch, f"Investigating: {title}", public=True)
        if self.policy.pages_at_once(event.service, event.trigger):
            self._escalate(ch, reason=f"no automatic recovery answers {event.trigger}")
        return ch

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
