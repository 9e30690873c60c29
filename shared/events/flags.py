"""Events about feature flags."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, NonNegativeInt

from shared import topics
from shared.events.base import Event

__all__ = ["FlagChanged", "FlagSnapshot", "FlagAction"]

FlagAction = Literal[
    "created", "updated", "deleted", "enabled", "disabled", "killed", "rollout", "scheduled", "imported"
]


class FlagChanged(Event):
    """A flag was changed through the flag API: who did what, before and after, and why."""

    topic: ClassVar[str] = topics.FLAGS_CHANGES
    key_field: ClassVar[str] = "flag_key"
    type: Literal["flags.flag_changed"] = "flags.flag_changed"
    flag_key: str = Field(min_length=1)
    action: FlagAction
    actor: str = Field(min_length=1)
    reason: str = ""
    version: NonNegativeInt
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class FlagSnapshot(Event):
    """The full current definition of one flag (flagd format) on the compacted `flags.state`.

    A delete is published as a Kafka tombstone (null value) with the flag key.
    """

    topic: ClassVar[str] = topics.FLAGS_STATE
    key_field: ClassVar[str] = "flag_key"
    type: Literal["flags.flag_snapshot"] = "flags.flag_snapshot"
    flag_key: str = Field(min_length=1)
    version: NonNegativeInt
    definition: dict[str, Any]
