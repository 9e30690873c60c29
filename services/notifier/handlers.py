"""Inbound edge from Kafka: each `sla.triggers` / `recovery.actions` / `deploy.events` event maps to one core verb."""

from __future__ import annotations

from collections.abc import Mapping

from services.notifier.service import NotifierService
from shared.events import (
    DeploymentRolledBack, Event, RecoveryActionFailed, RecoveryActionStarted, RecoveryActionSucceeded,
    RecoveryActionVerified, TriggerCleared, TriggerFired,
)
from shared.kafka import Handler

__all__ = ["build_handlers"]


def build_handlers(svc: NotifierService) -> Mapping[type[Event], Handler]:
    """Each event type to the core verb that handles it (the consumer awaits it; an exception retries the record)."""
    return {
        TriggerFired: svc.open_incident,
        TriggerCleared: svc.resolve_on_clear,
        RecoveryActionStarted: svc.record_action,
        RecoveryActionSucceeded: svc.mitigate,
        RecoveryActionVerified: svc.mitigate,
        RecoveryActionFailed: svc.escalate_on_failure,
        DeploymentRolledBack: svc.record_rollback,
    }
