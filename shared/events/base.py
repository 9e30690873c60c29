"""The base every event and command derives from."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Event", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """A fact (past tense) or a command (imperative) carried on one Kafka topic.

    `id` becomes the CloudEvents `ce_id` header (consumers dedupe on it); `time` becomes
    `ce_time`. Subclasses set `type` (a dotted Literal, the discriminator), `topic` and
    `key_field`: the field whose value is the Kafka key, so one aggregate stays in order
    on one partition.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    topic: ClassVar[str]
    key_field: ClassVar[str] = "service"

    id: UUID = Field(default_factory=uuid4, description="Unique event id (CloudEvents ce_id).")
    time: datetime = Field(default_factory=utcnow, description="When it happened (UTC).")

    @property
    def key(self) -> str:
        return str(getattr(self, self.key_field))
