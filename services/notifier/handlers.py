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
    async def open_incident(event: TriggerFired) -> None:
        await svc.open_incident(event)

    async def resolve_incident(event: TriggerCleared) -> None:
        await svc.resolve_on_clear(event)

    async def record_action(event: RecoveryActionStarted) -> None:
        await svc.record_action(event)

    async def mitigate_incident(event: RecoveryActionSucceeded | RecoveryActionVerified) -> None:
        await svc.mitigate(event)

    async def escalate_incident(event: RecoveryActionFailed) -> None:
        await svc.escalate_on_failure(event)

    async def record_rollback(event: DeploymentRolledBack) -> None:
        await svc.record_rollback(event)

    return {DeploymentRolledBack: record_rollback, TriggerFired: open_incident, TriggerCleared: resolve_incident, RecoveryActionStarted: record_action,
            RecoveryActionSucceeded: mitigate_incident, RecoveryActionVerified: mitigate_incident,
            RecoveryActionFailed: escalate_incident}
