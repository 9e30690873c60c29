"""Pause / resume of automatic recovery (issue 14), for every service (`*`) or one.

While a scope is paused, a fired trigger is still recorded (an action `skipped` with the detail
"paused: ..."), but no command is sent and no flag is killed; an operator's `POST /api/recovery/run`
still acts (pausing hands control to people, it does not tie their hands). On resume, the triggers still
firing that were skipped while paused are acted on (once each, actor `recovery:resumed`). The state is the newest
change per scope in the store, so every instance and a restart see it, and the changes are the audit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from services.recovery.models import ActionRecord

__all__ = ["EVERYTHING", "PauseEntry", "PauseRequest", "PauseView", "PauseStore", "MemoryPauseStore",
           "pause_reason", "view"]

EVERYTHING = "*"


class PauseRequest(BaseModel):
    """`POST /api/recovery/pause|resume`: without `service`, every service."""

    model_config = ConfigDict(extra="forbid")
    service: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    reason: str = Field(default="", max_length=500)


class PauseEntry(BaseModel):
    """One change: `scope` ("*" or a service) paused or resumed by `actor` at `at`."""

    scope: str
    paused: bool
    actor: str
    reason: str = ""
    at: datetime


class PauseView(BaseModel):
    """`paused`: automatic recovery is paused for every service; `scopes`: what is paused now (with who and
    since when); `history`: the latest changes, newest first. After a resume, `acted`: the actions taken on
    triggers still firing that were skipped while paused, or `not_acted`: why they could not be taken now."""

    paused: bool
    scopes: list[PauseEntry]
    history: list[PauseEntry]
    acted: list[ActionRecord] = Field(default_factory=list)
    not_acted: str | None = None


class PauseStore(Protocol):
    async def record(self, entry: PauseEntry) -> None: ...
    async def paused(self) -> list[PauseEntry]: ...
    async def history(self, *, limit: int) -> list[PauseEntry]: ...


def pause_reason(paused: list[PauseEntry], *, service: str) -> str | None:
    """Why automatic recovery must not act for `service` now ("paused: ..."), or None."""
    for entry in paused:
        if entry.scope in (EVERYTHING, service):
            what = "for every service" if entry.scope == EVERYTHING else f"for {service}"
            why = f": {entry.reason}" if entry.reason else ""
            return f"paused: auto-recovery paused {what} by {entry.actor} at {entry.at:%Y-%m-%d %H:%M:%S} UTC{why}"
    return None


async def view(store: PauseStore, *, limit: int = 20) -> PauseView:
    scopes = await store.paused()
    return PauseView(paused=any(e.scope == EVERYTHING for e in scopes), scopes=scopes,
                     history=await store.history(limit=limit))


class MemoryPauseStore:
    """The same in a list (unit tests, and a service built without Postgres)."""

    def __init__(self) -> None:
        self.entries: list[PauseEntry] = []

    async def record(self, entry: PauseEntry) -> None:
        self.entries.append(entry)

    async def paused(self) -> list[PauseEntry]:
        newest: dict[str, PauseEntry] = {}
        for entry in self.entries:
            newest[entry.scope] = entry
        return sorted((e for e in newest.values() if e.paused), key=lambda e: e.scope)

    async def history(self, *, limit: int) -> list[PauseEntry]:
        return list(reversed(self.entries))[:limit]
