"""The notifier policy (`config/notifier.yaml`): escalation levels, contacts, channels, severities.

Validated at start: a bad file raises `PolicyError` naming the field, and the service stops.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

__all__ = ["PolicyError", "Channel", "Level", "NotifierPolicy", "load_policy", "ChannelName"]

ChannelName = Literal["status_page", "stakeholder", "user", "oncall_page"]
Severity = Literal["critical", "major", "minor"]
_UNITS = {"s": 1, "m": 60, "h": 3600}


class PolicyError(ValueError):
    """The policy file is missing a field, has a bad value, or cannot be read."""


def _duration(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    raise ValueError(f"not a duration: {value!r} (use seconds or 90s / 5m / 1h)")


Duration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Channel(_Strict):
    """Where one kind of notice goes: a webhook `url` (POST, JSON) or, without one, the built-in log channel."""

    url: str | None = Field(default=None, pattern=r"^https?://")
    recipients: list[str] = Field(default_factory=lambda: ["default"])


class Level(_Strict):
    """One step of the escalation path. `escalate_after`: time at this level before the next one is paged
    (unless the incident is acknowledged, mitigated or resolved). `contacts`: paged on the on-call channel."""

    level: int = Field(ge=1, le=4)
    name: str = Field(min_length=1)
    escalate_after: Duration | None = None
    contacts: list[str] = Field(default_factory=list)


def _default_levels() -> list[Level]:
    return [Level(level=1, name="auto-recovery system", escalate_after=300),
            Level(level=2, name="on-call developer", escalate_after=900, contacts=["oncall-developer"]),
            Level(level=3, name="system administrator", escalate_after=3600, contacts=["sysadmin"]),
            Level(level=4, name="infrastructure team", contacts=["infrastructure-team"])]


def _default_severity() -> dict[str, Severity]:
    return {"db_connection_lost": "critical", "error_rate_high": "major", "latency_high": "major",
            "memory_high": "minor"}


def _default_user_severities() -> list[Severity]:
    return ["major", "critical"]


class Channels(_Strict):
    status_page: Channel = Channel()
    stakeholder: Channel = Channel()
    user: Channel = Channel()
    oncall_page: Channel = Channel()


class Targets(_Strict):
    """The runbook's recovery time targets, quoted in post-incident reports."""

    auto_recovery: Duration = 300.0
    manual_intervention: Duration = 900.0
    full_restore: Duration = 3600.0


class Webhook(_Strict):
    timeout: Duration = 5.0
    attempts: int = Field(default=3, ge=1, le=10)
    backoff: Duration = 0.5


class NotifierPolicy(_Strict):
    """`max_trigger_age`: a TriggerFired older than this is history and opens nothing (a new consumer group
    reads sla.triggers from the start). `user_notice_severities`: severities that also notify users."""

    max_trigger_age: Duration = 300.0
    levels: list[Level] = Field(default_factory=_default_levels)
    channels: Channels = Channels()
    severity: dict[str, Severity] = Field(default_factory=_default_severity)
    user_notice_severities: list[Severity] = Field(default_factory=_default_user_severities)
    targets: Targets = Targets()
    webhook: Webhook = Webhook()

    @field_validator("levels")
    @classmethod
    def _levels_one_to_four(cls, levels: list[Level]) -> list[Level]:
        if [lv.level for lv in levels] != [1, 2, 3, 4]:
            raise ValueError("must list levels 1, 2, 3, 4 in order")
        return levels

    def level(self, n: int) -> Level:
        return self.levels[n - 1]

    def severity_of(self, trigger: str) -> Severity:
        return self.severity.get(trigger, "major")


def load_policy(path: Path | str) -> NotifierPolicy:
    """Read and validate the YAML policy; `PolicyError` names the first bad field."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: the top level must be a mapping")
    try:
        return NotifierPolicy.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise PolicyError(f"{path}: field '{field}': {first['msg']}") from exc
