"""Safeguard watches its own processors: a dead man's switch for the machine that pages people.

The SLA processor makes every runbook trigger, recovery acts on them, the notifier pages. When the SLA processor
or recovery hangs (a process stopped, not dead: no restart policy sees it), no trigger can fire and no one is told.
So the health service, which probes them every 30 s anyway, fires the trigger itself, as Gatus alerts on its own
failed checks and Alertmanager's Watchdog alert exists to be missed: a target marked `watchdog: true` in
`config/health.yaml` that goes down (`down_after` failed checks in a row) fires `unresponsive` on `sla.triggers`,
and clears it once it is up again (`up_after` passed checks). The notifier opens an incident; recovery restarts
a hung SLA processor (`unresponsive: {action: restart_process, services: [sla]}` in `config/recovery.yaml`), and
for recovery itself, which cannot restart itself, the notifier pages the on-call level at once (`page_at_once`
in `config/notifier.yaml`).

Episodes are named as the SLA processor names its own (`<service>/unresponsive/<first failure, ms>`), with
event ids derived from them, so a repeat is deduplicated downstream. After a restart of the health service the
open episode is found in the status feed (`open_episode`, the triggers it has read from `sla.triggers`), so an
outage that began before the restart is cleared, and not fired a second time. For that the feed must have
read the topic first: nothing is fired in the first `grace_s` (30 s) after the start, while a target that is
down at the start reaches "down" in about 3 s (probes 1 s apart until its first verdict).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from uuid import NAMESPACE_URL, uuid5

from services.health.service import TargetState
from shared.events import UNRESPONSIVE, Event, TriggerCleared, TriggerFired

__all__ = ["Watchdog", "TRIGGER"]

log = logging.getLogger(__name__)
TRIGGER = UNRESPONSIVE


class Watchdog:
    def __init__(self, *, watched: set[str], down_after: int, interval_s: float,
                 open_episode: Callable[[str], str | None] = lambda service: None, grace_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.watched, self.down_after, self.interval_s = watched, down_after, interval_s
        self.clock, self.quiet_until = clock, clock() + grace_s
        self.open_episode = open_episode  # what the status feed knows is open, by service
        self.fired: dict[str, str] = {}  # service -> episode fired by this process, not cleared yet
        self.cleared: set[str] = set()

    def observe(self, target: str, state: TargetState, *, now: datetime) -> list[Event]:
        """The trigger events a target's new verdict makes (none for a target not watched)."""
        if target not in self.watched:
            return []
        service = state.service
        episode = self.fired.get(service) or self.open_episode(service)
        if state.state == "down" and episode is None:
            return [] if self.clock() < self.quiet_until else [self._fire(target, state, now=now)]
        if state.state == "up" and episode is not None and episode not in self.cleared:
            self.fired.pop(service, None)
            self.cleared.add(episode)
            log.warning("%s answers its health checks again: %s cleared", service, TRIGGER,
                        extra={"episode_id": episode})
            return [TriggerCleared(id=uuid5(NAMESPACE_URL, f"{episode}#cleared"), time=now, service=service,
                                   trigger=TRIGGER, episode_id=episode, value=0.0, threshold=float(self.down_after),
                                   instance=target, reason=f"{target} passed {state.successes} health checks in a row")]
        return []

    def unsent(self, event: Event) -> None:
        """`event` could not be published (Kafka away): the next verdict makes it again."""
        if isinstance(event, TriggerFired):
            self.fired.pop(event.service, None)
        elif isinstance(event, TriggerCleared):
            self.cleared.discard(event.episode_id)
            self.fired[event.service] = event.episode_id

    def _fire(self, target: str, state: TargetState, *, now: datetime) -> TriggerFired:
        first = state.failing_since or now
        episode = f"{state.service}/{TRIGGER}/{int(first.timestamp() * 1000)}"
        self.fired[state.service] = episode
        message = state.last.message if state.last is not None else ""
        log.error("%s has failed %d health checks in a row: %s fired (%s)", state.service, state.failures, TRIGGER,
                  message, extra={"episode_id": episode, "alert": "safeguard_unresponsive"})
        return TriggerFired(id=uuid5(NAMESPACE_URL, f"{episode}#fired"), time=now, service=state.service,
                            trigger=TRIGGER, episode_id=episode, value=float(state.failures),
                            threshold=float(self.down_after), window_seconds=self.down_after * self.interval_s,
                            samples=state.failures, first_bad_at=first, instance=target,
                            detail=f"{target}: {message}"[:500] if message else target)
