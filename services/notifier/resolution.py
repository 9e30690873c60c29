"""Mitigation and resolution: recovery's actions go into the incident's timeline, a verified effect (or
the action's success) marks it mitigated, and a cleared trigger or an operator resolves it, writing the
post-incident report with the same change."""

from __future__ import annotations

from services.notifier import grouping
from services.notifier.core import IncidentCore, detector_of, incident_id_for
from services.notifier.models import Change, Incident
from services.notifier.relay import SCOPE
from services.notifier.report import VERIFIED, fmt_duration, kept_off_note, render_report
from shared.events import (
    IncidentMitigated, IncidentResolved, RecoveryActionStarted, RecoveryActionSucceeded, RecoveryActionVerified,
    TriggerCleared,
)
from shared.humanize import describe_clear
from shared.tracing_links import continued

__all__ = ["Resolution"]


class Resolution(IncidentCore):
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
                        actor=detector_of(event.trigger, event.service))
            await self._commit(ch)
            return None
        return await self._resolve(inc, by=detector_of(event.trigger, event.service), note=note)

    async def resolve(self, incident_id: str, *, actor: str, note: str = "") -> Incident:
        inc = await self._open_or_raise(incident_id)
        return await self._resolve(inc, by=actor, note=note or "resolved by an operator")

    async def _resolve(self, inc: Incident, *, by: str, note: str) -> Incident:
        with continued(inc.traceparent, "incident resolve", tracer=SCOPE,
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
