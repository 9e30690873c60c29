"""The SLA policy (`config/sla.yaml`): thresholds, windows, holds, budgets, maintenance.

Validated at start: a bad file raises `PolicyError` naming the field, and the service
stops with that message instead of running on a guess.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from shared.policy import UNITS, Duration, PolicyError, PositiveDuration, Strict, load_yaml, parse_duration

__all__ = [
    "PolicyError", "SlaPolicy", "TriggerRule", "TriggerRules", "BurnAlertRule", "BudgetPolicy", "Objectives",
    "WeeklyWindow", "OneOffWindow", "BusinessHours", "EventTime", "load_policy", "parse_duration",
]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_QUANTILES = (0.5, 0.9, 0.95, 0.99)


def _one_of_quantiles(q: float) -> float:
    if q not in _QUANTILES:
        raise ValueError(f"must be one of {', '.join(map(str, _QUANTILES))}")
    return q


Quantile = Annotated[float, AfterValidator(_one_of_quantiles)]


class TriggerRule(Strict):
    """When a trigger fires and clears.

    Fires when `value > threshold` on every evaluation for `hold_fire` seconds with at least
    `min_samples` samples in `window`; clears when `value <= clear_threshold` (default: the
    threshold) for `hold_clear` seconds. Too few samples change nothing.
    """

    enabled: bool = True
    threshold: float
    clear_threshold: float | None = None
    window: Duration = Field(gt=0)
    min_samples: int = Field(ge=1)
    hold_fire: Duration = 0.0
    hold_clear: Duration = 0.0

    @model_validator(mode="after")
    def _clear_below_fire(self) -> TriggerRule:
        if self.clear_threshold is not None and self.clear_threshold > self.threshold:
            raise ValueError("clear_threshold must not exceed threshold")
        return self

    @property
    def clear_at(self) -> float:
        return self.threshold if self.clear_threshold is None else self.clear_threshold


class TriggerRules(Strict):
    error_rate_high: TriggerRule = TriggerRule(threshold=0.05, window=5, min_samples=20, hold_fire=1, hold_clear=10)
    latency_high: TriggerRule = TriggerRule(threshold=5000, window=5, min_samples=20, hold_fire=1, hold_clear=10)
    latency_quantile: Quantile = 0.95
    memory_high: TriggerRule = TriggerRule(threshold=90, window=15, min_samples=2, hold_fire=0, hold_clear=10)
    db_connection_lost: TriggerRule = TriggerRule(threshold=0.5, window=60, min_samples=1, hold_fire=0, hold_clear=5)
    budget_burn: TriggerRule = TriggerRule(threshold=1.0, window=300, min_samples=10, hold_fire=0, hold_clear=60)


class BurnAlertRule(Strict):
    """A Google SRE workbook multiwindow burn-rate alert: both windows burn at >= factor."""

    long: Duration = Field(gt=0)
    short: Duration = Field(gt=0)
    factor: float = Field(gt=0)
    severity: Literal["page", "ticket"]

    @property
    def name(self) -> str:
        return f"{self.severity}:{_fmt(self.long)}/{_fmt(self.short)}"


def _fmt(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds >= UNITS[unit] and seconds % UNITS[unit] == 0:
            return f"{int(seconds // UNITS[unit])}{unit}"
    return f"{seconds:g}s"


_WORKBOOK = (
    BurnAlertRule(long=3600, short=300, factor=14.4, severity="page"),
    BurnAlertRule(long=6 * 3600, short=1800, factor=6, severity="page"),
    BurnAlertRule(long=86400, short=2 * 3600, factor=3, severity="ticket"),
    BurnAlertRule(long=3 * 86400, short=6 * 3600, factor=1, severity="ticket"),
)


class BudgetPolicy(Strict):
    objective: float = Field(default=0.999, gt=0, lt=1)
    period: Duration = Field(default=30 * 86400, gt=0)
    report_every: Duration = Field(default=10, gt=0)
    alerts: tuple[BurnAlertRule, ...] = _WORKBOOK

    @model_validator(mode="after")
    def _windows_fit(self) -> BudgetPolicy:
        for rule in self.alerts:
            if rule.short >= rule.long:
                raise ValueError(f"alert {rule.name}: short window must be shorter than long")
            if rule.long > self.period:
                raise ValueError(f"alert {rule.name}: long window exceeds the budget period")
        return self


class Objectives(Strict):
    """The runbook's performance objectives (reported, not triggers)."""

    response_ms: float = Field(default=2000, gt=0)
    db_query_ms: float = Field(default=500, gt=0)
    page_load_ms: float = Field(default=3000, gt=0)


