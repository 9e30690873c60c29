"""Inbound edge from Kafka: each `sla.triggers` event maps to one core verb."""

from __future__ import annotations

from collections.abc import Mapping

from services.recovery.service import RecoveryService
from shared.events import Event, TriggerCleared, TriggerFired
from shared.kafka import Handler

__all__ = ["build_handlers"]


def build_handlers(svc: RecoveryService) -> Mapping[type[Event], Handler]:
    async def recover_from_trigger(event: TriggerFired) -> None:
        await svc.recover_from_trigger(event)

    async def verify_cleared(event: TriggerCleared) -> None:
        await svc.verify_cleared(event)

    return {TriggerFired: recover_from_trigger, TriggerCleared: verify_cleared}
