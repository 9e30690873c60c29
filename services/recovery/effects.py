"""What recovery keeps after acting (issue 14): the verified effect of each action, and the features it turned
off, which stay off until a person turns them on (nothing automatic turns a flag back on).

`ActionView` is an audit row as `GET /api/recovery/actions` shows it; `FlagKill` is recovery's newest kill
of one flag, and `KeptOff` the same with whether it is still off by recovery's hand (the flag's newest audit
entry in the flags service is that kill), as `GET /api/recovery/kept-off` shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from services.recovery.models import ActionRecord

__all__ = ["ActionView", "FlagKill", "KeptOff", "Outcome", "RECOVERY_ACTOR", "kept_off_text"]

Outcome = Literal["verified", "not_seen"]
RECOVERY_ACTOR = "admin:recovery"  # how the flags service audits recovery's kill (admin token, actor "recovery")


class ActionView(ActionRecord):
    """`verify_outcome`: "verified" (`effect` was seen `verify_seconds` after the start, at `verified_at`),
    "not_seen" (nothing within the check's timeout), or None (not looked at, or still looking);
    `killed_flags`: the flags a disable_new_features turned off."""

    verify_outcome: Outcome | None = None
    effect: str | None = None
    verified_at: datetime | None = None
    verify_seconds: float | None = None
    killed_flags: list[str] = []


class FlagKill(BaseModel):
    """Recovery's newest kill of `flag`: by which action, for which service and episode, when."""

    flag: str
    action_id: str
    service: str
    trigger: str | None = None
    episode_id: str | None = None
    reason: str = ""
    killed_at: datetime


class KeptOff(FlagKill):
    """`kept_off`: True while the flag's newest change is recovery's kill (a person has not turned it on or
    changed it since), False once a person did (`changed_by`, `changed_at`), None when the flags service did
    not answer."""

    kept_off: bool | None
    changed_by: str | None = None
    changed_at: datetime | None = None
    text: str = ""


def kept_off_text(kill: FlagKill) -> str:
    """The sentence the console and the report show for a flag recovery keeps off."""
    why = f" for episode {kill.episode_id}" if kill.episode_id else ""
    return (f"turned off by recovery at {kill.killed_at:%H:%M} UTC{why} ({kill.service}"
            f"{', ' + kill.trigger if kill.trigger else ''}): stays off until a person turns it on")
