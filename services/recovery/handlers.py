"""Inbound edge from Kafka: each `sla.triggers` event maps to one core verb."""

from __future__ import annotations

from collections.abc import Mapping

from services.recovery.service import RecoveryService
from shared.events import Event, TriggerCleared, TriggerFired
from shared.kafka import Handler

__all__ = ["build_handlers"]


def build_handlers(svc: RecoveryService) -> Mapping[type[Event], Handler]:
    """Each event type to the core verb that handles it (the consumer awaits it; an exception retries the record)."""
    return {TriggerFired: svc.recover_from_trigger, TriggerCleared: svc.verify_cleared}