def _hhmm(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML reads 02:00 unquoted as sexagesimal minutes
        return time(value // 60 % 24, value % 60)
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value).strip())
    if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59:
        raise ValueError(f"not a time of day: {value!r} (use HH:MM)")
    return time(0, 0) if int(m.group(1)) == 24 else time(int(m.group(1)), int(m.group(2)))


Clock = Annotated[time, BeforeValidator(_hhmm)]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class _Weekly(Strict):
    days: tuple[Day, ...] = Field(min_length=1)
    start: Clock
    end: Clock
    timezone: str = "UTC"

    _check_zone = field_validator("timezone")(_zone)

    @field_validator("days", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return tuple(str(d).lower()[:3] for d in v) if isinstance(v, list | tuple) else v

    def contains(self, t: datetime) -> bool:
        local = t.astimezone(ZoneInfo(self.timezone))
        day, now = _DAYS[local.weekday()], local.time()
        if self.start < self.end:
            return day in self.days and self.start <= now < self.end
        yesterday = _DAYS[(local.weekday() - 1) % 7]
        return (day in self.days and now >= self.start) or (yesterday in self.days and now < self.end)


class BusinessHours(_Weekly):
    days: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: Clock = time(9, 0)
    end: Clock = time(18, 0)
    timezone: str = "Asia/Bangkok"


class WeeklyWindow(_Weekly):
    """A recurring planned maintenance window, e.g. sun 02:00-04:00 (may cross midnight)."""

    kind: Literal["weekly"] = "weekly"
    reason: str = ""


class OneOffWindow(Strict):
    kind: Literal["once"] = "once"
    start: datetime
    end: datetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> OneOffWindow:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a UTC offset, e.g. 2025-01-05T02:00:00+07:00")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def contains(self, t: datetime) -> bool:
        return self.start <= t < self.end


MaintenanceWindow = Annotated[WeeklyWindow | OneOffWindow, Field(discriminator="kind")]


class EventTime(Strict):
    """How far an event's time may be from the processor's clock; a record outside goes to the DLQ.

    `max_ahead` tolerates producer clock skew (an accepted record ahead of now is counted, but a
    service's window never runs ahead of now); `max_behind` is the oldest record worth counting
    (the telemetry topics keep 7 days).
    """

    max_ahead: PositiveDuration = 10.0
    max_behind: PositiveDuration = 7 * 86400.0


class SlaPolicy(Strict):
    triggers: TriggerRules = TriggerRules()
    budget: BudgetPolicy = BudgetPolicy()
    objectives: Objectives = Objectives()
    business_hours: BusinessHours = BusinessHours()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    pageload_window: Duration = Field(default=300, gt=0)
    event_time: EventTime = EventTime()

    @model_validator(mode="after")
    def _maintenance_outside_business_hours(self) -> SlaPolicy:
        for i, window in enumerate(self.maintenance):
            if _overlaps_business_hours(window, self.business_hours):
                raise ValueError(f"maintenance[{i}] overlaps business hours (runbook: outside business hours)")
        return self

    def in_maintenance(self, t: datetime) -> bool:
        return any(w.contains(t) for w in self.maintenance)


def _overlaps_business_hours(window: WeeklyWindow | OneOffWindow, hours: BusinessHours) -> bool:
    if isinstance(window, OneOffWindow):
        start, end = window.start, window.end
    else:
        start = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday; one week in 5-minute steps covers every case
        end = start + timedelta(days=8)
    t, step = start, timedelta(minutes=5)
    while t < end:
        if window.contains(t) and hours.contains(t):
            return True
        t += step
    return False


def load_policy(path: str | Path | None) -> SlaPolicy:
    """The policy in `path` (defaults when `path` is None). Raises PolicyError naming the bad fields."""
    if path is None:
        return SlaPolicy()
    return load_yaml(path, SlaPolicy, what="SLA policy")
