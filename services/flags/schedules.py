"""Scheduled changes: kept in the store, claimed when due (one instance runs each), applied as a change
audited as done by `scheduler:<who asked>`."""

from __future__ import annotations

from services.flags import rules
from services.flags.changes import Changes
from services.flags.models import ScheduleCreate, ScheduleRead
from services.flags.ports import ScheduleStore
from services.flags.state import FlagState
from shared.ports import Clock

__all__ = ["Schedules"]


class Schedules:
    def __init__(self, *, store: ScheduleStore, state: FlagState, changes: Changes, clock: Clock) -> None:
        self.store = store
        self.state = state
        self.changes = changes
        self.clock = clock

    async def add(self, key: str, body: ScheduleCreate, *, actor: str) -> ScheduleRead:
        if self.state.get(key) is None:
            raise rules.FlagNotFound(key)
        return await self.state.guarded(self.store.add_schedule(
            key, action=body.action, percent=body.percent, run_at=body.at, reason=body.reason, requested_by=actor))

    async def find(self, key: str | None) -> list[ScheduleRead]:
        return await self.state.guarded(self.store.schedules(key))

    async def cancel(self, key: str, schedule_id: int) -> bool:
        return await self.state.guarded(self.store.cancel_schedule(key, schedule_id))

    async def run_due(self) -> int:
        """Apply scheduled changes whose time has come. Returns how many were due."""
        due = await self.store.due_schedules(self.clock())
        for s in due:
            try:
                await self._run(s)
                await self.store.finish_schedule(s.id, status="done", error=None)
            except (rules.FlagNotFound, ValueError) as exc:
                await self.store.finish_schedule(s.id, status="failed", error=str(exc))
        return len(due)

    async def _run(self, s: ScheduleRead) -> None:
        actor = f"scheduler:{s.requested_by}"
        reason = s.reason or f"scheduled change #{s.id}"
        if s.action == "rollout":
            assert s.percent is not None
            await self.changes.rollout(s.flag_key, s.percent, actor=actor, reason=reason)
        else:
            await self.changes.set_enabled(s.flag_key, enabled=s.action == "enable", actor=actor, reason=reason,
                                           kill=s.action == "kill")
