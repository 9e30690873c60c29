"""The on-call schedule (`config/oncall.yaml`): people, rotations that hand off at a local time of day in
their time zone, and overrides (a person stands in for a period). Pure: `who(rotation, at=...)`.

A rotation's shifts are counted on its wall clock, so a hand-off stays at 09:00 local across a DST change
(like PagerDuty's and Opsgenie's schedules).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from shared.policy import PositiveDuration, Strict, load_yaml

__all__ = ["OnCallSchedule", "Rotation", "Override", "Person", "load_oncall"]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class Person(Strict):
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")


class Rotation(Strict):
    """`start`: the first hand-off, local time in `timezone` (no offset); `shift`: each member's turn
    (e.g. 1d, 7d); members take turns in order."""

    name: str = Field(min_length=1)
    timezone: str = "UTC"
    start: datetime
    shift: PositiveDuration = 7 * 86400.0
    members: list[str] = Field(min_length=1)

    _known_zone = field_validator("timezone")(_zone)

    @field_validator("start")
    @classmethod
    def _local(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("give the local time without an offset (the rotation's timezone applies)")
        return value

    def member_at(self, at: datetime) -> str:
        local = at.astimezone(ZoneInfo(self.timezone)).replace(tzinfo=None)
        turn = (local - self.start) // timedelta(seconds=self.shift)
        return self.members[turn % len(self.members)]

    def next_handoff(self, at: datetime) -> datetime:
        tz = ZoneInfo(self.timezone)
        local = at.astimezone(tz).replace(tzinfo=None)
        turn = (local - self.start) // timedelta(seconds=self.shift)
        return (self.start + (turn + 1) * timedelta(seconds=self.shift)).replace(tzinfo=tz)


class Override(Strict):
    """`person` is on call in `rotation` from `start` to `end` (with an offset, or in the rotation's zone)."""

    rotation: str
    person: str
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class OnCallSchedule(Strict):
    people: dict[str, Person] = Field(default_factory=dict)
    rotations: list[Rotation] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_names(self) -> OnCallSchedule:
        names = {r.name for r in self.rotations}
        if len(names) != len(self.rotations):
            raise ValueError("rotation names must be unique")
        for r in self.rotations:
            unknown = [m for m in r.members if m not in self.people]
            if unknown:
                raise ValueError(f"rotation {r.name}: {', '.join(unknown)} not in people")
        for i, o in enumerate(self.overrides):
            if o.rotation not in names:
                raise ValueError(f"overrides.{i}: no rotation {o.rotation!r}")
            if o.person not in self.people:
                raise ValueError(f"overrides.{i}: {o.person!r} not in people")
        return self

    def _covers(self, o: Override, at: datetime) -> bool:
        zone = ZoneInfo(self._rotation(o.rotation).timezone)
        start, end = (t if t.tzinfo else t.replace(tzinfo=zone) for t in (o.start, o.end))
        return start <= at < end

    def _end(self, o: Override) -> datetime:
        return o.end if o.end.tzinfo else o.end.replace(tzinfo=ZoneInfo(self._rotation(o.rotation).timezone))

    def _rotation(self, name: str) -> Rotation:
        return next(r for r in self.rotations if r.name == name)

    def has(self, rotation: str) -> bool:
        return any(r.name == rotation for r in self.rotations)

    def who(self, rotation: str, *, at: datetime) -> str:
        """The person on call in `rotation` at `at` (the last override covering `at` wins)."""
        for o in reversed(self.overrides):
            if o.rotation == rotation and self._covers(o, at):
                return o.person
        return self._rotation(rotation).member_at(at)

    def email(self, person: str) -> str | None:
        p = self.people.get(person)
        return p.email if p else None

    def now(self, *, at: datetime) -> list[dict[str, object]]:
        """Who is on call in each rotation, and until when (the next hand-off; an override's end if sooner)."""
        out: list[dict[str, object]] = []
        for r in self.rotations:
            until = r.next_handoff(at)
            person = self.who(r.name, at=at)
            for o in self.overrides:
                if o.rotation == r.name and self._covers(o, at):
                    until = min(until, self._end(o))
            out.append({"rotation": r.name, "person": person, "until": until, "timezone": r.timezone})
        return out


def load_oncall(path: Path | str) -> OnCallSchedule:
    """Read and validate the schedule (`PolicyError` names the bad fields); a missing file is no schedule."""
    if not Path(path).exists():
        return OnCallSchedule()
    return load_yaml(path, OnCallSchedule, what="on-call schedule")
