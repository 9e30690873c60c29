"""The watcher's watcher: the notifier watches the health service.

The health service is the watchdog of the SLA processor and recovery (services/health/watchdog.py); who tells
anyone when the health service itself hangs? The notifier reads it every 10 s for the status page anyway
(`StatusSources`), so when those reads have failed for `after_s` (60 s) it opens the same `unresponsive`
incident for `health` through its own path (no Kafka in between: the notifier is the one that pages), which
pages level 2 at once (`page_at_once`), and resolves it once a read succeeds again.

No state of its own: the open incident is found in the incident store, so a restart of the notifier during an
outage neither opens a second one nor leaves the first unresolved. The notifier itself is watched from outside,
as Alertmanager's Watchdog is: see `docs/notifier.md` ("Who watches the notifier").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from services.notifier.models import Incident
from services.notifier.service import NotifierService
from services.notifier.status_sources import Snapshot
from shared.events import UNRESPONSIVE, TriggerCleared, TriggerFired, utcnow

__all__ = ["HealthWatch", "SERVICE", "TRIGGER"]

log = logging.getLogger(__name__)
SERVICE, TRIGGER = "health", UNRESPONSIVE


class HealthWatch:
    def __init__(self, svc: NotifierService, *, after_s: float, clock: Callable[[], datetime] = utcnow) -> None:
        self.svc, self.after_s, self.clock = svc, after_s, clock
        self.failing_since: datetime | None = None
        self.failed = 0

    async def observe(self, snapshot: Snapshot) -> None:
        """One round of the status sources: open, or resolve, the health service's incident."""
        error = next((e for e in snapshot.errors if e.startswith(f"{SERVICE} service")), None)
        now = self.clock()
        if error is None:
            self.failing_since, self.failed = None, 0
            for inc in await self._open():
                log.warning("the health service answers again: resolving %s", inc.incident_id)
                await self.svc.resolve_on_clear(TriggerCleared(
                    time=now, service=SERVICE, trigger=TRIGGER, episode_id=inc.episode_id, value=0.0,
                    threshold=self.after_s, instance=SERVICE, reason="the notifier's reads of it succeed again"))
            return
        self.failing_since, self.failed = self.failing_since or now, self.failed + 1
        if (now - self.failing_since).total_seconds() < self.after_s or await self._open():
            return
        episode = f"{SERVICE}/{TRIGGER}/{int(self.failing_since.timestamp() * 1000)}"
        log.error("the health service has not answered for %.0f s: %s", (now - self.failing_since).total_seconds(),
                  error, extra={"episode_id": episode, "alert": "safeguard_unresponsive"})
        await self.svc.open_incident(TriggerFired(
            time=now, service=SERVICE, trigger=TRIGGER, episode_id=episode, value=float(self.failed),
            threshold=float(self.failed), window_seconds=self.after_s, samples=self.failed,
            first_bad_at=self.failing_since, instance=SERVICE, detail=f"read by the notifier: {error}"[:500]))

    async def _open(self) -> list[Incident]:
        return [i for i in await self.svc.store.open_incidents() if i.service == SERVICE and i.trigger == TRIGGER]
