"""The notifier policy (`config/notifier.yaml`): escalation levels, contacts, channels, severities.

Validated at start: a bad file raises `PolicyError` naming the field, and the service stops.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, field_validator, model_validator

from shared.events import UNRESPONSIVE
from shared.policy import PolicyError, PositiveDuration, Strict, load_yaml

__all__ = ["PolicyError", "Channel", "Level", "NotifierPolicy", "load_policy", "ChannelName", "BusinessHours",
           "MaintenancePolicy", "WEEKDAYS", "ChannelKind"]

ChannelName = Literal["status_page", "stakeholder", "user", "oncall_page"]
Severity = Literal["critical", "major", "minor"]
Duration = PositiveDuration
ChannelKind = Literal["log", "webhook", "slack", "email", "apprise"]


class Channel(Strict):
    """Where one kind of notice goes, through one plugin (`kind`): `webhook` (POST, JSON, signed with
    HMAC-SHA256 when a secret is set), `slack` (an incoming webhook, Block Kit), `email` (SMTP), `apprise`
    (any service Apprise knows, its URL from the environment only) or `log`.
    Without `kind`: a webhook when there is a `url`, else the log. The URL and the webhook secret may
    come from the environment instead (`NOTIFIER_CHANNELS__<NAME>__URL` / `__SECRET`): a Slack URL is a
    secret. `to`: e-mail addresses for recipients that are not an address (nor a person with one)."""

    kind: ChannelKind | None = None
    url: str | None = Field(default=None, pattern=r"^https?://")
    recipients: list[str] = Field(default_factory=lambda: ["default"])
    to: list[str] = Field(default_factory=list)


class Level(Strict):
    """One step of the escalation path. `escalate_after`: time at this level before the next one is paged
    (unless the incident is acknowledged, mitigated or resolved). `contacts`: paged on the on-call channel (a
    contact naming a rotation of `config/oncall.yaml` pages whoever is on call in it). `repeat_every`: the page
    is sent again this often while unacknowledged at this level (by default every 5 min at L2, 10 min at L3)."""

    level: int = Field(ge=1, le=4)
    name: str = Field(min_length=1)
    escalate_after: Duration | None = None
    contacts: list[str] = Field(default_factory=list)
    repeat_every: Duration | None = None


def _default_levels() -> list[Level]:
    return [Level(level=1, name="auto-recovery system", escalate_after=300),
            Level(level=2, name="on-call developer", escalate_after=900, repeat_every=300,
                  contacts=["oncall-developer"]),
            Level(level=3, name="system administrator", escalate_after=3600, repeat_every=600, contacts=["sysadmin"]),
            Level(level=4, name="infrastructure team", contacts=["infrastructure-team"])]


def _default_severity() -> dict[str, Severity]:
    return {"db_connection_lost": "critical", "error_rate_high": "major", "latency_high": "major",
            "memory_high": "minor", UNRESPONSIVE: "minor"}


def _default_page_at_once() -> list[str]:
    # recovery restarts a hung SLA processor (config/recovery.yaml); nothing restarts recovery or health
    return [f"recovery/{UNRESPONSIVE}", f"health/{UNRESPONSIVE}"]


def _default_user_severities() -> list[Severity]:
    return ["major", "critical"]


class Channels(Strict):
    status_page: Channel = Channel()
    stakeholder: Channel = Channel()
    user: Channel = Channel()
    oncall_page: Channel = Channel()


class Targets(Strict):
    """The runbook's recovery time targets, quoted in post-incident reports."""

    auto_recovery: Duration = 300.0
    manual_intervention: Duration = 900.0
    full_restore: Duration = 3600.0


class Webhook(Strict):
    """`attempts` quick tries per delivery (`backoff` apart); a notice still undelivered is sent again later by
    the relay, `redeliver_after` doubling up to `redeliver_max`, `redeliveries` times in all, and never after
    `expire_after` from when it was written (a page a day late helps nobody)."""

    timeout: Duration = 5.0
    attempts: int = Field(default=3, ge=1, le=10)
    backoff: Duration = 0.5
    redeliveries: int = Field(default=10, ge=1, le=100)
    redeliver_after: Duration = Field(default=30.0, gt=0)
    redeliver_max: Duration = Field(default=900.0, gt=0)
    expire_after: Duration = Field(default=86400.0, gt=0)

    def redeliver_in(self, attempts: int) -> float:
        """Seconds until the next try of a notice that failed `attempts` times."""
        return float(min(self.redeliver_after * 2 ** (attempts - 1), self.redeliver_max))


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _hhmm(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML reads 09:00 unquoted as sexagesimal minutes
        return time(value // 60 % 24, value % 60)
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value).strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(f"not a time of day: {value!r} (use HH:MM)")
    return time(int(m.group(1)), int(m.group(2)))


Clock = Annotated[time, BeforeValidator(_hhmm)]


class BusinessHours(Strict):
    """The runbook's business hours (planned maintenance goes outside them); the SLA policy's default."""

    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: Clock = time(9, 0)
    end: Clock = time(18, 0)
    timezone: str = "Asia/Bangkok"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _ordered(self) -> BusinessHours:
        if self.end <= self.start:
            raise ValueError("end must be after start (business hours within one day)")
        return self

    def __str__(self) -> str:
        idx = [WEEKDAYS.index(d) for d in self.days]
        run = len(idx) > 2 and idx == list(range(idx[0], idx[0] + len(idx)))
        days = f"{self.days[0]}-{self.days[-1]}" if run else ",".join(self.days)
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"


class MaintenancePolicy(Strict):
    """Maintenance windows: `business_hours` (a window inside them is refused unless `?force=true`, which
    marks it forced) and the longest window accepted."""

    business_hours: BusinessHours = BusinessHours()
    max_duration: Duration = Field(default=7 * 86400.0, gt=0)


class NotifierPolicy(Strict):
    """`max_trigger_age`: a TriggerFired older than this is history and opens nothing (a new consumer group
    reads sla.triggers from the start). `user_notice_severities`: severities that also notify users.
    `page_at_once`: triggers whose incident pages level 2 when it opens (nothing at level 1 acts on them), each
    `trigger` (any service) or `service/trigger`."""

    max_trigger_age: Duration = 300.0
    levels: list[Level] = Field(default_factory=_default_levels)
    channels: Channels = Channels()
    severity: dict[str, Severity] = Field(default_factory=_default_severity)
    user_notice_severities: list[Severity] = Field(default_factory=_default_user_severities)
    page_at_once: list[str] = Field(default_factory=_default_page_at_once, description=(
        "Triggers no automatic recovery answers, as `trigger` or `service/trigger`: their incident opens at level 1 "
        "and escalates to level 2 at once."))
    targets: Targets = Targets()
    webhook: Webhook = Webhook()
    maintenance: MaintenancePolicy = MaintenancePolicy()

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

    def pages_at_once(self, service: str, trigger: str) -> bool:
        return trigger in self.page_at_once or f"{service}/{trigger}" in self.page_at_once


def load_policy(path: Path | str) -> NotifierPolicy:
    """Read and validate the YAML policy; `PolicyError` names the bad fields."""
    return load_yaml(path, NotifierPolicy, what="notifier policy")
