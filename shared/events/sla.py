"""Events the SLA stream processor emits."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat

from shared import topics
from shared.events.base import Event

__all__ = ["TriggerKind", "UNRESPONSIVE", "TriggerFired", "TriggerCleared", "BudgetReported", "BurnRate"]

TriggerKind = Literal["error_rate_high", "latency_high", "memory_high", "db_connection_lost", "budget_burn",
                      "unresponsive"]
"""`unresponsive` is not the SLA processor's: the health service's watchdog fires it when one of Safeguard's own
processors (the SLA processor, recovery) stops answering its checks, since the processor that makes the other
triggers may be the one that hung (services/health/watchdog.py)."""
UNRESPONSIVE: TriggerKind = "unresponsive"


class TriggerFired(Event):
    """A runbook trigger started an episode for a service (exactly one per episode).

    Emitted by the sla processor. `time` is the event time of detection, `first_bad_at`
    when the condition first held; `id` is derived from `episode_id`, so a replay after a
    crash repeats the same ce_id and consumers' dedupe drops it.
    """

    topic: ClassVar[str] = topics.SLA_TRIGGERS
    type: Literal["sla.trigger_fired"] = "sla.trigger_fired"
    service: str = Field(min_length=1)
    trigger: TriggerKind
    episode_id: str = Field(min_length=1)
    value: float
    threshold: float
    window_seconds: NonNegativeFloat
    samples: int = 0
    first_bad_at: datetime | None = None
    instance: str | None = Field(default=None, description="The instance at fault, when one is (memory_high, pools).")
    detail: str = ""


class TriggerCleared(Event):
    """The episode of a trigger ended: the condition held clean long enough."""

    topic: ClassVar[str] = topics.SLA_TRIGGERS
    type: Literal["sla.trigger_cleared"] = "sla.trigger_cleared"
    service: str = Field(min_length=1)
    trigger: TriggerKind
    episode_id: str = Field(min_length=1)
    value: float
    threshold: float
    fired_at: datetime | None = None
    instance: str | None = None
    reason: str = Field(default="", description=(
        "Why it ended: the condition held clean, no data (the window aged out on the clock), or superseded by "
        "a new episode (a feature turned on again while it fired)."))


class BurnRate(BaseModel):
    """Burn rate of the error budget over one window (1.0 = spending it exactly on time)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    window: str
    rate: NonNegativeFloat


class BudgetReported(Event):
    """Availability and error budget of a service against its objective."""

    topic: ClassVar[str] = topics.SLA_BUDGETS
    type: Literal["sla.budget_reported"] = "sla.budget_reported"
    service: str = Field(min_length=1)
    basis: Literal["requests", "probes"]
    objective: float = Field(gt=0, lt=1, description="e.g. 0.999")
    period_days: float = 30
    availability: float | None
    budget_remaining_ratio: float
    budget_remaining_minutes: float
    burn_rates: list[BurnRate] = Field(default_factory=list)
    alerts: list[str] = Field(default_factory=list, description="Firing multiwindow alerts, e.g. 'page:1h/5m'.")
    good: int = Field(default=0, ge=0, description="Good events (requests served, probes up) in the period.")
    total: int = Field(default=0, ge=0, description="All events in the period, planned maintenance excluded.")
