"""The notifier policy (`config/notifier.yaml`): escalation levels, contacts, channels, severities.

Validated at start: a bad file raises `PolicyError` naming the field, and the service stops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from shared.policy import PolicyError, PositiveDuration, Strict, load_yaml

__all__ = ["PolicyError", "Channel", "Level", "NotifierPolicy", "load_policy", "ChannelName"]

ChannelName = Literal["status_page", "stakeholder", "user", "oncall_page"]
Severity = Literal["critical", "major", "minor"]
Duration = PositiveDuration
_Strict = Strict


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
    """`attempts` quick tries per delivery (`backoff` apart); a notice still undelivered is sent again later by
    the relay, `redeliver_after` doubling up to `redeliver_max`, `redeliveries` times in all."""

    timeout: Duration = 5.0
    attempts: int = Field(default=3, ge=1, le=10)
    backoff: Duration = 0.5
    redeliveries: int = Field(default=10, ge=1, le=100)
    redeliver_after: Duration = Field(default=30.0, gt=0)
    redeliver_max: Duration = Field(default=900.0, gt=0)

    def redeliver_in(self, attempts: int) -> float:
        """Seconds until the next try of a notice that failed `attempts` times."""
        return float(min(self.redeliver_after * 2 ** (attempts - 1), self.redeliver_max))


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
    """Read and validate the YAML policy; `PolicyError` names the bad fields."""
    return load_yaml(path, NotifierPolicy, what="notifier policy")
