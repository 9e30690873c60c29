"""Escalation L1-L4 and acknowledgement: an incident nobody acknowledges, mitigates or resolves climbs a
level when its level's delay runs out (or when auto-recovery fails), its pages repeat while unanswered,
and an acknowledgement stops both. Deadlines live in the store, so any instance's tick escalates."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.notifier.core import IncidentCore, StaleIncident
from services.notifier.models import Change, Incident
from services.notifier.relay import SCOPE
from services.notifier.report import fmt_duration
from shared.events import IncidentAcknowledged, RecoveryActionFailed
from shared.tracing_links import continued

__all__ = ["Escalation"]


class Escalation(IncidentCore):
    async def tick(self) -> None:
        """Escalate what is overdue, then send what is due (the relay)."""
        await self.escalate_overdue()
        await self.dispatch()

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
                with continued(inc.traceparent, "incident escalate", tracer=SCOPE,
                               attributes={"safeguard.incident_id": inc.incident_id, "safeguard.level": inc.level}):
                    await self._commit(ch)
            except StaleIncident:
                continue  # another instance changed it first
            if not repeat:
                out.append(inc)
        return out

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

    @staticmethod
    def _level_since(inc: Incident) -> datetime:
        """When the incident reached its level (its last escalation, else its opening)."""
        return next((e.at for e in reversed(inc.timeline) if e.kind == "escalated"), inc.opened_at)

    def _repeat_page(self, ch: Change, *, since: datetime) -> None:
        """Page the level's contacts again (still unacknowledged) and arm the next deadline."""
        inc, level = ch.incident, self.policy.level(ch.incident.level)
        waited = fmt_duration((self.now() - since).total_seconds())
        people = self._page(ch, f"[L{inc.level} {level.name}] {inc.severity.upper()} {inc.title}: "
                                f"still not acknowledged after {waited} (repeat)")
        self._entry(ch, "notified", f"page repeated to {', '.join(people)}: not acknowledged after {waited}")
        self._arm(inc, since=since)

