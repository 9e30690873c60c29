"""Features recovery turned off stay off until a person turns them on: nothing in recovery turns a flag back
on (not the clear, not the end of an episode). This says, for each flag recovery killed last, whether it is
still off by recovery's hand: the flag's newest change in the flags service is that kill."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, runtime_checkable

import httpx

from services.recovery.effects import RECOVERY_ACTOR, FlagKill, KeptOff, kept_off_text
from services.recovery.flags_client import Change

__all__ = ["FlagsAudit", "kept_off"]

log = logging.getLogger(__name__)


@runtime_checkable
class FlagsAudit(Protocol):
    async def newest_change(self, key: str) -> Change | None: ...


async def _one(kill: FlagKill, audit: FlagsAudit | None) -> KeptOff:
    base = kill.model_dump() | {"text": kept_off_text(kill)}
    if audit is None:
        return KeptOff(**base, kept_off=None)
    try:
        change = await audit.newest_change(kill.flag)
    except (httpx.HTTPError, RuntimeError) as exc:
        log.warning("flags audit of %s not read: %s", kill.flag, type(exc).__name__)
        return KeptOff(**base, kept_off=None)
    if change is None:
        return KeptOff(**base, kept_off=False, changed_by="(deleted)")
    if change.actor == RECOVERY_ACTOR and change.action == "killed":
        return KeptOff(**base, kept_off=True)
    return KeptOff(**base, kept_off=False, changed_by=change.actor, changed_at=change.at)


async def kept_off(kills: list[FlagKill], *, audit: FlagsAudit | None) -> list[KeptOff]:
    """Each kill with whether the flag is still off by recovery (None: the flags service did not say)."""
    return list(await asyncio.gather(*(_one(k, audit) for k in kills)))
