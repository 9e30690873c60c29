"""The event contract: every message on every Safeguard topic is one of these models.

Each topic carries a discriminated union on `type`; `parse(topic, raw)` validates a value
against the union of its topic, so a message of the wrong topic or shape is rejected.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from shared.events.base import Event, utcnow
from shared.events.deploy import DeploymentFinished, DeploymentRolledBack, DeploymentStarted
from shared.events.flags import FlagAction, FlagChanged, FlagSnapshot
from shared.events.health import (
    BreakerState, CircuitBreakerStateChanged, DependencyStats, HealthCheckCompleted, PoolStats, ProbeKind, ProbeStatus,
    ProcessStatsReported,
)
from shared.events.incidents import (
    IncidentAcknowledged, IncidentEscalated, IncidentMitigated, IncidentOpened, IncidentResolved,
    NotificationDelivered, NotificationFailed, Severity,
)
from shared.events.maintenance import MaintenanceWindowCancelled, MaintenanceWindowScheduled
from shared.events.recovery import (
    Command, DisableNewFeatures, OpenCircuitBreaker, RecoveryActionFailed, RecoveryActionStarted,
    RecoveryActionSucceeded, RecoveryActionVerified, RestartConnectionPool, RestartProcess,
)
from shared.events.sla import UNRESPONSIVE, BudgetReported, BurnRate, TriggerCleared, TriggerFired, TriggerKind
from shared.events.telemetry import PageLoadObserved, RequestsObserved

__all__ = [
    "Event", "utcnow", "contract_topic", "EVENT_TYPES", "TOPIC_EVENTS", "event_class", "parse", "topic_adapter",
    "RequestsObserved", "PageLoadObserved", "HealthCheckCompleted", "ProcessStatsReported", "PoolStats", "DependencyStats",
    "ProbeKind", "ProbeStatus", "BreakerState", "CircuitBreakerStateChanged", "FlagChanged", "FlagSnapshot", "FlagAction", "TriggerFired", "TriggerCleared",
    "TriggerKind", "UNRESPONSIVE", "BudgetReported", "BurnRate", "Command", "RestartConnectionPool", "RestartProcess",
    "OpenCircuitBreaker", "DisableNewFeatures", "RecoveryActionStarted", "RecoveryActionSucceeded",
    "RecoveryActionFailed", "RecoveryActionVerified", "IncidentOpened", "IncidentEscalated", "IncidentAcknowledged",
    "IncidentMitigated", "IncidentResolved", "NotificationDelivered", "NotificationFailed", "Severity",
    "DeploymentStarted", "DeploymentFinished", "DeploymentRolledBack", "MaintenanceWindowScheduled",
    "MaintenanceWindowCancelled",
]

_ALL: tuple[type[Event], ...] = (
    RequestsObserved, PageLoadObserved, HealthCheckCompleted, ProcessStatsReported, FlagChanged,
    FlagSnapshot, TriggerFired, TriggerCleared, BudgetReported, RestartConnectionPool, RestartProcess,
    OpenCircuitBreaker, DisableNewFeatures, RecoveryActionStarted, RecoveryActionSucceeded,
    RecoveryActionFailed, IncidentOpened, IncidentEscalated, IncidentAcknowledged, IncidentMitigated,
    IncidentResolved, NotificationDelivered, NotificationFailed, CircuitBreakerStateChanged,
    DeploymentStarted, DeploymentFinished, DeploymentRolledBack, RecoveryActionVerified,
    MaintenanceWindowScheduled, MaintenanceWindowCancelled,
)


def _type_of(cls: type[Event]) -> str:
    return str(cls.model_fields["type"].default)


EVENT_TYPES: dict[str, type[Event]] = {_type_of(c): c for c in _ALL}
TOPIC_EVENTS: dict[str, tuple[type[Event], ...]] = {}
for _cls in _ALL:
    TOPIC_EVENTS.setdefault(_cls.topic, ())
    TOPIC_EVENTS[_cls.topic] += (_cls,)

_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def topic_adapter(topic: str) -> TypeAdapter[Any]:
    """A TypeAdapter for the discriminated union of the events that `topic` carries."""
    if topic not in _ADAPTERS:
        classes = TOPIC_EVENTS[topic]
        if len(classes) == 1:
            _ADAPTERS[topic] = TypeAdapter(classes[0])
        else:
            union = Annotated[Union[classes], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
            _ADAPTERS[topic] = TypeAdapter(union)
    return _ADAPTERS[topic]


def event_class(type_: str) -> type[Event]:
    return EVENT_TYPES[type_]


def contract_topic(topic: str) -> str:
    """The contract topic of an actual topic name: `staging.sla.triggers` -> `sla.triggers`.

    Deployments and tests may prefix topic names (`KafkaSettings.topic_prefix`); the contract
    is the same. Raises KeyError for a topic outside the contract.
    """
    if topic in TOPIC_EVENTS:
        return topic
    for known in TOPIC_EVENTS:
        if topic.endswith("." + known):
            return known
    raise KeyError(f"topic {topic!r} is not part of the event contract")


def parse(topic: str, raw: bytes | str) -> Event:
    """Validate a JSON value from `topic`; raises pydantic.ValidationError or KeyError (unknown topic)."""
    event: Event = topic_adapter(contract_topic(topic)).validate_json(raw)
    return event
