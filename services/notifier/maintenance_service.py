"""The core of maintenance windows: schedule (checked; refused inside business hours unless forced), cancel, list by
phase, and the tick that tells subscribers a window began or ended. No framework imports; the store and clock are
ports. The store writes each change with its event for `maintenance.windows` (the SLA processor's source)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.notifier.maintenance import (
    MaintenanceCreate, MaintenanceWindow, Phase, business_hours_warning, cancelled_event, phase, problems,
    scheduled_event,
)
from services.notifier.maintenance_store import MaintenanceStore
from services.notifier.policy import MaintenancePolicy
from services.notifier.subscriptions import Notice, NoticeType

__all__ = ["MaintenanceService", "Invalid", "NotFound", "Conflict", "InBusinessHours", "window_notice", "public_view"]

log = logging.getLogger(__name__)
_AUDIT = ("created_by", "cancelled_by", "forced")


class Invalid(ValueError):
    """The window cannot be scheduled; `problems` say why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class NotFound(LookupError):
    """No such window."""


class Conflict(ValueError):
    """The window is over or already cancelled."""


class InBusinessHours(ValueError):
    """The window overlaps business hours and was not forced; the message names the overlap."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def window_notice(w: MaintenanceWindow, kind: NoticeType, *, at: datetime) -> Notice:
    what = {"maintenance.scheduled": "Scheduled maintenance", "maintenance.started": "Maintenance in progress",
            "maintenance.finished": "Maintenance completed", "maintenance.cancelled": "Maintenance cancelled"}[kind]
    when = f"{w.starts_at:%Y-%m-%d %H:%M}-{w.ends_at:%Y-%m-%d %H:%M} UTC"
    return Notice(notice_id=f"{w.window_id}:{kind}", type=kind, at=at, title=w.title, window_id=w.window_id,
                  message=f"{what}: {w.title} ({', '.join(w.components)}; {when})", components=w.components,
                  starts_at=w.starts_at, ends_at=w.ends_at)


def public_view(w: MaintenanceWindow, *, now: datetime) -> dict[str, Any]:
    """What the status page shows (who scheduled it is for operators: `GET /api/maintenance`)."""
    return {**w.model_dump(mode="json", exclude=set(_AUDIT) | {"cancelled_at"}), "phase": phase(w, now)}


class MaintenanceService:
    def __init__(self, *, store: MaintenanceStore, policy: MaintenancePolicy,
                 now: Callable[[], datetime] = _utcnow) -> None:
        self.store, self.policy, self.now = store, policy, now

    async def schedule(self, req: MaintenanceCreate, *, actor: str, force: bool = False,
                       ) -> tuple[MaintenanceWindow, list[str]]:
        """The window written (with its notice to subscribers and its event) and the warnings; `Invalid` when it
        cannot be, `InBusinessHours` when it overlaps business hours and `force` is off (runbook: planned
        maintenance outside business hours). A forced one is marked `forced`, with who forced it."""
        now = self.now()
        start = req.starts_at or now
        found = problems(req, now=now, policy=self.policy)
        if found:
            raise Invalid(found)
        overlap = business_hours_warning(start, req.ends_at, self.policy.business_hours)
        if overlap and not force:
            raise InBusinessHours(f"refused: {overlap}; schedule it outside them, or add ?force=true to schedule "
                                  "it anyway (recorded as forced, with who did it)")
        w = MaintenanceWindow(window_id="mw-" + uuid.uuid4().hex[:12], title=req.title, description=req.description,
                              components=req.components, starts_at=start.astimezone(UTC),
                              ends_at=req.ends_at.astimezone(UTC), created_by=actor, created_at=now,
                              forced=bool(overlap))
        await self.store.add(w, notice=window_notice(w, "maintenance.scheduled", at=now), event=scheduled_event(w))
        log.info("maintenance %s scheduled by %s: %s %s-%s", w.window_id, actor, w.components,
                 w.starts_at.isoformat(), w.ends_at.isoformat())
        if overlap:
            log.warning("maintenance %s forced into business hours by %s", w.window_id, actor)
        return w, [f"forced by {actor}: {overlap}"] if overlap else []

    async def cancel(self, window_id: str, *, actor: str) -> MaintenanceWindow:
        """Upcoming: called off (subscribers told). In progress: ends now (the tick announces the end)."""
        w = await self.store.get(window_id)
        if w is None:
            raise NotFound(window_id)
        now = self.now()
        current = phase(w, now)
        if current in ("past", "cancelled") or w.cancelled_at is not None:
            raise Conflict(f"maintenance {window_id} is {'over' if current == 'past' else 'already cancelled'}")
        done = w.model_copy(update={"cancelled_by": actor, "cancelled_at": now,
                                    "ends_at": w.ends_at if current == "upcoming" else now})
        notice = window_notice(done, "maintenance.cancelled", at=now) if current == "upcoming" else None
        if not await self.store.cancel(done, notice=notice, event=cancelled_event(done)):
            raise Conflict(f"maintenance {window_id} is already cancelled")
        log.info("maintenance %s cancelled by %s (%s)", window_id, actor, current)
        return done

    async def listing(self, *, past: timedelta) -> dict[Phase, list[MaintenanceWindow]]:
        now = self.now()
        out: dict[Phase, list[MaintenanceWindow]] = {"in_progress": [], "upcoming": [], "past": [], "cancelled": []}
        for w in await self.store.windows(ending_after=now - past):
            out[phase(w, now)].append(w)
        out["past"].reverse()  # newest first
        return out

    async def tick(self) -> None:
        """Announce the windows that began or ended since the last tick (once each, across instances)."""
        now = self.now()
        begun, ended = await self.store.transitions(now=now, notice=lambda w, kind: window_notice(w, kind, at=now))
        for w in begun:
            log.info("maintenance %s began: %s", w.window_id, w.title)
        for w in ended:
            log.info("maintenance %s ended: %s", w.window_id, w.title)
